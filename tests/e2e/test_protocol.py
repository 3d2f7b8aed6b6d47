"""The wire protocol as someone with nc sees it, against the real daemon."""

import signal
import socket

import pytest

from turnchat_helpers import TIMEOUT, Raw


def test_hello_waiting_paired_msg(daemon):
    cloud, barret = daemon.pair()
    barret.send("Hi")
    assert cloud.line() == "MSG Hi"
    cloud.send("//slash is kept")
    assert barret.line() == "MSG /slash is kept"


def test_paired_tells_mode_and_who_starts(daemon):
    cloud = daemon.client("Cloud", "")
    assert cloud.line() == "WAITING lobby"
    barret = daemon.client("Barret", "")
    assert barret.line() == "PAIRED Cloud turns you"
    assert cloud.line() == "PAIRED Barret turns peer"


def test_out_of_turn_is_refused_and_not_relayed(daemon):
    cloud, barret = daemon.pair()
    cloud.send("me first?")
    assert cloud.line().startswith("ERR not-your-turn ")
    assert barret.quiet()
    barret.send("one")
    barret.send("two")
    assert cloud.line() == "MSG one"
    assert barret.line().startswith("ERR not-your-turn ")
    cloud.send("reply")
    assert barret.line() == "MSG reply"


def test_refused_line_does_not_use_up_the_turn(daemon):
    cloud, barret = daemon.pair()
    barret.send_bytes(b"bad \xff utf8\n")
    assert barret.line().startswith("ERR bad-utf8 ")
    barret.send("good")
    assert cloud.line() == "MSG good"


@pytest.mark.parametrize("data, code", [
    (b"\xc3\x28 broken\n", "bad-utf8"),
    (b"\xe0\x80\xaf overlong\n", "bad-utf8"),
    (b"\x1b]0;title\x07\n", "control-char"),
    (b"\x1b[2J\n", "control-char"),
    (b"bare \x1b escape\n", "control-char"),
    (b"nul \x00 byte\n", "control-char"),
    (b"del \x7f\n", "control-char"),
    (b"c1 \xc2\x9b csi\n", "control-char"),
    (b"\n", "empty"),
    (b"/frobnicate\n", "bad-command"),
    (b"/q now\n", "bad-command"),
    (b"/name\n", "bad-command"),
])
def test_bad_input_gets_its_error_and_is_not_relayed(daemon, data, code):
    cloud, barret = daemon.pair()
    barret.send_bytes(data)
    assert barret.line().startswith(f"ERR {code} ")
    assert cloud.quiet()
    barret.send("still fine")
    assert cloud.line() == "MSG still fine"


def test_tab_and_unicode_pass_verbatim(daemon):
    cloud, barret = daemon.pair()
    barret.send("tab\there, ünïcødé, 日本語, 🙂")
    assert cloud.line() == "MSG tab\there, ünïcødé, 日本語, 🙂"


def test_crlf_is_accepted(daemon):
    cloud, barret = daemon.pair()
    barret.send_bytes(b"windows line\r\n")
    assert cloud.line() == "MSG windows line"


def test_too_long_line_refused_rest_discarded(daemon):
    cloud, barret = daemon.pair()
    barret.send_bytes(b"x" * 4096 + b"\n")
    assert cloud.line() == "MSG " + "x" * 4096
    cloud.send_bytes(b"y" * 5000)
    assert cloud.line().startswith("ERR too-long ")
    cloud.send_bytes(b"y" * 70000 + b"\n")
    cloud.send("after the long one")
    assert barret.line() == "MSG after the long one"
    assert cloud.quiet()


def test_name_and_room_rules(daemon):
    c = daemon.client()
    c.send("/name has space")
    assert c.line().startswith("ERR bad-name ")
    c.send("/name " + "n" * 33)
    assert c.line().startswith("ERR bad-name ")
    c.send("/join bad/room")
    assert c.line().startswith("ERR bad-name ")
    c.send("/mode chat")
    assert c.line().startswith("ERR bad-mode ")
    c.send("hello?")
    assert c.line().startswith("ERR not-paired ")
    c.send("/join")
    assert c.line() == "WAITING lobby"
    for again in ("/join", "/join other", "/name late", "/mode free"):
        c.send(again)
        assert c.line().startswith("ERR busy "), again
    c.send("/help")
    assert c.line().startswith("INFO ")


def test_default_name_is_guest(daemon):
    a = daemon.client(None, "")
    assert a.line() == "WAITING lobby"
    b = daemon.client("Barret", "")
    assert b.line() == "PAIRED guest turns you"


def test_free_mode_relays_every_line_in_order(make_daemon):
    daemon = make_daemon(server_settings="rate_limit = 0;")
    cloud = daemon.client("Cloud")
    cloud.send("/mode free")
    cloud.send("/join")
    assert cloud.line() == "WAITING lobby"
    barret = daemon.client("Barret", "")
    assert barret.line() == "PAIRED Cloud free -"
    assert cloud.line() == "PAIRED Barret free -"
    for i in range(50):
        cloud.send(f"c{i}")
        barret.send(f"b{i}")
    assert [barret.line() for _ in range(50)] == [f"MSG c{i}" for i in range(50)]
    assert [cloud.line() for _ in range(50)] == [f"MSG b{i}" for i in range(50)]


