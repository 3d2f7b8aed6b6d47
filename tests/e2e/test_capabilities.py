"""The capabilities a client may ask for with /caps (typing, action, done),
names in any script and the idle warning, as someone with nc sees them
against the real daemon. A client that never asks sees v1 exactly."""

import time

import pytest

from turnchat_helpers import hello

ALL = "typing action done"


def caps_client(daemon, name, caps=ALL, room=""):
    """A Raw that asked for caps before /join; returns it after CAPS."""
    client = hello(daemon.connect())
    client.send(f"/caps {caps}")
    granted = client.line()
    assert granted.startswith("CAPS"), granted
    client.send(f"/name {name}")
    client.send(f"/join {room}" if room else "/join")
    return client


def caps_pair(daemon, waiter_caps=ALL, caller_caps=ALL, mode=None):
    """(cloud, barret): Cloud waited, Barret came second and speaks first."""
    cloud = hello(daemon.connect())
    if waiter_caps is not None:
        cloud.send(f"/caps {waiter_caps}")
        assert cloud.line().startswith("CAPS")
    cloud.send("/name Cloud")
    if mode:
        cloud.send(f"/mode {mode}")
    cloud.send("/join")
    assert cloud.line() == "WAITING lobby"
    barret = hello(daemon.connect())
    if caller_caps is not None:
        barret.send(f"/caps {caller_caps}")
        assert barret.line().startswith("CAPS")
    barret.send("/name Barret")
    barret.send("/join")
    first = "-" if mode == "free" else "you"
    assert barret.line() == f"PAIRED Cloud {mode or 'turns'} {first}"
    assert cloud.line().startswith("PAIRED Barret ")
    return cloud, barret


def test_v1_client_never_sees_the_new_commands(daemon):
    cloud, barret = daemon.pair()
    for line in ("/typing", "/me waves", "/done"):
        barret.send(line)
        assert barret.line() == "ERR bad-command Unknown command or wrong arguments; try /help"
    assert cloud.quiet()
    barret.send("still my turn")
    assert cloud.line() == "MSG still my turn"


def test_caps_grants_what_is_known_and_only_before_join(daemon):
    client = hello(daemon.connect())
    client.send("/caps done later-thing typing")
    assert client.line() == "CAPS typing done"
    client.send("/caps nothing-known")
    assert client.line() == "CAPS"
    client.send("/caps")
    assert client.line().startswith("ERR bad-command ")
    client.send("/join")
    assert client.line() == "WAITING lobby"
    client.send("/caps typing")
    assert client.line().startswith("ERR busy ")


def test_server_setting_turns_typing_off(make_daemon):
    d = make_daemon(server_settings="typing = false;")
    client = hello(d.connect())
    client.send(f"/caps {ALL}")
    assert client.line() == "CAPS action done"
    client.send("/typing")
    assert client.line().startswith("ERR bad-command ")


def test_typing_reaches_a_partner_who_asked_at_most_once_a_second(daemon):
    cloud, barret = caps_pair(daemon)
    barret.send("/typing")
    assert cloud.line() == "TYPING"
    barret.send("/typing")
    barret.send("/typing")
    assert cloud.quiet(0.5), "a second TYPING within a second is not relayed"
    time.sleep(0.6)
    barret.send("/typing")
    assert cloud.line() == "TYPING"
    # A message after typing; typing again is told at once.
    barret.send("here it is")
    assert cloud.line() == "MSG here it is"
    cloud.send("/typing")
    assert barret.line() == "TYPING"
    assert barret.quiet() and cloud.quiet()


def test_typing_is_not_sent_to_a_partner_who_did_not_ask(daemon):
    cloud, barret = caps_pair(daemon, waiter_caps=None)
    barret.send("/typing")
    assert cloud.quiet(0.5)
    barret.send("hi")
    assert cloud.line() == "MSG hi"


def test_typing_before_pairing_is_refused(daemon):
    client = caps_client(daemon, "Cloud")
    assert client.line() == "WAITING lobby"
    client.send("/typing")
    assert client.line().startswith("ERR not-paired ")


def test_typing_keeps_an_idle_conversation_alive(make_daemon):
    d = make_daemon(server_settings="idle_timeout = 3;")
    cloud, barret = caps_pair(d)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        barret.send("/typing")
        time.sleep(1.1)
        assert cloud.line() == "TYPING"
    barret.send("finally")
    assert cloud.line() == "MSG finally"


