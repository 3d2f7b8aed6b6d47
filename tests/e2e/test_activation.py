"""turnchatd handed its sockets: by systemd-socket-activate (the same
LISTEN_FDS protocol systemd uses), and as fd 0 the way inetd's "wait" mode
does; and what it tells the service manager through NOTIFY_SOCKET."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import notify_socket
from turnchat_helpers import (TIMEOUT, TURNCHATD, Raw, free_port, leave, pair, wait_for,
                              write_config)

ACTIVATE = shutil.which("systemd-socket-activate")
needs_activate = pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate is missing")


def config(tmp_path, port, server=""):
    """A config logging to stderr, as these tests read the output."""
    return write_config(tmp_path / "turnchat.conf", port,
                        server_settings=f'log_target = "stderr"; {server}')


def converse(connect):
    """Two people meet through connect(), a line goes one way and a /q the other."""
    a, b = pair(connect, names=("A", "B"))
    b.send("over the handed socket")
    assert a.line() == "MSG over the handed socket"
    leave(a, b)
    a.close()
    b.close()


def unix_client(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(path)
    return Raw.over(sock)


def activate(tmp_path, listens, conf, names=()):
    args = [ACTIVATE]
    for address in listens:
        args += ["-l", address]
    if names:
        args += ["--fdname=" + ":".join(names)]
    log = open(tmp_path / "activated.log", "w")
    proc = subprocess.Popen(args + [TURNCHATD, "-f", "-c", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT)
    return proc, tmp_path / "activated.log"


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT)


@needs_activate
def test_one_activated_socket(tmp_path):
    port = free_port()
    conf = config(tmp_path, port)
    proc, log = activate(tmp_path, [f"127.0.0.1:{port}"], conf)
    try:
        # systemd-socket-activate listens first and starts turnchatd on the first connection.
        wait_for(lambda: "Listening on" in log.read_text(), "the socket")
        converse(lambda: Raw(port))
        text = log.read_text()
        assert f"listening on 127.0.0.1 port {port} (socket " in text
        assert "configuration says" not in text
    finally:
        stop(proc)


@needs_activate
def test_tcp_and_unix_sockets_with_names(tmp_path):
    port = free_port()
    path = str(tmp_path / "turnchat.sock")
    conf = config(tmp_path, port)
    proc, log = activate(tmp_path, [f"127.0.0.1:{port}", path], conf, names=("tcp", "local"))
    try:
        wait_for(lambda: os.path.exists(path), "the Unix socket")
        converse(lambda: Raw(port))
        converse(lambda: unix_client(path))
        # One person on each socket still meet: it is one daemon.
        converse_mixed = [Raw(port), unix_client(path)]
        for c, name in zip(converse_mixed, ("Tcp", "Unix")):
            assert c.line().startswith("HELLO")
            c.send(f"/name {name}")
            c.send("/join mixed")
        assert converse_mixed[0].line() == "WAITING mixed"
        assert converse_mixed[1].line() == "PAIRED Tcp turns you"
        for c in converse_mixed:
            c.close()
        text = log.read_text()
        assert "(socket 'tcp' from the service manager)" in text
        assert f"listening on {path} (socket 'local' from the service manager)" in text
    finally:
        stop(proc)


@needs_activate
def test_warns_when_handed_socket_differs_from_config(tmp_path):
    port, other = free_port(), free_port()
    conf = config(tmp_path, other)
    proc, log = activate(tmp_path, [f"127.0.0.1:{port}"], conf)
    try:
        wait_for(lambda: "Listening on" in log.read_text(), "the socket")
        converse(lambda: Raw(port))
        assert f"but the configuration says host '127.0.0.1' port {other}" in log.read_text()
    finally:
        stop(proc)


def inetd_style(tmp_path, port, server="exit_idle = 1;"):
    """Starts turnchatd as inetd's wait mode does: the listening socket as fd 0."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    conf = config(tmp_path, port, server)
    log = open(tmp_path / "inetd-style.log", "a")
    proc = subprocess.Popen([TURNCHATD, "-f", "-c", str(conf)], stdin=listener, stdout=log,
                            stderr=log)
    return listener, proc


