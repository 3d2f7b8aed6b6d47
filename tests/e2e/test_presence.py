"""Issue 12, items 10 and 11 and the presence features: /help answered by the
client for the moment it is asked in, /me on both sides, /done, the
partner typing, the bell, the time spent waiting, own lines with
timestamps, names in any script, a joiner told why it takes turns, the
idle warning and typing keeping a conversation alive, and the hint that
names the config in use. Each runs the real turnchat (in tmux, or as a
script) against the real turnchatd, with a Raw partner or a second real
turnchat."""

import re
import shutil
import subprocess
import time

import pexpect
import pytest

from conftest import client_env
from test_screen import barret_speaks_first, free_pair, in_order, panes  # noqa: F401
from test_terminal import waiting_partner
from turnchat_helpers import TIMEOUT, TURNCHAT, free_port, write_config

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def two_clients(daemon, panes, *options):
    """Cloud waits in a pane, Barret joins in another; returns (cloud, barret)."""
    cloud = panes(daemon, "Cloud", *options)
    cloud.wait_for("-- Waiting for a partner")
    barret = panes(daemon, "Barret", *options)
    barret.wait_for("-- Paired with 'Cloud'")
    cloud.wait_for("-- Paired with 'Barret'")
    return cloud, barret


# --- 10. /help and /me ------------------------------------------------------------

def help_rows(pane):
    """Asks /help and returns the rows it added."""
    before = len(pane.rows(history=True)) - 1  # the prompt's row is the first replaced
    pane.line("/help")
    rows = pane.wait(lambda rows: any(row.startswith("-- Keys:") for row in rows[before:]),
                     "the help")
    return "\n".join(rows[before:])


def test_10_help_lists_what_works_now(daemon, panes):
    barret = panes(daemon, "Barret")
    barret.wait_for("-- Waiting for a partner")
    text = help_rows(barret)
    assert "You are waiting for a partner" in text and "queued" in text, text
    cloud = daemon.client("Cloud", "")
    assert cloud.line() == "PAIRED Barret turns you"
    text = help_rows(barret)
    assert "It is Cloud's turn" in text, text
    for words in ("/q or /quit", "/me ACTION", "/done", "/queue", "/unqueue", "//text",
                  "Ctrl-D", "Ctrl-C", "Up and Down", "TAB"):
        assert words in text, (words, text)
    for words in ("/name", "/mode", "/join"):
        assert words not in text, (words, text)
    cloud.send("Your turn")
    barret.wait_for("Cloud: Your turn")
    assert "It is your turn" in help_rows(barret)
    assert cloud.quiet(0.3), "the client answers /help itself"


def test_10_me_is_an_action_on_both_sides(daemon, panes):
    cloud, barret = two_clients(daemon, panes, "--free")
    barret.line("/me waves")
    cloud.wait_for("* Barret waves")
    barret.wait_for("* Barret waves")
    cloud.line("/me waves back, for a long while, so that the line is wrapped on the screen "
               "and the rest stays indented")
    rows = barret.wait_for("* Cloud waves back")
    wrapped = rows[rows.index(next(r for r in rows if r.startswith("* Cloud waves back"))) + 1]
    assert wrapped.startswith("        "), rows  # under the text, after "* Cloud "


def test_10_me_uses_the_turn_and_reaches_a_plain_partner_as_a_message(daemon, panes):
    cloud, barret = barret_speaks_first(daemon, panes)
    barret.line("/me knocks")
    assert cloud.line() == "MSG * Barret knocks"
    barret.wait_prompt("Barret (Cloud's turn)> ")
    barret.wait_for("* Barret knocks")


# --- The partner typing, /done, the bell ---------------------------------------------

def test_typing_is_shown_and_fades(daemon, panes):
    cloud, barret = two_clients(daemon, panes, "--free")
    barret.type("hel")
    cloud.wait_prompt("Cloud (Barret is typing\u2026)> ", timeout=3)
    barret.key("Enter")
    cloud.wait_for("Barret: hel")
    cloud.wait_prompt("Cloud> ", timeout=3)  # the line arrived: no more typing
    # Typing the next line goes on until Cloud is told (the server passes one
    # hint a second on), then stops; the hint goes a few seconds later.
    for text in "the next line":
        barret.type(text)
        if "typing" in cloud.last_row():
            break
        time.sleep(0.1)
    cloud.wait_prompt("Cloud (Barret is typing\u2026)> ", timeout=3)
    cloud.wait_prompt("Cloud> ", timeout=8)


def test_typing_can_be_turned_off(daemon, panes, tmp_path):
    quiet = tmp_path / "quiet.conf"
    quiet.write_text(daemon.config.read_text() + "client: { typing = false; };\n")
    cloud = panes(daemon, "Cloud", "--free")
    cloud.wait_for("-- Waiting for a partner")
    barret = panes(daemon, "Barret", config=quiet)
    cloud.wait_for("-- Paired with 'Barret'")
    barret.type("typing, but nobody is told")
    barret.wait_for("nobody is told")
    cloud.type("and you are not told either")
    cloud.wait_for("not told either")
    with pytest.raises(AssertionError):
        cloud.wait(lambda rows: "typing" in rows[-1].split(">")[0], "typing", 2.5)
    assert "typing" not in barret.last_row().split(">")[0]
    barret.key("Enter")
    cloud.wait_for("Barret: typing, but nobody is told")


