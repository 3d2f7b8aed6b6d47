"""A TCP proxy on loopback that injects faults on command, for tests of what
a client and turnchatd do when the network between them misbehaves.

    proxy = FaultProxy(upstream=("127.0.0.1", daemon.port)).start()
    client = Raw(proxy.port)          # connects through the proxy
    proxy.cut()                       # every connection: FIN to both ends
    proxy.stop()

Faults act on every current connection, or on one when only= names it:
connections are numbered 0, 1, 2... in the order the proxy accepted them.

- cut()        closes both sides at once (FIN): a clean drop.
- reset()      resets both sides (RST, SO_LINGER 0).
- stall()      stops forwarding both ways; the sockets stay open and what
               either end sends meanwhile is held (in the kernel: the proxy
               stops reading), never delivered until unstall(drop=False).
               Like a dead Wi-Fi: a FIN or RST sent meanwhile is held too.
- unstall(drop=True)  the network is back. drop=True resets both sides of
               every stalled connection (each end learns the connection is
               gone the way it would from a peer that forgot it);
               drop=False forwards what was held, in order, and goes on.
               Either way a half-open connection's client side is reset.
- half_open()  resets only the proxy->daemon side and leaves the client side
               open and silent: the client sees nothing, the daemon sees a
               reset. cut(), reset(), unstall() or stop() end the client side.
- refuse(s)    for s seconds, closes new connections as soon as they are
               accepted (FIN, or RST with reset=True); refuse(0) ends it.

chaos() injects faults at random intervals from a thread of its own, for a
bounded count and a bounded time, and stops by itself.

Bytes that no fault touches are forwarded in order, without loss or
duplication; a half-close (shutdown(SHUT_WR)) on one side is passed on as a
half-close once what came before it is written; a reset on one side is
passed on as a reset. Data the proxy had read and not yet written when a
fault hits is lost, as it would be in the network.

One thread with one selector serves every connection; faults are run on
that thread, so when a fault call returns its sockets are already closed or
stalled. Standard library only; loopback addresses only (127.0.0.0/8, ::1).

As a script, for trying a client by hand:

    /usr/bin/python3 tests/lib/faultproxy.py 127.0.0.1:52928

then type cut, reset, stall [N], unstall [keep], half-open, refuse SECONDS,
chaos PERIOD COUNT [SEED], status, quit (help lists them)."""

import collections
import errno
import ipaddress
import random
import selectors
import socket
import struct
import sys
import threading
import time

CHUNK = 65536
HIGH_WATER = 256 * 1024  # bytes held per direction before the proxy stops reading
DRAIN_LIMIT = 4 * 1024 * 1024  # bytes read and dropped from a socket being closed with a FIN
ACCEPT_PAUSE = 0.1  # seconds without accepting after accept() fails (out of descriptors)
FAULTS = ("cut", "reset", "stall", "half_open", "refuse")

_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


def loopback(host):
    """host (an IP address as text) if it is a loopback address; a
    ValueError otherwise. Names are not resolved: only literals are sure."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r}: the fault proxy takes loopback IP addresses only "
                         "(127.0.0.0/8 or ::1), not names") from None
    if not address.is_loopback:
        raise ValueError(f"{host!r} is not a loopback address (127.0.0.0/8 or ::1)")
    return host


def _family(host):
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _quiet_close(sock):
    try:
        sock.close()
    except OSError:
        pass


def _reset_close(sock):
    """Closes sock with a reset rather than a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    except OSError:
        pass
    _quiet_close(sock)


