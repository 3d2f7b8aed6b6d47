"""turnchatd in inetd's "wait" mode, where it is handed the listening socket
as fd 0: openbsd-inetd in the foreground on this host's loopback, and xinetd
(which cannot be installed beside openbsd-inetd) as a service in the
container.  Both run the entry from etc/ as shipped (on the host, on a free
port)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from container import REPO, require, tcp_listening
from guest import PORT, configure, processes, reset
from turnchat_helpers import TIMEOUT, converse, free_port, hello, leave, pair, wait_for, write_config

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


def example_entry():
    """The one service line of etc/inetd.conf.example, split into fields."""
    with open(INETD_EXAMPLE) as f:
        lines = [line.split() for line in f if line.strip() and not line.startswith("#")]
    assert len(lines) == 1, lines
    return lines[0]


class Inetd:
    """openbsd-inetd in the foreground with a private inetd.conf holding the
    example's entry, moved to a free loopback port.  turnchatd and its config
    are copied where the example's user (nobody) can read them."""

    def __init__(self, turnchatd, server_settings=""):
        self.dir = tempfile.mkdtemp(prefix="turnchat-inetd-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.turnchatd = os.path.join(self.dir, "turnchatd")
        shutil.copy(turnchatd, self.turnchatd)
        os.chmod(self.turnchatd, 0o755)
        self.config = str(write_config(os.path.join(self.dir, "turnchat.conf"), self.port,
                                       server_settings=server_settings))
        entry = example_entry()
        assert entry[0].endswith(f":{PORT}") and entry[5] == "/usr/sbin/turnchatd", entry
        entry[0] = f"127.0.0.1:{self.port}"
        entry[5] = self.turnchatd
        entry += ["-c", self.config]
        self.inetd_conf = os.path.join(self.dir, "inetd.conf")
        with open(self.inetd_conf, "w") as f:
            f.write(" ".join(entry) + "\n")
        # inetd writes /run/inetd.pid even in the foreground: put back
        # whatever was there.
        self.pidfile = "/run/inetd.pid"
        self.old_pidfile = open(self.pidfile).read() if os.path.exists(self.pidfile) else None
        self.log = open(os.path.join(self.dir, "inetd.log"), "w")
        self.proc = subprocess.Popen(["inetd", "-d", "-i", self.inetd_conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: tcp_listening(self.port) or self.proc.poll() is not None,
                 f"inetd listening on {self.port}")
        assert self.proc.poll() is None, self.inetd_log()

    def inetd_log(self):
        with open(os.path.join(self.dir, "inetd.log")) as f:
            return f.read()

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)

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
    entry = example_entry()
    assert entry[1:5] == ["stream", "tcp", "wait", "nobody"], entry
    assert entry[5:] == ["/usr/sbin/turnchatd", "turnchatd"], entry


def test_inetd_conversation(make_inetd):
    inetd = make_inetd()
    waiter, caller = pair(inetd.connect)
    converse(waiter, caller, ["Hey Cloud, you there?", "Yeah. What do you want?", "Bye."])
    assert len(inetd.servers()) == 1, "one turnchatd serves everyone"
    leave(caller, waiter)


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
        wait_for(lambda: box.listening(PORT), "xinetd listening")
        yield box
    finally:
        box.systemctl("stop", "turnchat-xinetd.service", check=False)
        box.systemctl("reset-failed", "turnchat-xinetd.service", check=False)
        box.run(["rm", "-f", "/etc/xinetd.d/turnchat"])
        reset(box, installed_config)


def test_xinetd_example_is_a_wait_entry():
    with open(XINETD_EXAMPLE) as f:
        settings = dict(line.split("=", 1) for line in f
                        if "=" in line and not line.lstrip().startswith("#"))
    settings = {k.strip(): v.strip() for k, v in settings.items()}
    assert settings["wait"] == "yes"
    assert settings["socket_type"] == "stream"
    assert settings["port"] == str(PORT)
    assert settings["type"] == "UNLISTED"
    assert settings["user"] == "nobody"
    assert settings["server"] == "/usr/sbin/turnchatd"


def test_xinetd_conversation(xinetd):
    box = xinetd
    waiter, caller = pair(lambda: box.connect(PORT))
    converse(waiter, caller, ["Hey Cloud, you there?", "Yeah. What do you want?"])
    nobody = int(box.run(["id", "-u", "nobody"]).stdout)
    assert set(processes(box, "turnchatd").values()) == {nobody}
    leave(caller, waiter)


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
