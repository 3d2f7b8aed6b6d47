"""turnchatd as a socket-activated system service under a real systemd: a
booted Debian 12 container with the build installed by `meson install`
(and the TLS pair its config names made, as the README says).  Clients
connect from inside the container's private network."""

import os
import re
import select
import ssl
import subprocess
import time

import pytest

from container import REPO, require
from guest import (CRT, KEY, PORT, TLS_PORT, configure, cursor, dropin, journal, reset, show,
                   state, status, uid_of, wait_journal, wait_state)
from turnchat_helpers import (Raw, Tool, converse, hello, leave, pair, tls_conversation, tls_over,
                              wait_for)

UNITDIR = "/usr/lib/systemd/system"
GENERATOR = "/usr/lib/systemd/system-generators/turnchat-socket-generator"
TLS_DROPIN = "/run/systemd/generator/turnchat.service.d/50-turnchat-tls.conf"
INFO, NOTICE = "6", "5"
DAEMON_FACILITY = "3"


@pytest.fixture
def listening(box, installed_config):
    """turnchat.socket started from a clean slate; everything put back after."""
    reset(box, installed_config)
    box.systemctl("start", "turnchat.socket")
    wait_for(lambda: box.listening(PORT), f"turnchat.socket listening on {PORT}", 10)
    yield box
    reset(box, installed_config)


def connector(box, port=PORT):
    return lambda: box.connect(port)


def main_pid(box):
    wait_state(box, "active")
    return int(show(box, "turnchat.service", "MainPID"))


# ------------------------------------------------------------ the harness

def test_container_boots(box):
    """The harness itself: a booted systemd, commands inside, the build installed."""
    running = box.run(["systemctl", "is-system-running"], check=False).stdout.strip()
    failed = box.systemctl("--failed", "--no-legend", check=False).stdout
    assert running in ("running", "degraded"), failed
    assert box.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    assert box.run(["test", "-x", "/usr/sbin/turnchatd"], check=False).returncode == 0
    assert box.run(["test", "-x", "/usr/bin/turnchat"], check=False).returncode == 0
    checked = box.run(["turnchatd", "-t"], check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "configuration OK" in checked.stdout + checked.stderr
    # A private network: loopback only, nothing of the host's.
    links = [line.split(": ")[1] for line in box.run(["ip", "-o", "link"]).stdout.splitlines()]
    assert links == ["lo"]
    # As minimal as a debootstrap minbase system: no procps, so neither the
    # units nor the tests may rely on kill, ps or pgrep being installed.
    for program in ("kill", "ps", "pgrep", "pkill"):
        for directory in ("/bin", "/usr/bin"):
            path = f"{directory}/{program}"
            assert box.run(["test", "-e", path], check=False).returncode != 0, \
                f"{path} in the container: it should be minimal (no procps)"


def test_install_layout(box):
    """meson install puts the units, the generator and the man pages where
    Debian's systemd and man look for them."""
    assert box.units_from_repo == [], (
        f"meson install did not install {', '.join(box.units_from_repo)} into "
        f"{UNITDIR} (the tests used the copies in systemd/ instead)")
    assert box.run(["test", "-x", GENERATOR], check=False).returncode == 0, \
        f"meson install did not install {GENERATOR}"
    for page in ("man8/turnchatd.8", "man8/turnchat-socket-generator.8",
                 "man5/turnchat.conf.5", "man1/turnchat.1"):
        found = box.sh(f"ls /usr/share/man/{page}*", check=False)
        assert found.returncode == 0, f"meson install did not install {page}"


# ------------------------------------------------------ the units as files

def test_security_exposure_offline():
    """Debian 12's systemd 252 has --offline: the unit file's score alone."""
    require("systemd-analyze")
    unit = os.path.join(REPO, "systemd", "turnchat.service")
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit],
                            capture_output=True, text=True, timeout=60)
    exposure = _exposure(result.stdout + result.stderr)
    assert exposure <= 1.0, result.stdout


