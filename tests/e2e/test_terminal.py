"""The client on a real terminal (a pseudo-terminal driven by pexpect, and
tmux for what the screen finally shows): free typing, out-of-turn lines,
escapes from the network, and the terminal left as it was found."""

import os
import shutil
import subprocess
import time

import pexpect
import pytest

from conftest import client_env
from turnchat_helpers import TIMEOUT, TURNCHAT


def spawn(daemon, tmp_path, name, *args, term="xterm", color=False):
    env = client_env(tmp_path)
    env["TERM"] = term
    if color:
        env.pop("NO_COLOR", None)
    child = pexpect.spawn(TURNCHAT, ["-c", str(daemon.config), "-n", name, *args], env=env,
                          timeout=TIMEOUT, dimensions=(24, 100))
    child.expect_exact(b"Connected to turnchatd")
    return child


def waiting_partner(daemon, name="Raw", mode=None):
    raw = daemon.client(name)
    if mode:
        raw.send(f"/mode {mode}")
    raw.send("/join")
    assert raw.line() == "WAITING lobby"
    return raw


def test_free_mode_lines_arrive_while_a_line_is_half_typed(daemon, tmp_path):
    raw = waiting_partner(daemon, "Cloud", "free")
    barret = spawn(daemon, tmp_path, "Barret", "--free")
    assert raw.line() == "PAIRED Barret free -"
    barret.expect_exact(b"Paired with 'Cloud' (free mode)")
    barret.send("half typ")
    barret.expect_exact(b"half typ")
    for text in ("one", "two", "three"):
        raw.send(text)
    for text in (b"Cloud: one", b"Cloud: two", b"Cloud: three"):
        barret.expect_exact(text)
    # After the three lines the half-typed text is drawn again, intact.
    barret.expect_exact(b"half typ")
    barret.send("ed line\r")
    assert raw.line() == "MSG half typed line"
    barret.send("and more, without waiting\r")
    assert raw.line() == "MSG and more, without waiting"
    barret.send("/q\r")
    assert raw.line() == "BYE peer-quit"
    barret.expect(pexpect.EOF)
    barret.close()
    assert barret.exitstatus == 0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_screen_is_not_garbled_by_incoming_lines(daemon, tmp_path):
    raw = waiting_partner(daemon, "Cloud", "free")
    session = f"turnchat-test-{os.getpid()}"
    env = client_env(tmp_path)
    env["TERM"] = "xterm"
    cmd = f"{TURNCHAT} -c {daemon.config} -n Barret --free; sleep 10"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "12", cmd],
                   env=env, check=True)
    try:
        assert raw.line() == "PAIRED Barret free -"
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", "half typed"], check=True)
        for text in ("one", "two", "three"):
            raw.send(text)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
            if lines and lines[-1] == "Barret> half typed" and "Cloud: three" in lines:
                break
            time.sleep(0.05)
        assert lines[-4:] == ["Cloud: one", "Cloud: two", "Cloud: three", "Barret> half typed"], screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session])


def test_out_of_turn_line_is_kept_then_sent_when_the_turn_comes(daemon, tmp_path):
    cloud = spawn(daemon, tmp_path, "Cloud")
    cloud.expect_exact(b"Waiting for a partner")
    barret = daemon.client("Barret", "")
    assert barret.line() == "PAIRED Cloud turns you"
    cloud.expect_exact(b"Waiting for Barret's reply...")
    cloud.send("typed early\r")
    cloud.expect_exact(b"1 queued")
    assert barret.quiet(0.5), "a line typed out of turn must not be sent"
    barret.send("go ahead")
    cloud.expect_exact(b"Barret: go ahead")
    assert barret.line() == "MSG typed early"
    cloud.expect_exact(b"Waiting for Barret's reply...")
    barret.send("/q")
    cloud.expect_exact(b"Barret left the conversation.")
    cloud.expect(pexpect.EOF)
    cloud.close()
    assert cloud.exitstatus == 0


def test_quit_works_out_of_turn(daemon, tmp_path):
    cloud = spawn(daemon, tmp_path, "Cloud")
    cloud.expect_exact(b"Waiting for a partner")
    barret = daemon.client("Barret", "")
    assert barret.line().startswith("PAIRED")
    cloud.expect_exact(b"Waiting for Barret's reply...")
    cloud.send("/q\r")
    assert barret.line() == "BYE peer-quit"
    cloud.expect(pexpect.EOF)
    cloud.close()
    assert cloud.exitstatus == 0


def test_history_recalls_the_previous_line(daemon, tmp_path):
    raw = waiting_partner(daemon, "Cloud", "free")
    barret = spawn(daemon, tmp_path, "Barret", "--free")
    assert raw.line() == "PAIRED Barret free -"
    barret.expect_exact(b"Type whenever you like")
    barret.send("say it twice\r")
    assert raw.line() == "MSG say it twice"
    barret.send("\x1b[A\r")  # Up, Enter
    assert raw.line() == "MSG say it twice"