def test_mode_not_allowed_is_refused(make_daemon):
    d = make_daemon(server_settings='modes = ["turns"];')
    c = d.client("Cloud")
    c.send("/mode free")
    assert c.line().startswith("ERR bad-mode ")
    c.send("/mode turns")
    c.send("/join")
    assert c.line() == "WAITING lobby"


def test_quit_both_sides_told_and_closed(daemon):
    cloud, barret = daemon.pair()
    cloud.send("/q")
    assert cloud.line() == "BYE quit"
    assert barret.line() == "BYE peer-quit"
    assert cloud.closed() and barret.closed()


def test_quit_while_waiting_frees_the_room(daemon):
    a = daemon.client("A", "")
    assert a.line() == "WAITING lobby"
    a.send("/quit")
    assert a.line() == "BYE quit"
    assert a.closed()
    b = daemon.client("B", "")
    assert b.line() == "WAITING lobby"


def test_half_closed_client_still_gets_its_answers(daemon):
    c = Raw(daemon.port)
    c.send_bytes(b"/name Script\n/join solo\n/q\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.line().startswith("HELLO ")
    assert c.line() == "WAITING solo"
    assert c.line() == "BYE quit"
    assert c.closed()


def test_partner_connection_breaks_gives_peer_lost(daemon):
    cloud, barret = daemon.pair()
    barret.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    barret.close()  # a reset, as when a machine drops off
    assert cloud.line() == "BYE peer-lost"
    assert cloud.closed()
    cloud2, barret2 = daemon.pair(names=("C2", "B2"))
    barret2.close()  # a plain close without /q
    assert cloud2.line() == "BYE peer-lost"


def test_waiter_leaving_frees_the_room(daemon):
    a = daemon.client("A", "")
    assert a.line() == "WAITING lobby"
    a.close()
    daemon.wait_for_log("connection closed")
    b = daemon.client("B", "")
    assert b.line() == "WAITING lobby"


def test_many_conversations_stay_private(make_daemon):
    daemon = make_daemon(server_settings="max_per_address = 1000;")
    pairs = []
    for i in range(200):
        room = "lobby" if i % 2 else f"room{i}"
        pairs.append(daemon.pair(room=room, names=(f"w{i}", f"c{i}")))
    for i, (waiter, caller) in enumerate(pairs):
        caller.send(f"secret-{i}-from-caller")
    for i, (waiter, caller) in enumerate(pairs):
        assert waiter.line() == f"MSG secret-{i}-from-caller"
        waiter.send(f"secret-{i}-from-waiter")
    for i, (waiter, caller) in enumerate(pairs):
        assert caller.line() == f"MSG secret-{i}-from-waiter"
    # An outsider joining any room can only wait; nobody else hears anything.
    outsider = daemon.client("outsider", "lobby")
    assert outsider.line() == "WAITING lobby"
    outsider.send("let me in")
    assert outsider.line().startswith("ERR not-paired ")
    for waiter, caller in pairs:
        assert waiter.quiet(0.001) and caller.quiet(0.001)
    for waiter, caller in pairs:
        waiter.close()
        caller.close()


def test_sigterm_says_bye_shutdown_to_everyone(daemon):
    cloud, barret = daemon.pair()
    waiting = daemon.client("W", "elsewhere")
    assert waiting.line() == "WAITING elsewhere"
    fresh = daemon.client()
    daemon.proc.send_signal(signal.SIGTERM)
    for c in (cloud, barret, waiting, fresh):
        assert c.line() == "BYE shutdown"
        assert c.closed()
        c.close()
    assert daemon.proc.wait(TIMEOUT) == 0
    assert "shutting down" in daemon.log()


def test_idle_conversation_ends(make_daemon):
    d = make_daemon(server_settings="idle_timeout = 1;")
    cloud, barret = d.pair()
    assert cloud.line(timeout=5) == "BYE idle"
    assert barret.line(timeout=5) == "BYE idle"


def test_server_full(make_daemon):
    d = make_daemon(server_settings="max_clients = 2;")
    a = d.client("A", "")
    b = d.client("B", "")
    assert a.line() == "WAITING lobby"
    c = Raw(d.port)
    assert c.line().startswith("HELLO ")
    assert c.line().startswith("BYE server-full")
    assert c.closed()
    assert b.line().startswith("PAIRED A ")
    assert "max_clients" in d.log()


def test_daemon_logs_events_not_text(daemon):
    cloud, barret = daemon.pair()
    barret.send("top secret words")
    assert cloud.line() == "MSG top secret words"
    barret.send("out of turn words")
    assert barret.line().startswith("ERR not-your-turn")
    cloud.send("/q")
    assert cloud.line() == "BYE quit"
    daemon.wait_for_log("ended")
    log = daemon.log()
    assert "connection from 127.0.0.1 port" in log
    assert "paired in room 'lobby'" in log
    assert "refused a line: not-your-turn" in log
    assert "ended: Cloud quit" in log
    assert "secret" not in log and "words" not in log
