"""Fixtures for the system tests: turnchatd under a real systemd (a booted
Debian 12 container, see container.py) and under inetd."""

import os
import shutil

import pytest

import container

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.path.abspath(os.environ.get("TURNCHAT_BUILD", os.path.join(REPO, "build")))


def require(*commands):
    """Skips when a command the test needs is not installed (and only then)."""
    missing = [c for c in commands if shutil.which(c, path=container.PATH) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} "
                    "(apt-get install debootstrap systemd-container openbsd-inetd meson)")


@pytest.fixture(scope="session")
def build():
    for program in ("turnchatd", "turnchat"):
        path = os.path.join(BUILD, "src", program)
        if not os.access(path, os.X_OK):
            raise AssertionError(f"no {path}: build first, or set TURNCHAT_BUILD")
    return BUILD


@pytest.fixture(scope="session")
def box(build):
    """One booted container for the whole session, the build installed in it."""
    require(*container.REQUIRED_COMMANDS)
    if os.geteuid() != 0:
        pytest.skip("booting a container needs root")
    base = container.ensure_rootfs()
    machine = container.Container(base, build=build, repo_units=os.path.join(REPO, "systemd"),
                                  keep=bool(os.environ.get("TURNCHAT_KEEP_ROOT")))
    try:
        machine.start()
        yield machine
    finally:
        machine.stop()
