"""Issue 14 end to end: two real turnchat clients and the real turnchatd,
the clients reaching it through a fault-injecting proxy (faultproxy.py)
that cuts, resets, stalls and half-opens their connections while they
talk. Every line must arrive exactly once and in order, the turn must be
kept, and both must exit 0; the terminal client must say what happens and
keep a half-typed line; a script that cannot get back must say which lines
may not have arrived and exit 1. Over TLS, it must come back to the same
server, and to no other."""

import functools
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import client_env
from faultproxy import FaultProxy
from test_tls import make_certificate, tls_daemon  # noqa: F401
from tmux_pane import Pane
from turnchat_helpers import TIMEOUT, TURNCHAT, TURNCHATD, Tool, write_config

# Long enough for a reconnect after a stall, which keepalive finds in 2 s.
SLOW = 4 * TIMEOUT


@pytest.fixture
def proxy(daemon):
    made = FaultProxy(upstream=("127.0.0.1", daemon.port)).start()
    yield made
    made.stop()


@pytest.fixture
def scripts(tmp_path, proxy):
    """scripts(name, *options): turnchat on pipes (Tool) through the proxy,
    with a keepalive of 1 s so that a silent connection is found in 2 s;
    killed at the end if still running."""
    config = write_config(tmp_path / "client.conf", proxy.port,
                          settings="client: { keepalive = 1; };")
    made = []

    def make(name, *options):
        popen = functools.partial(subprocess.Popen, env=client_env(tmp_path), text=False)
        tool = Tool([TURNCHAT, "-c", str(config), "-n", name, *options], popen=popen)
        made.append(tool)
        return tool

    yield make
    for tool in made:
        tool.close()


def inject(proxy, fault):
    """One fault on every connection through the proxy, as on a bad network."""
    if fault == "cut":
        proxy.cut()
    elif fault == "reset":
        proxy.reset()
    elif fault == "stall":  # a short outage, then both ends hear of it
        proxy.stall()
        time.sleep(0.3)
        proxy.unstall(drop=True)
    elif fault == "long stall":  # silence long enough for keepalive to notice
        proxy.stall()
        time.sleep(2.5)
        proxy.unstall(drop=True)
    elif fault == "stall kept":  # a hiccup: held, then delivered
        proxy.stall()
        time.sleep(0.5)
        proxy.unstall(drop=False)
    elif fault == "half-open":  # the daemon sees a reset, the client nothing
        proxy.half_open()
    elif fault == "refused":  # down for a moment: reconnecting takes a few tries
        proxy.refuse(1.0)
        proxy.cut()
    else:
        raise ValueError(fault)


FAULTS = ["cut", "reset", "stall", "half-open", "stall kept", "refused", "long stall"]


def ended(tool, timeout=SLOW):
    """(exit status, stderr) once the client exits by itself."""
    status = tool.proc.wait(timeout)
    return status, tool.proc.stderr.read().decode(errors="replace")


def arrived_once_in_order(tool, speaker, texts):
    shown = [line for line in tool.lines if line and line.startswith(f"{speaker}: ")]
    assert shown == [f"{speaker}: {text}" for text in texts], shown


def clean(err):
    for sign in ("Not sent", "did not reach", "may not have reached", "could not be resumed"):
        assert sign not in err, err


def both_ended_well(barret, cloud, barret_lines, cloud_lines):
    """Both exited 0 with nothing amiss on stderr, and each one's lines
    reached the other once, in order; returns their stderr texts."""
    barret_status, barret_err = ended(barret)
    cloud_status, cloud_err = ended(cloud)
    assert (barret_status, cloud_status) == (0, 0), barret_err + cloud_err
    clean(barret_err)
    clean(cloud_err)
    arrived_once_in_order(cloud, "Barret", barret_lines)
    arrived_once_in_order(barret, "Cloud", cloud_lines)
    return barret_err, cloud_err


def test_turns_mode_carries_on_across_every_fault(daemon, proxy, scripts):
    cloud = scripts("Cloud")
    daemon.wait_for_log("Cloud (127.0.0.1")
    barret = scripts("Barret")
    cloud_lines, barret_lines = [], []
    for i, fault in enumerate(FAULTS * 2):
        barret_lines.append(f"Barret's line {i}")
        barret.send(barret_lines[-1])
        if i % 2:
            inject(proxy, fault)  # the line may be on its way
        cloud.expect(f"Barret: {barret_lines[-1]}", SLOW)
        if not i % 2:
            inject(proxy, fault)  # between two lines
        cloud_lines.append(f"Cloud's line {i}")
        cloud.send(cloud_lines[-1])
        barret.expect(f"Cloud: {cloud_lines[-1]}", SLOW)
    # Barret's turn: its input ends there, so it leaves (once its last line
    # is receipted); Cloud's then ends where its partner left.
    barret.proc.stdin.close()
    cloud.expect("Barret left the conversation.", SLOW)
    cloud.proc.stdin.close()
    barret_err, cloud_err = both_ended_well(barret, cloud, barret_lines, cloud_lines)
    assert "Reconnected." in barret_err and "Reconnected." in cloud_err


