"""Resumable conversations (the resume capability) at the protocol level,
as a client program sees them against the real daemon: tokens, numbered
lines and their acknowledgements, a person away and back, what they missed,
and who may not come back. The real client's reconnecting is tested in
test_resume_client.py."""

import re
import time

import pytest

from turnchat_helpers import hello

CAPS = "CAPS action done resume"


def resumable(daemon, name, mode=None, caps="resume"):
    """A Raw granted resume, named and joined (not past WAITING/PAIRED)."""
    client = hello(daemon.connect())
    client.send(f"/caps {caps}")
    assert client.line() == CAPS
    client.send(f"/name {name}")
    if mode:
        client.send(f"/mode {mode}")
    client.send("/join")
    return client


def token_of(client):
    line = client.line()
    m = re.fullmatch(r"TOKEN ([0-9a-f]{32}) (\d+)", line)
    assert m, line
    return m.group(1), int(m.group(2))


def resumable_pair(daemon, mode=None, barret_caps="resume", seconds=120):
    """(cloud, barret, cloud_token, barret_token); Barret speaks first in
    turns mode. daemon: anything with connect(), test_state's Manager too."""
    cloud = resumable(daemon, "Cloud", mode)
    assert cloud.line() == "WAITING lobby"
    if barret_caps is None:
        barret = hello(daemon.connect())
        barret.send("/name Barret")
        barret.send("/join")
    else:
        barret = resumable(daemon, "Barret", caps=barret_caps)
    first = "-" if mode == "free" else "you"
    assert barret.line() == f"PAIRED Cloud {mode or 'turns'} {first}"
    assert cloud.line().startswith("PAIRED Barret ")
    cloud_token, told = token_of(cloud)
    assert told == seconds
    barret_token = token_of(barret)[0] if barret_caps is not None else None
    return cloud, barret, cloud_token, barret_token


def come_back(daemon, token, received, caps="resume"):
    """A new connection that asks for resume and sends /resume; returns it
    and the RESUMED line."""
    client = hello(daemon.connect())
    client.send(f"/caps {caps}")
    assert client.line() == CAPS
    client.send(f"/resume {token} {received}")
    return client, client.line()


def test_resume_is_granted_with_action_and_done_unless_turned_off(daemon, make_daemon):
    client = hello(daemon.connect())
    client.send("/caps resume")
    assert client.line() == CAPS
    off = hello(make_daemon(server_settings="resume_timeout = 0;").connect())
    off.send("/caps resume typing")
    assert off.line() == "CAPS typing"
    off.send("/ack 1")
    assert off.line().startswith("ERR bad-command ")


def test_tokens_are_random_per_person_and_never_logged(daemon):
    cloud, barret, t1, t2 = resumable_pair(daemon)
    assert t1 != t2
    cloud2, barret2, t3, t4 = resumable_pair(daemon)
    assert len({t1, t2, t3, t4}) == 4
    log = daemon.log()
    for t in (t1, t2, t3, t4):
        assert t not in log


def test_a_dropped_person_comes_back_and_misses_nothing(daemon):
    cloud, barret, cloud_token, _ = resumable_pair(daemon)
    barret.send("one")
    assert cloud.line() == "MSG one"
    cloud.close()
    assert barret.line() == ("INFO Cloud's connection dropped; waiting up to 120 seconds "
                             "for them to come back.")
    # It is still Cloud's turn: Barret's next line waits for it, unrefused.
    barret.send("two?")
    assert barret.quiet()
    back, resumed = come_back(daemon, cloud_token, 0)
    assert resumed == "RESUMED 0 Barret turns you"
    new_token, _ = token_of(back)
    assert new_token != cloud_token
    assert back.line() == "MSG one"
    assert barret.line() == "INFO Cloud is back."
    back.send("/ack 1")
    assert barret.line() == "ACK 1"
    back.send("three")
    assert barret.line() == "MSG three"
    assert back.line() == "MSG two?"
    # The old token was good for one /resume only.
    again, answer = come_back(daemon, cloud_token, 2)
    assert answer.startswith("ERR no-session ")
    back.send("/q")
    assert back.line() == "RELAYED 1"
    assert back.line() == "BYE quit"
    assert barret.line() == "RELAYED 2"
    assert barret.line() == "BYE peer-quit"