def test_security_exposure_as_loaded(box):
    result = box.run(["systemd-analyze", "security", "--no-pager", "turnchat.service"],
                     check=False)
    exposure = _exposure(result.stdout + result.stderr)
    assert exposure <= 1.0, result.stdout


def test_verify_clean(box):
    """No warning at all, with the installed binary and man pages."""
    units = [f"{UNITDIR}/turnchat.socket", f"{UNITDIR}/turnchat.service"]
    result = box.run(["systemd-analyze", "verify", *units], check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def _exposure(output):
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", output)
    assert found, output
    return float(found.group(1))


# ------------------------------------------------------- socket activation

def test_socket_listens_and_nothing_runs_yet(listening):
    box = listening
    assert state(box, "turnchat.socket") == "active"
    assert state(box) == "inactive"
    # Where exactly depends on host in the config (the generator's drop-in);
    # the installed config names a TLS pair, so tls_port on the same addresses.
    listen = show(box, "turnchat.socket", "Listen").splitlines()
    assert listen and all(line.endswith(" (Stream)") for line in listen), listen
    addresses = {port: sorted(line.rsplit(":", 1)[0] for line in listen
                              if line.endswith(f":{port} (Stream)"))
                 for port in (PORT, TLS_PORT)}
    assert addresses[PORT] and addresses[PORT] == addresses[TLS_PORT], listen
    assert len(listen) == 2 * len(addresses[PORT]), listen


def test_conversation(listening):
    box = listening
    waiter, caller = pair(connector(box))
    wait_state(box, "active")
    converse(waiter, caller, ["Hey Cloud, you there?", "Yeah. What do you want?",
                              "Just checking.", "ok"])
    leave(caller, waiter)
    # Sandboxed as the unit says: not root, no network of its own.
    pid = main_pid(box)
    assert uid_of(box, pid) != 0
    netns = box.run(["readlink", f"/proc/{pid}/ns/net"]).stdout
    assert netns != box.run(["readlink", "/proc/1/ns/net"]).stdout
    # Room for a descriptor a connection, max_clients (1024) and beyond.
    limits = box.read(f"/proc/{pid}/limits")
    soft = next(line.split()[3] for line in limits.splitlines()
                if line.startswith("Max open files"))
    assert int(soft) >= 4 * 1024, limits


def test_status_counts(listening):
    box = listening
    waiter = hello(box.connect(PORT), "Cloud", "den")
    assert waiter.line() == "WAITING den"
    a, b = pair(connector(box), names=("Tifa", "Aerith"))
    wait_for(lambda: re.search(r"\d", show(box, "turnchat.service", "StatusText")),
             "a STATUS= with counts", 5)


def test_journal_lines(listening):
    box = listening
    since = cursor(box)
    waiter, caller = pair(connector(box))
    converse(waiter, caller, ["secret words"])
    waiter.send("/q")
    assert waiter.line() == "BYE quit"
    ready = wait_journal(box, since, "ready")
    # The socket is dual-stack: an IPv4 peer may be shown v4-mapped.
    connected = wait_journal(box, since, re.compile(r"connection from (::ffff:)?127\.0\.0\.1 "))
    paired = wait_journal(box, since, "paired in room 'lobby', turns mode")
    ended = wait_journal(box, since, "ended: Cloud quit")
    for entry in (connected, paired, ended):
        assert entry["PRIORITY"] == INFO, entry
    assert ready["PRIORITY"] == NOTICE, ready
    for entry in (ready, connected, paired, ended):
        assert entry.get("SYSLOG_IDENTIFIER") == "turnchatd", entry
        assert entry.get("SYSLOG_FACILITY") == DAEMON_FACILITY, entry
    assert not [e for e in journal(box, since) if "secret words" in str(e.get("MESSAGE"))]


def test_installed_client(listening):
    """The installed turnchat finds the daemon through /etc/turnchat.conf."""
    box = listening
    waiter = hello(box.connect(PORT), "Cloud", "")
    assert waiter.line() == "WAITING lobby"
    client = box.popen(["turnchat", "-n", "Barret"], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client.stdin.write(b"Hey Cloud, you there?\n")
        client.stdin.flush()
        assert waiter.line() == "PAIRED Barret turns peer"
        assert waiter.line() == "MSG Hey Cloud, you there?"
        waiter.send("Yeah. What do you want?")
        _read_until(client, b"Yeah. What do you want?")
        client.stdin.close()
        assert waiter.line() == "BYE peer-quit"
        assert client.wait(10) == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def test_installed_clients_carry_on_across_a_restart(listening):
    """Two installed clients (scripts, in free mode) keep their conversation
    through `systemctl restart turnchat.service`: turnchatd leaves it in the
    service manager's file descriptor store, the next one takes it up, and
    the clients come back by themselves. Every line arrives once."""
    box = listening
    cloud = Tool(["turnchat", "-n", "Cloud", "--free"], popen=box.popen)
    barret = None
    try:
        cloud.expect("Waiting for a partner in room 'lobby'...")
        barret = Tool(["turnchat", "-n", "Barret", "--free"], popen=box.popen)
        barret.expect("Paired with 'Cloud' (free mode). Type '/q' to quit.")
        barret.send("before the restart")
        cloud.expect("Barret: before the restart")
        cloud.send("me too")
        barret.expect("Cloud: me too")
        pid = main_pid(box)
        box.systemctl("restart", "turnchat.service")
        assert main_pid(box) != pid
        barret.send("after the restart")
        cloud.expect("Barret: after the restart", 30)
        cloud.send("still here")
        barret.expect("Cloud: still here", 30)
        cloud.proc.stdin.close()
        barret.proc.stdin.close()
        statuses = cloud.proc.wait(30), barret.proc.wait(30)
        errors = cloud.proc.stderr.read().decode(), barret.proc.stderr.read().decode()
        assert statuses == (0, 0), errors
        assert all("Reconnected." in err for err in errors), errors
        for tool, speaker, lines in ((cloud, "Barret", ["before the restart", "after the restart"]),
                                     (barret, "Cloud", ["me too", "still here"])):
            shown = [line for line in tool.lines if line and line.startswith(f"{speaker}: ")]
            assert shown == [f"{speaker}: {line}" for line in lines], shown
    finally:
        cloud.close()
        if barret:
            barret.close()


def _read_until(proc, text, timeout=10):
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            raise AssertionError(f"the client never printed {text!r}: {seen!r}")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"the client ended without printing {text!r}: {seen!r}")
        seen += chunk


# ------------------------------------------------------ managing the service

def test_reload_keeps_conversation(listening):
    box = listening
    configure(box, name="before")
    waiter, caller = pair(connector(box))
    converse(waiter, caller)
    pid = main_pid(box)
    since = cursor(box)
    configure(box, name="after")
    box.systemctl("reload", "turnchat.service")
    wait_state(box, "active")
    assert main_pid(box) == pid
    converse(waiter, caller, ["still here?", "still here."])
    newcomer = Raw.over(box.connect(PORT))
    assert newcomer.line() == "HELLO turnchat 1 after"
    wait_journal(box, since, "configuration reloaded")


def test_config_port_moves_socket(listening):
    """One source of truth: the generator turns host/port of the config into
    the socket's ListenStream=."""
    box = listening
    assert box.run(["test", "-x", GENERATOR], check=False).returncode == 0, \
        f"no {GENERATOR} installed"
    new_port = PORT + 2
    configure(box, port=new_port)
    box.systemctl("daemon-reload")
    box.systemctl("restart", "turnchat.socket")
    wait_for(lambda: box.listening(new_port),
             f"turnchat.socket on {new_port}\n"
             + box.systemctl("cat", "turnchat.socket", check=False).stdout, 10)
    assert not box.listening(PORT)
    waiter, caller = pair(connector(box, new_port))
    converse(waiter, caller)
    with pytest.raises(ConnectionRefusedError):
        box.connect(PORT)


def test_stop_says_bye_shutdown(listening):
    box = listening
    waiter = hello(box.connect(PORT), "Red", "den")
    assert waiter.line() == "WAITING den"
    a, b = pair(connector(box))
    wait_state(box, "active")
    started = time.monotonic()
    box.systemctl("stop", "turnchat.service")
    # Well before TimeoutStopSec= (90 s) would have it killed; these clients
    # read nothing until stop returns, so this includes any wait for them.
    assert time.monotonic() - started < 15
    for c in (waiter, a, b):
        assert c.line() == "BYE shutdown"
        assert c.line() == ""
    assert state(box) == "inactive"
    assert show(box, "turnchat.service", "Result") == "success"
    # The socket stays and starts the service again for the next person.
    assert state(box, "turnchat.socket") == "active"
    hello(box.connect(PORT))
    wait_state(box, "active")


def test_watchdog(listening):
    box = listening
    c = hello(box.connect(PORT))
    main_pid(box)
    assert show(box, "turnchat.service", "WatchdogUSec") == "30s"
    c.close()
    box.systemctl("stop", "turnchat.service")
    dropin(box, "turnchat.service", "watchdog", "[Service]\nWatchdogSec=2s\n")
    c = hello(box.connect(PORT))
    pid = main_pid(box)
    first = show(box, "turnchat.service", "WatchdogTimestampMonotonic")
    time.sleep(5)
    assert main_pid(box) == pid, status(box)
    assert show(box, "turnchat.service", "WatchdogTimestampMonotonic") != first, \
        "no WATCHDOG=1 in 5 s with WatchdogSec=2s"
    c.close()


# ------------------------------------------------------------ exit when idle

def test_exit_when_idle_and_start_again(listening):
    box = listening
    configure(box, exit_idle=2)
    c = hello(box.connect(PORT))
    pid = main_pid(box)
    c.close()
    closed = time.monotonic()
    wait_state(box, "inactive", timeout=15)
    assert time.monotonic() - closed > 1.5, "exited before exit_idle was up"
    assert show(box, "turnchat.service", "Result") == "success"
    assert show(box, "turnchat.service", "ExecMainStatus") == "0"
    waiter, caller = pair(connector(box))
    converse(waiter, caller)
    assert main_pid(box) != pid


def test_waiting_person_keeps_it_running(listening):
    box = listening
    configure(box, exit_idle=2)
    waiter = hello(box.connect(PORT), "Cloud", "")
    assert waiter.line() == "WAITING lobby"
    pid = main_pid(box)
    time.sleep(4)
    assert main_pid(box) == pid
    caller = hello(box.connect(PORT), "Barret", "")
    assert caller.line() == "PAIRED Cloud turns you"
    assert waiter.line() == "PAIRED Barret turns peer"


def test_no_connection_lost_around_idle_exit(listening):
    """Connections that arrive just as the daemon decides to exit are served,
    by it or by the next one systemd starts.  Few enough starts to stay
    under systemd's default start limit (5 in 10 s)."""
    box = listening
    configure(box, exit_idle=2)
    for delay in (1.95, 2.0, 2.05):
        c = hello(box.connect(PORT))
        c.close()
        time.sleep(delay)
    waiter, caller = pair(connector(box))
    converse(waiter, caller)


# ------------------------------------------------------------------- TLS

def certificate(box):
    """The DER of the certificate /etc/turnchat/tls.crt holds now."""
    return ssl.PEM_cert_to_DER_cert(box.read(CRT))


def tls_client(box):
    return tls_over(box.connect(TLS_PORT))


def test_generator_writes_tls_only_when_configured(listening):
    """With the installed config's pair: LoadCredential= for both files and
    the reload's copy; without TLS settings, no service drop-in and no TLS
    port after daemon-reload."""
    box = listening
    dropin_text = box.read(TLS_DROPIN)
    assert f"LoadCredential=tls.crt:{CRT}\n" in dropin_text
    assert f"LoadCredential=tls.key:{KEY}\n" in dropin_text
    assert "ExecReload=-+/bin/sh" in dropin_text
    configure(box)  # host and port only: no TLS
    box.systemctl("daemon-reload")
    assert box.run(["test", "-e", TLS_DROPIN], check=False).returncode != 0
    box.systemctl("restart", "turnchat.socket")
    wait_for(lambda: box.listening(PORT), "turnchat.socket listening again", 10)
    assert not box.listening(TLS_PORT)


def test_tls_conversation_key_through_credentials(listening):
    """openssl s_client inside the container and a TLS client from its
    network converse through turnchat.socket.  The key is root's alone
    (0600) and the service's own user cannot read it: the key reaches the
    service only as a credential."""
    box = listening
    assert box.run(["stat", "-c", "%a %U", KEY]).stdout.split() == ["600", "root"]
    tool = Tool(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{TLS_PORT}"],
                popen=box.popen)
    assert tls_conversation(tool, lambda: tls_client(box)) == certificate(box)
    pid = main_pid(box)
    uid = uid_of(box, pid)
    assert uid != 0
    environment = box.read(f"/proc/{pid}/environ").split("\0")
    assert "CREDENTIALS_DIRECTORY=/run/credentials/turnchat.service" in environment
    denied = box.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                      "cat", KEY], check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr, denied
    listed = box.run(["ls", "/run/credentials/turnchat.service"]).stdout.split()
    assert listed == ["tls.crt", "tls.key"]


