"""Two real turnchat clients in pseudo-terminals, as two people would use them."""

import subprocess

import pexpect

from conftest import client_env
from turnchat_helpers import TIMEOUT, TURNCHAT, free_port

CLOUD_AND_BARRET = [
    ("Barret", "Cloud", "Hey Cloud, you there?"),
    ("Cloud", "Barret", "Yeah. What do you want, Barret?"),
    ("Barret", "Cloud", "The reactor job is on for tonight."),
    ("Cloud", "Barret", "Fine. Payment up front."),
    ("Barret", "Cloud", "You'll get your money. Don't be late."),
    ("Cloud", "Barret", "I'm never late."),
]


def spawn(daemon, tmp_path, name, *extra):
    child = pexpect.spawn(
        TURNCHAT, ["-c", str(daemon.config), "-n", name, *extra],
        env=client_env(tmp_path), encoding="utf-8", timeout=TIMEOUT,
    )
    child.expect_exact(f"Connected to turnchatd 'turnchatd' at '127.0.0.1' on port number '{daemon.port}'...")
    return child


def finish(child):
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def start_conversation(daemon, tmp_path):
    cloud = spawn(daemon, tmp_path, "Cloud")
    cloud.expect_exact("Waiting for a partner in room 'lobby'...")
    barret = spawn(daemon, tmp_path, "Barret")
    barret.expect_exact("Paired with 'Cloud' (turns mode). Type '/q' to quit.")
    barret.expect_exact("You speak first.")
    cloud.expect_exact("Paired with 'Barret' (turns mode). Type '/q' to quit.")
    cloud.expect_exact("Waiting for Barret's reply...")
    return cloud, barret


def test_the_original_conversation(daemon, tmp_path):
    cloud, barret = start_conversation(daemon, tmp_path)
    people = {"Cloud": cloud, "Barret": barret}
    for speaker, listener, text in CLOUD_AND_BARRET:
        people[speaker].expect_exact(f"{speaker}> ")
        people[speaker].sendline(text)
        people[speaker].expect_exact(f"Waiting for {listener}'s reply...")
        people[listener].expect_exact(f"{speaker}: {text}")
    barret.expect_exact("Barret> ")
    barret.sendline("/q")
    cloud.expect_exact("Barret left the conversation.")
    assert finish(barret) == 0
    assert finish(cloud) == 0
    log = daemon.log()
    assert "paired in room 'lobby', turns mode" in log
    assert "ended: Barret quit" in log
    for _, _, text in CLOUD_AND_BARRET:
        assert text not in log, "the daemon must never log what people wrote"


def test_waiting_side_can_quit_too(daemon, tmp_path):
    cloud, barret = start_conversation(daemon, tmp_path)
    barret.expect_exact("Barret> ")
    barret.sendline("Over to you")
    cloud.expect_exact("Barret: Over to you")
    cloud.expect_exact("Cloud> ")
    cloud.sendline("/q")
    barret.expect_exact("Cloud left the conversation.")
    assert finish(cloud) == 0
    assert finish(barret) == 0


def test_ctrl_d_leaves_and_partner_is_told(daemon, tmp_path):
    cloud, barret = start_conversation(daemon, tmp_path)
    barret.expect_exact("Barret> ")
    barret.sendeof()
    cloud.expect_exact("Barret left the conversation.")
    assert finish(barret) == 0
    assert finish(cloud) == 0


def test_ctrl_c_leaves_and_partner_is_told(daemon, tmp_path):
    cloud, barret = start_conversation(daemon, tmp_path)
    barret.expect_exact("Barret> ")
    barret.sendintr()
    cloud.expect_exact("Barret left the conversation.")
    assert finish(barret) == 130
    assert finish(cloud) == 0


