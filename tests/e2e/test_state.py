"""The conversations' state across daemons, as turnchatd hands it to a
service manager's file descriptor store and reads it back: the real
protocol of sd_notify(3) (FDSTORE=1 on $NOTIFY_SOCKET) and sd_listen_fds(3)
(LISTEN_FDS, LISTEN_FDNAMES=state), spoken here by the test, so that a
damaged, foreign or crashing state can be handed over too. Under a real
systemd the same is tested in tests/system (test_systemd.py)."""

import array
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from test_resume import come_back, resumable, resumable_pair, token_of
from turnchat_helpers import TURNCHATD, Raw, free_port, write_config, wait_for

LOST = ("ERR no-session No conversation to resume with that token: the server restarted "
        "and could not keep its conversations")


class Manager:
    """What systemd does for turnchat.service, as far as the state goes: a
    notify socket that takes the stored descriptor, and a start that
    passes it back."""

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.config = write_config(directory / "turnchat.conf", self.port)
        self.notify_path = str(directory / "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        os.chmod(self.notify_path, 0o777)  # the daemon drops to nobody
        self.stored = None
        self.proc = None
        self.starts = 0

    def messages(self, seconds=0.2):
        """Reads what the daemon notified; keeps a stored descriptor."""
        got = []
        self.notify.settimeout(seconds)
        try:
            while True:
                fds = array.array("i")
                msg, anc, _, _ = self.notify.recvmsg(4096, socket.CMSG_LEN(4 * fds.itemsize))
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                text = msg.decode()
                if "FDSTOREREMOVE=1" in text and self.stored is not None:
                    os.close(self.stored)
                    self.stored = None
                elif "FDSTORE=1" in text and fds:
                    if self.stored is not None:
                        os.close(self.stored)
                    self.stored = fds[0]
                    for extra in fds[1:]:
                        os.close(extra)
                got.append(text)
                self.notify.settimeout(0.05)
        except TimeoutError:
            pass
        return got

    def start(self):
        self.starts += 1
        self.log_path = self.directory / f"turnchatd{self.starts}.log"
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        argv = [TURNCHATD, "-f", "-c", str(self.config)]
        passed = ()
        if self.stored is not None:
            # As systemd passes it: fd 3, named, for this very process.
            passed = (self.stored,)
            argv = [sys.executable, "-c",
                    "import os, sys; os.dup2(int(sys.argv[1]), 3); "
                    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', "
                    "LISTEN_FDNAMES='state'); os.execv(sys.argv[2], sys.argv[2:])",
                    str(self.stored), *argv]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         pass_fds=passed)
        wait_for(lambda: any("READY=1" in m for m in self.messages()), "READY=1", 10)

    def log(self):
        return self.log_path.read_text()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.messages()
        return self.proc.returncode

    def connect(self):
        return Raw(self.port)

    def close(self):
        self.stop(signal.SIGKILL)
        self.notify.close()
        if self.stored is not None:
            os.close(self.stored)


@pytest.fixture
def manager(tmp_path):
    m = Manager(tmp_path)
    yield m
    m.close()


def test_a_restart_keeps_the_conversation_and_its_unread_lines(manager):
    manager.start()
    cloud, barret, cloud_token, barret_token = resumable_pair(manager)
    barret.send("before the restart")
    assert cloud.line() == "MSG before the restart"
    cloud.send("/ack 1")
    cloud.send("still here")
    assert barret.line() == "ACK 1"
    assert barret.line() == "MSG still here"
    barret.send("not yet acknowledged")
    assert cloud.line() == "MSG not yet acknowledged"
    assert manager.stop() == 0
    # No BYE: the connections close without a word.
    assert cloud.closed() and barret.closed()
    assert "conversations kept for the next turnchatd: 1" in manager.log()
    manager.start()
    assert "1 conversation and 2 people kept" in manager.log()
    back, resumed = come_back(manager, cloud_token, 1)
    assert resumed == "RESUMED 1 Barret turns you"
    token_of(back)
    assert back.line() == "MSG not yet acknowledged"
    assert back.line().startswith("INFO Barret is not back yet")
    barret2, resumed = come_back(manager, barret_token, 1)
    assert resumed == "RESUMED 2 Cloud turns peer"
    token_of(barret2)
    assert barret2.line() == "ACK 1"  # line 2 reached Cloud, unacknowledged yet
    assert back.line() == "INFO Barret is back."
    back.send("after the restart")
    assert barret2.line() == "MSG after the restart"


