"""tests/lib/faultproxy.py against real sockets on loopback: bytes forwarded
as they were sent, each fault as each end sees it, its own cleanliness
(no spinning, nothing left behind, nothing on stderr), chaos that stops by
itself, and a real turnchatd behind it."""

import hashlib
import os
import queue
import random
import select
import socket
import threading
import time

import pytest

from faultproxy import FaultProxy
from turnchat_helpers import TIMEOUT, Raw, free_port, pair, wait_for

QUIET = 0.3  # seconds of silence that count as "nothing arrives"
OPENED = []  # the tests' own client sockets, closed after each test


@pytest.fixture(autouse=True)
def close_clients():
    yield
    while OPENED:
        OPENED.pop().close()


class Upstream:
    """A plain listening socket standing in for the daemon: each accepted
    socket is handed to the test (next()), or echoed when echo is set."""

    def __init__(self, echo=False):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.echo = echo
        self.accepted = queue.Queue()
        self.sockets = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(sock)
            if self.echo:
                threading.Thread(target=self._echo, args=(sock,), daemon=True).start()
            else:
                self.accepted.put(sock)

    @staticmethod
    def _echo(sock):
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    sock.shutdown(socket.SHUT_WR)
                    return
                sock.sendall(data)
        except OSError:
            pass

    def next(self, timeout=TIMEOUT):
        sock = self.accepted.get(timeout=timeout)
        sock.settimeout(TIMEOUT)
        return sock

    def nothing_new(self):
        return self.accepted.empty()

    def close(self):
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def echo():
    u = Upstream(echo=True)
    yield u
    u.close()


@pytest.fixture
def proxy(upstream):
    p = FaultProxy(("127.0.0.1", upstream.port)).start()
    yield p
    p.stop()


@pytest.fixture
def echo_proxy(echo):
    p = FaultProxy(("127.0.0.1", echo.port)).start()
    yield p
    p.stop()


def dial(proxy):
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    OPENED.append(sock)
    sock.settimeout(TIMEOUT)
    return sock


def raw(proxy):
    """A turnchat_helpers.Raw through proxy."""
    client = Raw(proxy.port)
    OPENED.append(client.sock)
    return client


def through(proxy, upstream):
    """(client, server): both ends of a new connection through proxy."""
    client = dial(proxy)
    return client, upstream.next()