def test_free_mode_carries_on_across_every_fault(daemon, proxy, scripts):
    cloud = scripts("Cloud", "--free")
    daemon.wait_for_log("Cloud (127.0.0.1")
    barret = scripts("Barret", "--free")
    # Faults before the pairing would just end the wait (no token yet).
    cloud.expect("Paired with 'Barret' (free mode). Type '/q' to quit.")
    barret.expect("Paired with 'Cloud' (free mode). Type '/q' to quit.")
    cloud_lines, barret_lines = [], []
    for i, fault in enumerate(FAULTS * 2):
        # Both at once, a few lines each, the fault while they cross.
        for j in range(3):
            cloud_lines.append(f"Cloud {i}.{j}")
            cloud.send(cloud_lines[-1])
            barret_lines.append(f"Barret {i}.{j}")
            barret.send(barret_lines[-1])
        inject(proxy, fault)
        barret.expect(f"Cloud: {cloud_lines[-1]}", SLOW)
        cloud.expect(f"Barret: {barret_lines[-1]}", SLOW)
    # Both say /done at the end of their input: everything arrives, then BYE done.
    cloud.proc.stdin.close()
    barret.proc.stdin.close()
    both_ended_well(barret, cloud, barret_lines, cloud_lines)


def test_a_script_that_cannot_get_back_lists_what_may_not_have_arrived(make_daemon, tmp_path):
    daemon = make_daemon(server_settings="resume_timeout = 1;")
    with FaultProxy(upstream=("127.0.0.1", daemon.port)) as proxy:
        config = write_config(tmp_path / "client.conf", proxy.port)
        popen = functools.partial(subprocess.Popen, env=client_env(tmp_path), text=False)
        cloud = Tool([TURNCHAT, "-c", str(daemon.config), "-n", "Cloud", "--free"], popen=popen)
        daemon.wait_for_log("Cloud (127.0.0.1")
        barret = Tool([TURNCHAT, "-c", str(config), "-n", "Barret", "--free"], popen=popen)
        try:
            barret.send("first, delivered")
            cloud.expect("Barret: first, delivered")
            time.sleep(1)  # Cloud's receipt comes back
            # The last line goes, and at once the way back is gone for good.
            barret.send("last words")
            proxy.refuse(SLOW)
            proxy.cut()
            status, err = ended(barret)
            assert status == 1
            assert "could not be resumed" in err, err
            assert "1 of your lines may not have reached Cloud:" in err, err
            assert "1. last words" in err
            assert "first, delivered" not in err
            cloud.expect("The connection to Barret was lost.", SLOW)
            cloud.proc.stdin.close()
            assert ended(cloud)[0] == 1
        finally:
            cloud.close()
            barret.close()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_terminal_says_what_happens_and_keeps_the_half_typed_line(daemon, proxy, tmp_path):
    # Cloud is a script straight to the daemon, Barret on a terminal through the proxy.
    popen = functools.partial(subprocess.Popen, env=client_env(tmp_path), text=False)
    cloud = Tool([TURNCHAT, "-c", str(daemon.config), "-n", "Cloud"], popen=popen)
    daemon.wait_for_log("Cloud (127.0.0.1")
    config = write_config(tmp_path / "barret.conf", proxy.port,
                          settings="client: { keepalive = 1; };")
    barret = Pane([TURNCHAT, "-c", str(config), "-n", "Barret"], client_env(tmp_path))
    try:
        barret.wait_prompt("Barret> ")
        barret.line("Hey Cloud, you there?")
        cloud.expect("Barret: Hey Cloud, you there?")
        barret.wait_prompt("Barret (Cloud's turn)> ")
        barret.type("half typed")
        barret.wait_for("Barret (Cloud's turn)> half typed")
        inject(proxy, "half-open")  # only keepalive can tell
        cloud.expect("Barret's connection dropped; waiting up to 120 seconds for them to come "
                     "back.")
        barret.wait_for("-- Connection lost; reconnecting...")
        barret.wait_for("-- Reconnected.")
        barret.wait(lambda rows: rows[-1] == "Barret (Cloud's turn)> half typed",
                    "the turn and the half-typed line, as they were")
        cloud.expect("Barret is back.")
        cloud.send("Yeah. What do you want?")
        barret.wait_for("Cloud: Yeah. What do you want?")
        barret.wait(lambda rows: rows[-1] == "Barret> half typed", "our turn")
        barret.type(", now sent")
        barret.key("Enter")
        cloud.expect("Barret: half typed, now sent")
        barret.line("/q")
        assert barret.exit_status(SLOW) == 0
        cloud.expect("Barret left the conversation.")
        cloud.proc.stdin.close()
        assert ended(cloud)[0] == 0
        rows = barret.rows(history=True)
        assert sum(row == "Barret: Hey Cloud, you there?" for row in rows) == 1, rows
    finally:
        barret.close()
        cloud.close()