def test_idle_warning_comes_before_the_end(make_daemon):
    d = make_daemon(server_settings="idle_timeout = 4;")
    cloud, barret = d.pair()
    started = time.monotonic()
    warning = ("INFO Nothing has been said for a while; this conversation ends in 2 seconds "
               "unless someone writes.")
    assert cloud.line() == warning
    assert barret.line() == warning
    assert 1.5 < time.monotonic() - started < 3.5
    # Speaking resets the clock, and the warning comes again later.
    barret.send("still here")
    assert cloud.line() == "MSG still here"
    assert cloud.line() == warning
    assert barret.line() == warning
    assert cloud.line() == "BYE idle"
    assert barret.line() == "BYE idle"


def test_action_is_shown_as_an_action_and_uses_the_turn(daemon):
    cloud, barret = caps_pair(daemon)
    barret.send("/me waves")
    assert cloud.line() == "ACTION waves"
    barret.send("/me again")
    assert barret.line().startswith("ERR not-your-turn ")
    cloud.send("/me waves back")
    assert barret.line() == "ACTION waves back"


def test_action_reaches_a_v1_partner_as_a_message(daemon):
    cloud, barret = caps_pair(daemon, waiter_caps=None)
    barret.send("/me waves")
    assert cloud.line() == "MSG * Barret waves"


def test_action_is_checked_like_a_message(daemon):
    cloud, barret = caps_pair(daemon)
    barret.send_bytes(b"/me \x1b[2J\n")
    assert barret.line().startswith("ERR control-char ")
    assert cloud.quiet()


def test_both_done_ends_with_everything_delivered_and_counted(daemon):
    cloud, barret = caps_pair(daemon, mode="free")
    for text in ("a1", "a2", "a3"):
        cloud.send(text)
    cloud.send("/done")
    for text in ("b1", "b2"):
        barret.send(text)
    for text in ("a1", "a2", "a3"):
        assert barret.line() == f"MSG {text}"
    assert barret.line() == "DONE"
    assert cloud.line() == "MSG b1"
    assert cloud.line() == "MSG b2"
    cloud.send("too late")
    assert cloud.line() == "ERR done You said /done; nothing more can be sent"
    barret.send("b3")
    assert cloud.line() == "MSG b3"
    barret.send("/done")
    assert cloud.line() == "RELAYED 3"
    assert cloud.line() == "BYE done"
    assert barret.line() == "RELAYED 3"
    assert barret.line() == "BYE done"
    assert cloud.closed() and barret.closed()


def test_done_in_turns_mode_lets_the_partner_go_on(daemon):
    cloud, barret = caps_pair(daemon)
    barret.send("only line")
    assert cloud.line() == "MSG only line"
    barret.send("/done")
    assert cloud.line() == "DONE"
    cloud.send("one")
    cloud.send("two")
    assert barret.line() == "MSG one"
    assert barret.line() == "MSG two"


def test_done_reaches_a_v1_partner_as_info(daemon):
    cloud, barret = caps_pair(daemon, waiter_caps=None, mode="free")
    barret.send("/done")
    assert cloud.line() == "INFO Barret has nothing more to send."
    cloud.send("/q")
    assert cloud.line() == "BYE quit"
    assert barret.line() == "RELAYED 0"
    assert barret.line() == "BYE peer-quit"


def test_relayed_tells_how_many_lines_got_through_before_the_partner_left(daemon):
    cloud, barret = caps_pair(daemon, mode="free")
    barret.send("one")
    barret.send("two")
    assert cloud.line() == "MSG one"
    assert cloud.line() == "MSG two"
    cloud.send("/q")
    assert cloud.line() == "RELAYED 0"
    assert cloud.line() == "BYE quit"
    barret.send("three, too late")
    assert barret.line() == "RELAYED 2"
    assert barret.line() == "BYE peer-quit"


@pytest.mark.parametrize("name", ["Zoë", "Zoe\u0308", "Аня", "山田", "José-María", "a" * 32, "я" * 32])
def test_names_in_any_script(daemon, name):
    cloud = daemon.client(name, "")
    assert cloud.line() == "WAITING lobby"
    barret = daemon.client("Barret", "")
    assert barret.line() == f"PAIRED {name} turns you"


@pytest.mark.parametrize("name", ["a" * 33, "я" * 33, "a\u202eb", "a\u200db", "a\u2028b",
                                  "a\u00a0b", "😀", "a b", "a@b"])
def test_names_without_letters_or_too_long_are_refused(daemon, name):
    cloud = daemon.client()
    cloud.send(f"/name {name}")
    assert cloud.line() == "ERR bad-name Names and rooms are 1-32 letters, digits, _ . or -"


def test_rooms_in_any_script(daemon):
    cloud = daemon.client("Cloud", "кухня")
    assert cloud.line() == "WAITING кухня"