def fate(sock, timeout=TIMEOUT):
    """What sock sees next: 'eof', 'reset', 'silent' (nothing within
    timeout) or the bytes that came."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "silent"
    finally:
        sock.settimeout(TIMEOUT)
    return data if data else "eof"


def refused_fate(proxy):
    """fate() of a new connection that the proxy closes at once: a reset
    may come before connect() returns."""
    try:
        sock = dial(proxy)
    except ConnectionResetError:
        return "reset"
    with sock:
        return fate(sock)


def recv_exactly(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"end of file after {len(data)} of {n} bytes"
        data += chunk
    return bytes(data)


def exchange(client, server, there=b"ping", back=b"pong"):
    client.sendall(there)
    assert recv_exactly(server, len(there)) == there
    server.sendall(back)
    assert recv_exactly(client, len(back)) == back


# --- Forwarding, with no fault -----------------------------------------------------


def test_bytes_arrive_in_order_without_loss_or_duplication(echo_proxy):
    """8 MB in writes of random sizes, echoed back while still being sent."""
    rng = random.Random(7)
    data = rng.randbytes(8 * 1024 * 1024)
    client = dial(echo_proxy)
    got = bytearray()

    def read():
        while True:
            chunk = client.recv(65536)
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    at = 0
    while at < len(data):
        size = rng.choice((1, 7, 1000, 65536, 300000))
        client.sendall(data[at:at + size])
        at += size
    client.shutdown(socket.SHUT_WR)
    reader.join(TIMEOUT)
    assert not reader.is_alive()
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    client.close()


def test_a_slow_reader_gets_everything(proxy, upstream):
    """The daemon's side reads nothing for a while, then 4 KiB at a time
    with pauses, while the client writes 8 MB at once: the proxy's writes
    fill the socket and come out partial, or not at all, until the reader
    catches up."""
    data = random.Random(8).randbytes(8 * 1024 * 1024)
    client = dial(proxy)
    server = upstream.next()
    sender = threading.Thread(target=lambda: (client.sendall(data),
                                              client.shutdown(socket.SHUT_WR)))
    sender.start()
    time.sleep(0.3)
    got = bytearray()
    reads = 0
    while True:
        chunk = server.recv(4096)
        if not chunk:
            break
        got += chunk
        reads += 1
        if reads % 256 == 0:
            time.sleep(0.01)
    sender.join(TIMEOUT)
    assert bytes(got) == data
    client.close()


def test_a_reader_that_never_reads_holds_the_writer_back(proxy, upstream):
    """The proxy holds a bounded amount, as TCP does: a daemon that stops
    reading soon stops the client's writes (turnchatd's backpressure and
    slow_timeout rely on it), and nothing is lost meanwhile."""
    client, server = through(proxy, upstream)
    # The ends' own buffers fixed, so that what the kernel may hold is the
    # proxy's two sockets' (tcp_rmem and tcp_wmem at most) and no more.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    client.setblocking(False)
    block = b"w" * 65536
    sent = 0
    deadline = time.monotonic() + 2
    while sent < 256 * 1024 * 1024 and time.monotonic() < deadline:
        try:
            sent += client.send(block)
        except BlockingIOError:
            _, writable, _ = select.select([], [client], [], 0.5)
            if not writable:
                break  # held back
    assert sent < 64 * 1024 * 1024, f"{sent} bytes went in with nobody reading"
    got = 0
    while got < sent:
        got += len(server.recv(1024 * 1024))
    assert got == sent


def test_half_closes_are_forwarded_as_half_closes(proxy, upstream):
    client, server = through(proxy, upstream)
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    assert recv_exactly(server, 10) == b"last words"
    assert fate(server) == "eof"
    # The other way is still open, both ways round.
    server.sendall(b"still here")
    assert recv_exactly(client, 10) == b"still here"
    server.shutdown(socket.SHUT_WR)
    assert fate(client) == "eof"
    wait_for(lambda: proxy.connections == 0, "the proxy closing a connection ended both ways")

    client, server = through(proxy, upstream)
    server.shutdown(socket.SHUT_WR)
    assert fate(client) == "eof"
    client.sendall(b"after your eof")
    assert recv_exactly(server, 14) == b"after your eof"
    assert proxy.connections == 1


def test_a_reset_is_forwarded_as_a_reset(proxy, upstream):
    client, server = through(proxy, upstream)
    exchange(client, server)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    server.close()
    assert fate(client) == "reset"


def test_an_unreachable_upstream_resets_the_client():
    proxy = FaultProxy(("127.0.0.1", free_port())).start()
    try:
        assert refused_fate(proxy) == "reset"
        assert proxy.failed == 1
        assert proxy.connections == 0
    finally:
        proxy.stop()


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.1", "0.0.0.0", "::", "localhost",
                                  "::ffff:127.0.0.1", "example.org"])
def test_only_loopback_upstreams(host):
    with pytest.raises(ValueError):
        FaultProxy((host, 52928))
    with pytest.raises(ValueError):
        FaultProxy(("127.0.0.1", 52928), host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_upstreams_are_taken(host):
    FaultProxy((host, 52928))  # not started: only the check


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no ::1 here")
def test_ipv6_loopback_both_ways():
    """Listening on ::1 and forwarding to ::1."""
    listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    try:
        with FaultProxy(("::1", listener.getsockname()[1]), host="::1") as proxy:
            client = socket.create_connection(("::1", proxy.port), timeout=TIMEOUT)
            server, peer = listener.accept()
            OPENED.extend((client, server))
            assert peer[0] == "::1"
            exchange(client, server)
            proxy.cut()
            assert fate(client) == "eof"
            assert fate(server) == "eof"
            client.close()
            server.close()
    finally:
        listener.close()


# --- Faults ---------------------------------------------------------------------------


def test_cut_closes_both_sides_with_a_fin(proxy, upstream):
    client, server = through(proxy, upstream)
    exchange(client, server)
    assert proxy.cut() == 1
    assert fate(client) == "eof"
    assert fate(server) == "eof"
    assert proxy.connections == 0
    client, server = through(proxy, upstream)
    exchange(client, server)
    assert (proxy.accepted, proxy.connections) == (2, 1)


def test_cut_is_a_fin_even_with_unread_bytes_held(proxy, upstream):
    """Closing a socket with unread input sends a reset, even after a FIN:
    the other end then reads its end of file, but poll() and SO_ERROR say
    the connection failed. cut() must not."""
    client, server = through(proxy, upstream)
    proxy.stall()
    client.sendall(b"x" * 100000)
    server.sendall(b"y" * 100000)
    time.sleep(0.1)
    proxy.cut()
    for sock in (client, server):
        assert fate(sock) == "eof"
        time.sleep(0.05)  # for a reset, if one comes
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        [(_, events)] = poller.poll(0)
        assert not events & select.POLLERR
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_reset_resets_both_sides(proxy, upstream):
    client, server = through(proxy, upstream)
    exchange(client, server)
    assert proxy.reset() == 1
    assert fate(client) == "reset"
    assert fate(server) == "reset"
    assert proxy.connections == 0


def test_stall_holds_everything_until_resumed(proxy, upstream):
    client, server = through(proxy, upstream)
    exchange(client, server)
    assert proxy.stall() == 1
    client.sendall(b"one ")
    server.sendall(b"back")
    assert fate(server, QUIET) == "silent"
    assert fate(client, QUIET) == "silent"
    client.sendall(b"two")
    client.shutdown(socket.SHUT_WR)  # a FIN sent into a dead network waits too
    assert fate(server, QUIET) == "silent"
    assert proxy.connections == 1
    assert proxy.unstall(drop=False) == 1
    assert recv_exactly(server, 7) == b"one two"
    assert fate(server) == "eof"
    assert recv_exactly(client, 4) == b"back"
    server.sendall(b"more")
    assert recv_exactly(client, 4) == b"more"


def test_unstall_with_drop_resets_the_stalled(proxy, upstream):
    client, server = through(proxy, upstream)
    proxy.stall()
    client.sendall(b"lost")
    assert fate(server, QUIET) == "silent"
    assert proxy.unstall(drop=True) == 1
    assert fate(client) == "reset"
    assert fate(server) == "reset"
    assert proxy.connections == 0


def test_stall_acts_on_current_connections_only(proxy, upstream):
    old_client, old_server = through(proxy, upstream)
    proxy.stall()
    client, server = through(proxy, upstream)
    exchange(client, server)
    assert proxy.unstall() == 1
    assert fate(old_client) == "reset"
    exchange(client, server)


def test_half_open_resets_the_daemon_and_silences_the_client(proxy, upstream):
    client, server = through(proxy, upstream)
    exchange(client, server)
    assert proxy.half_open() == 1
    assert fate(server) == "reset"
    client.sendall(b"anyone there?")  # succeeds: nothing tells it otherwise
    assert fate(client, QUIET) == "silent"
    assert proxy.connections == 1
    # The network comes back: the client learns what the daemon knew.
    assert proxy.unstall(drop=False) == 1
    assert fate(client) == "reset"
    assert proxy.connections == 0


def test_cut_ends_a_half_open_client_with_a_fin(proxy, upstream):
    client, server = through(proxy, upstream)
    proxy.half_open()
    assert fate(server) == "reset"
    client.sendall(b"unread")
    assert proxy.cut() == 1
    assert fate(client) == "eof"


def test_refuse_closes_new_connections_for_a_while(proxy, upstream):
    kept_client, kept_server = through(proxy, upstream)
    proxy.refuse(0.6)
    assert refused_fate(proxy) == "eof"
    exchange(kept_client, kept_server)  # connections already open go on
    proxy.refuse(0.6, reset=True)
    assert refused_fate(proxy) == "reset"
    assert upstream.nothing_new()
    assert proxy.refused == 2
    assert proxy.accepted == 1
    wait_for(lambda: not proxy.refusing, "the refusal ending", timeout=2)
    client, server = through(proxy, upstream)
    exchange(client, server)


def test_refuse_zero_ends_a_refusal(proxy, upstream):
    proxy.refuse(60)
    assert refused_fate(proxy) == "eof"
    proxy.refuse(0)
    client, server = through(proxy, upstream)
    exchange(client, server)


def test_only_picks_one_connection_by_its_number(proxy, upstream):
    first = through(proxy, upstream)
    second = through(proxy, upstream)
    third = through(proxy, upstream)
    assert proxy.cut(only=1) == 1
    assert fate(second[0]) == "eof"
    assert proxy.cut(only=1) == 0  # gone already
    assert proxy.reset(only=2) == 1
    assert fate(third[0]) == "reset"
    exchange(*first)
    assert proxy.connections == 1


# --- The proxy's own hygiene ------------------------------------------------------------


def thread_cpu_ticks(thread):
    """utime + stime of a thread of this process, in clock ticks."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_no_busy_loop_in_any_state(proxy, upstream):
    """Idle, half-closed, stalled with bytes waiting both ways and half-open
    with bytes waiting: the proxy's thread must sleep."""
    idle = through(proxy, upstream)
    half_closed = through(proxy, upstream)
    half_closed[0].shutdown(socket.SHUT_WR)
    assert fate(half_closed[1]) == "eof"
    stalled = through(proxy, upstream)
    orphan = through(proxy, upstream)
    proxy.stall(only=2)
    stalled[0].sendall(b"a" * 50000)
    stalled[1].sendall(b"b" * 50000)
    proxy.half_open(only=3)
    orphan[0].sendall(b"c" * 50000)
    time.sleep(0.1)
    before = thread_cpu_ticks(proxy._thread)
    time.sleep(1)
    spent = thread_cpu_ticks(proxy._thread) - before
    ticks = os.sysconf("SC_CLK_TCK")
    assert spent < ticks // 10, f"the proxy's thread used {spent}/{ticks} of a second asleep"
    exchange(*idle)