def _fin_close(sock):
    """Closes sock with a FIN: what the other end sent and nobody read would
    turn the close into a reset, so it is read and dropped first (the FIN
    goes out before, so the other end sees its end of file at once)."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        sock.setblocking(False)
        dropped = 0
        while dropped < DRAIN_LIMIT:
            data = sock.recv(CHUNK)
            if not data:
                break
            dropped += len(data)
    except OSError:
        pass
    _quiet_close(sock)


class _Pipe:
    """One direction of a connection: what src sent, on its way to dst."""

    def __init__(self, src, dst):
        self.src = src
        self.dst = dst
        self.buf = bytearray()
        self.eof = False  # src said it sends no more
        self.shut = False  # and dst was told so, after the last byte


class _Link:
    """One proxied connection: the client's socket and the proxy's to the
    upstream, and the two directions between them."""

    CONNECTING, OPEN, ORPHAN, CLOSED = "connecting", "open", "orphan", "closed"

    def __init__(self, number, client, upstream):
        self.number = number
        self.client = client
        self.upstream = upstream
        self.up = _Pipe(client, upstream)
        self.down = _Pipe(upstream, client)
        self.state = self.CONNECTING
        self.stalled = False
        self.events = {}  # socket -> the selector events it is registered for


class FaultProxy:
    """See the module's documentation. upstream is (loopback address, port);
    the proxy listens on host (loopback too) and port (0: a free one, then
    in .port once started)."""

    def __init__(self, upstream, host="127.0.0.1", port=0):
        upstream_host, upstream_port = upstream
        self.upstream = (loopback(upstream_host), int(upstream_port))
        self.host = loopback(host)
        self._port = port
        self.accepted = 0  # connections accepted, ever, but those refuse() closed
        self.refused = 0  # connections refuse() closed at once
        self.failed = 0  # accepted connections whose upstream could not be reached (reset)
        self._links = {}
        self._refuse_until = 0.0
        self._refuse_reset = False
        self._accept_paused_until = 0.0
        self._commands = collections.deque()
        self._stopping = False
        self._crash = None
        self._thread = None
        self._listener = None
        self._selector = None
        self._wake_r = self._wake_w = None
        self._chaos = []

    # --- Public face: every fault runs on the proxy's thread -----------------

    @property
    def port(self):
        return self._port

    @property
    def connections(self):
        """Live proxied connections, stalled and half-open ones included."""
        return len(self._links)

    def start(self):
        if self._thread is not None:
            raise RuntimeError("the fault proxy is already started")
        listener = socket.socket(_family(self.host), socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self._port))
            listener.listen(128)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, (self._on_listener, None))
        self._selector.register(self._wake_r, selectors.EVENT_READ, (self._on_wake, None))
        self._thread = threading.Thread(target=self._run, name=f"faultproxy:{self._port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops any chaos, closes every connection (FIN) and the listener,
        and ends the thread. A RuntimeError if the proxy's loop had failed."""
        for chaos in list(self._chaos):
            chaos.stop()
        if self._thread is None:
            return
        if self._thread.is_alive():
            self._stopping = True
            self._wake()
            self._thread.join()
        for sock in (self._wake_r, self._wake_w):
            _quiet_close(sock)
        crash, self._crash = self._crash, None
        if crash is not None:
            raise RuntimeError("the fault proxy's loop failed") from crash

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.stop()

    def cut(self, only=None):
        """Closes both sides of each connection with a FIN. Returns how many."""
        return self._call(self._fault, only, self._cut)

    def reset(self, only=None):
        """Resets both sides of each connection. Returns how many."""
        return self._call(self._fault, only, self._reset)

    def stall(self, only=None):
        """Stops forwarding on each connection; see the module's documentation."""
        return self._call(self._fault, only, self._stall)

    def unstall(self, drop=True, only=None):
        """The network is back for stalled and half-open connections: drop
        (reset) or resume the stalled ones; half-open ones are reset."""
        return self._call(self._fault, only, self._drop if drop else self._resume)

    def half_open(self, only=None):
        """Resets the daemon's side of each connection, silences the client's."""
        return self._call(self._fault, only, self._half_open)

    def refuse(self, seconds, reset=False):
        """Closes new connections at once (FIN, or RST with reset) for
        seconds; 0 ends it. Connections already open are untouched."""
        def command():
            self._refuse_until = time.monotonic() + seconds if seconds > 0 else 0.0
            self._refuse_reset = reset
        self._call(command)

    @property
    def refusing(self):
        return time.monotonic() < self._refuse_until

    def chaos(self, period_s, count, rng=None, duration=None, faults=FAULTS, hold_s=None):
        """Starts a Chaos: up to count faults, one every period_s on average
        (uniformly 0.5 to 1.5 times it), chosen among faults by rng (a
        random.Random; seeded from the clock if None), for at most duration
        seconds (default: 2 * period_s * count). A stall or a refusal lasts
        hold_s on average (0.5 to 1.5 times it; default period_s / 2), and
        never past the end. It stops by itself."""
        chaos = Chaos(self, period_s, count, rng, duration, faults, hold_s)
        self._chaos.append(chaos)
        chaos.start()
        return chaos

    # --- Commands from other threads -------------------------------------------

    def _call(self, function, *args):
        """function(*args) run on the proxy's thread; its result, or what it raised."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._stopping:
            raise RuntimeError("the fault proxy is not running") from self._crash
        if threading.current_thread() is thread:
            return function(*args)
        done = threading.Event()
        outcome = []
        self._commands.append((function, args, done, outcome))
        self._wake()
        while not done.wait(0.1):
            if not thread.is_alive():
                raise RuntimeError("the fault proxy stopped") from self._crash
        result, error = outcome[0]
        if error is not None:
            raise error
        return result

    def _wake(self):
        try:
            self._wake_w.send(b"!")
        except (BlockingIOError, OSError):
            pass  # full: a wake-up is pending anyway; closed: stopping

    def _on_wake(self, sock, mask, _):
        try:
            while sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _run_commands(self):
        while self._commands:
            function, args, done, outcome = self._commands.popleft()
            try:
                outcome.append((function(*args), None))
            except Exception as error:  # handed to the caller, raised there
                outcome.append((None, error))
            done.set()

    # --- The loop -------------------------------------------------------------

    def _run(self):
        try:
            while not self._stopping:
                timeout = None
                if self._accept_paused_until:
                    timeout = max(0.0, self._accept_paused_until - time.monotonic())
                    if timeout == 0.0:
                        self._accept_paused_until = 0.0
                        self._selector.register(self._listener, selectors.EVENT_READ,
                                                (self._on_listener, None))
                        continue
                for key, mask in self._selector.select(timeout):
                    callback, link = key.data
                    if link is None or link.state != _Link.CLOSED:
                        callback(key.fileobj, mask, link)
                self._run_commands()
        except BaseException as error:  # kept for stop() and _call() to raise
            self._crash = error
        finally:
            for link in list(self._links.values()):
                self._cut(link)
            self._selector.close()
            _quiet_close(self._listener)
            self._stopping = True
            while self._commands:  # asked for as the loop ended: nothing to act on
                _, _, done, outcome = self._commands.popleft()
                outcome.append((None, RuntimeError("the fault proxy stopped")))
                done.set()

    def _on_listener(self, listener, mask, _):
        while True:
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # Out of descriptors, most likely: the listener would stay
                # readable, so stop asking for a moment rather than spin.
                self._selector.unregister(listener)
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE
                return
            if time.monotonic() < self._refuse_until:
                self.refused += 1
                (_reset_close if self._refuse_reset else _fin_close)(client)
                continue
            self._connect(client)

    def _connect(self, client):
        number = self.accepted
        self.accepted += 1
        upstream = None
        try:
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = socket.socket(_family(self.upstream[0]), socket.SOCK_STREAM)
            upstream.setblocking(False)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rc = upstream.connect_ex(self.upstream)
        except OSError:
            rc = errno.EIO
        if rc not in (0, errno.EINPROGRESS):
            self.failed += 1
            _reset_close(client)
            if upstream is not None:
                _quiet_close(upstream)
            return
        link = _Link(number, client, upstream)
        self._links[number] = link
        # Writable once connected; the client is not read until then.
        self._register(link, upstream, selectors.EVENT_WRITE)

    def _on_link(self, sock, mask, link):
        if link.state == _Link.CONNECTING:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error in (errno.EINPROGRESS, errno.EALREADY):
                return
            if error:
                self.failed += 1
                self._close(link, _reset_close, _quiet_close)
                return
            link.state = _Link.OPEN
        elif link.state == _Link.OPEN and not link.stalled:
            for pipe in (link.up, link.down):
                if mask & selectors.EVENT_READ and pipe.src is sock and self._may_read(pipe):
                    self._read(link, pipe)
                if link.state == _Link.CLOSED:
                    return
                if mask & selectors.EVENT_WRITE and pipe.dst is sock and pipe.buf:
                    self._write(link, pipe)
                if link.state == _Link.CLOSED:
                    return
            if link.up.shut and link.down.shut:
                self._close(link, _quiet_close, _quiet_close)
                return
        self._update(link)

    @staticmethod
    def _may_read(pipe):
        return not pipe.eof and len(pipe.buf) < HIGH_WATER

    def _read(self, link, pipe):
        try:
            data = pipe.src.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._broken(link, pipe.src)
            return
        if data:
            pipe.buf += data
        else:
            pipe.eof = True
        self._write(link, pipe)

    def _write(self, link, pipe):
        """Writes what pipe holds, as far as dst takes it now; then passes
        an end of file on once nothing is left before it."""
        while pipe.buf:
            try:
                sent = pipe.dst.send(pipe.buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._broken(link, pipe.dst)
                return
            del pipe.buf[:sent]
        if pipe.eof and not pipe.shut:
            pipe.shut = True
            try:
                pipe.dst.shutdown(socket.SHUT_WR)
            except OSError:
                self._broken(link, pipe.dst)

    def _broken(self, link, sock):
        """sock failed (reset, most likely): its partner is reset too."""
        if sock is link.client:
            self._close(link, _quiet_close, _reset_close)
        else:
            self._close(link, _reset_close, _quiet_close)

    def _update(self, link):
        """Registers each socket for what its link needs now: nothing while
        stalled or half-open, so that a silent socket costs nothing."""
        wanted = {link.client: 0, link.upstream: 0}
        if link.state == _Link.CONNECTING:
            wanted[link.upstream] = selectors.EVENT_WRITE
        elif link.state == _Link.OPEN and not link.stalled:
            for pipe in (link.up, link.down):
                if self._may_read(pipe):
                    wanted[pipe.src] |= selectors.EVENT_READ
                if pipe.buf:
                    wanted[pipe.dst] |= selectors.EVENT_WRITE
        for sock, events in wanted.items():
            self._register(link, sock, events)

    def _register(self, link, sock, events):
        now = link.events.get(sock, 0)
        if events == now:
            return
        if not events:
            self._selector.unregister(sock)
            del link.events[sock]
        elif not now:
            self._selector.register(sock, events, (self._on_link, link))
            link.events[sock] = events
        else:
            self._selector.modify(sock, events, (self._on_link, link))
            link.events[sock] = events

    def _close(self, link, close_client, close_upstream):
        for sock in list(link.events):
            self._selector.unregister(sock)
        link.events.clear()
        link.state = _Link.CLOSED
        del self._links[link.number]
        if close_client:
            close_client(link.client)
        if close_upstream:
            close_upstream(link.upstream)

    # --- Faults, on the proxy's thread ---------------------------------------------

    def _fault(self, only, action):
        if only is None:
            links = list(self._links.values())
        else:
            links = [self._links[only]] if only in self._links else []
        return sum(1 for link in links if action(link))

    def _cut(self, link):
        if link.state == _Link.ORPHAN:
            self._close(link, _fin_close, None)
        else:
            self._close(link, _fin_close, _fin_close)
        return True

    def _reset(self, link):
        if link.state == _Link.ORPHAN:
            self._close(link, _reset_close, None)
        else:
            self._close(link, _reset_close, _reset_close)
        return True

    def _stall(self, link):
        if link.state == _Link.ORPHAN or link.stalled:
            return False
        link.stalled = True
        self._update(link)
        return True

    def _drop(self, link):
        if link.state == _Link.ORPHAN or link.stalled:
            return self._reset(link)
        return False

    def _resume(self, link):
        if link.state == _Link.ORPHAN:
            return self._reset(link)
        if not link.stalled:
            return False
        link.stalled = False
        self._update(link)
        return True

    def _half_open(self, link):
        if link.state == _Link.ORPHAN:
            return False
        self._register(link, link.upstream, 0)
        self._register(link, link.client, 0)
        _reset_close(link.upstream)
        link.state = _Link.ORPHAN
        link.up.buf.clear()
        link.down.buf.clear()
        return True


class Chaos(threading.Thread):
    """Faults at random intervals on a FaultProxy; see FaultProxy.chaos().
    A stall ends with unstall (drop or not, at random; drop if the chaos is
    stopped meanwhile). When it ends, nothing it started is still in force:
    no stall, no refusal. done lists (seconds since start, fault)."""

    def __init__(self, proxy, period_s, count, rng, duration, faults, hold_s=None):
        super().__init__(name=f"faultproxy-chaos:{proxy.port}", daemon=True)
        if period_s <= 0 or count < 0:
            raise ValueError("chaos needs a positive period and a count")
        unknown = set(faults) - set(FAULTS)
        if unknown or not faults:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.proxy = proxy
        self.period = period_s
        self.count = count
        self.rng = rng if rng is not None else random.Random()
        self.duration = duration if duration is not None else 2 * period_s * count
        self.faults = tuple(faults)
        self.hold = hold_s if hold_s is not None else period_s / 2
        self.done = []
        self.error = None
        self._halt = threading.Event()

    def stop(self, timeout=None):
        """Ends it now (a stall in progress is dropped) and waits for it."""
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self):
        start = time.monotonic()
        deadline = start + self.duration
        try:
            for _ in range(self.count):
                pause = self.rng.uniform(0.5, 1.5) * self.period
                if self._halt.wait(max(0.0, min(pause, deadline - time.monotonic()))):
                    break
                if time.monotonic() >= deadline:
                    break
                fault = self.rng.choice(self.faults)
                self.done.append((round(time.monotonic() - start, 3), fault))
                hold = self.rng.uniform(0.5, 1.5) * self.hold
                if fault == "stall":
                    self.proxy.stall()
                    halted = self._halt.wait(max(0.0, min(hold, deadline - time.monotonic())))
                    drop = self.rng.random() < 0.5 or halted  # stopped: nothing resumes
                    self.done.append((round(time.monotonic() - start, 3),
                                      "unstall(drop)" if drop else "unstall(keep)"))
                    self.proxy.unstall(drop=drop)
                elif fault == "refuse":
                    self.proxy.refuse(min(hold, deadline - time.monotonic()))
                else:
                    getattr(self.proxy, fault)()
        except RuntimeError:
            pass  # the proxy stopped under us: nothing left to break
        except Exception as error:  # kept for the test to look at, not printed
            self.error = error
        finally:
            try:
                self.proxy.refuse(0)
            except RuntimeError:
                pass
            try:
                self.proxy._chaos.remove(self)
            except ValueError:
                pass


def _address(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


HELP = """commands (N: a connection's number; without it, every connection):
  cut [N]  reset [N]  stall [N]  unstall [keep] [N]  half-open [N]
  refuse SECONDS [reset]  chaos PERIOD COUNT [SEED]  status  help  quit"""


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="A fault-injecting TCP proxy on loopback; "
                                     "faults are typed on standard input.")
    parser.add_argument("upstream", help="HOST:PORT to forward to (loopback only), "
                        "e.g. 127.0.0.1:52928")
    parser.add_argument("-l", "--listen", default="127.0.0.1:0",
                        help="HOST:PORT to listen on (loopback only; default 127.0.0.1:0)")
    args = parser.parse_args(argv)
    try:
        listen_host, listen_port = _address(args.listen)
        proxy = FaultProxy(_address(args.upstream), listen_host, listen_port).start()
    except (ValueError, OSError) as error:
        print(f"faultproxy: {error}", file=sys.stderr)
        return 64
    print(f"listening on {proxy.host} port {proxy.port}, forwarding to "
          f"{proxy.upstream[0]} port {proxy.upstream[1]}", flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            command, rest = words[0].replace("-", "_"), words[1:]
            try:
                if command in ("quit", "q"):
                    break
                if command == "help":
                    print(HELP)
                elif command == "status":
                    print(f"{proxy.connections} live, {proxy.accepted} accepted, "
                          f"{proxy.refused} refused, {proxy.failed} failed"
                          f"{', refusing' if proxy.refusing else ''}")
                elif command in ("cut", "reset", "stall", "half_open"):
                    only = int(rest[0]) if rest else None
                    print(f"{words[0]}: {getattr(proxy, command)(only)} connection(s)")
                elif command == "unstall":
                    keep = "keep" in rest
                    numbers = [int(w) for w in rest if w != "keep"]
                    n = proxy.unstall(drop=not keep, only=numbers[0] if numbers else None)
                    print(f"unstall: {n} connection(s) {'resumed' if keep else 'dropped'}")
                elif command == "refuse":
                    proxy.refuse(float(rest[0]), reset="reset" in rest[1:])
                    print(f"refusing new connections for {float(rest[0])} s")
                elif command == "chaos":
                    rng = random.Random(int(rest[2])) if len(rest) > 2 else None
                    chaos = proxy.chaos(float(rest[0]), int(rest[1]), rng)
                    print(f"chaos: up to {chaos.count} faults in {chaos.duration:.1f} s")
                else:
                    print(f"unknown command {words[0]!r}\n{HELP}")
            except (ValueError, IndexError):
                print(HELP)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
