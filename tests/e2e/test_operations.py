"""Operations that must hold: reloads that drop and freeze no one, config
files that cannot hurt a single-threaded daemon, abuse that cannot flood the
log or take every slot, a privilege drop that is checked at start, and
STATUS= to the service manager at a bounded rate. Each test is one finding
of issue 10, reproduced as a user or an attacker would."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import notify_socket
from turnchat_helpers import TIMEOUT, TURNCHAT, TURNCHATD, Raw


def reload(daemon, server_settings):
    """Sets server_settings ("key = value; ...") in daemon's config, replacing
    what it said of those keys, and sends SIGHUP."""
    text = daemon.config.read_text()
    for key in re.findall(r"(\w+)\s*=", server_settings):
        text = re.sub(rf"\b{key}\s*=[^;]*;", "", text)
    before = daemon.log().count("configuration reloaded")
    daemon.config.write_text(text.replace("server: {", "server: {\n" + server_settings, 1))
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + TIMEOUT
    while daemon.log().count("configuration reloaded") == before:
        assert time.monotonic() < deadline, f"no reload:\n{daemon.log()}"
        assert "configuration in force stays" not in daemon.log(), daemon.log()
        time.sleep(0.02)


# 1. Reload drops readers ------------------------------------------------------

def test_raising_max_queue_by_reload_drops_no_slow_reader(make_daemon):
    d = make_daemon(server_settings="max_queue = 16384; rate_limit = 0; modes = [\"free\"];"
                                    'default_mode = "free";')
    reader = Raw(d.port, window=4096)  # it reads nothing for now
    assert reader.line().startswith("HELLO")
    reader.send("/name Slow")
    reader.send("/join")
    assert reader.line() == "WAITING lobby"
    sender = d.client("Fast", "")
    assert sender.line().startswith("PAIRED Slow free")
    assert reader.line().startswith("PAIRED Fast free")

    reload(d, "max_queue = 1048576;")
    line = "x" * 2000
    # Sent from a thread: once the daemon holds the sender back, sending waits.
    sending = threading.Thread(target=lambda: [sender.send(f"{i} {line}") for i in range(400)])
    sending.start()
    time.sleep(3)  # the reader is slow for three seconds
    for i in range(400):
        assert reader.line() == f"MSG {i} {line}", d.log()
    sending.join(TIMEOUT)
    sender.send("/q")
    assert sender.line() == "BYE quit"
    assert reader.line() == "BYE peer-quit"
    assert "output queue full" not in d.log()


def test_lowering_max_queue_by_reload_drops_no_one_with_a_queue(make_daemon):
    d = make_daemon(server_settings="max_queue = 1048576; rate_limit = 0; modes = [\"free\"];"
                                    'default_mode = "free";')
    reader = Raw(d.port, window=4096)  # it reads nothing for now
    assert reader.line().startswith("HELLO")
    reader.send("/join")
    assert reader.line() == "WAITING lobby"
    sender = d.client("Fast", "")
    assert sender.line().startswith("PAIRED guest free")
    assert reader.line().startswith("PAIRED Fast free")
    line = "y" * 2000
    for i in range(200):
        sender.send(f"{i} {line}")
    time.sleep(0.5)  # some 400 kB now wait in the daemon
    reload(d, "max_queue = 16384;")
    sending = threading.Thread(
        target=lambda: [sender.send(f"{i} {line}") for i in range(200, 300)])
    sending.start()
    for i in range(300):
        assert reader.line() == f"MSG {i} {line}", d.log()
    sending.join(TIMEOUT)
    reader.send("/q")
    assert reader.line() == "BYE quit"
    assert sender.line() == "BYE peer-quit"


# 2. Reload kills or freezes the daemon ----------------------------------------

def test_reload_with_an_include_of_a_directory_or_fifo_keeps_serving(daemon, tmp_path):
    cloud, barret = daemon.pair()
    text = daemon.config.read_text()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, kind in ((tmp_path, "a directory"), (fifo, "a FIFO")):
        daemon.config.write_text(text + f'@include "{target}"\n')
        before = daemon.log().count("configuration in force stays")
        daemon.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while daemon.log().count("configuration in force stays") == before:
            assert daemon.proc.poll() is None, daemon.log()
            assert time.monotonic() < deadline, f"reload never finished:\n{daemon.log()}"
            time.sleep(0.02)
        assert f'@include "{target}": is {kind}, not a regular file' in daemon.log()
        newcomer = Raw(daemon.port)
        assert newcomer.line(timeout=2).startswith("HELLO turnchat 1 ")
        newcomer.close()
        barret.send(f"after {kind}")
        assert cloud.line(timeout=2) == f"MSG after {kind}"
        barret, cloud = cloud, barret


def test_check_refuses_a_huge_file_and_bad_includes_with_ex_config(tmp_path):
    huge = tmp_path / "huge.conf"
    huge.write_text("#" + "a" * (10 * 1024 * 1024) + "\n")
    run = subprocess.run([TURNCHATD, "-t", "-c", str(huge)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 78
    assert f"{huge}: is 10485762 bytes; a config may have 1048576 bytes at most" in run.stderr

    for target in (str(tmp_path), "/dev/zero"):
        conf = tmp_path / "inc.conf"
        conf.write_text(f'port = 4000;\n@include "{target}"\n')
        run = subprocess.run([TURNCHATD, "-t", "-c", str(conf)], capture_output=True,
                             text=True, timeout=TIMEOUT)
        assert run.returncode == 78, run.stderr
        assert f'{conf}:2: @include "{target}": is ' in run.stderr
        assert "flex" not in run.stderr
        # The client reads the same files the same way.
        run = subprocess.run([TURNCHAT, "-c", str(conf)], capture_output=True, text=True,
                             timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        assert run.returncode == 78, run.stderr
        assert f'{conf}:2: @include "{target}": is ' in run.stderr


# 3. One client floods the log -------------------------------------------------

def read_until_end(client):
    """Every line until the daemon closes (or resets) the connection."""
    lines = []
    while True:
        try:
            line = client.line(timeout=2)
        except ConnectionResetError:
            return lines
        if line == "":
            return lines
        lines.append(line)


def test_a_flood_of_refused_lines_buys_neither_log_lines_nor_the_connection(daemon):
    cloud, barret = daemon.pair()
    flooder = Raw(daemon.port, source="127.0.0.5")
    assert flooder.line().startswith("HELLO")
    flooder.send("/name Flood")
    try:
        for chunk in range(64):  # a quarter of a million empty lines
            flooder.send_bytes(b"\n" * 4096)
            # The honest pair goes on meanwhile.
            if chunk % 16 == 0:
                barret.send("still here")
                assert cloud.line(timeout=2) == "MSG still here"
                barret, cloud = cloud, barret
    except OSError:
        pass  # the daemon may have closed on it already
    lines = read_until_end(flooder)
    assert lines and lines[-1].startswith("BYE flood"), lines[-3:]
    # ERR for the lines before the end: a few hundred, not millions.
    assert len(lines) < 1000
    ids = [line for line in daemon.log().splitlines() if "Flood" in line]
    assert len(ids) < 10, "\n".join(ids)
    assert any("past the rate limit" in line for line in ids)
    barret.send("after the flood")
    assert cloud.line() == "MSG after the flood"

    # Coming straight back buys nothing either: its address is turned away,
    # each connection with a HELLO and a BYE, and none logged one by one.
    logged = len(daemon.log().splitlines())
    for _ in range(20):
        # A blocking connect, as nc's and turnchat's: one with a timeout looks
        # at the socket again after the handshake, and may find the reset that
        # follows the BYE before reading it.
        sock = socket.create_connection(("127.0.0.1", daemon.port),
                                        source_address=("127.0.0.5", 0))
        assert read_until_end(Raw.over(sock))[1:] == [
            "BYE flood Your address sent far too many lines; try later"]
    assert len(daemon.log().splitlines()) == logged
    other = daemon.client("Other", "")
    assert other.line() == "WAITING lobby"
    # Once the window is over, it is served again, and one line sums it up.
    daemon.wait_for_log("127.0.0.5: no longer turned away; 20 connections turned away "
                        "meanwhile", timeout=15)
    back = Raw(daemon.port, source="127.0.0.5")
    assert back.line().startswith("HELLO")
    back.send("/join")
    assert back.line().startswith("PAIRED Other ")


def test_refused_lines_are_logged_once_then_summed_up(make_daemon):
    d = make_daemon(server_settings="rate_limit = 0;")
    c = d.client("Typo")
    for _ in range(50):
        c.send("/bogus")
    for _ in range(50):
        assert c.line().startswith("ERR bad-command")
    c.send("/q")
    assert c.line() == "BYE quit"
    d.wait_for_log("refused 49 more lines within 10 seconds (the last: bad-command)")
    assert d.log().count("refused a line") == 1


# 4. A few addresses hold every slot -------------------------------------------

def test_seven_addresses_leave_room_for_an_eighth(make_daemon):
    d = make_daemon(server_settings="max_clients = 200;")
    held = []
    refused = 0
    for a in range(2, 9):  # 127.0.0.2 .. 127.0.0.8
        for n in range(40):
            try:
                c = Raw(d.port, source=f"127.0.0.{a}")
            except OSError:
                break
            assert c.line().startswith("HELLO")
            c.send(f"/join room{a}x{n}")
            answer = c.line()
            if answer.startswith("WAITING"):
                held.append(c)
            else:
                assert answer.startswith("BYE address-limit"), answer
                refused += 1
                c.close()
    assert len(held) == 7 * 4  # max_waiting_per_address
    assert refused > 0
    newcomer = Raw(d.port, source="127.0.0.9")
    assert newcomer.line().startswith("HELLO")
    newcomer.send("/name Newcomer")
    newcomer.send("/join meet")
    assert newcomer.line() == "WAITING meet"
    friend = Raw(d.port, source="127.0.0.10")
    assert friend.line().startswith("HELLO")
    friend.send("/join meet")
    assert friend.line().startswith("PAIRED Newcomer ")
    assert newcomer.line().startswith("PAIRED guest ")
    for c in held:
        c.close()


def test_lowering_max_clients_by_reload_drops_no_one(daemon):
    pairs = [daemon.pair(room=f"r{i}") for i in range(3)]
    reload(daemon, "max_clients = 2;")
    for waiter, caller in pairs:
        caller.send("still on")
        assert waiter.line() == "MSG still on"
    late = Raw(daemon.port)
    assert late.line().startswith("HELLO")
    assert late.line().startswith("BYE server-full")


# 5. Lowering max_line by reload mid-line --------------------------------------

def test_lowering_max_line_mid_line_refuses_that_line_and_keeps_the_connection(make_daemon):
    d = make_daemon(server_settings="max_line = 1048576; max_queue = 4194304;")
    waiter, caller = d.pair()
    caller.send_bytes(b"z" * 300_000)
    time.sleep(0.5)
    reload(d, "max_line = 4096;")
    assert caller.line() == "ERR too-long Line too long (the limit is 4096 bytes); it was not sent"
    caller.send_bytes(b"z" * 50_000 + b"\n")
    caller.send("hello after")
    assert waiter.line() == "MSG hello after"
    waiter.send("and back")
    assert caller.line() == "MSG and back"


# 7. Unreadable config after the privilege drop --------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_a_config_only_root_can_read_is_reported_at_start(tmp_path, make_daemon):
    conf = tmp_path / "root-only.conf"
    conf.write_text('host = "127.0.0.1";\nport = 4000;\n')
    conf.chmod(0o600)
    run = subprocess.run([TURNCHATD, "-t", "-c", str(conf)], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert run.returncode == 0, run.stderr
    assert "configuration OK" in run.stdout
    assert "as user 'nobody' the configuration cannot be read again" in run.stderr
    assert "Permission denied" in run.stderr

    log = make_daemon(mode=0o600).log()
    assert "every reload (SIGHUP) will fail" in log and "Permission denied" in log, log


# 8. STATUS= at most once a second ---------------------------------------------

def test_status_reaches_the_service_manager_at_most_once_a_second(tmp_path, make_daemon):
    notify, notify_path = notify_socket(tmp_path)
    d = make_daemon(env=dict(os.environ, NOTIFY_SOCKET=notify_path))
    try:
        started = time.monotonic()
        churned = 0
        while time.monotonic() - started < 3:
            c = d.client()
            c.close()
            churned += 1
        seconds = time.monotonic() - started
        time.sleep(1.5)  # the last change still goes out
        notify.settimeout(0.2)
        statuses = []
        while True:
            try:
                message = notify.recv(4096).decode()
            except socket.timeout:
                break
            statuses += [m for m in message.split("\n") if m.startswith("STATUS=")]
        assert churned > 50
        assert 1 <= len(statuses) <= seconds + 3, statuses
        assert statuses[-1] == "STATUS=0 waiting, 0 conversations, 0 clients connected"
    finally:
        d.stop()
        notify.close()