def test_stop_leaves_nothing_behind(upstream):
    threads = threading.active_count()
    descriptors = len(os.listdir("/proc/self/fd"))
    proxy = FaultProxy(("127.0.0.1", upstream.port)).start()
    ends = [through(proxy, upstream) for _ in range(4)]
    proxy.stall(only=1)
    proxy.half_open(only=2)
    chaos = proxy.chaos(10, 5, random.Random(1))
    assert threading.active_count() == threads + 2
    proxy.stop()
    assert not chaos.is_alive()
    assert threading.active_count() == threads
    assert fate(ends[0][0]) == "eof"
    assert fate(ends[0][1]) == "eof"
    assert fate(ends[1][0]) == "eof"
    assert fate(ends[2][0]) == "eof"
    with pytest.raises(ConnectionRefusedError):
        dial(proxy)
    with pytest.raises(RuntimeError):
        proxy.cut()
    proxy.stop()  # twice is fine
    for client, server in ends:
        client.close()
        server.close()
    upstream.sockets.clear()
    assert len(os.listdir("/proc/self/fd")) == descriptors


def test_faults_make_no_noise_on_stderr(capfd, upstream):
    with FaultProxy(("127.0.0.1", upstream.port)) as proxy:
        for fault in ("cut", "reset", "stall", "half_open"):
            client, server = through(proxy, upstream)
            client.sendall(b"x" * 10000)
            getattr(proxy, fault)()
            # Each end keeps writing into whatever is left.
            for sock in (client, server):
                try:
                    sock.sendall(b"y" * 100000)
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            proxy.unstall(drop=True)
            client.close()
            server.close()
        proxy.refuse(1, reset=True)
        assert refused_fate(proxy) == "reset"
        proxy.refuse(0)
        chaos = proxy.chaos(0.01, 20, random.Random(3))
        for _ in range(10):
            try:
                client = dial(proxy)
                client.sendall(b"z" * 1000)
                client.close()
            except OSError:
                pass
        chaos.join(TIMEOUT)
        assert chaos.error is None
    out, err = capfd.readouterr()
    assert err == ""


