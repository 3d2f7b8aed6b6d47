"""Fixtures for the packaging tests: the .deb and .rpm files built from a
clean clone of the repository (so only what is committed counts), and
booted Debian 12 containers to install them in, made by the system tests'
harness (tests/system/container.py); clients talk to them with the helpers
in tests/lib/turnchat_helpers.py."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))

import container  # noqa: E402  (tests/system's harness)

APT_PACKAGES = ("git build-essential debhelper dpkg-dev lintian rpm rpmlint debootstrap "
                "systemd-container")
BUILD_TIMEOUT = 1200
PATH = container.PATH + ":" + os.environ.get("PATH", "")


def need(*commands):
    """Skips the calling test when a command it needs is not installed, and
    only then."""
    missing = [c for c in commands if shutil.which(c, path=PATH) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install {APT_PACKAGES})")


def run(argv, check=True, timeout=120, env=None, **kw):
    """Runs argv on this host; a failure shows everything it printed."""
    full_env = dict(env if env is not None else os.environ)
    full_env["PATH"] = PATH
    result = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=timeout,
                            env=full_env, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n"
                             + _tail(result.stdout + result.stderr))
    return result


def _tail(text, lines=120):
    return "\n".join(text.splitlines()[-lines:])


def project_version():
    """meson's project(version:), the one place the version is written."""
    import json
    info = json.loads(run(["meson", "introspect", "--projectinfo",
                           os.path.join(REPO, "meson.build")]).stdout)
    return info["version"]


def _build_env():
    """This environment without anything that would skip the build's tests."""
    env = dict(os.environ)
    for name in ("DEB_BUILD_OPTIONS", "DEB_BUILD_PROFILES"):
        env.pop(name, None)
    return env


class Built:
    """The files a build left in its output directory, by package name."""

    def __init__(self, out, log, suffix):
        self.out = out
        self.log = log
        self.files = {}
        for path in sorted(glob.glob(os.path.join(out, "*" + suffix))):
            if suffix == ".deb":
                name = run(["dpkg-deb", "-f", path, "Package"]).stdout.strip()
            else:
                name = run(["rpm", "-qp", "--qf", "%{NAME}", path]).stdout.strip()
            self.files[name] = path

    def __getitem__(self, name):
        assert name in self.files, f"no {name} package among {sorted(self.files)}"
        return self.files[name]


def _clone(tmp_path_factory, name):
    need("git")
    path = tmp_path_factory.mktemp(name) / "turnchat"
    run(["git", "clone", "--quiet", "--no-hardlinks", REPO, path])
    return path


@pytest.fixture(scope="session")
def clone(tmp_path_factory):
    """A clean checkout: what is committed, nothing else."""
    return _clone(tmp_path_factory, "clone")


@pytest.fixture(scope="session")
def debs(clone, tmp_path_factory):
    need("dpkg-buildpackage", "dh", "meson")
    out = tmp_path_factory.mktemp("debs")
    result = run([clone / "packaging" / "build-deb", out], env=_build_env(),
                 timeout=BUILD_TIMEOUT)
    built = Built(str(out), result.stdout + result.stderr, ".deb")
    built.changes = glob.glob(os.path.join(out, "*.changes"))
    return built


@pytest.fixture(scope="session")
def debs_v2(tmp_path_factory):
    """The same packages as a later Debian revision (the top changelog
    entry one revision up), to upgrade to; built without running the tests
    again."""
    need("dpkg-buildpackage", "dh", "meson")
    path = _clone(tmp_path_factory, "clone-v2")
    changelog = path / "packaging" / "debian" / "changelog"
    version = run(["dpkg-parsechangelog", "-l", changelog, "-S", "Version"]).stdout.strip()
    upstream, revision = version.rsplit("-", 1)
    new = f"{upstream}-{int(revision) + 1}"
    date = run(["date", "-R"]).stdout.strip()
    maintainer = run(["dpkg-parsechangelog", "-l", changelog, "-S", "Maintainer"]).stdout.strip()
    entry = (f"turnchat ({new}) unstable; urgency=medium\n\n"
             f"  * Upgrade test of the packaging tests.\n\n -- {maintainer}  {date}\n\n")
    changelog.write_text(entry + changelog.read_text())
    run(["git", "-C", path, "-c", "user.name=packaging test", "-c",
         "user.email=packaging-test@invalid", "commit", "--quiet", "-am", f"{new}"])
    out = tmp_path_factory.mktemp("debs-v2")
    env = _build_env()
    env["DEB_BUILD_OPTIONS"] = "nocheck"
    env["DEB_BUILD_PROFILES"] = "nocheck"
    result = run([path / "packaging" / "build-deb", out], env=env, timeout=BUILD_TIMEOUT)
    built = Built(str(out), result.stdout + result.stderr, ".deb")
    built.version = new
    return built


@pytest.fixture(scope="session")
def rpms(clone, tmp_path_factory):
    need("rpmbuild", "meson")
    out = tmp_path_factory.mktemp("rpms")
    result = run([clone / "packaging" / "build-rpm", out], env=_build_env(),
                 timeout=BUILD_TIMEOUT)
    return Built(str(out), result.stdout + result.stderr, ".rpm")


def check_reload(box, name="reloaded"):
    """`systemctl reload turnchat` on the booted container the packages were
    installed in (as minimal as a debootstrap minbase system: no procps, so
    no /bin/kill): it exits 0, a paired conversation goes on, and a newcomer
    is greeted with the server name the edited /etc/turnchat.conf gives.
    The file is put back as it was afterwards."""
    from guest import CONF, PORT, cursor, show, status, wait_journal
    from turnchat_helpers import Raw, converse, leave, pair

    original = box.read(CONF)
    waiter, caller = pair(lambda: box.connect(PORT))
    try:
        converse(waiter, caller)
        pid = show(box, "turnchat.service", "MainPID")
        since = cursor(box)
        box.run(["sed", "-i", f's/^\\( *name = \\)"turnchatd";/\\1"{name}";/', CONF])
        assert f'name = "{name}";' in box.read(CONF)
        result = box.run(["systemctl", "reload", "turnchat.service"], check=False)
        assert result.returncode == 0, (result.stdout + result.stderr + "\n"
                                        + status(box))
        # The reload is a signal: the daemon says when it has read the file.
        wait_journal(box, since, "configuration reloaded")
        assert show(box, "turnchat.service", "MainPID") == pid
        converse(waiter, caller, ["still here?", "still here."])
        newcomer = Raw.over(box.connect(PORT))
        try:
            assert newcomer.line() == f"HELLO turnchat 1 {name}"
        finally:
            newcomer.close()
        leave(caller, waiter)
    finally:
        waiter.close()
        caller.close()
        box.write(CONF, original)
        box.run(["systemctl", "try-reload-or-restart", "turnchat.service"], check=False)


def boot(box_class=container.Container, **kw):
    """A booted fresh copy of the system tests' cached Debian 12 root, as a
    generator for a fixture: it is powered off and removed afterwards."""
    container.require(*container.REQUIRED_COMMANDS)
    if os.geteuid() != 0:
        pytest.skip("booting a container needs root")
    base = container.ensure_rootfs()
    box = box_class(base, keep=bool(os.environ.get("TURNCHAT_KEEP_ROOT")), **kw)
    try:
        box.start()
        yield box
    finally:
        box.stop()
