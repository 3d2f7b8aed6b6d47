"""The .rpm files, built by packaging/build-rpm from a clean clone: rpmlint,
file lists, %config(noreplace), dependencies and scriptlets; then installed
with `rpm -i --nodeps` into a fresh copy of the container root and booted:
%post made the TLS pair, two people converse in plain text and over TLS,
`systemctl reload` works, `rpm -e` removes it all, the pair too.

The container has no rpm of its own (Debian 12's rpm would pull perl and
ICU into every system test's root), so the host's rpm installs into the
copy with --root before it boots; the scriptlets then run chrooted in it,
where systemctl works offline: enabling and disabling are real, starting
and stopping are not possible until it boots."""

import os
import re
import ssl

import pytest

import container
from conftest import REPO, boot, check_reload, need, project_version, run
from guest import CRT, KEY, PORT, TLS_PORT, cursor, wait_journal
from turnchat_helpers import Tool, converse, pair, tls_conversation, tls_over

SPEC = os.path.join(REPO, "packaging", "rpm", "turnchat.spec")
RPMLINT_CONFIG = os.path.join(REPO, "packaging", "rpm", "rpmlint.toml")
UNITDIR = "/usr/lib/systemd/system"

CLIENT_FILES = {
    "/etc/turnchat.conf",
    "/usr/bin/turnchat",
    "DOC/turnchat/README.md",
    "LICENSES/turnchat/LICENSE",
    "/usr/share/man/man1/turnchat.1.gz",
    "/usr/share/man/man5/turnchat.conf.5.gz",
    "/usr/share/man/man7/turnchat-protocol.7.gz",
}
DAEMON_FILES = {
    CRT,  # %ghost: made by %post, removed with the package
    KEY,
    f"{UNITDIR}/turnchat.service",
    f"{UNITDIR}/turnchat.socket",
    "/usr/lib/systemd/system-generators/turnchat-socket-generator",
    "/usr/sbin/turnchatd",
    "DOC/turnchatd/examples/inetd.conf.example",
    "DOC/turnchatd/examples/turnchat.example",
    "/usr/share/man/man8/turnchat-socket-generator.8.gz",
    "/usr/share/man/man8/turnchatd.8.gz",
}


def files_of(rpm):
    """The non-directory files of an .rpm, without the build-id links, and
    with the doc and license directories written DOC/name and
    LICENSES/name (rpm names them name or name-version by configuration)."""
    out = run(["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", rpm]).stdout
    files = set()
    for line in out.splitlines():
        mode, path = line.split(" ", 1)
        if mode.startswith("d") or path.startswith("/usr/lib/.build-id/"):
            continue
        path = re.sub(rf"^/usr/share/doc/(turnchatd?)(-{re.escape(project_version())})?/",
                      r"DOC/\1/", path)
        path = re.sub(rf"^/usr/share/licenses/(turnchat)(-{re.escape(project_version())})?/",
                      r"LICENSES/\1/", path)
        files.add(path)
    return files


def test_rpmlint_no_errors(rpms):
    """rpmlint with packaging/rpm/rpmlint.toml (Fedora's settings and four
    filters, each with its reason): no error."""
    need("rpmlint")
    result = run(["rpmlint", "-c", RPMLINT_CONFIG, rpms["turnchat"], rpms["turnchatd"], SPEC],
                 check=False)
    errors = [line for line in result.stdout.splitlines() if ": E: " in line]
    assert errors == [], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b0 errors\b", result.stdout), result.stdout


def test_file_lists(rpms):
    assert files_of(rpms["turnchat"]) == CLIENT_FILES
    assert files_of(rpms["turnchatd"]) == DAEMON_FILES


def test_config_noreplace(rpms):
    flags = run(["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]",
                 rpms["turnchat"]]).stdout.splitlines()
    assert "cn /etc/turnchat.conf" in flags
    assert run(["rpm", "-qpc", rpms["turnchatd"]]).stdout.strip() in ("", "(contains no files)")


def test_dependencies(rpms):
    version = run(["rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE}", rpms["turnchat"]]).stdout
    daemon = run(["rpm", "-qp", "--requires", rpms["turnchatd"]]).stdout.splitlines()
    assert re.compile(rf"turnchat(\(x86-64\))? = {re.escape(version)}").fullmatch(
        next((r for r in daemon if r.startswith("turnchat")), "")), daemon
    client = run(["rpm", "-qp", "--requires", rpms["turnchat"]]).stdout
    assert "turnchatd" not in client


