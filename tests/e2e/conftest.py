"""Shared fixtures for turnchat's end-to-end tests: the real turnchatd and
turnchat binaries on loopback, on a free port, with a private config."""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BUILD = os.environ.get("TURNCHAT_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
TURNCHATD = os.path.join(BUILD, "src", "turnchatd")
TURNCHAT = os.path.join(BUILD, "src", "turnchat")
TIMEOUT = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A turnchatd in the foreground, logging to a file we can read."""

    def __init__(self, tmp_path, settings="", server_settings=""):
        self.port = free_port()
        self.config = tmp_path / "turnchat.conf"
        self.config.write_text(
            f'host = "127.0.0.1";\nport = {self.port};\n{settings}\n'
            f"server: {{\n{server_settings}\n}};\n"
        )
        self.log_path = tmp_path / "turnchatd.log"
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [TURNCHATD, "-f", "-c", str(self.config)],
            stdout=self.log_file, stderr=subprocess.STDOUT,
        )
        self.wait_for_log("ready")

    def log(self):
        return self.log_path.read_text()

    def wait_for_log(self, text, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"turnchatd exited {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"turnchatd never logged {text!r}:\n{self.log()}")

    def client(self, name=None, room=None):
        c = Raw(self.port)
        assert c.line().startswith("HELLO turnchat 1 ")
        if name:
            c.send(f"/name {name}")
        if room is not None:
            c.send(f"/join {room}" if room else "/join")
        return c

    def pair(self, room="lobby", names=("Cloud", "Barret")):
        """Returns (waiter, caller); the caller speaks first in turns mode."""
        waiter = self.client(names[0], room)
        assert waiter.line() == f"WAITING {room}"
        caller = self.client(names[1], room)
        assert caller.line().startswith(f"PAIRED {names[0]} ")
        assert waiter.line().startswith(f"PAIRED {names[1]} ")
        return waiter, caller

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


class Raw:
    """A protocol-level client, as someone using nc would be."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def send(self, text):
        self.send_bytes(text.encode() + b"\n")

    def send_bytes(self, data):
        self.sock.sendall(data)

    def line(self, timeout=TIMEOUT):
        """The next line from the server, without its LF; '' on EOF."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.pending = self.pending, b""
                return rest.decode(errors="replace")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode(errors="replace")

    def closed(self, timeout=TIMEOUT):
        """True once the server closed the connection, with nothing more said."""
        rest = self.line(timeout)
        return rest == "" and self.pending == b""

    def quiet(self, seconds=0.3):
        """True when the server says nothing for a while."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return self.pending == b""
        self.pending += data
        return False

    def close(self):
        self.sock.close()


@pytest.fixture(autouse=True)
def reachable_by_nobody(tmp_path):
    """turnchatd started as root becomes nobody once its sockets are open:
    let it still read its config here on a reload, and reach sockets here."""
    top = os.path.realpath(tempfile.gettempdir())
    path = os.path.realpath(tmp_path)
    while path.startswith(top + os.sep):
        os.chmod(path, 0o755)
        path = os.path.dirname(path)


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def make_daemon(tmp_path):
    made = []

    def make(settings="", server_settings="", subdir="d"):
        path = tmp_path / f"{subdir}{len(made)}"
        path.mkdir()
        d = Daemon(path, settings, server_settings)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def client_env(tmp_path):
    """An environment where no user or system config but ours is read."""
    env = dict(os.environ)
    env["HOME"] = str(tmp_path)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["NO_COLOR"] = "1"
    env["TERM"] = "dumb"
    return env
