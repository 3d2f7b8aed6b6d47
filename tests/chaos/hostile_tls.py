"""The hostile side of the chaos test at the TLS port (issue 13), run by
chaos.py next to hostile.py's actors: garbage and stalled handshakes, TLS
clients that vanish in the middle of a handshake or of a record, plain text
on the TLS port and ClientHellos on the plain port. Each actor checks what
the daemon owes it (closed at once, or at the join timeout; an alert at
most, never a line in clear text but the one that says where plain text
goes) and returns a label; problems go to the shared list. Every loop is
bounded in count and time, and everything stays on loopback.

The handshakes are Python's ssl module driven through memory BIOs
(Handshake), so an actor can stop or cut its bytes anywhere."""

import asyncio
import random
import socket
import ssl
import struct

from hostile import JOIN_TIMEOUT, SLACK, admitted
from peers import Client, tls_context

HOST = "127.0.0.1"
# session.c's close grace: a handshake that stalled cannot be told BYE
# join-timeout, so the daemon gives up on it at the join timeout and closes
# it when this grace for saying goodbye is over.
CLOSE_GRACE = 5


class Handshake:
    """A TLS client whose bytes go where the actor says: ssl.SSLObject over
    memory BIOs, on an asyncio connection of its own."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.pending = b""
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = tls_context().wrap_bio(self.incoming, self.outgoing)

    def client_hello(self):
        """The first flight: a real ClientHello."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    async def complete(self, timeout=10):
        """The whole handshake, then the HELLO line; returns that line."""
        self.writer.write(self.client_hello())
        await self._pump(self.tls.do_handshake, timeout)
        return await self.line(timeout)

    async def _pump(self, step, timeout):
        """step() (a handshake or a read) once the daemon has sent enough for it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                result = step()
                self.writer.write(self.outgoing.read())
                return result
            except ssl.SSLWantReadError:
                self.writer.write(self.outgoing.read())
                left = deadline - asyncio.get_running_loop().time()
                data = await asyncio.wait_for(self.reader.read(65536), max(left, 0.01))
                if not data:
                    raise ConnectionError("closed during the handshake")
                self.incoming.write(data)

    async def line(self, timeout=10):
        """The next line the daemon sent through TLS, without its LF."""
        while b"\n" not in self.pending:
            chunk = await self._pump(lambda: self.tls.read(65536), timeout)
            if not chunk:
                raise ConnectionError("closed before a whole line")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode(errors="replace")

    def record(self, text):
        """text encrypted: the bytes of whole TLS records, not yet sent."""
        self.tls.write(text)
        return self.outgoing.read()


async def until_closed(reader, timeout):
    """Everything the daemon sends until it closes; None if it never does."""
    async def read_all():
        data = b""
        try:
            while len(data) < 1 << 20 and (chunk := await reader.read(65536)):
                data += chunk
        except (ConnectionError, OSError):
            pass
        return data

    try:
        return await asyncio.wait_for(read_all(), timeout)
    except asyncio.TimeoutError:
        return None


def reset(writer):
    """Closes with SO_LINGER 0: the daemon sees a TCP reset, not an orderly end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def connect(port, source, door):
    """A raw connection, made while the server is not being filled (see chaos.fill)."""
    async with door:
        return await asyncio.wait_for(
            asyncio.open_connection(HOST, port, local_addr=(source, 0)), 5)


def is_alert_or_nothing(data):
    """What a failed handshake may answer: nothing, or TLS records (an alert)."""
    return data == b"" or data[0] in (0x15, 0x16)


async def garbage_handshake(tls_port, source, problems, door, seed):
    """Handshake records full of random bytes, or a real ClientHello
    followed by garbage: an alert at most, and closed at once."""
    rng = random.Random(seed)
    for attempt in range(5):
        reader, writer = await connect(tls_port, source, door)
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(4, 600)))
        if attempt % 2:
            hs = Handshake(reader, writer)
            writer.write(hs.client_hello() + b"\x16\x03\x03" + struct.pack("!H", len(body)) + body)
        else:
            writer.write(b"\x16\x03\x01" + struct.pack("!H", len(body)) + body)
        data = await until_closed(reader, SLACK)
        writer.close()
        if data is None:
            problems.append(f"garbage handshake {seed}.{attempt}: not closed within {SLACK} s")
        elif not is_alert_or_nothing(data) or b"HELLO" in data:
            problems.append(f"garbage handshake {seed}.{attempt}: answered {data[:40]!r}")
    return "garbage-handshake"


