"""The .deb files installed with apt in a booted Debian 12 container (the
system tests' harness): client alone, then the daemon, whose socket listens
with no further step; the TLS pair its post-install script made and a TLS
conversation with openssl s_client, the key reaching the service through
LoadCredential=; a conversation of two installed clients; the journal;
`systemctl reload` on this minimal system (no procps); a local edit of
/etc/turnchat.conf surviving an upgrade and a reinstall, the pair never
remade; and purge leaving nothing behind.

The tests run in order and share one container, each step building on the
one before, as a person installing the packages would."""

import json
import os
import select
import shutil
import ssl
import subprocess
import time

import pytest

from conftest import boot, check_reload
from guest import CRT, KEY, PORT, TLS_PORT, cursor, wait_journal
from turnchat_helpers import Raw, Tool, tls_conversation, tls_over, wait_for

DEBS = "/var/tmp/turnchat-debs"  # /tmp is a fresh tmpfs inside
APT = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
       "--no-install-recommends"]
UNITS = ("turnchat.socket", "turnchat.service")
# What changes on a system when packages come and go, besides their own
# files: dpkg's and apt's databases and logs, man-db's index (its trigger),
# debconf's cache, the journal, and the .deb files this test copies in.
BOOKKEEPING = ("/var/lib/dpkg/", "/var/lib/apt/", "/var/cache/apt/", "/var/cache/man/",
               "/var/cache/debconf/", "/var/log/", DEBS + "/")


@pytest.fixture(scope="module")
def box(debs, debs_v2):
    yield from boot()


@pytest.fixture(scope="module")
def before(box):
    """Every file and directory of the container before any package."""
    return snapshot(box)


@pytest.fixture(scope="module")
def packages(box, before, debs, debs_v2):
    """Paths inside the container of the packages of both builds."""
    shutil.rmtree(box.root + DEBS, ignore_errors=True)
    paths = {}
    for version, built in (("1", debs), ("2", debs_v2)):
        os.makedirs(f"{box.root}{DEBS}/{version}")
        for name in ("turnchat", "turnchatd"):
            inside = f"{DEBS}/{version}/{os.path.basename(built[name])}"
            shutil.copy(built[name], box.root + inside)
            paths[name, version] = inside
    return paths


def snapshot(box):
    out = box.run(["find", "/", "-xdev", "-path", "/proc", "-prune", "-o", "-print"],
                  timeout=120).stdout
    return {p for p in out.splitlines() if not (p + "/").startswith(BOOKKEEPING)}


def apt(box, *args):
    return box.run([*APT, *args], timeout=300)


def state(box, unit):
    return box.run(["systemctl", "is-active", unit], check=False).stdout.strip()


def enabled(box, unit):
    return box.run(["systemctl", "is-enabled", unit], check=False).stdout.strip()