def scriptlets(rpm):
    """{'postinstall': body, ...} from rpm -qp --scripts."""
    out = run(["rpm", "-qp", "--scripts", rpm]).stdout
    parts = re.split(r"^(\w+) scriptlet \(using /bin/sh\):\n", out, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_scriptlets(rpms):
    """%systemd_post/preun/postun_with_restart for both units (systemd's
    macros on Fedora, the spec's stand-ins on Debian's rpm); none for the
    client."""
    scripts = scriptlets(rpms["turnchatd"])
    assert set(scripts) == {"postinstall", "preuninstall", "postuninstall"}, scripts
    units = "turnchat.socket turnchat.service"
    assert re.search(rf"(preset|install-system-units) {units}", scripts["postinstall"])
    assert "/usr/sbin/turnchatd --make-certificate" in scripts["postinstall"]
    assert re.search(rf"\$1 -eq 1\b", scripts["postinstall"])
    assert re.search(rf"(disable --now|remove-system-units) {units}", scripts["preuninstall"])
    assert re.search(rf"\$1 -eq 0\b", scripts["preuninstall"])
    assert re.search(rf"(try-restart|mark-restart-system-units) {units}",
                     scripts["postuninstall"])
    assert re.search(rf"\$1 -ge 1\b", scripts["postuninstall"])
    assert scriptlets(rpms["turnchat"]) == {}


class RpmContainer(container.Container):
    """A container whose root gets the .rpm files before it boots."""

    def __init__(self, base, rpms, **kw):
        super().__init__(base, **kw)
        self.rpms = rpms

    def _boot(self):
        self.rpm_output = run(["rpm", "--root", self.root, "-i", "--nodeps", *self.rpms]).stdout
        super()._boot()


@pytest.fixture(scope="module")
def rpmbox(rpms):
    need("rpm")
    yield from boot(RpmContainer, rpms=[rpms["turnchat"], rpms["turnchatd"]])


def test_installed_rpm_socket_listens(rpmbox):
    """%post enabled the socket (Debian has no preset files, so preset
    enables), so it listens from boot; two people converse through it."""
    box = rpmbox
    assert box.run(["systemctl", "is-enabled", "turnchat.socket"]).stdout.strip() == "enabled"
    assert box.run(["systemctl", "is-active", "turnchat.socket"]).stdout.strip() == "active"
    assert box.listening(PORT)
    since = cursor(box)
    waiter, caller = pair(lambda: box.connect(PORT))
    converse(waiter, caller)
    caller.send("/q")
    assert caller.line() == "BYE quit"
    wait_journal(box, since, "paired in room 'lobby'")
    out = box.run(["turnchat", "--version"]).stdout.strip()
    assert out == f"turnchat {project_version()}"


def test_installed_rpm_serves_tls(rpmbox):
    """%post made the pair (run by rpm in the root before it booted), the
    key root's alone; openssl s_client and a TLS client converse through
    turnchat.socket's TLS port."""
    box = rpmbox
    modes = box.run(["stat", "-c", "%a %U", "/etc/turnchat", CRT, KEY]).stdout.splitlines()
    assert modes == ["755 root", "644 root", "600 root"]
    assert box.listening(TLS_PORT)
    tool = Tool(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{TLS_PORT}"],
                popen=box.popen)
    shown = tls_conversation(tool, lambda: tls_over(box.connect(TLS_PORT)))
    assert shown == ssl.PEM_cert_to_DER_cert(box.read(CRT))


def test_installed_rpm_reloads(rpmbox):
    """`systemctl reload turnchat` works where the .rpm was installed (no
    procps there): the pair goes on, a newcomer sees the edited name."""
    assert rpmbox.run(["test", "-e", "/bin/kill"], check=False).returncode != 0
    check_reload(rpmbox)


def test_erased_rpm_leaves_no_unit(rpmbox):
    """rpm -e: %preun disables the socket (offline, see above), the files,
    the TLS pair (%ghost) and the unmodified /etc/turnchat.conf go."""
    box = rpmbox
    box.systemctl("stop", "turnchat.socket", "turnchat.service")
    run(["rpm", "--root", box.root, "-e", "turnchatd", "turnchat"])
    box.systemctl("daemon-reload")
    for path in ("/etc/turnchat.conf", CRT, KEY, "/etc/turnchat", f"{UNITDIR}/turnchat.socket",
                 "/etc/systemd/system/sockets.target.wants/turnchat.socket",
                 "/usr/sbin/turnchatd", "/usr/bin/turnchat"):
        assert box.run(["test", "-e", path], check=False).returncode != 0, path
    units = box.run(["systemctl", "list-unit-files", "--no-legend", "turnchat*"],
                   check=False).stdout
    assert units.strip() == ""
    assert not box.listening(PORT)
