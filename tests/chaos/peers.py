"""The well-behaved side of the chaos test: a protocol client that checks
every line it reads, and the conversations whose every line is accounted
for. Used by chaos.py (which runs them) and hostile.py (which shares Client).

Accounting: the daemon promises that every line a client sends is either
relayed to the partner, in order, or answered with an ERR. Every message
here carries a unique id, so at the end of a conversation the partner's
MSGs must be a subsequence of what was sent (nothing reordered, nothing
duplicated, nothing from anyone else) and MSGs + ERRs must equal the lines
sent (nothing silently lost).

A Client may speak TLS (to the daemon's tls_port): the same lines, through
Python's ssl module, which checks no certificate here; the chaos test
trusts the daemon it started. A conversation's two sides may each speak
TLS or plain text."""

import asyncio
import random
import ssl

KEYWORDS = ("HELLO", "WAITING", "PAIRED", "MSG", "ERR", "INFO", "BYE")
TIMEOUT = 20


def tls_context():
    """A client context that checks no certificate (loopback, our own daemon)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def clean_text(text):
    """What the daemon may relay: no C0 but TAB, no DEL, no C1."""
    return all(not (ord(ch) < 0x20 and ch != "\t") and not (0x7F <= ord(ch) < 0xA0) for ch in text)


class Client:
    """A raw protocol connection with a reader task that files every line."""

    def __init__(self, label, problems):
        self.label = label
        self.problems = problems
        self.lines = []      # every line read, as text
        self.msgs = []       # MSG texts
        self.errs = []       # ERR codes
        self.bye = None      # BYE reason
        self.eof = False
        self.sent = []       # message texts sent, in order
        self.changed = asyncio.Event()
        self.reader = self.writer = self.task = None

    def problem(self, text):
        self.problems.append(f"{self.label}: {text}")

    @classmethod
    async def open(cls, port, source, label, problems, connect_timeout=5, tls=False):
        """Connects (and completes the TLS handshake, with tls) within connect_timeout."""
        self = cls(label, problems)
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=1 << 20,
                                    ssl=tls_context() if tls else None),
            connect_timeout)
        self.task = asyncio.ensure_future(self._read())
        return self

    async def _read(self):
        try:
            while True:
                raw = await self.reader.readline()
                if not raw.endswith(b"\n"):
                    if raw and self.bye is None:
                        self.problem(f"a partial line at the end: {raw[:60]!r}")
                    break
                self._file(raw[:-1])
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            return
        self.eof = True
        self.changed.set()

    def _file(self, raw):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(f"the server sent invalid UTF-8: {raw[:60]!r}")
            return
        keyword, _, rest = line.partition(" ")
        if self.bye is not None:
            self.problem(f"a line after BYE {self.bye}: {line[:60]!r}")
        if keyword not in KEYWORDS:
            self.problem(f"not a protocol line: {line[:60]!r}")
        if not self.lines and keyword != "HELLO":
            self.problem(f"first line is not HELLO: {line[:60]!r}")
        self.lines.append(line)
        if keyword == "MSG":
            if not rest or not clean_text(rest):
                self.problem(f"MSG that should never have been relayed: {rest[:60]!r}")
            self.msgs.append(rest)
        elif keyword == "ERR":
            self.errs.append(rest.split(" ")[0])
        elif keyword == "BYE":
            self.bye = rest.split(" ")[0]
        self.changed.set()

    def send(self, text):
        self.send_bytes(text.encode() + b"\n")

    def send_bytes(self, data):
        if not self.writer.is_closing():
            self.writer.write(data)

    def say(self, text):
        """Sends a chat message, escaping a leading slash as a client must."""
        self.sent.append(text)
        self.send("/" + text if text.startswith("/") else text)

    async def until(self, predicate, timeout=TIMEOUT, what="condition"):
        """Waits until predicate() holds; False (and a problem noted) on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or (self.eof and not predicate()):
                self.problem(f"{'connection ended' if self.eof else 'timed out'} waiting for "
                             f"{what}; last lines {self.lines[-3:]!r}")
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass
        return True

    async def expect(self, prefix, timeout=TIMEOUT):
        """Waits for the next unconsumed line and checks its start."""
        start = getattr(self, "_seen", 0)
        ok = await self.until(lambda: len(self.lines) > start, timeout, f"'{prefix}'")
        if not ok:
            return None
        self._seen = start + 1
        line = self.lines[start]
        if not line.startswith(prefix):
            self.problem(f"expected '{prefix}', got {line[:80]!r}")
        return line

    async def close(self):
        if self.writer and not self.writer.is_closing():
            self.writer.close()
        if self.task:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 2)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self.task.cancel()