async def stalled_handshake(tls_port, source, problems, door, seed):
    """Connects to the TLS port and stalls: before a byte, after half a
    ClientHello, after the whole first flight, or trickling a byte every
    half second. The handshake counts against join_timeout: closed then,
    once the close grace is over (see CLOSE_GRACE)."""
    reader, writer = await connect(tls_port, source, door)
    hello = Handshake(reader, writer).client_hello()
    kind = seed % 4
    start = asyncio.get_running_loop().time()
    if kind == 1:
        writer.write(hello[:len(hello) // 2])
    elif kind == 2:
        writer.write(hello)
    trickle = asyncio.ensure_future(_trickle(writer, hello)) if kind == 3 else None
    limit = JOIN_TIMEOUT + CLOSE_GRACE + SLACK
    data = await until_closed(reader, limit + 4)
    took = asyncio.get_running_loop().time() - start
    if trickle:
        trickle.cancel()
    writer.close()
    what = ("silent", "half a ClientHello", "one flight", "trickling")[kind]
    if data is None or took > limit:
        problems.append(f"stalled handshake {seed} ({what}): closed after {took:.1f} s, "
                        f"not at the join timeout of {JOIN_TIMEOUT} s and its grace")
    elif took < JOIN_TIMEOUT - 1:
        problems.append(f"stalled handshake {seed} ({what}): closed after {took:.1f} s, "
                        f"before the join timeout")
    elif not is_alert_or_nothing(data):
        problems.append(f"stalled handshake {seed} ({what}): answered {data[:40]!r}")
    return "stalled-handshake"


async def _trickle(writer, hello):
    for i in range(len(hello) - 1):
        writer.write(hello[i:i + 1])
        await asyncio.sleep(0.5)


async def vanish_mid_handshake(tls_port, source, problems, door, seed):
    """Half a ClientHello, or a whole one and the server's answer read,
    then a reset or a plain close: nothing to check but that the daemon
    copes (chaos.py counts its descriptors and its answers at the end)."""
    for attempt in range(4):
        reader, writer = await connect(tls_port, source, door)
        hs = Handshake(reader, writer)
        hello = hs.client_hello()
        if attempt % 2:
            writer.write(hello)
            try:
                await asyncio.wait_for(reader.read(65536), 5)
            except asyncio.TimeoutError:
                problems.append(f"vanishing handshake {seed}.{attempt}: no ServerHello in 5 s")
        else:
            writer.write(hello[:len(hello) // 2])
            await writer.drain()
        await asyncio.sleep(0.05)
        if (seed + attempt) % 2:
            reset(writer)
        writer.close()
    return "vanish-mid-handshake"


async def vanish_mid_record(port, tls_port, sources, problems, door, seed):
    """A TLS user paired with an honest one sends a whole line, then half a
    record, and goes (a reset or a plain close): the partner hears
    peer-lost, never the half."""
    room = f"vanish{seed}"
    reader, writer = await connect(tls_port, sources[0], door)
    hs = Handshake(reader, writer)
    hello = await hs.complete()
    if not hello.startswith("HELLO"):
        problems.append(f"vanishing record {seed}: the greeting was {hello!r}")
    writer.write(hs.record(f"/mode free\n/join {room}\n".encode()))
    waiting = await hs.line()
    if waiting != f"WAITING {room}":
        problems.append(f"vanishing record {seed}: {waiting!r}, not WAITING {room}")
    async with door:
        b = await Client.open(tls_port if seed % 2 else port, sources[1],
                              f"vanishing record {seed} partner", problems, tls=bool(seed % 2))
        await b.expect("HELLO")
    b.send(f"/join {room}")
    await b.expect("PAIRED")
    writer.write(hs.record(f"whole {seed}\n".encode()))
    await b.until(lambda: len(b.msgs) == 1, what="the whole line")
    half = hs.record(b"half a li")
    writer.write(half[:len(half) // 2])
    await writer.drain()
    await asyncio.sleep(0.2)
    if seed % 3 == 0:
        reset(writer)
    writer.close()
    await b.until(lambda: b.bye is not None and b.eof, what="BYE peer-lost")
    if b.bye != "peer-lost" or b.msgs != [f"whole {seed}"]:
        b.problem(f"after its partner vanished mid-record: BYE {b.bye}, MSGs {b.msgs}")
    await b.close()
    return "vanish-mid-record"


PLAIN_AT_TLS = [b"/name Cloud\n", b"GET / HTTP/1.0\r\n\r\n", b"hello?\n", b"\x00\x01\x02\x03"]


async def plain_at_tls_port(port, tls_port, source, problems, door, seed):
    """Plain text at the TLS port: told where plain text goes, and closed."""
    reader, writer = await connect(tls_port, source, door)
    writer.write(PLAIN_AT_TLS[seed % len(PLAIN_AT_TLS)])
    data = await until_closed(reader, SLACK)
    writer.close()
    want = f"BYE protocol This port speaks TLS; plain text goes to port {port}\n".encode()
    if data is None:
        problems.append(f"plain text at the TLS port {seed}: not closed within {SLACK} s")
    elif data != want:
        problems.append(f"plain text at the TLS port {seed}: got {data[:80]!r}, not {want!r}")
    return "plain-at-tls-port"


async def hello_at_plain_port(port, source, problems, door, seed):
    """A ClientHello at the plain port: at most the greeting, and closed at
    once; nothing of it is read as lines."""
    reader, writer = await connect(port, source, door)
    hello = Handshake(reader, writer).client_hello()
    writer.write(hello if seed % 2 else hello[:7])
    data = await until_closed(reader, SLACK)
    writer.close()
    if data is None:
        problems.append(f"ClientHello at the plain port {seed}: not closed within {SLACK} s")
    elif [line.split(b" ")[0] for line in data.splitlines()] not in ([], [b"HELLO"]):
        problems.append(f"ClientHello at the plain port {seed}: answered {data[:120]!r}")
    return "hello-at-plain-port"


async def silent_tls_user(tls_port, source, problems, door):
    """Completes the handshake and says nothing: BYE join-timeout over TLS."""
    c = await admitted(tls_port, source, "silent TLS user", problems, door, tls=True)
    start = asyncio.get_running_loop().time()
    await c.until(lambda: c.bye is not None and c.eof, JOIN_TIMEOUT + SLACK + 12,
                  "BYE join-timeout")
    took = asyncio.get_running_loop().time() - start
    if c.bye != "join-timeout" or took > JOIN_TIMEOUT + SLACK:
        c.problem(f"ended with BYE {c.bye} after {took:.1f} s, not join-timeout")
    await c.close()
    return "silent-tls-user"


def actors(port, tls_port, problems, door):
    """All of them, bounded: each from its own source addresses."""
    src = iter(f"127.0.6.{i}" for i in range(1, 255))
    found = []
    for seed in range(4):
        found.append(garbage_handshake(tls_port, next(src), problems, door, seed))
    for seed in range(8):
        found.append(stalled_handshake(tls_port, next(src), problems, door, seed))
    for seed in range(4):
        found.append(vanish_mid_handshake(tls_port, next(src), problems, door, seed))
    for seed in range(6):
        found.append(vanish_mid_record(port, tls_port, (next(src), next(src)), problems, door,
                                       seed))
    for seed in range(4):
        found.append(plain_at_tls_port(port, tls_port, next(src), problems, door, seed))
    for seed in range(4):
        found.append(hello_at_plain_port(port, next(src), problems, door, seed))
    for _ in range(2):
        found.append(silent_tls_user(tls_port, next(src), problems, door))
    return found


async def held_handshakes(tls_port, count=8):
    """Stalled handshakes of each kind, held open: for the check that the
    daemon spends nothing on them while they wait. Returns their writers."""
    held = []
    for i in range(count):
        reader, writer = await asyncio.open_connection(HOST, tls_port,
                                                       local_addr=(f"127.0.7.{i + 1}", 0))
        hello = Handshake(reader, writer).client_hello()
        writer.write((b"", hello[:len(hello) // 2], hello)[i % 3])
        held.append(writer)
    return held


def close_all(writers):
    for writer in writers:
        reset(writer)
