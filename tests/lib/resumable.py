"""A resumable turnchat client at the protocol level, as a program would be
one (turnchat-protocol(7), "Resuming a conversation"): Resumable asks for
the resume capability, keeps its token, numbers the lines it says, keeps
each until the server's ACK covers it, counts and records the partner's
lines and acknowledges them (with its next line, or after ack_delay when it
has nothing to say); when its connection ends without a BYE, or stays
silent past a /ping, it connects again after a random, growing delay
(bounded in attempts and time), resumes, and says again what the server
did not get. Loop drives any number of them in one thread, on non-blocking
sockets; lost_or_doubled() says whether every line of a pair arrived once,
in order.

    loop = Loop()
    cloud, barret = pair(loop, connector(port), mode="free")
    cloud.say("hi")
    barret.drop("reset")
    loop.run(lambda: cloud.delivered and barret.delivered)
    assert lost_or_doubled(cloud, barret) == []

connect() may be any callable returning a connected socket (the system
tests' box.connect, say); it runs in the Loop's thread, so a slow one
holds the other clients meanwhile. Used by the end-to-end tests
(tests/e2e/test_resumable_lib.py), the chaos test's resume actors
(tests/chaos/resumers.py) and the container's resume driver
(tests/packaging/resume_driver.py); each puts this folder on sys.path.
Standard library only."""

import random
import selectors
import socket
import struct
import time

CAPS = "CAPS action done resume"  # resume grants action and done with it
NUMBERED = ("MSG", "ACTION", "DONE")


def connector(port, host="127.0.0.1", source=None, timeout=5):
    """A connect() for Resumable: a new TCP connection to host and port, from
    the loopback address source if given (another address for the daemon's
    per-address limits)."""
    def connect():
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            sock.settimeout(timeout)
            if source:
                sock.bind((source, 0))
            sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return sock
    return connect


