"""Fixtures for the system tests: turnchatd under a real systemd (a booted
Debian 12 container, see container.py) and under inetd. The line client and
the pairing helpers are tests/lib/turnchat_helpers.py, put on sys.path here."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import container  # noqa: E402
from container import BUILD, REPO, require  # noqa: E402
from guest import CONF  # noqa: E402


@pytest.fixture(scope="session")
def build():
    for program in ("turnchatd", "turnchat"):
        path = os.path.join(BUILD, "src", program)
        if not os.access(path, os.X_OK):
            raise AssertionError(f"no {path}: build first, or set TURNCHAT_BUILD")
    return BUILD


@pytest.fixture(scope="session")
def box(build):
    """One booted container for the whole session, the build installed in it
    and the TLS pair of the installed config made."""
    require(*container.REQUIRED_COMMANDS)
    if os.geteuid() != 0:
        pytest.skip("booting a container needs root")
    base = container.ensure_rootfs()
    machine = container.Container(base, build=build, repo_units=os.path.join(REPO, "systemd"),
                                  keep=bool(os.environ.get("TURNCHAT_KEEP_ROOT")))
    try:
        machine.start()
        # As the README says to after meson install (the packages' scripts
        # do it): the TLS pair the installed config names.
        machine.run(["turnchatd", "--make-certificate"])
        yield machine
    finally:
        machine.stop()


@pytest.fixture(scope="session")
def installed_config(box):
    """/etc/turnchat.conf as meson installed it, to put back after each test."""
    return box.read(CONF)
