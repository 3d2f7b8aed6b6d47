"""The hostile side of the chaos test: connections that misbehave while the
conversations in peers.py go on. Each actor checks what the daemon owes it
(the right ERR or BYE, never a MSG it should not see) and returns a label;
problems go to the shared list. Every loop is bounded in count and time."""

import asyncio
import random
import socket
import struct

from peers import Client, check_accounting

JOIN_TIMEOUT = 4    # the chaos config's join_timeout
SLOW_TIMEOUT = 3    # ... slow_timeout
PER_ADDRESS = 8     # ... max_per_address
SLACK = 4           # seconds the daemon's once-a-second sweep and a busy machine may add


async def admitted(port, source, label, problems, door, tls=False):
    """Connects while the server is not being filled on purpose (see fill)."""
    async with door:
        c = await Client.open(port, source, label, problems, tls=tls)
        await c.expect("HELLO")
    return c


def reset(client):
    """Closes with SO_LINGER 0: the daemon sees a TCP reset, not an orderly end."""
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


async def garbage(port, source, problems, door, seed):
    """Random bytes, LFs among them: only ERRs (or a BYE) may come back.
    Odd seeds end with a reset in the middle of a line."""
    rng = random.Random(seed)
    c = await admitted(port, source, f"garbage {seed}", problems, door)
    for _ in range(20):
        chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        c.send_bytes(chunk.replace(b"/", b"?") + b"\n")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    if c.msgs or any(not line.startswith(("HELLO", "ERR", "BYE")) for line in c.lines):
        c.problem(f"unexpected answers to garbage: {c.lines[:5]!r}")
    if seed % 2:
        c.send_bytes(b"\xff half a line")
        await c.writer.drain()
        reset(c)
    await c.close()
    return c.label


async def long_line(port, source, problems, door, seed):
    """64 KiB without LF: one ERR too-long at once, then the line goes on working."""
    c = await admitted(port, source, f"long line {seed}", problems, door)
    c.send(f"/join long{seed}")
    await c.expect(f"WAITING long{seed}")
    for _ in range(16):
        c.send_bytes(b"A" * 4096)
        await c.writer.drain()
    await c.expect("ERR too-long", timeout=5)
    c.send_bytes(b"still the same line\n/help\n")
    await c.expect("INFO", timeout=5)
    await asyncio.sleep(0.2)
    if c.errs != ["too-long"]:
        c.problem(f"expected one ERR too-long, got {c.errs}")
    await c.close()
    return c.label


async def slowloris(port, source, problems, door, seed, trickle):
    """Connects and never joins (trickle: a byte every half second, no LF)."""
    c = await admitted(port, source, f"slowloris {seed}", problems, door)
    start = asyncio.get_running_loop().time()
    for byte in b"/name slowly_but_surely" if trickle else b"":
        if c.bye:
            break
        c.send_bytes(bytes([byte]))
        await asyncio.sleep(0.5)
    await c.until(lambda: c.bye is not None and c.eof, JOIN_TIMEOUT + SLACK + 12,
                  "BYE join-timeout")
    took = asyncio.get_running_loop().time() - start
    if c.bye != "join-timeout" or took > JOIN_TIMEOUT + SLACK:
        c.problem(f"ended with BYE {c.bye} after {took:.1f} s, not join-timeout after "
                  f"{JOIN_TIMEOUT} s")
    await c.close()
    return c.label


async def pair(port, sources, label, problems, door, mode="free"):
    a = await admitted(port, sources[0], f"{label} A", problems, door)
    a.send(f"/mode {mode}")
    a.send(f"/join {label.replace(' ', '_')}")
    await a.expect("WAITING")
    b = await admitted(port, sources[1], f"{label} B", problems, door)
    b.send(f"/join {label.replace(' ', '_')}")
    await b.expect("PAIRED")
    await a.expect("PAIRED")
    return a, b


BAD_LINES = [
    (b"\xff\xfe not UTF-8", "bad-utf8"), (b"\x1b[2J\x1b[H cleared your screen", "control-char"),
    (b"\xc0\xaf overlong slash", "bad-utf8"), (b"\xed\xa0\x80 a surrogate", "bad-utf8"),
    (b"a C1 \xc2\x9b31m in it", "control-char"), (b"\x07 bell", "control-char"),
    (b"\x1b]0;new title\x07", "control-char"), (b"del \x7f", "control-char"),
    (b"\xf4\x90\x80\x80 past U+10FFFF", "bad-utf8"), (b"cr\rin the middle", "control-char"),
]


