"""Issue 14, the client's side: the real turnchat against a test playing
the server (FakeServer), line by line, as turnchat-protocol(7) "Resuming a
conversation" has it: it asks for resume, acknowledges what arrived (once
per batch, within a second or with its next line), comes back after a drop
with /resume and the right count, sends again exactly its lines the server
did not get, keeps the turn, pings a silent server, and, when the
conversation cannot be resumed, lists what may not have arrived and exits 1.
A script on pipes, and the terminal client in tmux."""

import shutil
import subprocess
import time

import pytest

from conftest import client_env
from tmux_pane import Pane
from turnchat_helpers import TIMEOUT, TURNCHAT, FakeServer, reset, write_config

TOKEN1 = "0123456789abcdef" * 2
TOKEN2 = "fedcba9876543210" * 2
TOKEN3 = "00112233445566778899aabbccddeeff"


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def scripts(tmp_path):
    """scripts(fake, *options, settings=): turnchat named Script on pipes
    (a script) against fake, with settings in its config's client group;
    killed at the end if still running."""
    made = []

    def make(fake, *options, settings=""):
        config = write_config(tmp_path / f"client{len(made)}.conf", fake.port,
                              settings=f"client: {{ {settings} }};" if settings else "")
        proc = subprocess.Popen([TURNCHAT, "-c", str(config), "-n", "Script", *options],
                                env=client_env(tmp_path), text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def feed(proc, text):
    proc.stdin.write(text)
    proc.stdin.flush()


def finish(proc):
    """(exit status, stdout, stderr) once the client exits by itself, its
    input closed (what it prints here is far less than a pipe holds)."""
    if not proc.stdin.closed:
        proc.stdin.close()
    status = proc.wait(TIMEOUT)
    return status, proc.stdout.read(), proc.stderr.read()


def greet(fake, caps="action done resume"):
    """The next connection, greeted; returns it and the /caps line it sent."""
    server = fake.accept()
    server.send("HELLO turnchat 1 fake")
    asked = server.line()
    assert asked.startswith("/caps ") and asked.endswith(" resume"), asked
    server.send(f"CAPS {caps}")
    return server, asked


def pair(fake, name="Script", mode="free", first="-", token=TOKEN1, seconds=60):
    """The first connection, paired with Cloud and given token."""
    server, _ = greet(fake)
    assert server.line() == f"/name {name}"
    assert server.line() == f"/mode {mode}"
    assert server.line() == "/join"
    server.send(f"PAIRED Cloud {mode} {first}")
    server.send(f"TOKEN {token} {seconds}")
    return server


def come_back(fake, token, received, answer, mode="free", first="-", new_token=TOKEN2):
    """A new connection after a drop: it must ask to resume with token and
    the received count; answered with RESUMED answer and new_token."""
    server, _ = greet(fake)
    assert server.line() == f"/resume {token} {received}"
    server.send(f"RESUMED {answer} Cloud {mode} {first}")
    server.send(f"TOKEN {new_token} 60")
    return server


def drop(server, how):
    if how == "reset":
        reset(server)
    else:
        server.close()


def test_it_acknowledges_each_batch_once_within_a_second_or_with_its_next_line(fake, scripts):
    client = scripts(fake, "--free")
    server = pair(fake)
    server.send("MSG one")
    server.send("MSG two")
    sent = time.monotonic()
    assert server.line() == "/ack 2"
    assert time.monotonic() - sent < 1.0
    assert server.quiet(1.3), "nothing new arrived: no /ack"
    server.send("MSG three")
    feed(client, "reply\n")
    sent = time.monotonic()
    assert server.line() == "reply"
    assert server.line() == "/ack 3"
    assert time.monotonic() - sent < 0.4, "the /ack goes with the line, not on its timer"
    assert server.quiet(1.0)
    client.stdin.close()
    assert server.line() == "/done"
    server.send("DONE")
    server.send("RELAYED 1")
    server.send("BYE done")
    status, out, err = finish(client)
    assert status == 0, err
    assert out.count("Cloud: three") == 1


@pytest.mark.parametrize("how", ["close", "reset"])
def test_after_a_drop_it_resumes_with_the_count_and_sends_again_only_what_was_missing(
        fake, scripts, how):
    client = scripts(fake, "--free")
    server = pair(fake)
    feed(client, "a\nb\nc\n")
    assert [server.line() for _ in range(3)] == ["a", "b", "c"]
    server.send("MSG x")
    server.send("MSG y")
    assert server.line() == "/ack 2"
    server.send("ACK 1")
    drop(server, how)

    # The server got a and b; c is lost with the connection and goes again.
    server = come_back(fake, TOKEN1, 2, 2)
    assert server.line() == "c"
    assert server.quiet(0.7), "a and b must not come twice"
    server.send("MSG z")
    assert server.line() == "/ack 3"
    drop(server, how)

    # The second drop uses the newer token; this time nothing is missing,
    # and with nothing to say it spends the old token with an /ack at once.
    server = come_back(fake, TOKEN2, 3, 3, new_token=TOKEN3)
    assert server.line() == "/ack 3"
    assert server.quiet(0.7)
    client.stdin.close()
    assert server.line() == "/done"
    server.send("ACK 4")
    server.send("DONE")
    server.send("RELAYED 3")
    server.send("BYE done")
    status, out, err = finish(client)
    assert status == 0, err
    assert [row for row in out.splitlines() if row.startswith("Cloud:")] == [
        "Cloud: x", "Cloud: y", "Cloud: z"]
    assert err.count("Connection lost; reconnecting...") == 2, err
    assert err.count("Reconnected.") == 2, err
    for token in (TOKEN1, TOKEN2, TOKEN3):
        assert token not in out + err, "the token is never shown"


def test_in_turns_mode_a_line_lost_in_the_drop_goes_again_and_keeps_its_turn(fake, scripts):
    client = scripts(fake)
    server = pair(fake, mode="turns", first="you")
    feed(client, "one\ntwo\n")
    client.stdin.close()
    assert server.line() == "one"
    drop(server, "close")

    # The server never got "one": still our turn; it goes, then Cloud's turn.
    server = come_back(fake, TOKEN1, 0, 0, mode="turns", first="you")
    assert server.line() == "one"
    assert server.quiet(0.5), "two waits for its turn"
    server.send("MSG your turn")
    assert server.line() == "two"
    assert server.line() == "/ack 1"
    server.send("MSG and yours")
    # The end of its input: a script leaves once its lines are receipted.
    assert server.line() == "/ack 2"
    assert server.quiet(0.3), "no /q before ACK covers every line"
    server.send("ACK 2")
    assert server.line() == "/q"
    server.send("RELAYED 2")
    server.send("BYE quit")
    status, out, err = finish(client)
    assert status == 0, err


def test_the_turn_stays_as_counted_not_as_an_older_server_says(fake, scripts):
    """After a restart from an older state the server's turn may be behind:
    RESUMED says it is ours, but we spoke last, so it is Cloud's."""
    client = scripts(fake)
    server = pair(fake, mode="turns", first="you")
    feed(client, "one\ntwo\n")
    assert server.line() == "one"
    drop(server, "close")
    server = come_back(fake, TOKEN1, 0, 1, mode="turns", first="you")
    assert server.line() == "/ack 0", "nothing to send again: the old token is spent"
    assert server.quiet(0.7), "two waits for Cloud's turn"
    server.send("MSG your turn")
    assert server.line() == "two"


def test_no_session_lists_the_lines_that_may_not_have_arrived_and_exits_1(fake, scripts):
    client = scripts(fake, "--free")
    server = pair(fake)
    feed(client, "delivered\nin doubt\n/me shrugs\n")
    assert [server.line() for _ in range(3)] == ["delivered", "in doubt", "/me shrugs"]
    server.send("ACK 1")
    drop(server, "close")
    server, _ = greet(fake)
    assert server.line() == f"/resume {TOKEN1} 0"
    server.send("ERR no-session No conversation to resume with that token")
    status, out, err = finish(client)
    assert status == 1
    assert "turnchat: the conversation could not be resumed" in err
    assert "2 of your lines may not have reached Cloud:" in err
    assert "1. in doubt" in err and "2. /me shrugs" in err
    assert "delivered" not in err


def test_refused_for_longer_than_the_token_allows_it_gives_up(fake, scripts):
    client = scripts(fake, "--free")
    server = pair(fake, seconds=2)
    feed(client, "lost line\n")
    assert server.line() == "lost line"
    fake.stop_listening()
    dropped = time.monotonic()
    drop(server, "close")
    status, out, err = finish(client)
    took = time.monotonic() - dropped
    assert status == 1
    assert 1.5 < took < 6, took
    assert "could not be resumed: no way back to 127.0.0.1" in err
    assert "1. lost line" in err


def test_keepalive_pings_a_silent_server_and_one_that_stays_silent_is_a_drop(fake, scripts):
    client = scripts(fake, "--free", settings="keepalive = 1;")
    server = pair(fake)
    paired = time.monotonic()
    assert server.line(3) == "/ping"
    assert 0.7 < time.monotonic() - paired < 2
    server.send("PONG")
    answered = time.monotonic()
    assert server.line(3) == "/ping"
    assert 0.7 < time.monotonic() - answered < 2
    # No answer this time: a second later the client is back on a new connection.
    server = come_back(fake, TOKEN1, 0, 0)
    assert server.line() == "/ack 0"
    feed(client, "still here\n")
    assert server.line() == "still here"
    client.stdin.close()
    assert server.line() == "/done"
    server.send("ACK 2")
    server.send("DONE")
    server.send("RELAYED 1")
    server.send("BYE done")
    assert finish(client)[0] == 0


def test_without_resume_it_asks_for_none_and_a_drop_ends_it(fake, scripts):
    client = scripts(fake, "--free", settings="resume = false;")
    server = fake.accept()
    server.send("HELLO turnchat 1 fake")
    assert server.line() == "/caps action done"
    drop(server, "close")
    status, out, err = finish(client)
    assert status == 1
    assert "was lost" in err and "reconnecting" not in err


# --- The terminal client ---------------------------------------------------------

tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def pane(tmp_path, fake):
    """Barret in free mode in a tmux pane, against fake."""
    made = Pane([TURNCHAT, "-H", "127.0.0.1", "-p", str(fake.port), "-n", "Barret", "--free"],
                client_env(tmp_path))
    yield made
    made.close()


def terminal_pair(fake, pane):
    server, asked = greet(fake)  # the terminal asks for typing too; not granted here
    assert asked == "/caps typing action done resume"
    assert [server.line() for _ in range(3)] == ["/name Barret", "/mode free", "/join"]
    server.send("PAIRED Cloud free -")
    server.send(f"TOKEN {TOKEN1} 60")
    pane.wait_prompt("Barret> ")
    return server


@tmux
def test_the_terminal_says_it_reconnects_and_keeps_the_half_typed_line(fake, pane):
    server = terminal_pair(fake, pane)
    pane.line("before the drop")
    assert server.line() == "before the drop"
    pane.type("half typed")
    pane.wait_for("Barret> half typed")
    drop(server, "reset")
    pane.wait_for("-- Connection lost; reconnecting...")
    pane.wait(lambda rows: rows[-1] == "Barret (reconnecting\u2026)> half typed",
              "the reconnecting prompt with the line still there")
    server = come_back(fake, TOKEN1, 0, 1)
    assert server.line() == "/ack 0"
    pane.wait_for("-- Reconnected.")
    pane.wait(lambda rows: rows[-1] == "Barret> half typed", "the line kept")
    pane.type(", finished")
    pane.key("Enter")
    assert server.line() == "half typed, finished"
    pane.line("/q")
    assert server.line() == "/q"
    server.send("RELAYED 2")
    server.send("BYE quit")
    assert pane.exit_status() == 0
    rows = pane.rows(history=True)
    assert sum("Barret: before the drop" in row for row in rows) == 1, rows


@tmux
@pytest.mark.parametrize("how, status", [("/q", 1), ("C-c", 130), ("C-d", 1)])
def test_leaving_while_reconnecting_is_at_once_and_lists_what_may_not_have_arrived(
        fake, pane, how, status):
    server = terminal_pair(fake, pane)
    pane.line("unconfirmed")
    assert server.line() == "unconfirmed"
    fake.stop_listening()
    drop(server, "close")
    pane.wait_for("-- Connection lost; reconnecting...")
    started = time.monotonic()
    if how == "/q":
        pane.line("/q")
    else:
        pane.key(how)
    assert pane.exit_status() == status
    assert time.monotonic() - started < 2
    rows = pane.rows()
    assert any("1 of your lines may not have reached Cloud:" in row for row in rows), rows
    assert "-- 1. unconfirmed" in rows, rows