# --- Chaos ------------------------------------------------------------------------------


def test_chaos_stops_after_its_count(echo_proxy):
    chaos = echo_proxy.chaos(0.02, 6, random.Random(4))
    chaos.join(TIMEOUT)
    assert not chaos.is_alive()
    faults = [name for _, name in chaos.done if not name.startswith("unstall")]
    assert len(faults) == 6
    assert chaos.error is None
    # Nothing it started is still in force: a new connection just works.
    assert not echo_proxy.refusing
    client = dial(echo_proxy)
    client.sendall(b"after the storm")
    assert recv_exactly(client, 15) == b"after the storm"


def test_chaos_stops_after_its_time(echo_proxy):
    start = time.monotonic()
    chaos = echo_proxy.chaos(0.05, 10**9, random.Random(5), duration=0.5)
    chaos.join(TIMEOUT)
    assert not chaos.is_alive()
    assert time.monotonic() - start < 1.5
    assert 0 < len(chaos.done) < 40


def test_chaos_stall_in_progress_is_undone(echo_proxy):
    """A chaos stopped while a stall holds a connection drops it: no
    connection stays stalled once chaos is over."""
    for seed in range(4):  # whatever unstall the stall would have ended with
        client = dial(echo_proxy)
        chaos = echo_proxy.chaos(0.05, 1, random.Random(seed), duration=60, faults=("stall",),
                                 hold_s=30)
        wait_for(lambda: chaos.done, "chaos stalling", interval=0.01)
        chaos.stop()
        assert not chaos.is_alive()
        assert chaos.done[-1][1] == "unstall(drop)"
        assert fate(client) == "reset"
        assert echo_proxy.connections == 0


