"""tests/lib/resumable.py, the resumable protocol client the chaos and
system tests build on: against the real daemon, through repeated drops of
every kind, every line arrives once and in order, in turns and in free
mode; against a scripted server, it acknowledges and resends exactly as
turnchat-protocol(7) asks; and its reconnecting is bounded."""

import random
import signal
import socket
import threading

import pytest

from resumable import Loop, Resumable, connector, lost_or_doubled, pair
from turnchat_helpers import TIMEOUT, Raw, hello

DROPS = ("close", "reset", "shutdown", "abandon")
TOKEN = "0123456789abcdef" * 2
OTHER_TOKEN = "fedcba9876543210" * 2


@pytest.fixture
def loop():
    made = Loop()
    yield made
    made.close()


def test_every_line_once_and_in_order_through_drops_in_turns_mode(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port))
    rng = random.Random(14)
    speaker, listener = barret, cloud
    for i in range(60):
        speaker.say(f"/{i} from {speaker.name}" if i % 7 == 0 else f"{i} from {speaker.name}")
        if i % 5 == 2:
            rng.choice((cloud, barret)).drop(DROPS[i % len(DROPS)])
        count = len(speaker.said)
        loop.run(lambda: len(listener.received) == count, what=f"line {i}")
        speaker, listener = listener, speaker
    cloud.act("waves")
    barret.done()
    cloud.done()
    loop.run(lambda: cloud.ended and barret.ended, what="BYE done")
    assert (cloud.ended, barret.ended) == ("done", "done")
    assert cloud.drops + barret.drops == 12
    assert cloud.resumes + barret.resumes == 12
    assert lost_or_doubled(cloud, barret) == []
    assert barret.received[-1] == ("ACTION", "waves")


def test_every_line_once_and_in_order_through_drops_in_free_mode(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port), mode="free")
    rng = random.Random(7)
    dropped = {cloud: 0, barret: 0}
    for i in range(400):
        cloud.say(f"cloud {i}")
        barret.say(f"barret {i} " + "x" * rng.randrange(300))
        who = cloud if i % 40 == 13 else barret if i % 40 == 33 else None
        if who and who.phase == "paired":
            who.drop(rng.choice(DROPS))
            dropped[who] += 1
        loop.wait(0.002)
    loop.run(lambda: cloud.delivered and barret.delivered, what="every line acknowledged")
    assert lost_or_doubled(cloud, barret) == []
    cloud.done()
    barret.done()
    loop.run(lambda: cloud.ended and barret.ended, what="BYE done")
    assert (cloud.ended, barret.ended) == ("done", "done")
    assert cloud.drops >= dropped[cloud] >= 5 and barret.drops >= dropped[barret] >= 5
    assert lost_or_doubled(cloud, barret) == []


def test_the_partner_hears_of_the_drop_and_the_return(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port))
    cloud.drop("close", after=0.5)
    loop.run(lambda: len(barret.info) == 2 and cloud.resumes == 1, what="back")
    assert barret.info == [
        "Cloud's connection dropped; waiting up to 120 seconds for them to come back.",
        "Cloud is back."]


def test_a_connection_left_open_is_replaced_and_closed_by_the_server(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port))
    barret.say("hello?")
    loop.run(lambda: cloud.received, what="the first line")
    cloud.drop("abandon")
    loop.run(lambda: cloud.resumes == 1 and cloud.abandoned_closed(), what="the old one closed")
    cloud.say("yes")
    loop.run(lambda: barret.received, what="the answer")
    # The server took it for the same connection: Barret heard of no drop.
    assert barret.info == []
    assert lost_or_doubled(cloud, barret, complete=False) == []
    assert barret.received == [("MSG", "yes")]


def test_a_silent_server_is_noticed_by_the_keepalive(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port), mode="free", keepalive=0.2)
    cloud.say("before")
    loop.run(lambda: cloud.delivered, what="the first line")
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        cloud.say("while it slept")
        loop.run(lambda: cloud.drops and barret.drops, what="both noticing the silence")
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    barret.say("after")
    loop.run(lambda: cloud.delivered and barret.delivered, what="every line acknowledged")
    assert lost_or_doubled(cloud, barret) == []
    assert cloud.resumes >= 1 and barret.resumes >= 1


def test_someone_back_too_late_learns_the_conversation_is_gone(make_daemon, loop):
    d = make_daemon(server_settings="resume_timeout = 1;")
    cloud, barret = pair(loop, connector(d.port))
    barret.say("anyone?")
    loop.run(lambda: cloud.received, what="the line")
    cloud.drop("close", after=3)
    loop.run(lambda: cloud.ended and barret.ended, what="both ends")
    assert (cloud.ended, barret.ended) == ("no-session", "peer-lost")
    assert barret.relayed == 1


def test_someone_away_while_the_partner_quits_gets_the_last_lines_and_the_bye(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port))
    cloud.drop("reset", after=1)
    loop.run(lambda: barret.info, what="the drop")
    barret.say("I have to go")
    barret.quit()
    loop.run(lambda: cloud.ended and barret.ended, what="both ends")
    assert (cloud.ended, barret.ended) == ("peer-quit", "quit")
    assert cloud.received == [("MSG", "I have to go")]
    assert (cloud.relayed, barret.relayed) == (0, 1)


def test_reconnecting_is_bounded(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port), attempts=5, backoff=(0.01, 0.1),
                         through_shutdown=True)
    barret.through_shutdown = False
    daemon.stop()
    loop.run(lambda: cloud.ended and barret.ended, what="both giving up")
    assert (cloud.ended, barret.ended) == ("gave-up", "shutdown")
    assert (cloud.drops, cloud.tries) == (1, 5)