def turnchat(box, name):
    """The installed client, reading /etc/turnchat.conf, on pipes."""
    return box.popen(["turnchat", "-n", name], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def read_until(process, text, timeout=10):
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        ready, _, _ = select.select([process.stdout], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {text!r} from the client in {timeout} s; it wrote {seen!r}")
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"the client ended before {text!r}; it wrote {seen!r}")
        seen += chunk
    return seen.decode()


def say(process, line):
    process.stdin.write(line.encode() + b"\n")
    process.stdin.flush()


def test_client_alone_listens_nowhere(box, packages):
    """A client-only machine gets no daemon, no unit, nothing listening."""
    apt(box, packages["turnchat", "1"])
    assert box.run(["turnchat", "--version"]).stdout.startswith("turnchat ")
    assert box.run(["test", "-e", "/usr/sbin/turnchatd"], check=False).returncode != 0
    units = box.run(["systemctl", "list-unit-files", "--no-legend", "turnchat*"],
                   check=False).stdout
    assert units.strip() == ""
    assert not box.listening(PORT)


def test_daemon_socket_listens_at_once(box, packages):
    """apt install, and nothing else: the socket is enabled and listening,
    the service neither enabled nor running until someone connects."""
    apt(box, packages["turnchatd", "1"])
    assert state(box, "turnchat.socket") == "active"
    assert enabled(box, "turnchat.socket") == "enabled"
    assert state(box, "turnchat.service") == "inactive"
    assert enabled(box, "turnchat.service") != "enabled"
    assert box.listening(PORT)
    # The generator put the config's address into a drop-in.
    assert box.run(["test", "-f", "/run/systemd/generator/turnchat.socket.d/"
                    "50-turnchat-conf.conf"], check=False).returncode == 0


def pair_files(box):
    """Mode, owner and contents of /etc/turnchat and the TLS pair in it."""
    return box.run(["sh", "-c", 'stat -c "%a %U %n" "$@" && cat "$2" "$3"', "-",
                    "/etc/turnchat", CRT, KEY]).stdout


def test_postinst_made_the_tls_pair(box):
    """As openssh-server makes host keys: /etc/turnchat/ (0755) with a
    self-signed certificate and a key only root may read, where the
    shipped config says."""
    modes = [line.split()[:2] for line in pair_files(box).splitlines()[:3]]
    assert modes == [["755", "root"], ["644", "root"], ["600", "root"]], modes
    assert box.run(["turnchatd", "--fingerprint"]).stdout.startswith("SHA256:")


def test_tls_conversation_from_the_packages(box):
    """turnchat.socket listens on the TLS port too; openssl s_client and a
    TLS client converse; the service got the root-only key as a credential."""
    assert box.listening(TLS_PORT)
    tool = Tool(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{TLS_PORT}"],
                popen=box.popen)
    shown = tls_conversation(tool, lambda: tls_over(box.connect(TLS_PORT)))
    assert shown == ssl.PEM_cert_to_DER_cert(box.read(CRT))
    listed = box.run(["ls", "/run/credentials/turnchat.service"]).stdout.split()
    assert listed == ["tls.crt", "tls.key"]


def test_two_installed_clients_converse(box):
    since = cursor(box)
    cloud = turnchat(box, "Cloud")
    barret = None
    try:
        read_until(cloud, "Waiting for a partner in room 'lobby'")
        barret = turnchat(box, "Barret")
        read_until(barret, "You speak first.")
        say(barret, "Hey Cloud, you there?")
        read_until(cloud, "Barret: Hey Cloud, you there?")
        say(cloud, "Yeah. What do you want?")
        read_until(barret, "Cloud: Yeah. What do you want?")
        say(barret, "/q")
        barret.stdin.close()
        assert barret.wait(10) == 0
        read_until(cloud, "Barret left the conversation.")
        cloud.stdin.close()
        assert cloud.wait(10) == 0
    finally:
        for process in (cloud, barret):
            if process and process.poll() is None:
                process.kill()
                process.wait()
    assert state(box, "turnchat.service") == "active"
    wait_journal(box, since, "paired in room 'lobby'")
    wait_journal(box, since, "ended: Barret quit")


def test_journal_shows_the_daemon(box):
    out = box.run(["journalctl", "-u", "turnchat.service", "--no-pager", "-o", "cat"]).stdout
    assert "ready" in out and "connection from" in out, out


def test_reload_after_install(box):
    """`systemctl reload turnchat` works on the system apt installed the
    packages on, which has no procps (no /bin/kill): the pair goes on, a
    newcomer sees the edited name."""
    assert box.run(["test", "-e", "/bin/kill"], check=False).returncode != 0, \
        "the container has /bin/kill: it no longer proves reload needs nothing more"
    check_reload(box)


def test_conversations_survive_restart_crash_and_reinstall(box, packages):
    """50 pairs of resumable clients (tests/lib/resumable.py, run inside
    the container by resume_driver.py), half in turns mode and half in
    free mode, talk without pause while the service is restarted, its
    main process killed with SIGKILL (systemd restarts it), and the
    installed .deb installed again (its scripts restart the service). Each
    time the daemon hands its conversations to systemd's file descriptor
    store and the next one takes them back; the clients resume. In the end
    every line of every pair arrived exactly once, in order."""
    inside = "/var/tmp/turnchat-resume"
    shutil.rmtree(box.root + inside, ignore_errors=True)
    os.makedirs(box.root + inside)
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(here, "resume_driver.py"), box.root + inside)
    shutil.copy(os.path.join(here, "..", "lib", "resumable.py"), box.root + inside)
    finish = inside + "/finish"
    installed = box.run(["dpkg-query", "-W", "-f", "${Version}", "turnchatd"]).stdout
    deb = next(path for (name, version), path in packages.items()
               if name == "turnchatd" and installed in os.path.basename(path))
    driver = box.popen(["python3", inside + "/resume_driver.py", str(PORT), "50", "mixed",
                        finish], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        read_until(driver, "ready", 60)
        time.sleep(2)
        for step in ("restart", "kill", "reinstall"):
            since = cursor(box)
            old = main_pid(box)
            if step == "restart":
                box.systemctl("restart", "turnchat.service")
            elif step == "kill":
                box.systemctl("kill", "--signal=KILL", "--kill-who=main", "turnchat.service")
            else:
                apt(box, "--reinstall", deb)
            wait_for(lambda: main_pid(box) not in (0, old), f"a new turnchatd after {step}", 30)
            wait_journal(box, since, "50 conversations and 100 people kept by the last turnchatd")
            time.sleep(3)  # talking on, resumed
        box.write(finish, "")
        out, _ = driver.communicate(timeout=150)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        shutil.rmtree(box.root + inside, ignore_errors=True)  # purge must find nothing
    text = out.decode(errors="replace")
    report = json.loads(text.strip().splitlines()[-1])
    assert report["problems"] == [], text[-3000:]
    assert report["resumes"] >= 3 * 100, report
    assert report["lines"] > 1000, report


def main_pid(box):
    out = box.run(["systemctl", "show", "-P", "MainPID", "turnchat.service"], check=False).stdout
    return int(out.strip() or 0)


def test_local_edit_survives_upgrade_and_reinstall(box, packages, debs_v2):
    """/etc/turnchat.conf is a conffile: the admin's edit is kept, silently
    (the packaged file did not change), and is what the daemon then reads.
    The post-install script never makes a TLS pair over an existing one."""
    box.run(["sed", "-i", 's/^\\( *name = \\)"turnchatd";/\\1"edited";/', "/etc/turnchat.conf"])
    edited = box.read("/etc/turnchat.conf")
    pair = pair_files(box)
    assert 'name = "edited";' in edited
    apt(box, packages["turnchat", "2"], packages["turnchatd", "2"])
    for name in ("turnchat", "turnchatd"):
        version = box.run(["dpkg-query", "-W", "-f", "${Version}", name]).stdout
        assert version == debs_v2.version
    assert box.read("/etc/turnchat.conf") == edited
    apt(box, "--reinstall", packages["turnchat", "2"], packages["turnchatd", "2"])
    assert box.read("/etc/turnchat.conf") == edited
    leftovers = box.sh("ls /etc/turnchat.conf.* 2>/dev/null || true").stdout
    assert leftovers == ""
    assert pair_files(box) == pair, "the TLS pair was made again"
    # Still listening after the upgrade, and the new daemon reads the edit.
    assert state(box, "turnchat.socket") == "active"
    wait_for(lambda: box.listening(PORT), "turnchat.socket listening again", 10)
    c = Raw.over(box.connect(PORT))
    try:
        assert c.line() == "HELLO turnchat 1 edited"
    finally:
        c.close()


def test_purge_leaves_nothing(box, before):
    listed = box.run(["dpkg", "-L", "turnchat", "turnchatd"]).stdout.split()
    assert "/etc/turnchat.conf" in listed and "/usr/sbin/turnchatd" in listed
    box.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "-q",
             "turnchatd", "turnchat"], timeout=300)
    # Every file the packages listed is gone; a directory may stay only if
    # it was there before.
    # (dpkg lists /lib/..., which is a link to /usr/lib/... here.)
    existing = box.run(["sh", "-c", 'for p; do [ -e "$p" ] && readlink -f "$p"; done; true',
                        "-", *listed]).stdout.split()
    assert [p for p in existing if p not in before] == []
    # Nothing anywhere that was not there before: no config, no unit, no
    # enablement symlink, no deb-systemd-helper state.
    assert sorted(snapshot(box) - before) == []
    assert box.run(["find", "/run", "-name", "*turnchat*"]).stdout == ""
    units = box.run(["systemctl", "list-unit-files", "--no-legend", "turnchat*"],
                   check=False).stdout
    assert units.strip() == ""
    for unit in UNITS:
        assert state(box, unit) == "inactive"
    assert not box.listening(PORT)
    status = box.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "turnchat"],
                     check=False)
    assert status.returncode != 0 or status.stdout.strip() in ("", "un"), status.stdout