class Loop:
    """Runs the Resumables made with it, in this thread, until asked to stop."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.clients = []

    def run(self, until, timeout=10, what="the condition", wake=None):
        """Serves every client until until() is true; a TimeoutError naming
        what, with each client's state, after timeout seconds. wake: a
        time (time.monotonic()) when until() needs asking."""
        deadline = time.monotonic() + timeout
        while not until():
            now = time.monotonic()
            if now >= deadline:
                states = "; ".join(c.describe() for c in self.clients)
                raise TimeoutError(f"{what}: not within {timeout} s ({states})")
            due = min([deadline, wake or deadline] + [c.tick(now) for c in self.clients])
            # Short waits: until() may depend on more than these sockets.
            for key, events in self.selector.select(min(max(due - now, 0), 0.05)):
                key.data.ready(events)

    def wait(self, seconds):
        """Serves every client for this long."""
        end = time.monotonic() + seconds
        self.run(lambda: time.monotonic() >= end, seconds + 1, wake=end)

    def close(self):
        for c in self.clients:
            c.close()
        self.selector.close()


class Resumable:
    """One person in one resumable conversation. Says lines when told to
    (say, act, done, quit) and whenever the turn allows; everything else it
    does by itself while its Loop runs. What a test reads:

    said      every line it was told to say, as (keyword, text) the partner
              should receive: ("MSG", text), ("ACTION", text), ("DONE", "");
              line n is said[n - 1]
    acked     the server's ACK (or RESUMED) count: it is done with
              said[:acked], and said[acked:] are kept to be said again
    received  every numbered line it received, in order, the same way
    phase     joining, waiting, paired, away (between connections),
              resuming, or ended; ended then says why: a BYE reason,
              no-session (the conversation was gone when it came back),
              gave-up, or lost (dropped before it had a token)
    drops, why (a reason for each), resumes, info (INFO texts), errors (ERR
    lines), relayed (RELAYED n), abandoned (old sockets drop("abandon") left
    open)."""

    def __init__(self, loop, connect, name, room="lobby", mode=None, *, ack_delay=0.2,
                 keepalive=10.0, handshake=10.0, backoff=(0.05, 1.0), attempts=20, give_up=60.0,
                 through_shutdown=False, seed=None):
        """connect() returns a connected socket (see connector). ack_delay:
        seconds before lines received are acknowledged when nothing is said
        (None: never; a hostile slow reader). keepalive: seconds of silence
        before a /ping, and as many again before the connection counts as
        dead. handshake: seconds to wait for the answer to /resume.
        backoff: (first, largest) delay before connecting again; each is
        drawn at random up to a bound that doubles. attempts, give_up:
        bounds on connecting again after one drop. through_shutdown: a BYE
        shutdown is a drop too (a daemon that keeps conversations across a
        restart)."""
        self.loop, self.connect, self.name, self.room, self.mode = loop, connect, name, room, mode
        self.ack_delay, self.keepalive, self.backoff = ack_delay, keepalive, backoff
        self.handshake = handshake
        self.attempts, self.give_up, self.through_shutdown = attempts, give_up, through_shutdown
        self.rng = random.Random(seed)
        self.said, self.received, self.info, self.errors, self.abandoned = [], [], [], [], []
        self.why = []  # why each drop happened
        self.acked = self.written = self.acked_told = 0
        self.again = 0  # lines written before, up to here, go again without waiting
        self.token = self.peer = self.turn = self.ended = self.relayed = None
        self.partner_done = self.quitting = False
        self.drops = self.resumes = self.tries = 0
        self.away_since = None  # the last drop not yet resumed from
        self.sock, self.inbox, self.out = None, b"", b""
        self.phase = "joining"
        self.reconnect_at = self.ack_at = self.ping_at = None
        self.heard = time.monotonic()
        loop.clients.append(self)
        self._open()

    # ------------------------------------------------------------ what a person does

    def say(self, text):
        """A message; a leading slash is doubled on the wire, as it must be."""
        self._queue("MSG", text)

    def act(self, text):
        self._queue("ACTION", text)

    def done(self):
        self._queue("DONE", "")

    def quit(self):
        """/q after the lines already written; what was not written stays unsaid."""
        self.quitting = True
        if self.sock and self.phase != "resuming":
            self._send("/q")

    @property
    def delivered(self):
        """True when the server is done with every line said."""
        return self.acked == len(self.said)

    def describe(self):
        return (f"{self.name}: {self.phase}{' ' + self.ended if self.ended else ''}, turn "
                f"{self.turn}, said "
                f"{len(self.said)} (acked {self.acked}), received {len(self.received)}, "
                f"{self.drops} drops, {self.resumes} resumes")

    # ------------------------------------------------------------ tests' hooks

    def drop(self, how="close", after=None):
        """Ends the connection as a network might: close (an orderly FIN),
        reset (an RST), shutdown (both directions shut: it finds the EOF
        itself), or abandon: the socket stays open, unread, while a new
        connection resumes at once (a connection broken without a word that
        the server has not noticed). after: seconds before it tries to come
        back (by default its usual random delay)."""
        if self.sock is None:
            return
        if how == "shutdown":
            self.sock.shutdown(socket.SHUT_RDWR)
            return
        if how == "abandon":
            self.loop.selector.unregister(self.sock)
            self.abandoned.append(self.sock)
            self.sock = None
            after = 0 if after is None else after
        elif how == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._lost(f"dropped ({how})", after)

    def come_back(self):
        """Tries to come back now, if away (after a drop held back by after)."""
        if self.phase == "away":
            self.reconnect_at = time.monotonic()

    def abandoned_closed(self):
        """True once the server closed every abandoned socket (what it sent
        before closing is thrown away: the resume replayed it)."""
        for sock in self.abandoned:
            if sock.fileno() < 0:
                continue
            sock.setblocking(False)
            try:
                while True:
                    if not sock.recv(65536):
                        sock.close()
                        break
            except BlockingIOError:
                return False
            except OSError:
                sock.close()
        return True

    def close(self):
        self._close()
        self.reconnect_at = None
        for sock in self.abandoned:
            sock.close()
        self.phase = "ended"
        self.ended = self.ended or "closed"

    # ------------------------------------------------------------ the connection

    def _open(self):
        self.reconnect_at = None
        try:
            sock = self.connect()
        except OSError:
            self._retry()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.inbox, self.out = sock, b"", b""
        self.heard = self.opened = time.monotonic()
        self.ping_at = None
        self.loop.selector.register(sock, selectors.EVENT_READ, self)
        # Everything up to the answer goes at once: the server reads in order.
        self._send("/caps resume")
        if self.token:
            self.phase = "resuming"
            self._send(f"/resume {self.token} {len(self.received)}")
            self.acked_told = len(self.received)
        else:
            self._send(f"/name {self.name}")
            if self.mode:
                self._send(f"/mode {self.mode}")
            self._send(f"/join {self.room}")

    def _close(self):
        if self.sock:
            self.loop.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None
        self.ack_at = self.ping_at = None

    def _lost(self, why, delay=None):
        """The connection is gone: resume if there is a conversation to resume."""
        self._close()
        if self.phase == "ended":
            return
        if self.token is None:
            self.phase, self.ended = "ended", f"lost ({why} before a token)"
            return
        if self.away_since is None:
            self.drops, self.tries, self.away_since = self.drops + 1, 0, time.monotonic()
            self.why.append(why)
        self._retry(delay)

    def _retry(self, delay=None):
        """The next connection, after a random delay whose bound doubles each time."""
        if self.token is None:
            self.phase, self.ended = "ended", "lost (no connection before a token)"
            return
        self.phase = "away"
        now = time.monotonic()
        if self.tries >= self.attempts or now - self.away_since > self.give_up:
            self.phase, self.ended = "ended", "gave-up"
            return
        first, largest = self.backoff
        if delay is None:
            delay = self.rng.uniform(0, min(largest, first * 2 ** self.tries))
        self.tries += 1
        self.reconnect_at = now + delay

    def tick(self, now):
        """Timers: reconnecting, acknowledging, keeping alive. Returns when
        it next wants to be called; also keeps the selector's interest."""
        if self.reconnect_at is not None and now >= self.reconnect_at and self.phase == "away":
            self._open()
        if self.ack_at is not None and now >= self.ack_at:
            self.ack_at = None
            self._pump(ack_now=True)
        if self.sock and self.phase == "paired":
            if now - self.heard >= 2 * self.keepalive:
                self._lost("timeout")
            elif now - self.heard >= self.keepalive and self.ping_at is None:
                self.ping_at = now
                self._send("/ping")
        elif self.sock and self.phase == "resuming" and now - self.opened >= self.handshake:
            # Patient: had the server taken this /resume, the token in its
            # answer would be the only good one (see test_resumable_lib.py).
            self._lost("no answer to /resume")
        if self.sock:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
            if self.loop.selector.get_key(self.sock).events != events:
                self.loop.selector.modify(self.sock, events, self)
        timers = [t for t in (self.reconnect_at, self.ack_at) if t is not None]
        if self.sock and self.phase == "paired":
            timers.append(self.heard + self.keepalive * (2 if self.ping_at else 1))
        elif self.sock and self.phase == "resuming":
            timers.append(self.opened + self.handshake)
        return min(timers, default=now + 1)

    def ready(self, events):
        if events & selectors.EVENT_WRITE:
            self._flush()
        if self.sock and events & selectors.EVENT_READ:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:
                self._lost(type(e).__name__)
                return
            if not data:
                self._lost("EOF")
                return
            self.heard, self.ping_at = time.monotonic(), None
            *lines, self.inbox = (self.inbox + data).split(b"\n")
            for raw in lines:
                if self.sock:
                    self._line(raw.decode("utf-8", errors="replace"))
            if self.sock:
                self._pump()

    def _send(self, text):
        self.out += text.encode() + b"\n"
        self._flush()

    def _flush(self):
        try:
            while self.out and self.sock:
                self.out = self.out[self.sock.send(self.out):]
        except BlockingIOError:
            pass
        except OSError as e:
            self._lost(type(e).__name__)

    # ------------------------------------------------------------ the protocol

    def _line(self, line):
        keyword, _, rest = line.partition(" ")
        words = rest.split(" ")
        if keyword == "CAPS" and line != CAPS:
            self.errors.append(line)
        elif keyword == "WAITING":
            self.phase = "waiting"
        elif keyword in ("PAIRED", "RESUMED"):
            if keyword == "RESUMED":
                # Lines after its count never arrived: they go again, at
                # once (the server holds one out of turn until its turn).
                # Whose turn it is stays as this side saw it: the last to
                # speak does not speak next. The server's "first" is its
                # view before those lines, which may be older after a
                # restart.
                self.acked = max(self.acked, int(words[0]))
                self.again = max(self.again, self.written)
                self.written, self.resumes = int(words[0]), self.resumes + 1
                self.away_since = None
                self.peer, self.mode = words[1], words[2]
            else:
                self.peer, self.mode, first = words[0], words[1], words[2]
                self.turn = {"you": "me", "peer": "peer"}.get(first)
            self.phase = "paired"
            if self.quitting:
                self._send("/q")
        elif keyword == "TOKEN":
            self.token = words[0]
        elif keyword in NUMBERED:
            self.received.append((keyword, rest))
            if keyword == "DONE":
                self.partner_done = True
            else:
                self.turn = "me"
        elif keyword == "ACK":
            self.acked = max(self.acked, int(words[0]))
        elif keyword == "INFO":
            self.info.append(rest)
        elif keyword == "RELAYED":
            self.relayed = int(words[0])
        elif keyword == "ERR" and words[0] == "no-session" and self.phase == "resuming":
            self._close()
            self.phase, self.ended = "ended", "no-session"
        elif keyword == "ERR":
            self.errors.append(line)
        elif keyword == "BYE":
            if self.phase == "resuming" or (words[0] == "shutdown" and self.through_shutdown):
                self._lost(f"BYE {words[0]}")  # turned away, not the conversation's end
            else:
                self._close()
                self.phase, self.ended = "ended", words[0]
        # HELLO, PONG, SECURE, TYPING and keywords of later revisions: nothing to do.

    def _queue(self, keyword, text):
        self.said.append((keyword, text))
        self._pump()

    def _may_write(self, keyword):
        if self.phase != "paired" or not self.sock or self.quitting:
            return False
        if keyword == "DONE" or self.mode == "free" or self.partner_done:
            return True
        return self.turn == "me" or self.written < self.again

    def _pump(self, ack_now=False):
        """Writes what the turn allows, with an /ack in front of it when
        lines arrived; with nothing to write, the /ack waits ack_delay."""
        lines = []
        while self.written < len(self.said) and self._may_write(self.said[self.written][0]):
            keyword, text = self.said[self.written]
            if keyword == "MSG":
                lines.append("/" + text if text.startswith("/") else text)
            else:
                lines.append(f"/me {text}" if keyword == "ACTION" else "/done")
            if keyword != "DONE" and self.mode == "turns" and self.written >= self.again:
                self.turn = "peer"
            self.written += 1
        owed = len(self.received) > self.acked_told and self.phase == "paired" and self.sock
        if owed and self.ack_delay is not None and (lines or ack_now or self.ack_delay == 0):
            lines.insert(0, f"/ack {len(self.received)}")
            self.acked_told, self.ack_at = len(self.received), None
        elif owed and self.ack_delay is not None and self.ack_at is None:
            self.ack_at = time.monotonic() + self.ack_delay
        if lines:
            self._send("\n".join(lines))