def test_chaos_refusal_ends_with_it(echo_proxy):
    chaos = echo_proxy.chaos(0.05, 1, random.Random(7), duration=60, faults=("refuse",),
                             hold_s=30)
    chaos.join(TIMEOUT)
    assert chaos.done and not chaos.is_alive()
    assert not echo_proxy.refusing
    client = dial(echo_proxy)
    client.sendall(b"open again")
    assert recv_exactly(client, 10) == b"open again"


def test_under_chaos_each_connection_gets_a_prefix_of_its_bytes(echo_proxy):
    """Faults may end a connection early, never reorder, skip or repeat:
    what each client gets back is a prefix of what it sent."""
    rng = random.Random(9)
    chaos = echo_proxy.chaos(0.05, 30, rng)
    connections = 0
    while chaos.is_alive():
        try:
            client = dial(echo_proxy)
        except OSError:
            continue
        connections += 1
        sent = bytearray()
        got = bytearray()
        client.settimeout(0.3)
        try:
            for i in range(200):
                line = b"%d:%d\n" % (connections, i)
                client.sendall(line)
                sent += line
                while len(got) < len(sent):
                    chunk = client.recv(65536)
                    if not chunk:
                        raise ConnectionError
                    got += chunk
        except OSError:  # reset, refused, stalled past the timeout, cut
            pass
        finally:
            client.close()
        assert bytes(got) == bytes(sent[:len(got)]), f"connection {connections}: {chaos.done}"
    assert connections > 1
    assert chaos.error is None


# --- Through a real turnchatd ------------------------------------------------------------


@pytest.fixture
def daemon_proxy(daemon):
    p = FaultProxy(("127.0.0.1", daemon.port)).start()
    yield p
    p.stop()


def test_turnchatd_cut_one_side_is_peer_lost_to_the_other(daemon, daemon_proxy):
    waiter, caller = pair(lambda: raw(daemon_proxy))
    assert daemon_proxy.connections == 2
    converse = [(caller, waiter, "Hey Cloud, you there?"), (waiter, caller, "Yeah.")]
    for speaker, listener, text in converse:
        speaker.send(text)
        assert listener.line() == f"MSG {text}"
    assert daemon_proxy.cut(only=0) == 1
    assert waiter.closed()
    assert caller.line() == "BYE peer-lost"
    assert caller.closed()
    daemon.wait_for_log("Cloud (127.0.0.1")
    daemon.wait_for_log("connection closed")
    # turnchatd closed the caller's connection; the proxy passed its FIN on,
    # and the connection is over once the caller closes its end too.
    assert daemon_proxy.connections == 1
    caller.close()
    wait_for(lambda: daemon_proxy.connections == 0, "the caller's connection ending")


def test_turnchatd_cut_everyone(daemon, daemon_proxy):
    waiter, caller = pair(lambda: raw(daemon_proxy))
    assert daemon_proxy.cut() == 2
    assert waiter.closed()
    assert caller.closed()
    # Whichever end of file turnchatd reads first ends the conversation.
    wait_for(lambda: "ended: Cloud peer-lost" in daemon.log()
             or "ended: Barret peer-lost" in daemon.log(), "turnchatd ending the conversation")


def test_turnchatd_half_open_caller(daemon, daemon_proxy):
    """The caller's network dies one way: turnchatd sees a reset and tells
    the waiter; the caller hears nothing at all."""
    waiter, caller = pair(lambda: raw(daemon_proxy))
    assert daemon_proxy.half_open(only=1) == 1
    assert waiter.line() == "BYE peer-lost"
    daemon.wait_for_log("connection lost")
    caller.send("Hello?")
    assert caller.quiet(QUIET)
    daemon_proxy.unstall()
    with pytest.raises(ConnectionResetError):
        caller.line()


def test_turnchatd_stall_then_resume(daemon, daemon_proxy):
    waiter, caller = pair(lambda: raw(daemon_proxy))
    daemon_proxy.stall()
    caller.send("Are you getting this?")
    assert waiter.quiet(QUIET)
    daemon_proxy.unstall(drop=False)
    assert waiter.line() == "MSG Are you getting this?"
    waiter.send("Now I am.")
    assert caller.line() == "MSG Now I am."


def test_turnchatd_reset_one_side(daemon, daemon_proxy):
    waiter, caller = pair(lambda: raw(daemon_proxy))
    daemon_proxy.reset(only=1)
    with pytest.raises(ConnectionResetError):
        caller.line()
    assert waiter.line() == "BYE peer-lost"
    daemon.wait_for_log("Barret (127.0.0.1")
    daemon.wait_for_log("connection lost")