async def dirty(port, sources, problems, door, seed):
    """Invalid UTF-8 and escape sequences at a partner: each refused with the
    right ERR, in order; only the good lines between them arrive."""
    a, b = await pair(port, sources, f"dirty {seed}", problems, door)
    rng = random.Random(seed)
    expected = []
    for i in range(30):
        if rng.random() < 0.4:
            raw, code = rng.choice(BAD_LINES)
            a.send_bytes(raw + b"\n")
            expected.append(code)
        else:
            a.say(f"good {seed}.{i}")
        await asyncio.sleep(0.1)   # far under the rate limit: no rate-limited here
    await b.until(lambda: len(b.msgs) == len(a.sent) and len(a.errs) == len(expected),
                  what="the good lines and the ERRs")
    if a.errs != expected or b.msgs != a.sent:
        a.problem(f"ERRs {a.errs} (expected {expected}); {len(b.msgs)} of {len(a.sent)} arrived")
    a.send("/q")
    await b.until(lambda: b.bye is not None, what="BYE peer-quit")
    await a.close()
    await b.close()
    return a.label


async def rate_flood(port, sources, problems, door, seed):
    """300 lines in one write: the excess is refused (rate-limited), the rest
    arrives in order; nothing is lost between the two."""
    a, b = await pair(port, sources, f"rate flood {seed}", problems, door)
    for i in range(300):
        a.sent.append(f"burst {seed}.{i}")
    a.send_bytes("".join(f"{t}\n" for t in a.sent).encode())
    await b.until(lambda: len(b.msgs) + len(a.errs) >= 300, what="300 lines accounted for")
    if not a.errs:
        a.problem("300 lines at once and none was rate-limited")
    check_accounting(a, b, problems, a.label)
    a.send("/q")
    await a.until(lambda: a.bye is not None, what="BYE quit")
    await a.close()
    await b.close()
    return a.label


async def unread_flood(port, sources, problems, door, seed):
    """The partner reads nothing while this side floods: backpressure, then
    the partner is dropped (too-slow) and this side hears peer-lost."""
    label = f"unread flood {seed}"
    a = await admitted(port, sources[0], f"{label} A", problems, door)
    a.send("/mode free")
    a.send(f"/join unread{seed}")
    await a.expect("WAITING")
    async with door:
        b = socket.socket()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window
        b.bind((sources[1], 0))
        b.connect(("127.0.0.1", port))
        b.sendall(f"/join unread{seed}\n".encode())
    await a.expect("PAIRED")
    start = asyncio.get_running_loop().time()
    i = 0
    while a.bye is None and asyncio.get_running_loop().time() - start < 60:
        a.say(f"flood {seed}.{i} " + "x" * 3900)
        i += 1
        await asyncio.sleep(0.025)   # 40 lines a second, under the rate limit
    if a.bye != "peer-lost":
        a.problem(f"the flood ended with BYE {a.bye}, not peer-lost")
    # Now read what the daemon managed to give the silent partner.
    reader = Client(f"{label} B", problems)
    b.settimeout(10)
    data = b""
    while len(data) < 64 << 20:
        try:
            chunk = b.recv(1 << 16)
        except (socket.timeout, ConnectionError):
            break
        if not chunk:
            break
        data += chunk
    b.close()
    for raw in data.split(b"\n")[:-1]:
        reader._file(raw)
    if reader.bye not in (None, "too-slow"):
        reader.problem(f"dropped with BYE {reader.bye}, not too-slow")
    it = iter(a.sent)
    if not all(any(m == s for s in it) for m in reader.msgs):
        reader.problem("received lines out of order or not from its partner")
    await a.close()
    return label


async def reset_mid_line(port, sources, problems, door, seed):
    """Half a line, then a TCP reset: the partner hears peer-lost, never the half."""
    a, b = await pair(port, sources, f"reset {seed}", problems, door)
    a.say(f"whole {seed}")
    await b.until(lambda: len(b.msgs) == 1, what="the whole line")
    a.send_bytes(b"half a li")
    await a.writer.drain()
    await asyncio.sleep(0.2)
    reset(a)
    await b.until(lambda: b.bye is not None and b.eof, what="BYE peer-lost")
    if b.bye != "peer-lost" or b.msgs != [f"whole {seed}"]:
        b.problem(f"after the reset: BYE {b.bye}, MSGs {b.msgs}")
    await a.close()
    await b.close()
    return b.label


async def per_address(port, source, problems, door):
    """max_per_address from one address; the next one is told address-limit."""
    held = []
    for i in range(PER_ADDRESS):
        c = await admitted(port, source, f"per-address {i}", problems, door)
        c.send(f"/join addr{i}")
        await c.expect(f"WAITING addr{i}")
        held.append(c)
    extra = await admitted(port, source, "per-address extra", problems, door)
    await extra.until(lambda: extra.bye is not None and extra.eof, 5, "BYE address-limit")
    if extra.bye != "address-limit" or len(extra.lines) != 2:
        extra.problem(f"got {extra.lines}, not HELLO then BYE address-limit")
    for c in held + [extra]:
        await c.close()
    return "per-address"