def test_client_crash_gives_peer_lost_once_nobody_comes_back(make_daemon, tmp_path):
    """The partner is told at once that Barret is away, and then, after the
    server's resume_timeout, that the conversation is over."""
    daemon = make_daemon(server_settings="resume_timeout = 1;")
    cloud, barret = start_conversation(daemon, tmp_path)
    barret.expect_exact("Barret> ")
    barret.kill(9)
    cloud.expect_exact("Barret's connection dropped; waiting up to 1 seconds for them to come back.")
    cloud.expect_exact("The connection to Barret was lost.")
    assert finish(cloud) == 1


def test_piped_clients_take_turns(daemon, tmp_path):
    """Scripts: each reads its lines from stdin and waits for its turn."""
    env = client_env(tmp_path)
    base = [TURNCHAT, "-c", str(daemon.config)]
    # Cloud reads a regular file, Barret a pipe: both kinds of standard input.
    script = tmp_path / "cloud.txt"
    script.write_text("one from Cloud\ntwo from Cloud\n")
    with open(script) as cloud_in:
        cloud = subprocess.Popen(base + ["-n", "Cloud"], env=env, text=True, stdin=cloud_in,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    daemon.wait_for_log("Cloud (127.0.0.1")
    barret = subprocess.Popen(base + ["-n", "Barret"], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Barret has one line more, so Cloud's input ends on Cloud's turn: Cloud leaves.
    barret_out, barret_err = barret.communicate("one from Barret\ntwo from Barret\nthree from Barret\n",
                                                timeout=TIMEOUT)
    cloud_out, cloud_err = cloud.communicate(timeout=TIMEOUT)
    assert cloud.returncode == 0, cloud_err
    assert barret.returncode == 0, barret_err
    assert cloud_out.index("Barret: one from Barret") < cloud_out.index("Barret: two from Barret") \
        < cloud_out.index("Barret: three from Barret")
    assert barret_out.index("Cloud: one from Cloud") < barret_out.index("Cloud: two from Cloud")
    assert "Cloud left the conversation." in barret_out
    assert "Cloud:" not in cloud_out and "Barret:" not in barret_out


def test_client_before_server_exits_69_with_hint(tmp_path):
    port = free_port()
    result = subprocess.run([TURNCHAT, "-H", "127.0.0.1", "-p", str(port)], env=client_env(tmp_path),
                            capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert result.returncode == 69
    assert f"cannot connect to '127.0.0.1' on port number '{port}'" in result.stderr
    assert "systemctl start turnchat.socket" in result.stderr
    assert "turnchatd" in result.stderr


def test_a_script_on_pipes_that_ends_with_quit_leaves_nothing_unsent(daemon, tmp_path):
    """As the installed-package test drives it: lines written to the client's
    stdin as the conversation goes, "/q" last, then the end of input."""
    import os
    import select
    import time

    def start(name):
        return subprocess.Popen([TURNCHAT, "-c", str(daemon.config), "-n", name],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=client_env(tmp_path))

    def read_until(process, text):
        seen, deadline = b"", time.monotonic() + TIMEOUT
        while text.encode() not in seen:
            ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
            chunk = os.read(process.stdout.fileno(), 4096) if ready else b""
            assert chunk, f"no {text!r}; got {seen!r}"
            seen += chunk

    def say(process, line):
        process.stdin.write(line.encode() + b"\n")
        process.stdin.flush()

    cloud = start("Cloud")
    read_until(cloud, "Waiting for a partner")
    barret = start("Barret")
    read_until(barret, "You speak first.")
    say(barret, "Hey Cloud, you there?")
    read_until(cloud, "Barret: Hey Cloud, you there?")
    say(cloud, "Yeah.")
    read_until(barret, "Cloud: Yeah.")
    say(barret, "/q")
    barret.stdin.close()
    assert barret.wait(TIMEOUT) == 0
    assert barret.stdout.read() == b""
    read_until(cloud, "Barret left the conversation.")
    cloud.stdin.close()
    assert cloud.wait(TIMEOUT) == 0
