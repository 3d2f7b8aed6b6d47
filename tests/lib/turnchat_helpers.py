"""The test suites' one set of helpers for talking to turnchatd: free_port(),
wait_for(), write_config(), Raw (a protocol-level line client, as someone
using nc would be; tls_over() makes one speak TLS), Tool (a client program
nobody here wrote, such as openssl s_client, on pipes), hello(), pair(),
converse() and leave() (two people meeting, talking and parting),
tls_conversation() (the same over TLS, one side on a Tool), Daemon (a turnchatd in the foreground on a private config, logging to a
file), and scripted_server() and FakeServer (a test playing the server's
side, for the client).

Imported by the end-to-end tests (tests/e2e), the system tests
(tests/system, and through them tests/packaging), the chaos scripts
(tests/chaos) and the fresh test (tests/fresh); each puts this folder on
sys.path, relative to its own file. TURNCHAT_BUILD names the build
directory whose programs it runs (default: build/ at the top of the
repository)."""

import os
import pathlib
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.path.abspath(os.environ.get("TURNCHAT_BUILD", os.path.join(REPO, "build")))
TURNCHATD = os.path.join(BUILD, "src", "turnchatd")
TURNCHAT = os.path.join(BUILD, "src", "turnchat")
TIMEOUT = 10  # seconds for a line, a start, a stop


def free_port():
    """A TCP port nothing on 127.0.0.1 uses now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what, timeout=TIMEOUT, interval=0.05):
    """predicate()'s first true value, asked every interval seconds; an
    AssertionError naming what if none comes within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def write_config(path, port, host="127.0.0.1", settings="", server_settings="", mode=0o644):
    """A turnchat.conf at path, laid out as

        host = "HOST";
        port = PORT;
        SETTINGS
        server: {
        SERVER_SETTINGS
        };

    (settings and server_settings are "key = value; ..." text, put in as
    given). Readable by everyone unless mode says otherwise, so that a
    turnchatd started as root can read it again as nobody. Returns the path
    as a pathlib.Path."""
    path = pathlib.Path(path)
    path.write_text(f'host = "{host}";\nport = {port};\n{settings}\n'
                    f"server: {{\n{server_settings}\n}};\n")
    path.chmod(mode)
    return path


class Raw:
    """A protocol-level client, as someone using nc would be: it sends lines
    and reads lines, and checks nothing itself."""

    def __init__(self, port, host="127.0.0.1", source=None, window=None):
        """Connects over TCP to host and port; from the address source if
        given (a loopback address other than 127.0.0.1, to count as another
        address); with a receive buffer of window bytes if given, set before
        connecting, so that what the daemon sends to a client that does not
        read piles up in the daemon rather than in the kernel."""
        family, kind, proto, _, address = socket.getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            if window is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)
            sock.settimeout(TIMEOUT)
            if source is not None:
                sock.bind((source, 0))
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.pending = b""

    @classmethod
    def over(cls, sock):
        """A client on a socket connected elsewhere: a Unix socket, or one
        opened in another network namespace."""
        self = cls.__new__(cls)
        self.sock = sock
        self.pending = b""
        return self

    def send(self, text):
        self.send_bytes(text.encode() + b"\n")

    def send_bytes(self, data):
        self.sock.sendall(data)

    def line(self, timeout=TIMEOUT):
        """The next line from the server, without its LF; '' on EOF. A
        TimeoutError (socket.timeout) if no whole line comes within timeout
        seconds; a reset connection raises ConnectionResetError."""
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in self.pending:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    raise TimeoutError(f"no line from the server in {timeout} s "
                                       f"(so far: {self.pending[:200]!r})") from None
                if not chunk:
                    rest, self.pending = self.pending, b""
                    return rest.decode(errors="replace")
                self.pending += chunk
        finally:
            self.sock.settimeout(TIMEOUT)
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
        except TimeoutError:
            return self.pending == b""
        finally:
            self.sock.settimeout(TIMEOUT)
        self.pending += data
        return False

    def close(self):
        self.sock.close()