def test_reload_puts_a_renewed_certificate_in_force(listening):
    """systemctl reload with a renewed pair: the open TLS conversation goes
    on, new connections get the new certificate, the same process serves."""
    box = listening
    old = certificate(box)
    waiter, caller = pair(lambda: tls_client(box))
    converse(waiter, caller)
    pid = main_pid(box)
    since = cursor(box)
    box.run(["rm", CRT, KEY])
    box.run(["turnchatd", "--make-certificate"])
    new = certificate(box)
    assert new != old
    fingerprint = box.run(["turnchatd", "--fingerprint"]).stdout.strip()
    box.systemctl("reload", "turnchat.service")
    wait_journal(box, since, f"TLS certificate {CRT} loaded (from the copy systemctl reload "
                             f"made), key {fingerprint}")
    wait_journal(box, since, "configuration reloaded")
    assert main_pid(box) == pid
    converse(waiter, caller, ["still here?", "still here."])
    assert waiter.sock.getpeercert(binary_form=True) == old
    newcomer = tls_client(box)
    assert newcomer.line() == "HELLO turnchat 1 turnchatd"
    assert newcomer.sock.getpeercert(binary_form=True) == new
    newcomer.close()
    # The copy the reload made is the service user's alone.
    copies = box.run(["stat", "-c", "%a %u %n", "/run/turnchat/tls.crt",
                      "/run/turnchat/tls.key"]).stdout.splitlines()
    uid = uid_of(box, pid)
    assert [c.split()[:2] for c in copies] == [["600", str(uid)]] * 2
    leave(caller, waiter)


def test_missing_pair_fails_the_start_with_credentials(listening):
    """Without the files LoadCredential= names, systemd refuses to start the
    service (243/CREDENTIALS) and the socket stays; once made, it serves."""
    box = listening
    box.run(["mv", "/etc/turnchat", "/etc/turnchat.moved"])
    try:
        c = Raw.over(box.connect(PORT))
        wait_for(lambda: show(box, "turnchat.service", "ExecMainStatus") == "243",
                 f"turnchat.service failing at credentials\n{status(box)}", 15)
        c.close()
    finally:
        box.run(["mv", "/etc/turnchat.moved", "/etc/turnchat"])
    box.systemctl("reset-failed", "turnchat.service", "turnchat.socket", check=False)
    box.systemctl("restart", "turnchat.socket")
    wait_for(lambda: box.listening(TLS_PORT), "turnchat.socket listening again", 10)
    assert tls_client(box).line() == "HELLO turnchat 1 turnchatd"