# --- Over TLS -------------------------------------------------------------------------

tls_only = pytest.mark.skipif(
    "built without TLS" in subprocess.run([TURNCHATD, "-c", "/dev/null", "--fingerprint"],
                                          capture_output=True, text=True).stderr,
    reason="turnchatd built without TLS (-Dtls=disabled)")


@tls_only
def test_over_tls_it_comes_back_to_the_same_server(tls_daemon, tmp_path):  # noqa: F811
    d = tls_daemon()
    popen = functools.partial(subprocess.Popen, env=client_env(tmp_path), text=False)
    with FaultProxy(upstream=("127.0.0.1", d.tls_port)) as proxy:
        cloud = Tool([TURNCHAT, "-c", str(d.config), "-n", "Cloud", "--free"], popen=popen)
        d.wait_for_log("Cloud (127.0.0.1")
        config = write_config(tmp_path / "barret.conf", d.port,
                              settings=f"tls_port = {proxy.port};")
        barret = Tool([TURNCHAT, "-c", str(config), "-n", "Barret", "--free", "--tls"],
                      popen=popen)
        try:
            barret.expect("Paired with 'Cloud' (free mode). Type '/q' to quit.")
            lines = [f"over TLS {i}" for i in range(4)]
            for i, text in enumerate(lines):
                barret.send(text)
                inject(proxy, "reset" if i % 2 else "cut")
                cloud.expect(f"Barret: {text}", SLOW)
            barret.proc.stdin.close()
            cloud.proc.stdin.close()
            status, err = ended(barret)
            assert status == 0, err
            assert err.count("Reconnected.") >= 2, err
            clean(err)
            arrived_once_in_order(cloud, "Barret", lines)
            assert ended(cloud)[0] == 0
        finally:
            cloud.close()
            barret.close()


def impostor(port, crt, key, received):
    """A TLS server with another key on port, from now on: it greets as
    turnchatd would and keeps whatever a client sends it after the
    handshake. Returns its listening socket, to close."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(crt), str(key))

    def serve():
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            try:
                sock.settimeout(2)
                with context.wrap_socket(sock, server_side=True) as tls:
                    tls.sendall(b"HELLO turnchat 1 turnchatd\n")
                    while chunk := tls.recv(4096):
                        received.append(chunk)
            except (OSError, ssl.SSLError):
                pass
            finally:
                sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener


@tls_only
def test_over_tls_a_server_with_another_key_never_gets_the_token(tls_daemon, tmp_path):  # noqa: F811
    d = tls_daemon(server_settings="resume_timeout = 2;")
    popen = functools.partial(subprocess.Popen, env=client_env(tmp_path), text=False)
    cloud = Tool([TURNCHAT, "-c", str(d.config), "-n", "Cloud", "--free"], popen=popen)
    d.wait_for_log("Cloud (127.0.0.1")
    config = write_config(tmp_path / "barret.conf", d.port, settings=f"tls_port = {d.tls_port};")
    barret = Tool([TURNCHAT, "-c", str(config), "-n", "Barret", "--free", "--tls"], popen=popen)
    received, listener = [], None
    try:
        barret.send("before the switch")
        cloud.expect("Barret: before the switch")
        # The daemon dies; someone else, with another key, takes its port.
        d.proc.kill()
        d.proc.wait()
        crt, key = make_certificate(tmp_path, "impostor")
        listener = impostor(d.tls_port, crt, key, received)
        status, err = ended(barret)
        assert status == 1
        assert ("its TLS key is not the one it showed when the conversation began" in
                err.replace("\n", " ")), err
        assert received == [], "nothing, the token least of all, goes to another key"
    finally:
        if listener:
            listener.close()
        cloud.close()
        barret.close()
