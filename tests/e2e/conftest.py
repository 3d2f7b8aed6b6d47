"""Fixtures for turnchat's end-to-end tests: the real turnchatd and turnchat
binaries on loopback, on a free port, with a private config. The daemon,
the raw line client and the other helpers are tests/lib/turnchat_helpers.py,
put on sys.path here for the tests to import."""

import os
import socket
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from turnchat_helpers import Daemon  # noqa: E402


@pytest.fixture(autouse=True)
def reachable_by_nobody(tmp_path):
    """turnchatd started as root becomes nobody once its sockets are open:
    let it still read its config here on a reload, and reach sockets here."""
    top = os.path.realpath(tempfile.gettempdir())
    path = os.path.realpath(tmp_path)
    while path.startswith(top + os.sep):
        os.chmod(path, 0o755)
        path = os.path.dirname(path)


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def make_daemon(tmp_path):
    """make(settings, server_settings, **daemon_arguments): a Daemon of its
    own in a new folder under tmp_path; all stopped at the end."""
    made = []

    def make(settings="", server_settings="", subdir="d", **kw):
        path = tmp_path / f"{subdir}{len(made)}"
        path.mkdir()
        d = Daemon(path, settings, server_settings, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def client_env(tmp_path):
    """An environment where no user or system config but ours is read."""
    env = dict(os.environ)
    env["HOME"] = str(tmp_path)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["NO_COLOR"] = "1"
    env["TERM"] = "dumb"
    return env


def notify_socket(directory):
    """A datagram socket standing in for the service manager's
    NOTIFY_SOCKET: (socket, path). Anyone may write to it, as to systemd's:
    turnchatd may no longer be root."""
    path = str(directory / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(path)
    os.chmod(path, 0o777)
    return notify, path
