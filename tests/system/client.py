"""A protocol-level turnchat client over any connected socket, as someone
using nc would be (the same shape as the end-to-end tests' Raw)."""

import socket
import time

TIMEOUT = 10


class Line:
    def __init__(self, sock):
        self.sock = sock
        self.pending = b""

    def send(self, text):
        self.sock.sendall(text.encode() + b"\n")

    def line(self, timeout=TIMEOUT):
        """The next line from the server, without its LF; '' on EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"no line from the server in {timeout} s "
                                     f"(so far: {self.pending!r})") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                rest, self.pending = self.pending, b""
                return rest.decode(errors="replace")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode(errors="replace")

    def close(self):
        self.sock.close()


def hello(sock, name=None, room=None):
    """A client past the greeting, named, and joined if room is given
    ('' for the default room)."""
    c = Line(sock)
    greeting = c.line()
    assert greeting.startswith("HELLO turnchat 1 "), greeting
    if name:
        c.send(f"/name {name}")
    if room is not None:
        c.send(f"/join {room}" if room else "/join")
    return c


def pair(connect, room="lobby", names=("Cloud", "Barret")):
    """(waiter, caller) paired through connect(), a function returning a
    connected socket; the caller speaks first in turns mode."""
    waiter = hello(connect(), names[0], room)
    assert waiter.line() == f"WAITING {room}"
    caller = hello(connect(), names[1], room)
    assert caller.line() == f"PAIRED {names[0]} turns you"
    assert waiter.line() == f"PAIRED {names[1]} turns peer"
    return waiter, caller


def converse(waiter, caller, lines=("Hey Cloud, you there?", "Yeah. What do you want?")):
    """Alternating lines, caller first; each must arrive as MSG."""
    speakers = [(caller, waiter), (waiter, caller)]
    for i, text in enumerate(lines):
        speaker, listener = speakers[i % 2]
        speaker.send(text)
        assert listener.line() == f"MSG {text}"


def wait_until(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)
