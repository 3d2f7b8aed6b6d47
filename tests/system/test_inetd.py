"""turnchatd in inetd's "wait" mode, where it is handed the listening socket
as fd 0: openbsd-inetd in the foreground on this host's loopback, and xinetd
(which cannot be installed beside openbsd-inetd) as a service in the
container.  Both run the entries from etc/ as shipped (on the host, on free
ports): the plain-text one as nobody, and the TLS one, which starts as root
to read a root-only key and then becomes nobody, with a TLS conversation
through `openssl s_client -quiet`."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from container import REPO, require, tcp_listening
from guest import CRT, PORT, TLS_PORT, configure, processes, reset
from turnchat_helpers import (TIMEOUT, Tool, converse, free_port, hello, leave, pair,
                              tls_conversation, tls_over, wait_for, write_config)

INETD_EXAMPLE = os.path.join(REPO, "etc", "inetd.conf.example")
XINETD_EXAMPLE = os.path.join(REPO, "etc", "xinetd.d", "turnchat.example")


def children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        try:
            found += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except OSError:
            pass
    return found


def example_entries():
    """The service lines of etc/inetd.conf.example, split into fields: the
    plain-text one, then the TLS one."""
    with open(INETD_EXAMPLE) as f:
        lines = [line.split() for line in f if line.strip() and not line.startswith("#")]
    assert len(lines) == 2, lines
    return lines


class Inetd:
    """openbsd-inetd in the foreground with a private inetd.conf holding the
    example's entries, moved to free loopback ports.  turnchatd and its
    config are copied where the example's user (nobody) can read them; the
    config names a TLS pair made by turnchatd --make-certificate, the key
    root's alone, as the packages make it."""

    def __init__(self, turnchatd, server_settings=""):
        self.dir = tempfile.mkdtemp(prefix="turnchat-inetd-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.tls_port = free_port()
        while self.tls_port == self.port:
            self.tls_port = free_port()
        self.turnchatd = os.path.join(self.dir, "turnchatd")
        shutil.copy(turnchatd, self.turnchatd)
        os.chmod(self.turnchatd, 0o755)
        self.crt = os.path.join(self.dir, "tls", "tls.crt")
        self.key = os.path.join(self.dir, "tls", "tls.key")
        self.config = str(write_config(
            os.path.join(self.dir, "turnchat.conf"), self.port,
            settings=f"tls_port = {self.tls_port};",
            server_settings=f'tls_certificate = "{self.crt}"; tls_key = "{self.key}";\n'
                            + server_settings))
        made = subprocess.run([self.turnchatd, "-c", self.config, "--make-certificate"],
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert made.returncode == 0, made.stdout + made.stderr
        plain, tls = example_entries()
        assert plain[0].endswith(f":{PORT}") and plain[5] == "/usr/sbin/turnchatd", plain
        assert tls[0].endswith(f":{TLS_PORT}") and tls[5] == "/usr/sbin/turnchatd", tls
        plain[0] = f"127.0.0.1:{self.port}"
        tls[0] = f"127.0.0.1:{self.tls_port}"
        self.inetd_conf = os.path.join(self.dir, "inetd.conf")
        with open(self.inetd_conf, "w") as f:
            for entry in (plain, tls):
                entry[5] = self.turnchatd
                f.write(" ".join(entry + ["-c", self.config]) + "\n")
        # inetd writes /run/inetd.pid even in the foreground: put back
        # whatever was there.
        self.pidfile = "/run/inetd.pid"
        self.old_pidfile = open(self.pidfile).read() if os.path.exists(self.pidfile) else None
        self.log = open(os.path.join(self.dir, "inetd.log"), "w")
        self.proc = subprocess.Popen(["inetd", "-d", "-i", self.inetd_conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: (tcp_listening(self.port) and tcp_listening(self.tls_port))
                 or self.proc.poll() is not None, f"inetd listening on {self.port} and "
                 f"{self.tls_port}")
        assert self.proc.poll() is None, self.inetd_log()

    def inetd_log(self):
        with open(os.path.join(self.dir, "inetd.log")) as f:
            return f.read()

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)

    def connect_tls(self):
        return tls_over(socket.create_connection(("127.0.0.1", self.tls_port), timeout=TIMEOUT))

    def servers(self):
        """The turnchatd processes inetd runs now."""
        return [pid for pid in children(self.proc.pid) if _comm(pid) == "turnchatd"]

    def stop(self):
        started = self.servers()
        self.proc.terminate()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in started:
            _end(pid)
        self.log.close()
        if self.old_pidfile is not None:
            with open(self.pidfile, "w") as f:
                f.write(self.old_pidfile)
        elif os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        shutil.rmtree(self.dir, ignore_errors=True)


def _comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return None


def _uid(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Uid:"):
            return int(line.split()[2])
    raise AssertionError(f"no Uid: line in /proc/{pid}/status")


def _end(pid):
    """Ends a turnchatd our inetd started, if it still runs."""
    if _comm(pid) != "turnchatd":
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + TIMEOUT
    while _comm(pid) == "turnchatd" and time.monotonic() < deadline:
        time.sleep(0.05)
    if _comm(pid) == "turnchatd":
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def make_inetd(build):
    require("inetd")
    if os.geteuid() != 0:
        pytest.skip("inetd runs the example's entry as nobody, which needs root")
    made = []

    def make(server_settings=""):
        made.append(Inetd(os.path.join(build, "src", "turnchatd"), server_settings))
        return made[-1]

    yield make
    for inetd in made:
        inetd.stop()


def test_inetd_example_is_a_wait_entry():
    plain, tls = example_entries()
    assert plain[0] == f"127.0.0.1:{PORT}", plain
    assert plain[1:5] == ["stream", "tcp", "wait", "nobody"], plain
    assert plain[5:] == ["/usr/sbin/turnchatd", "turnchatd"], plain
    # TLS: the same daemon, told by the port; root to read the key.
    assert tls[0] == f"127.0.0.1:{TLS_PORT}", tls
    assert tls[1:5] == ["stream", "tcp", "wait", "root"], tls
    assert tls[5:] == ["/usr/sbin/turnchatd", "turnchatd"], tls


def test_inetd_conversation(make_inetd):
    """The plain-text entry runs as nobody, who cannot read the key the
    config names: it needs none."""
    inetd = make_inetd()
    waiter, caller = pair(inetd.connect)
    converse(waiter, caller, ["Hey Cloud, you there?", "Yeah. What do you want?", "Bye."])
    assert len(inetd.servers()) == 1, "one turnchatd serves everyone"
    leave(caller, waiter)


def test_inetd_tls_conversation(make_inetd):
    """openssl s_client -quiet and a second TLS client converse through the
    example's TLS entry: started as root, turnchatd reads the root-only key,
    becomes nobody, and serves the pair the config names."""
    require("openssl")
    inetd = make_inetd()
    assert (os.stat(inetd.key).st_mode & 0o777, os.stat(inetd.key).st_uid) == (0o600, 0)
    tool = Tool(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{inetd.tls_port}"])
    servers = []

    def connect_tls():
        servers[:] = inetd.servers()  # s_client's connection started it
        return inetd.connect_tls()

    shown = tls_conversation(tool, connect_tls)
    with open(inetd.crt) as f:
        assert shown == ssl.PEM_cert_to_DER_cert(f.read())
    assert len(servers) == 1, "the TLS entry alone: the plain one was never asked"
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout)
    assert _uid(servers[0]) == nobody


def test_inetd_exit_when_idle_and_start_again(make_inetd):
    inetd = make_inetd("exit_idle = 1;")
    c = hello(inetd.connect())
    first = inetd.servers()
    assert len(first) == 1
    c.close()
    wait_for(lambda: not inetd.servers(), "turnchatd exiting when idle")
    waiter, caller = pair(inetd.connect)
    converse(waiter, caller)
    assert inetd.servers() and inetd.servers() != first


# ------------------------------------------------------------------ xinetd

@pytest.fixture
def xinetd(box, installed_config):
    """xinetd in the container with etc/xinetd.d/turnchat.example as
    /etc/xinetd.d/turnchat, turnchat.socket stopped so the port is free.
    Debian's xinetd has only an init script, whose stop leaves the servers
    it started running; a transient unit stops xinetd and its turnchatd
    together."""
    reset(box, installed_config)
    with open(XINETD_EXAMPLE) as f:
        box.write("/etc/xinetd.d/turnchat", f.read())
    try:
        box.run(["systemd-run", "--unit=turnchat-xinetd", "-p", "KillMode=control-group",
                 "/usr/sbin/xinetd", "-dontfork", "-stayalive"])
        wait_for(lambda: box.listening(PORT) and box.listening(TLS_PORT), "xinetd listening")
        yield box
    finally:
        box.systemctl("stop", "turnchat-xinetd.service", check=False)
        box.systemctl("reset-failed", "turnchat-xinetd.service", check=False)
        box.run(["rm", "-f", "/etc/xinetd.d/turnchat"])
        reset(box, installed_config)


def xinetd_services():
    """{service name: {setting: value}} of etc/xinetd.d/turnchat.example."""
    services, name = {}, None
    with open(XINETD_EXAMPLE) as f:
        for line in f:
            line = line.strip()
            if line.startswith("service "):
                name = line.split()[1]
                services[name] = {}
            elif "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                services[name][key.strip()] = value.strip()
    return services


def test_xinetd_example_is_a_wait_entry():
    services = xinetd_services()
    assert sorted(services) == ["turnchat", "turnchat-tls"]
    for name, port, user in (("turnchat", PORT, "nobody"), ("turnchat-tls", TLS_PORT, "root")):
        settings = services[name]
        assert settings["wait"] == "yes"
        assert settings["socket_type"] == "stream"
        assert settings["port"] == str(port)
        assert settings["type"] == "UNLISTED"
        assert settings["user"] == user
        assert settings["server"] == "/usr/sbin/turnchatd"


def test_xinetd_conversation(xinetd):
    box = xinetd
    waiter, caller = pair(lambda: box.connect(PORT))
    converse(waiter, caller, ["Hey Cloud, you there?", "Yeah. What do you want?"])
    nobody = int(box.run(["id", "-u", "nobody"]).stdout)
    assert set(processes(box, "turnchatd").values()) == {nobody}
    leave(caller, waiter)


def test_xinetd_tls_conversation(xinetd):
    """The example's TLS service, with the pair made as after meson install
    (conftest.py): openssl s_client inside the container and a TLS client
    from its network converse; the daemon runs as nobody."""
    box = xinetd
    tool = Tool(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{TLS_PORT}"],
                popen=box.popen)
    shown = tls_conversation(tool, lambda: tls_over(box.connect(TLS_PORT)))
    assert shown == ssl.PEM_cert_to_DER_cert(box.read(CRT))
    nobody = int(box.run(["id", "-u", "nobody"]).stdout)
    assert set(processes(box, "turnchatd").values()) == {nobody}


def test_xinetd_exit_when_idle_and_start_again(xinetd):
    box = xinetd
    configure(box, exit_idle=1)
    c = hello(box.connect(PORT))
    first = processes(box, "turnchatd")
    assert len(first) == 1
    c.close()
    wait_for(lambda: not processes(box, "turnchatd"), "turnchatd exiting when idle")
    waiter, caller = pair(lambda: box.connect(PORT))
    converse(waiter, caller)