def test_lines_written_meanwhile_wait_and_only_unacknowledged_ones_come_again(daemon):
    cloud, barret, cloud_token, _ = resumable_pair(daemon, mode="free")
    for i in range(1, 4):
        barret.send(f"line {i}")
        assert cloud.line() == f"MSG line {i}"
    cloud.send("/ack 2")
    assert barret.line() == "ACK 2"
    cloud.close()
    assert barret.line().startswith("INFO Cloud's connection dropped")
    for i in range(4, 6):
        barret.send(f"line {i}")
    assert barret.quiet()
    back, resumed = come_back(daemon, cloud_token, 3)
    assert resumed == "RESUMED 0 Barret free -"
    token_of(back)
    assert [back.line() for _ in range(2)] == ["MSG line 4", "MSG line 5"]
    assert back.quiet()
    back.send("/ack 5")
    assert barret.line() == "INFO Cloud is back."
    assert barret.line() == "ACK 3"
    assert barret.line() == "ACK 5"


def test_resumed_says_how_many_lines_arrived_so_the_rest_can_be_sent_again(daemon):
    cloud, barret, _, barret_token = resumable_pair(daemon, mode="free")
    barret.send("first")
    barret.send("/me waves")
    barret.send("/done")
    assert [cloud.line() for _ in range(3)] == ["MSG first", "ACTION waves", "DONE"]
    barret.close()
    assert cloud.line().startswith("INFO Barret's connection dropped")
    back, resumed = come_back(daemon, barret_token, 0)
    assert resumed == "RESUMED 3 Cloud free -"


def test_the_partner_hears_peer_lost_when_nobody_comes_back(make_daemon):
    d = make_daemon(server_settings="resume_timeout = 2;")
    cloud, barret, cloud_token, _ = resumable_pair(d, seconds=2)
    barret.send("anyone?")
    cloud.close()
    assert barret.line() == ("INFO Cloud's connection dropped; waiting up to 2 seconds "
                             "for them to come back.")
    started = time.monotonic()
    assert barret.line(timeout=6) == "RELAYED 1"
    assert barret.line() == "BYE peer-lost"
    assert time.monotonic() - started >= 1
    d.wait_for_log("did not come back within 2 seconds")
    late, answer = come_back(d, cloud_token, 0)
    assert answer.startswith("ERR no-session ")


def test_someone_away_when_the_conversation_ends_learns_how_it_ended(daemon):
    cloud, barret, cloud_token, _ = resumable_pair(daemon)
    barret.send("I have to go")
    cloud.close()
    assert barret.line().startswith("INFO Cloud's connection dropped")
    barret.send("/q")
    assert barret.line() == "RELAYED 1"
    assert barret.line() == "BYE quit"
    back, resumed = come_back(daemon, cloud_token, 0)
    assert resumed == "RESUMED 0 Barret turns -"
    assert back.line() == "MSG I have to go"
    assert back.line() == "RELAYED 0"
    assert back.line() == "BYE peer-quit"
    assert back.closed()


def test_unknown_tokens_are_refused_and_guessing_turns_the_address_away(daemon):
    guesser = hello(daemon.connect())
    guesser.send("/caps resume")
    assert guesser.line() == CAPS
    for i in range(2):
        guesser.send(f"/resume {'%032x' % i} 0")
        assert guesser.line() == ("ERR no-session No conversation to resume with that token: "
                                  "it ended, or was resumed already")
    guesser.send(f"/resume {'%032x' % 7} 0")
    try:
        last = guesser.line()
    except ConnectionResetError:
        last = "reset"  # the reset that follows BYE flood overtook it
    assert last in ("BYE flood Too many unknown resume tokens; try later", "reset"), last
    # Turned away: HELLO and BYE flood, or a reset before it could read them.
    try:
        again = daemon.connect()
        heard = [again.line(), again.line()]
    except ConnectionResetError:
        heard = ["reset"]
    assert heard == ["reset"] or heard[1].startswith("BYE flood "), heard
    daemon.wait_for_log("3 /resume refused")


