"""Every limit of the daemon, as a client meets it: a clear ERR or BYE, a
log line, and nothing lost for anyone else."""

import os
import resource
import socket
import subprocess
import time

import pytest

from turnchat_helpers import TIMEOUT, TURNCHATD, Raw, free_port


def free_pair(d, names=("Cloud", "Barret")):
    a = d.client(names[0])
    a.send("/mode free")
    a.send("/join")
    assert a.line() == "WAITING lobby"
    b = d.client(names[1], "")
    assert b.line().startswith("PAIRED")
    assert a.line().startswith("PAIRED")
    return a, b


def test_max_per_address(make_daemon):
    d = make_daemon(server_settings="max_per_address = 2;")
    first, second = Raw(d.port), Raw(d.port)
    third = Raw(d.port)
    assert third.line().startswith("HELLO")
    assert third.line().startswith("BYE address-limit")
    assert third.closed()
    third.close()
    # Another address is counted on its own.
    other = socket.create_connection((("127.0.0.1", d.port)), timeout=TIMEOUT,
                                     source_address=("127.0.0.2", 0))
    other.close()
    elsewhere = Raw(d.port, source="127.0.0.3")
    assert elsewhere.line().startswith("HELLO")
    elsewhere.send("/join")
    assert elsewhere.line() == "WAITING lobby"
    # When one leaves, the address may connect again.
    first.close()
    d.wait_for_log("#1 guest (127.0.0.1")  # its connection closed, or lost
    again = Raw(d.port)
    assert again.line().startswith("HELLO")
    again.send("/join other")
    assert again.line() == "WAITING other"
    assert "max_per_address" in d.log()


def test_join_timeout(make_daemon):
    d = make_daemon(server_settings="join_timeout = 1;")
    idle = Raw(d.port)
    waiter = d.client("Waits", "")
    assert waiter.line() == "WAITING lobby"
    assert idle.line().startswith("HELLO")
    assert idle.line(timeout=5) == "BYE join-timeout"
    assert idle.closed()
    # Joined people are not rushed.
    assert waiter.quiet(1.5)
    assert "no /join within 1 seconds" in d.log()


def test_rate_limit(make_daemon):
    # Every line counts, commands too: /name, /mode and /join leave 5 of 8.
    d = make_daemon(server_settings="rate_limit = 1; rate_burst = 8;")
    a, b = free_pair(d)
    for i in range(8):
        a.send(f"line {i}")
    relayed = [b.line() for _ in range(5)]
    assert relayed == [f"MSG line {i}" for i in range(5)]
    refused = [a.line() for _ in range(3)]
    assert all(r.startswith("ERR rate-limited ") for r in refused), refused
    assert b.quiet(0.2)
    time.sleep(1.1)  # one more token (1 a second)
    a.send("after a pause")
    assert b.line() == "MSG after a pause"
    for _ in range(5):
        a.send("spam")
    a.send("/q")  # leaving is never rate-limited
    lines = []
    while not lines or not lines[-1].startswith("BYE"):
        lines.append(a.line())
    assert lines[-1] == "BYE quit"


def test_slow_reader_backpressure_then_nothing_lost(make_daemon):
    d = make_daemon(server_settings="rate_limit = 0; max_queue = 16384; slow_timeout = 30;")
    a, b = free_pair(d)
    count, sent = 100000, 0
    a.sock.setblocking(False)
    data = b"".join(f"flood {i:06d} ".encode() + b"x" * 80 + b"\n" for i in range(count))
    blocked = False
    # The reader reads nothing yet: the sender must be held back.
    deadline = time.monotonic() + TIMEOUT
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += a.sock.send(data[sent:sent + 65536])
        except BlockingIOError:
            blocked = True
            break
    assert blocked, "the daemon kept reading although the partner read nothing"
    assert "queue full" not in d.log()
    # Now the reader reads: everything arrives, in order, once.
    a.sock.setblocking(True)
    a.sock.settimeout(TIMEOUT)
    import threading
    sender = threading.Thread(target=lambda: a.sock.sendall(data[sent:]))
    sender.start()
    for i in range(count):
        line = b.line()
        assert line.startswith(f"MSG flood {i:06d} "), (i, line[:40])
    sender.join(TIMEOUT)
    assert b.quiet(0.2)


def test_reader_that_never_reads_is_dropped_as_too_slow(make_daemon):
    d = make_daemon(server_settings="rate_limit = 0; max_queue = 16384; slow_timeout = 1;")
    a, b = free_pair(d)
    b.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.sock.setblocking(False)
    line = b"y" * 1000 + b"\n"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            a.sock.send(line * 16)
        except BlockingIOError:
            time.sleep(0.05)
        if "dropping" in d.log():
            break
    a.sock.setblocking(True)
    a.sock.settimeout(TIMEOUT)
    got = a.line()
    while got.startswith("ERR"):
        got = a.line()
    assert got == "BYE peer-lost", d.log()
    d.wait_for_log("read nothing with output waiting for 1 seconds; dropping")


def test_started_as_root_it_runs_as_nobody(daemon):
    if os.geteuid() != 0:
        pytest.skip("only root can drop privileges")
    status = open(f"/proc/{daemon.proc.pid}/status").read()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uid_line.split()[1:]) == {str(65534)}
    assert "running as user 'nobody' and group 'nogroup'" in daemon.log()


def test_refuses_to_run_as_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can try to stay root")
    conf = tmp_path / "root.conf"
    conf.write_text(f'host = "127.0.0.1"; port = {free_port()};\n'
                    'server: { user = "root"; group = "root"; };\n')
    result = subprocess.run([TURNCHATD, "-f", "-c", str(conf)], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 1
    assert "refusing to run as root" in result.stderr


def test_out_of_file_descriptors_it_backs_off_and_recovers(make_daemon):
    def few_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    d = make_daemon(server_settings="max_per_address = 1000;", preexec_fn=few_fds)
    crowd = [socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT) for _ in range(40)]
    d.wait_for_log("cannot accept now")
    cpu_before = sum(int(x) for x in open(f"/proc/{d.proc.pid}/stat").read().split()[13:15])
    time.sleep(1.0)
    cpu_after = sum(int(x) for x in open(f"/proc/{d.proc.pid}/stat").read().split()[13:15])
    assert cpu_after - cpu_before < 50, "it spins instead of backing off"
    for s in crowd:
        s.close()
    late = Raw(d.port)
    assert late.line(timeout=5).startswith("HELLO")
    assert d.proc.poll() is None