def test_listening_socket_as_fd0_and_exit_when_idle(tmp_path):
    port = free_port()
    listener, proc = inetd_style(tmp_path, port)
    try:
        converse(lambda: Raw(port))
        # Nobody left: it exits by itself, and the socket keeps accepting
        # into its backlog, so a newcomer is never refused.
        assert proc.wait(TIMEOUT) == 0
        late = Raw(port)
        proc2 = subprocess.Popen([TURNCHATD, "-f", "-c", str(tmp_path / "turnchat.conf")],
                                 stdin=listener, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert late.line().startswith("HELLO turnchat 1 ")
        late.close()
        assert proc2.wait(TIMEOUT) == 0
        assert "nobody connected for 1 seconds" in (tmp_path / "inetd-style.log").read_text()
    finally:
        for p in (proc,):
            if p.poll() is None:
                p.kill()
        listener.close()


def test_standalone_never_exits_when_idle(tmp_path):
    port = free_port()
    conf = config(tmp_path, port, "exit_idle = 1;")
    proc = subprocess.Popen([TURNCHATD, "-f", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.5)
        assert proc.poll() is None
        c = Raw(port)
        assert c.line().startswith("HELLO")
        c.close()
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)


def notifying(tmp_path, watchdog_usec):
    """A turnchatd that tells a socket of ours what systemd would hear, a
    watchdog of watchdog_usec included: (the socket, the process, its port)."""
    port = free_port()
    conf = config(tmp_path, port)
    notify, notify_path = notify_socket(tmp_path)
    notify.settimeout(TIMEOUT)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(watchdog_usec))
    proc = subprocess.Popen([TURNCHATD, "-f", "-c", str(conf)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return notify, proc, port


def test_notify_socket_hears_every_state(tmp_path):
    notify, proc, port = notifying(tmp_path, 400000)
    heard = []

    def hear(text):
        # Watchdog kicks keep coming: give up by the clock, not by silence.
        deadline = time.monotonic() + TIMEOUT
        while not any(text in m for m in heard):
            assert time.monotonic() < deadline, f"never heard {text!r}: {heard}"
            heard.append(notify.recv(4096).decode())
        return True

    try:
        assert hear("READY=1")
        assert hear("STATUS=0 waiting, 0 conversations, 0 clients connected")
        c = Raw(port)
        assert c.line().startswith("HELLO")
        c.send("/join")
        assert hear("STATUS=1 waiting, 0 conversations, 1 client connected")
        d = Raw(port)
        d.send("/join")
        assert hear("STATUS=0 waiting, 1 conversation, 2 clients connected")
        count = len(heard)
        proc.send_signal(signal.SIGHUP)
        assert hear("RELOADING=1")
        reload_at = next(i for i, m in enumerate(heard) if "RELOADING=1" in m)
        assert reload_at >= count
        heard_after = heard[reload_at:]
        deadline = time.monotonic() + TIMEOUT
        while not any("READY=1" in m for m in heard_after):
            assert time.monotonic() < deadline, f"no READY=1 after the reload: {heard_after}"
            heard_after.append(notify.recv(4096).decode())
        c.close()
        d.close()
        proc.send_signal(signal.SIGTERM)
        assert hear("STOPPING=1")
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


def test_watchdog_is_fed(tmp_path):
    notify, proc, _ = notifying(tmp_path, 1000000)
    try:
        kicks, started = 0, time.monotonic()
        while kicks < 2:
            if "WATCHDOG=1" in notify.recv(4096).decode():
                kicks += 1
        assert time.monotonic() - started < 5
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)
        notify.close()


def test_reload_keeps_everyone_and_refuses_a_broken_file(daemon):
    cloud, barret = daemon.pair()
    text = daemon.config.read_text()
    daemon.config.write_text(text.replace("server: {", "server: {\n  max_lien = 1;"))
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for_log("the configuration in force stays")
    assert f"{daemon.config}:5: server.max_lien: unknown setting" in daemon.log()
    barret.send("still talking")
    assert cloud.line() == "MSG still talking"
    daemon.config.write_text(text.replace("server: {", 'server: {\n  name = "renamed";'))
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for_log("configuration reloaded")
    cloud.send("after the reload")
    assert barret.line() == "MSG after the reload"
    newcomer = Raw(daemon.port)
    assert newcomer.line() == "HELLO turnchat 1 renamed"