def test_escapes_from_the_network_never_reach_the_terminal_raw(tmp_path):
    from test_cli import fake_server
    port, received = [], []
    fake_server([
        b"HELLO turnchat 1 evil\n",
        b"PAIRED Mallory free -\n",
        b"MSG \x1b]0;pwned title\x07 then \x1b[2J then bare \x1b end\n",
    ], port, received)
    env = client_env(tmp_path)
    env["TERM"] = "xterm"
    child = pexpect.spawn(TURNCHAT, ["-H", "127.0.0.1", "-p", str(port[0]), "-n", "Victim"],
                          env=env, timeout=TIMEOUT)
    child.expect_exact(b"Mallory: ^[]0;pwned title^G then ^[[2J then bare ^[ end")
    child.send("/q\r")
    child.expect(pexpect.EOF)
    seen = child.before
    child.close()
    everything = b"Mallory: " + seen
    assert b"\x1b]0;" not in everything and b"\x1b[2J" not in everything
    assert b"\x07" not in everything


def test_daemon_refuses_escapes_so_the_partner_never_sees_them(daemon, tmp_path):
    raw = waiting_partner(daemon, "Mallory", "free")
    victim = spawn(daemon, tmp_path, "Victim", "--free")
    assert raw.line().startswith("PAIRED Victim")
    for attack in (b"\x1b]0;title\x07\n", b"\x1b[2J\n", b"lone \x1b\n"):
        raw.send_bytes(attack)
        assert raw.line().startswith("ERR control-char ")
    raw.send("harmless")
    victim.expect_exact(b"Mallory: harmless")
    assert b"\x1b]0;" not in victim.before and b"\x1b[2J" not in victim.before


@pytest.mark.parametrize("key, status", [("c", 130), ("d", 0)])
def test_ctrl_c_and_ctrl_d_restore_the_terminal(daemon, tmp_path, key, status):
    raw = waiting_partner(daemon, "Cloud", "free")
    env = client_env(tmp_path)
    env["TERM"] = "xterm"
    before, after = tmp_path / "before", tmp_path / "after"
    script = (f"stty -g > {before}; {TURNCHAT} -c {daemon.config} -n Barret --free; "
              f"echo status=$?; stty -g > {after}")
    shell = pexpect.spawn("/bin/bash", ["-c", script], env=env, timeout=TIMEOUT)
    shell.expect_exact(b"Type whenever you like")
    assert raw.line().startswith("PAIRED Barret")
    shell.sendcontrol(key)
    assert raw.line() == "BYE peer-quit"
    shell.expect(rb"status=(\d+)")
    assert int(shell.match.group(1)) == status
    shell.expect(pexpect.EOF)
    assert before.read_text() == after.read_text()
    assert before.read_text().strip()


def test_colour_on_a_terminal_unless_no_color(daemon, tmp_path):
    raw = waiting_partner(daemon, "Cloud", "free")
    coloured = spawn(daemon, tmp_path, "Barret", "--free", color=True)
    assert raw.line().startswith("PAIRED")
    raw.send("in colour")
    coloured.expect_exact(b"\x1b[1;36mCloud:\x1b[0m in colour")
    raw2 = waiting_partner(daemon, "Cloud2", "free")
    plain = spawn(daemon, tmp_path, "Barret2", "--free")  # NO_COLOR=1
    assert raw2.line().startswith("PAIRED")
    raw2.send("no colour")
    plain.expect_exact(b"Cloud2: no colour")
    assert b"\x1b[1;36m" not in plain.before


def test_timestamps(daemon, tmp_path):
    raw = waiting_partner(daemon, "Cloud", "free")
    barret = spawn(daemon, tmp_path, "Barret", "--free", "--timestamps")
    assert raw.line().startswith("PAIRED")
    raw.send("what time is it")
    barret.expect(rb"\[\d\d:\d\d\] Cloud: what time is it")


def test_piped_client_in_free_mode_sends_as_lines_come(daemon, tmp_path):
    raw = waiting_partner(daemon, "Cloud", "free")
    client = subprocess.Popen([TURNCHAT, "-c", str(daemon.config), "-n", "Pipe", "--free"],
                              env=client_env(tmp_path), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)
    assert raw.line() == "PAIRED Pipe free -"
    client.stdin.write("first\n")
    client.stdin.flush()
    assert raw.line() == "MSG first"
    raw.send("reply while its input is still open")
    while "Cloud: reply while its input is still open" not in client.stdout.readline():
        pass
    client.stdin.write("second\n")
    client.stdin.close()
    assert raw.line() == "MSG second"
    # At the end of its input in free mode a script says /done and reads on
    # (issue 12); a partner that did not ask for the done capability is told so.
    assert raw.line() == "INFO Pipe has nothing more to send."
    raw.send("still here")
    while "Cloud: still here" not in client.stdout.readline():
        pass
    raw.send("/q")
    assert client.wait(TIMEOUT) == 0