def text_for(rng, ident):
    """A message with a unique id, in one of the shapes people type."""
    shape = rng.randrange(8)
    if shape == 0:
        return f"/{ident} starts with a slash"
    if shape == 1:
        return f"{ident} h\u00e9llo w\u00f6rld \u4e2d\u6587 \U0001F642"
    if shape == 2:
        return f"{ident}\twith\ttabs"
    if shape == 3:
        return f"{ident} " + "long " * rng.randrange(100, 780)
    return f"{ident} line {rng.random():.6f}"


def check_accounting(sender, receiver, problems, label):
    """Nothing lost, nothing duplicated, nothing reordered, nothing foreign."""
    it = iter(sender.sent)
    if not all(any(m == s for s in it) for m in receiver.msgs):
        problems.append(f"{label}: {receiver.label} got lines out of order, twice, or not "
                        f"from {sender.label}")
    if len(receiver.msgs) + len(sender.errs) != len(sender.sent):
        problems.append(f"{label}: {sender.label} sent {len(sender.sent)}, "
                        f"{len(receiver.msgs)} arrived, {len(sender.errs)} refused")
    if any(code != "rate-limited" for code in sender.errs):
        problems.append(f"{label}: {sender.label} had good lines refused: {sender.errs[:5]}")


async def conversation(port, index, mode, count, sources, problems, started, tls=(None, None)):
    """One pair: join, talk count lines each, account for all, quit. tls:
    for the waiter and the caller, the daemon's TLS port to use, or None
    for plain text at port. Someone on TLS with a partner who is not must
    be told so."""
    kinds = ["TLS" if t else "plain" for t in tls]
    label = f"pair {index} ({mode}{'' if kinds == ['plain'] * 2 else ', ' + '/'.join(kinds)})"
    rng = random.Random(index)
    waiter = await Client.open(tls[0] or port, sources[0], f"{label} waiter", problems,
                               tls=bool(tls[0]))
    caller = None
    try:
        await waiter.expect("HELLO")
        for line in (f"/name w{index}", f"/mode {mode}", f"/join room{index}"):
            waiter.send(line)
        await waiter.expect(f"WAITING room{index}")
        caller = await Client.open(tls[1] or port, sources[1], f"{label} caller", problems,
                                   tls=bool(tls[1]))
        await caller.expect("HELLO")
        for line in (f"/name c{index}", f"/join room{index}"):
            caller.send(line)
        first = ("you", "peer") if mode == "turns" else ("-", "-")
        await caller.expect(f"PAIRED w{index} {mode} {first[0]}")
        await waiter.expect(f"PAIRED c{index} {mode} {first[1]}")
        for me, partner, mine, theirs in ((waiter, "c", tls[0], tls[1]),
                                          (caller, "w", tls[1], tls[0])):
            if mine and not theirs:
                await me.expect(f"INFO {partner}{index} is connected without TLS")
        started()
        if mode == "free":
            await asyncio.gather(free_side(caller, "c", index, count, rng),
                                 free_side(waiter, "w", index, count, random.Random(-index)))
        else:
            await turns(caller, waiter, index, count, rng)
        for a, b in ((waiter, caller), (caller, waiter)):
            await b.until(lambda a=a, b=b: len(b.msgs) + len(a.errs) >= len(a.sent),
                          what=f"all of {a.label}'s lines")
        check_accounting(waiter, caller, problems, label)
        check_accounting(caller, waiter, problems, label)
        waiter.send("/q")
        await waiter.until(lambda: waiter.bye and waiter.eof, what="BYE quit and EOF")
        await caller.until(lambda: caller.bye and caller.eof, what="BYE peer-quit and EOF")
        if (waiter.bye, caller.bye) != ("quit", "peer-quit"):
            problems.append(f"{label}: ended with {waiter.bye}/{caller.bye}, not quit/peer-quit")
    finally:
        await waiter.close()
        if caller:
            await caller.close()
    return label


async def free_side(me, side, index, count, rng):
    """Free mode: speak at a pace under the rate limit, whatever arrives."""
    for seq in range(count):
        me.say(text_for(rng, f"p{index}{side}{seq}"))
        await me.writer.drain()
        await asyncio.sleep(rng.uniform(0.02, 0.08))


async def turns(first, second, index, count, rng):
    """Turns mode: one line each, strictly; a refused line is said again."""
    speaker, listener = first, second
    for seq in range(2 * count):
        attempt = 0
        while True:
            errs, arrived = len(speaker.errs), len(listener.msgs)
            speaker.say(text_for(rng, f"p{index}{speaker.label[-6]}{seq}.{attempt}"))
            ok = await listener.until(
                lambda: len(listener.msgs) > arrived or len(speaker.errs) > errs,
                what=f"turn {seq}")
            if not ok or len(listener.msgs) > arrived:
                break
            attempt += 1
            await asyncio.sleep(0.1)
        speaker, listener = listener, speaker
        await asyncio.sleep(rng.uniform(0.01, 0.04))  # people read before they answer