def test_a_connection_that_still_looks_open_is_replaced(daemon):
    cloud, barret, cloud_token, _ = resumable_pair(daemon)
    barret.send("hello?")
    assert cloud.line() == "MSG hello?"
    # Cloud's laptop woke on another network: the old connection is silent.
    back, resumed = come_back(daemon, cloud_token, 1)
    assert resumed == "RESUMED 0 Barret turns you"
    token_of(back)
    assert cloud.closed()
    # Barret hears of no drop, only that his line arrived.
    assert barret.line() == "ACK 1"
    back.send("hi")
    assert barret.line() == "MSG hi"
    daemon.wait_for_log("its old connection")


def test_a_v1_partner_is_told_in_words_and_acks_come_when_passed_on(daemon):
    cloud, barret, cloud_token, _ = resumable_pair(daemon, barret_caps=None)
    barret.send("hi Cloud")
    assert cloud.line() == "MSG hi Cloud"
    cloud.send("hi Barret")
    assert barret.line() == "MSG hi Barret"
    assert cloud.line() == "ACK 1"
    cloud.close()
    assert barret.line() == ("INFO Cloud's connection dropped; waiting up to 120 seconds "
                             "for them to come back.")
    back, resumed = come_back(daemon, cloud_token, 1)
    assert resumed == "RESUMED 1 Barret turns peer"
    token_of(back)
    assert back.line() == "ACK 1"
    assert barret.line() == "INFO Cloud is back."


def test_lines_over_the_rate_are_read_slowly_not_refused(make_daemon):
    d = make_daemon(server_settings="rate_limit = 20; rate_burst = 5;")
    cloud = resumable(d, "Cloud", mode="free")
    assert cloud.line() == "WAITING lobby"
    barret = resumable(d, "Barret")
    assert barret.line() == "PAIRED Cloud free -"
    assert cloud.line() == "PAIRED Barret free -"
    token_of(cloud), token_of(barret)
    barret.send_bytes(b"".join(b"paste %d\n" % i for i in range(60)))
    got = [cloud.line(timeout=10) for _ in range(60)]
    assert got == [f"MSG paste {i}" for i in range(60)]
    assert barret.quiet()  # no ERR rate-limited


def test_acknowledging_more_than_was_sent_is_refused(daemon):
    cloud, barret, _, _ = resumable_pair(daemon)
    barret.send("one")
    assert cloud.line() == "MSG one"
    cloud.send("/ack 2")
    assert cloud.line().startswith("ERR bad-command ")
    cloud.send("/ping")
    assert cloud.line() == "PONG"


def test_a_stopping_server_does_not_wait_for_those_away(daemon):
    cloud, barret, _, _ = resumable_pair(daemon)
    cloud.close()
    assert barret.line().startswith("INFO Cloud's connection dropped")
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 3
    assert barret.line() in ("RELAYED 0", "BYE shutdown")


def test_an_ending_on_a_connection_broken_unnoticed_is_told_on_return(daemon):
    """Cloud's network died without a word just before Barret left: the
    server's BYE went into a dead connection. Cloud comes back and learns
    what Barret said and how it ended, on the spot or after the closing's
    time limit."""
    cloud, barret, cloud_token, _ = resumable_pair(daemon)
    barret.send("bye now")
    barret.send("/q")
    assert barret.line() == "RELAYED 1"
    assert barret.line() == "BYE quit"
    back, resumed = come_back(daemon, cloud_token, 0)
    assert resumed == "RESUMED 0 Barret turns -"
    assert [back.line() for _ in range(3)] == ["MSG bye now", "RELAYED 0", "BYE peer-quit"]
    assert back.closed()


def test_an_ending_whose_bye_was_never_collected_waits_for_its_person(daemon):
    cloud, barret, cloud_token, _ = resumable_pair(daemon)
    barret.send("bye now")
    barret.send("/q")
    assert barret.line() == "RELAYED 1"
    # Cloud's old connection never closes: after the closing's time limit
    # the server gives up on it and keeps the ending for Cloud.
    daemon.wait_for_log("connection lost before the end of the conversation was read", 10)
    back, resumed = come_back(daemon, cloud_token, 0)
    assert resumed == "RESUMED 0 Barret turns -"
    assert [back.line() for _ in range(3)] == ["MSG bye now", "RELAYED 0", "BYE peer-quit"]