def tls_over(sock):
    """A Raw speaking TLS over sock, a connected socket, checking no
    certificate: the tests compare the key or the certificate themselves
    (sock.getpeercert(binary_form=True) on the Raw's sock)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock.settimeout(TIMEOUT)
    return Raw.over(ctx.wrap_socket(sock))


class Tool:
    """A client program on pipes (openssl s_client -quiet, gnutls-cli,
    ncat --ssl): lines in, lines out, with a deadline. popen starts it:
    subprocess.Popen here, or a container's popen to run it inside."""

    def __init__(self, argv, popen=subprocess.Popen):
        self.proc = popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def send(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, line, timeout=TIMEOUT):
        """Waits for exactly this line among what the tool prints."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while line not in self.lines:
                left = deadline - time.monotonic()
                if left <= 0 or None in self.lines:
                    raise AssertionError(f"no {line!r}; got {self.lines!r}")
                self.cond.wait(left)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def hello(client, name=None, room=None):
    """client (a Raw, or a connected socket to make one of) past the
    greeting, named if name is given, and joined to room if room is given
    ('' for the default room); returns the Raw."""
    if isinstance(client, socket.socket):
        client = Raw.over(client)
    greeting = client.line()
    assert greeting.startswith("HELLO turnchat 1 "), greeting
    if name:
        client.send(f"/name {name}")
    if room is not None:
        client.send(f"/join {room}" if room else "/join")
    return client


def pair(connect, room="lobby", names=("Cloud", "Barret")):
    """(waiter, caller) paired in room in turns mode through connect(),
    which returns a Raw or a connected socket; the caller speaks first."""
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


def leave(leaver, partner):
    """leaver quits: BYE quit to it, BYE peer-quit to its partner."""
    leaver.send("/q")
    assert leaver.line() == "BYE quit"
    assert partner.line() == "BYE peer-quit"


def tls_conversation(tool, connect_tls):
    """Cloud on tool (a Tool running openssl s_client -quiet or the like,
    not past the greeting) and Barret on connect_tls() (a Raw over TLS, see
    tls_over) meet in the lobby, say a line each, and Cloud leaves. Returns
    the certificate (DER) Barret was shown, for the caller to check."""
    barret = None
    try:
        tool.expect("HELLO turnchat 1 turnchatd")
        tool.send("/name Cloud")
        tool.send("/join")
        tool.expect("WAITING lobby")
        barret = hello(connect_tls(), "Barret", "")
        assert barret.line() == "PAIRED Cloud turns you"
        tool.expect("PAIRED Barret turns peer")
        barret.send("Hey Cloud, you there?")
        tool.expect("MSG Hey Cloud, you there?")
        tool.send("Yeah. What do you want?")
        assert barret.line() == "MSG Yeah. What do you want?"
        tool.send("/q")
        tool.expect("BYE quit")
        assert barret.line() == "BYE peer-quit"
        return barret.sock.getpeercert(binary_form=True)
    finally:
        tool.close()
        if barret:
            barret.close()


class Daemon:
    """A turnchatd in the foreground (-f) on its own config, turnchat.conf
    in directory (see write_config), on a free port; what it prints goes to
    turnchatd.log there. Started and ready ("ready" in its log) once made.

    wrapper is a command to run it under (valgrind ...); popen, more
    arguments for subprocess.Popen (env, preexec_fn, stdin)."""

    def __init__(self, directory, settings="", server_settings="", host="127.0.0.1",
                 mode=0o644, wrapper=(), ready_timeout=TIMEOUT, **popen):
        directory = pathlib.Path(directory)
        self.host = host
        self.port = free_port()
        self.config = write_config(directory / "turnchat.conf", self.port, host, settings,
                                   server_settings, mode)
        self.log_path = directory / "turnchatd.log"
        self.log_file = open(self.log_path, "w")
        self.terminated = False
        self.proc = subprocess.Popen([*wrapper, TURNCHATD, "-f", "-c", str(self.config)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT, **popen)
        try:
            self.wait_for_log("ready", ready_timeout)
        except BaseException:
            self.stop()
            raise

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text, timeout=TIMEOUT):
        """Waits until text is in the log; an AssertionError, with the log,
        if turnchatd exits first or timeout seconds pass."""
        def logged():
            if text in self.log():
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"turnchatd exited {self.proc.returncode}:\n{self.log()}")
            return False

        try:
            wait_for(logged, f"turnchatd logging {text!r}", timeout, interval=0.02)
        except AssertionError as e:
            if self.proc.poll() is not None:
                raise
            raise AssertionError(f"{e}:\n{self.log()}") from None

    def connect(self):
        """A Raw connected to it, not past the greeting."""
        return Raw(self.port, self.host)

    def client(self, name=None, room=None):
        """A Raw past the greeting, named and joined as hello() does."""
        return hello(self.connect(), name, room)

    def pair(self, room="lobby", names=("Cloud", "Barret")):
        """(waiter, caller), as pair() makes them; the caller speaks first."""
        return pair(self.connect, room, names)

    def terminate(self):
        """SIGTERM, once: a second one while it exits would end it before
        it finished (or before valgrind's report)."""
        if self.proc.poll() is None and not self.terminated:
            self.proc.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self, timeout=TIMEOUT):
        """SIGTERM (once) and a wait; killed if still running after timeout
        seconds. Returns its exit status, or None if it had to be killed."""
        self.terminate()
        status = None
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()
        return status


def scripted_server(steps, port_holder, received):
    """A server that, for each (wait_for, reply) step, reads until it has
    seen wait_for (any of them, when a tuple) and then sends reply."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port_holder.append(srv.getsockname()[1])

    def serve():
        conn, _ = srv.accept()
        conn.settimeout(TIMEOUT)
        data = b""
        try:
            for wait_for, reply in steps:
                wanted = wait_for if isinstance(wait_for, tuple) else (wait_for,)
                while not any(w in data for w in wanted):
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(reply)
        finally:
            received.append(data)
            conn.close()
            srv.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


class FakeServer:
    """A test playing the server's side by hand, for the client: it listens
    on loopback, and accept() hands over each connection the client makes
    as a Raw (line() reads what the client sent, send() answers). Unlike
    scripted_server, it takes any number of connections one after another:
    a client that reconnects comes back here. stop_listening() turns further
    connections away (refused), as a server that is down does."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        return Raw.over(conn)

    def stop_listening(self):
        self.sock.close()

    close = stop_listening


def reset(raw):
    """Closes raw's connection with a reset (RST), not a goodbye."""
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.sock.close()