def test_a_resume_cut_short_can_be_tried_again(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port))
    token = cloud.token
    cloud.drop("close", after=60)
    loop.run(lambda: barret.info, what="the drop")
    # The network fails again right after /resume is sent: TOKEN never arrives.
    cut = daemon.connect()
    cut.send(f"/caps resume\n/resume {token} 0")
    cut.close()
    loop.run(lambda: len(barret.info) == 3, what="back and gone again")
    again = hello(daemon.connect())
    again.send("/caps resume")
    again.line()
    again.send(f"/resume {token} 0")
    assert again.line().startswith("RESUMED 0 Barret ")


def test_someone_whose_connection_broke_unnoticed_learns_how_it_ended(daemon, loop):
    cloud, barret = pair(loop, connector(daemon.port))
    # Cloud's network goes: the daemon sees an open connection, Cloud nothing.
    cloud.drop("abandon", after=60)
    barret.say("last words")
    barret.quit()
    loop.run(lambda: barret.ended, what="Barret's BYE")
    cloud.come_back()
    loop.run(lambda: cloud.ended, what="Cloud's return")
    assert (cloud.ended, cloud.received) == ("peer-quit", [("MSG", "last words")])


# ------------------------------------------------------------ a scripted server

def scripted(*scripts):
    """A server on loopback that runs each script(Raw) on the next connection
    it accepts, in a thread; returns its port and the list of what went wrong."""
    listener = socket.create_server(("127.0.0.1", 0))
    failures = []

    def serve():
        with listener:
            for script in scripts:
                listener.settimeout(TIMEOUT)
                conn, _ = listener.accept()
                client = Raw.over(conn)
                conn.settimeout(TIMEOUT)
                try:
                    script(client)
                except Exception as e:  # noqa: BLE001 - reported by the test
                    failures.append(f"{script.__name__}: {type(e).__name__}: {e}")
                finally:
                    client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, failures


def joined(client, first="-", mode="free"):
    client.send("HELLO turnchat 1 scripted")
    for expected in ("/caps resume", "/name Cloud", "/join lobby"):
        assert client.line() == expected
    client.send(f"CAPS action done resume\nPAIRED Barret {mode} {first}\nTOKEN {TOKEN} 120")


def test_acknowledgements_go_with_the_next_line_or_alone_when_idle(loop):
    done = threading.Event()

    def script(client):
        joined(client)
        client.send("MSG one")
        # Said within the (long) ack delay: one write, the /ack first.
        assert client.sock.recv(4096) == b"/ack 1\nhello\n"
        client.send("MSG two\nMSG three")
        assert client.line() == "/ack 3"
        done.wait(TIMEOUT)

    port, thread, failures = scripted(script)
    cloud = Resumable(loop, connector(port), "Cloud", ack_delay=60)
    loop.run(lambda: cloud.received, what="the first line")
    cloud.say("hello")
    cloud.ack_delay = 0.05
    loop.run(lambda: cloud.acked_told == 3, what="the idle /ack")
    done.set()
    thread.join(TIMEOUT)
    assert failures == []


def test_what_the_server_did_not_get_is_said_again_after_its_count(loop):
    def first(client):
        joined(client, "you", "turns")
        client.send("MSG from Barret")
        assert [client.line() for _ in range(3)] == ["/ack 1", "one", "/done"]

    def second(client):
        client.send("HELLO turnchat 1 scripted")
        assert client.line() == "/caps resume"
        assert client.line() == "/resume " + TOKEN + " 1"
        # The server had line 1 only: the /done and what came after go again.
        client.send(f"CAPS action done resume\nRESUMED 1 Barret turns peer\n"
                    f"TOKEN {OTHER_TOKEN} 120\nACK 1")
        assert client.line() == "/done"
        client.send("MSG your turn\nACK 2")
        assert [client.line() for _ in range(2)] == ["/ack 2", "two"]
        client.send("ACK 3\nBYE peer-quit")

    port, thread, failures = scripted(first, second)
    cloud = Resumable(loop, connector(port), "Cloud", ack_delay=5)
    loop.run(lambda: cloud.received, what="the first line")
    cloud.say("one")
    cloud.done()
    cloud.say("two")  # not its turn: waits
    loop.run(lambda: cloud.ended, what="the end")
    thread.join(TIMEOUT)
    assert failures == []
    assert (cloud.ended, cloud.acked, cloud.drops, cloud.resumes) == ("peer-quit", 3, 1, 1)
    assert cloud.token == OTHER_TOKEN


def test_lost_or_doubled_sees_loss_duplicates_and_reordering():
    class Side:
        def __init__(self, name, said, received, ended=None):
            self.name, self.said, self.received, self.ended = name, said, received, ended
            self.errors = []

    lines = [("MSG", "a"), ("MSG", "b"), ("DONE", "")]
    quiet = Side("B", [], [])
    assert lost_or_doubled(Side("A", lines, []), Side("B", [], lines)) == []
    for got in ([("MSG", "a"), ("MSG", "a"), ("MSG", "b")], [("MSG", "b"), ("MSG", "a")],
                lines[:2], lines + [("MSG", "c")]):
        assert lost_or_doubled(Side("A", lines, []), Side("B", [], got)), got
    assert lost_or_doubled(Side("A", lines, []), Side("B", [], lines[:2], "done")) == []
    assert lost_or_doubled(Side("A", lines, []), Side("B", [], lines[:1]), complete=False) == []
    assert lost_or_doubled(Side("A", lines, []), quiet, complete=True)