def test_done_between_two_real_clients(daemon, panes):
    cloud, barret = two_clients(daemon, panes, "--free")
    cloud.line("/done")
    barret.wait_for("-- Cloud has nothing more to send.")
    cloud.wait_prompt("Cloud (done)> ")
    cloud.line("one more?")
    cloud.wait_for("Not sent: you said /done")
    barret.line("last words")
    cloud.wait_for("Barret: last words")
    barret.line("/done")
    for pane, other in ((barret, "Cloud"), (cloud, "Barret")):
        assert pane.exit_status() == 0
        assert f"-- You and {other} are both done; the conversation is over." in pane.rows()


def test_bell_rings_when_a_line_arrives(daemon, tmp_path):
    raw = waiting_partner(daemon, "Cloud", "free")
    env = client_env(tmp_path)
    env["TERM"] = "xterm"
    child = pexpect.spawn(TURNCHAT, ["-c", str(daemon.config), "-n", "Barret", "--bell"],
                          env=env, timeout=TIMEOUT)
    assert raw.line().startswith("PAIRED Barret")
    child.expect_exact(b"Type whenever you like")
    assert b"\a" not in child.before
    raw.send("ding")
    child.expect_exact(b"Cloud: ding\a")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


# --- 11. The smaller items --------------------------------------------------------------

def test_11_own_lines_are_shown_when_sent_with_their_time(daemon, panes):
    cloud, barret = free_pair(daemon, panes, "--timestamps")
    barret.line("what time is it")
    assert cloud.line() == "MSG what time is it"
    rows = barret.wait_for("Barret: what time is it")
    assert any(re.fullmatch(r"\[\d\d:\d\d\] Barret: what time is it", row) for row in rows), rows


def test_11_names_in_any_script(daemon, panes, tmp_path):
    cloud = waiting_partner(daemon, "Cloud")
    zoe = panes(daemon, "Zoë")
    assert cloud.line() == "PAIRED Zoë turns peer"
    zoe.wait_prompt("Zoë> ")
    zoe.line("Bonjour")
    assert cloud.line() == "MSG Bonjour"
    cloud.send("Salut, Zoë")
    zoe.wait_for("Cloud: Salut, Zoë")
    refused = subprocess.run([TURNCHAT, "-c", str(daemon.config), "-n", "Zoë Smith"],
                             env=client_env(tmp_path), capture_output=True, text=True,
                             timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert refused.returncode == 64
    assert "letters or digits (of any script), '_', '.' or '-'" in refused.stderr


def test_11_a_joiner_who_asked_for_free_is_told_why_it_takes_turns(daemon, panes):
    cloud, barret = barret_speaks_first(daemon, panes, "--free")
    rows = barret.rows()
    assert in_order(rows, ["-- Paired with 'Cloud' (turns mode). Type '/q' to quit.",
                           "-- Cloud waited in turns mode, so you take turns.",
                           "-- You speak first."]), rows


def test_11_waiting_shows_the_time_waited(daemon, panes):
    barret = panes(daemon, "Barret")
    waited = re.compile(r"Barret \(waiting 0:(\d\d)\)>")
    rows = barret.wait(lambda rows: waited.fullmatch(rows[-1]), "the time waited")
    seconds = int(waited.fullmatch(rows[-1]).group(1))
    barret.wait_prompt(f"Barret (waiting 0:{seconds + 2:02})> ", timeout=4)
    cloud = daemon.client("Cloud", "")
    assert cloud.line() == "PAIRED Barret turns you"
    barret.wait_prompt("Barret (Cloud's turn)> ")


def test_11_the_idle_warning_is_a_notice_and_typing_keeps_a_conversation(make_daemon, panes):
    daemon = make_daemon(server_settings="idle_timeout = 3;")
    cloud, barret = free_pair(daemon, panes)
    # Typing counts as activity: four and a half seconds of it, past the three allowed.
    for text in "typing now":
        barret.type(text)
        time.sleep(0.45)
    rows = barret.rows()
    assert not any(row.startswith("EXIT=") or "idle for too long" in row for row in rows), rows
    barret.key("Enter")
    heard = [cloud.line() for _ in range(2)]  # an idle warning may come first
    assert "MSG typing now" in heard, heard
    # Then nobody writes: the server's warning, a notice of its own, then the end.
    barret.wait_for("-- Nothing has been said for a while")
    assert barret.exit_status() == 1
    assert "-- The conversation was idle for too long and has ended." in barret.rows()


def test_11_the_hint_names_the_config_in_use(tmp_path):
    conf = write_config(tmp_path / "elsewhere.conf", free_port())
    result = subprocess.run([TURNCHAT, "-c", str(conf)], env=client_env(tmp_path),
                            capture_output=True, text=True, timeout=TIMEOUT,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 69
    assert f"This host and port come from {conf}." in result.stderr
    assert f"'turnchatd -f -c {conf}'" in result.stderr
    assert "systemctl start turnchat.socket" in result.stderr