def test_a_crash_loses_nothing_the_clients_still_hold(manager):
    """kill -9 right after lines moved: the state may be a second old. The
    sender sends again what RESUMED says is missing, the receiver is not
    sent twice what it has."""
    manager.start()
    cloud, barret, cloud_token, barret_token = resumable_pair(manager)
    time.sleep(1.2)  # a state with the pair in it is written
    sent = []
    for i in range(5):
        barret.send(f"line {i}") if i % 2 == 0 else cloud.send(f"line {i}")
        (cloud if i % 2 == 0 else barret).line()
        sent.append(f"line {i}")
    assert manager.stop(signal.SIGKILL) == -signal.SIGKILL
    manager.start()
    # Cloud received lines 0, 2, 4 (3 of Barret's); Barret lines 1, 3.
    c2, resumed = come_back(manager, cloud_token, 3)
    cloud_has = int(resumed.split()[1])
    token_of(c2)
    b2, resumed = come_back(manager, barret_token, 2)
    barret_has = int(resumed.split()[1])
    token_of(b2)
    # Each sends again, as its turn comes, what the server does not have;
    # nobody gets a line twice.
    for i in range(5):
        sender, has = (b2, barret_has) if i % 2 == 0 else (c2, cloud_has)
        if i // 2 + 1 > has:
            sender.send(f"line {i}")
    for client in (c2, b2):
        assert not [line for line in lines_until_quiet(client) if line.startswith("MSG")]
    # The turn survived too: it is Cloud's.
    c2.send("line 5")
    assert [line for line in lines_until_quiet(b2) if line.startswith("MSG")] == ["MSG line 5"]


def lines_until_quiet(client, seconds=0.5):
    lines = []
    while True:
        try:
            lines.append(client.line(timeout=seconds))
        except TimeoutError:
            return lines


def damaged(manager, how):
    """Runs a daemon with a pair, stops it, and damages the stored state."""
    manager.start()
    cloud, barret, cloud_token, _ = resumable_pair(manager)
    assert manager.stop() == 0
    fd = manager.stored
    assert fd is not None, "no state was stored"
    head = os.pread(fd, 32, 0)
    how(fd, head)
    return cloud_token


@pytest.mark.parametrize("how,why", [
    (lambda fd, head: os.pwrite(fd, b"\xff", 40), "damaged (checksum)"),
    (lambda fd, head: os.pwrite(fd, struct.pack("=I", 99), 8), "of version 99"),
    (lambda fd, head: os.pwrite(fd, b"notturnc", 0), "not turnchatd's"),
    (lambda fd, head: os.pwrite(fd, struct.pack("=I", 2), 12), "ended turnchatd 2 times"),
])
def test_a_state_that_cannot_be_used_is_discarded_and_clients_told(manager, how, why):
    token = damaged(manager, how)
    old = os.fstat(manager.stored).st_ino
    manager.start()
    assert why in manager.log()
    late, answer = come_back(manager, token, 0)
    assert answer == LOST
    # Taken out of the store, and a fresh state kept from then on.
    assert manager.stored is not None and os.fstat(manager.stored).st_ino != old


def test_a_state_whose_loading_crashed_once_is_tried_again(manager):
    token = damaged(manager, lambda fd, head: os.pwrite(fd, struct.pack("=I", 1), 12))
    manager.start()
    back, resumed = come_back(manager, token, 0)
    assert resumed == "RESUMED 0 Barret turns peer"


# A state kept by turnchatd 0.1.0 (state version 1) as it stopped, at add30c6,
# before the replay kept each line's length in memory: made as in the
# restart test above, Barret's "/me waves, not yet acknowledged" the last
# line, unacknowledged by Cloud, and Cloud's "still here" unacknowledged by
# Barret. A package upgrade hands the new daemon exactly such a state.
RELEASED_STATE = pathlib.Path(__file__).with_name("state-v1-0.1.0.bin")
RELEASED_TOKENS = {"Cloud": "1badf0c6340e826fc5ca7b5eb3a5bfe6",
                   "Barret": "1bba9045391cc1c9e71265d3654bf5ba"}


def test_a_state_kept_by_the_last_release_is_read_after_an_upgrade(manager):
    fd = os.memfd_create("state")
    os.write(fd, RELEASED_STATE.read_bytes())
    manager.stored = fd
    manager.start()
    assert "1 conversation and 2 people kept" in manager.log()
    cloud, resumed = come_back(manager, RELEASED_TOKENS["Cloud"], 1)
    assert resumed == "RESUMED 1 Barret turns you"
    token_of(cloud)
    assert cloud.line() == "ACTION waves, not yet acknowledged"
    assert cloud.line().startswith("INFO Barret is not back yet")
    barret, resumed = come_back(manager, RELEASED_TOKENS["Barret"], 0)
    assert resumed == "RESUMED 2 Cloud turns peer"
    token_of(barret)
    assert barret.line() == "ACK 1"
    assert barret.line() == "MSG still here"
    assert cloud.line() == "INFO Barret is back."
    cloud.send("/ack 2")
    cloud.send("after the upgrade")
    assert barret.line() == "ACK 2"
    assert barret.line() == "MSG after the upgrade"


def test_without_a_service_manager_nothing_is_kept(daemon):
    cloud = resumable(daemon, "Cloud")
    assert cloud.line() == "WAITING lobby"
    barret = resumable(daemon, "Barret")
    assert barret.line() == "PAIRED Cloud turns you"
    assert daemon.stop() == 0
    assert cloud.line() == "PAIRED Barret turns peer"
    token_of(cloud)
    assert cloud.line() == "RELAYED 0"
    assert cloud.line() == "BYE shutdown"