def pair(loop, connect, room="lobby", mode=None, names=("Cloud", "Barret"), timeout=10, **kw):
    """(waiter, caller), both paired in room: the waiter joins first (and
    sets the mode), the caller speaks first in turns mode. connect is one
    connect() for both or a pair of them; kw goes to both Resumables."""
    connects = connect if isinstance(connect, (tuple, list)) else (connect, connect)
    waiter = Resumable(loop, connects[0], names[0], room, mode, **kw)
    loop.run(lambda: waiter.phase != "joining", timeout, f"{names[0]} waiting in {room}")
    caller = Resumable(loop, connects[1], names[1], room, **kw)
    loop.run(lambda: waiter.phase != "waiting" and caller.phase != "joining", timeout,
             f"{names[0]} and {names[1]} paired in {room}")
    return waiter, caller


def lost_or_doubled(a, b, complete=True):
    """What went wrong between a and b, as sentences; [] when each one's
    lines arrived at the other exactly once and in order (with complete
    False: at least a first part of them, the rest still on its way), and
    no line was refused. The conversation's second /done ends it with BYE
    done rather than arriving."""
    problems = []
    for sender, receiver in ((a, b), (b, a)):
        said, got = sender.said, receiver.received
        if said[:len(got)] != got:
            at = next(i for i, g in enumerate(got) if i >= len(said) or said[i] != g)
            problems.append(f"{receiver.name}'s line {at + 1} is {got[at]!r}, but {sender.name}"
                            f" said {said[at] if at < len(said) else 'nothing more'!r} there "
                            f"({len(got)} received, {len(said)} said)")
        elif complete and got != said and not (
                said[len(got):] == [("DONE", "")] and receiver.ended == "done"):
            problems.append(f"{len(said) - len(got)} of {sender.name}'s {len(said)} lines never "
                            f"reached {receiver.name}: first {said[len(got)]!r}")
        if sender.errors:
            problems.append(f"{sender.name} was answered {sender.errors[:3]}")
    return problems
