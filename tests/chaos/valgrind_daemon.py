#!/usr/bin/python3
"""turnchatd under valgrind's memcheck: a few conversations and the ways
they end (quit, a lost peer, a too-long line, a reload, people still
waiting and talking at the stop), resumable ones (a drop and a resume, an
old connection replaced, a return after the partner quit, a spent token,
someone away and a pair talking at the stop), then SIGTERM. Passes when memcheck finds
no error and nothing definitely, indirectly or possibly lost at exit.
Skipped (status 77) when valgrind is not installed.

What is "still reachable" at exit is printed, not failed: it is memory
the daemon can still name (e.g. a pool of spare buffers), not a leak."""

import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from peers import Client, conversation  # noqa: E402
from resumable import Loop, connector, lost_or_doubled, pair  # noqa: E402
from turnchat_helpers import Daemon, hello  # noqa: E402

# Seconds for anything the daemon does under memcheck, ten times slower.
SLOW = 30


def resumes(daemon, problems):
    """What resume allocates, in every way it is let go (the caller stops
    the daemon, then runs the returned loop until the pair it leaves talking
    has its BYE)."""
    loop = Loop()
    patient = dict(timeout=SLOW, keepalive=SLOW, handshake=SLOW)
    a, b = pair(loop, connector(daemon.port), "resumed", "free", **patient)
    for i in range(5):
        a.say(f"a{i}")
        b.say(f"b{i}")
    a.drop("close")
    b.drop("abandon")
    loop.run(lambda: a.resumes and b.resumes and a.delivered and b.delivered, SLOW, "resumes")
    problems += lost_or_doubled(a, b)
    away, quitter = pair(loop, connector(daemon.port), "missed", **patient)
    away.drop("reset", after=600)
    loop.run(lambda: quitter.info, SLOW, "the drop noticed")
    quitter.say("bye")
    quitter.quit()
    loop.run(lambda: quitter.ended, SLOW, "the quit")
    spent = away.token
    away.come_back()
    loop.run(lambda: away.ended, SLOW, "the return")
    if (away.ended, away.received) != ("peer-quit", [("MSG", "bye")]):
        problems.append(f"back after the partner quit: {away.describe()}")
    late = hello(daemon.connect())
    late.send("/caps resume")
    late.line()
    late.send(f"/resume {spent} 0")
    if not late.line(SLOW).startswith("ERR no-session"):
        problems.append("a spent token was taken")
    late.close()
    gone, stays = pair(loop, connector(daemon.port), "gone", **patient)
    gone.drop("close", after=600)
    loop.run(lambda: stays.info, SLOW, "the drop noticed")
    return loop, (a, b, stays)


async def drive(daemon, problems):
    """Everything the daemon allocates for, ending in every way it can."""
    port = daemon.port
    await asyncio.gather(*(conversation(port, i, ("turns", "free")[i % 2], 8,
                                        ("127.0.0.1", "127.0.0.1"), problems, lambda: None)
                           for i in range(4)))
    lost = [await Client.open(port, "127.0.0.1", f"lost {i}", problems) for i in range(2)]
    for i, c in enumerate(lost):
        await c.expect("HELLO")
        c.send("/join lost")
    await lost[1].expect("PAIRED")
    lost[0].send_bytes(b"x" * 5000 + b"\n" + b"half a line")
    await lost[0].expect("WAITING")
    await lost[0].expect("PAIRED")
    await lost[0].expect("ERR too-long")
    await lost[0].close()
    await lost[1].until(lambda: lost[1].bye == "peer-lost", what="BYE peer-lost")
    await lost[1].close()

    # A reload with a good file, then with a broken one (kept out: the old stays).
    good = daemon.config.read_text()
    daemon.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(2)
    daemon.config.write_text(good.replace("server: {", "server: {\n  max_line = 1;", 1))
    daemon.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(2)

    # Still here at the stop: one waiting, a pair talking, one not joined.
    stay = [await Client.open(port, "127.0.0.1", f"stay {i}", problems) for i in range(4)]
    for c in stay:
        await c.expect("HELLO")
    stay[0].send("/join alone")
    await stay[0].expect("WAITING")
    stay[1].send("/join pair")
    await stay[1].expect("WAITING")
    stay[2].send("/join pair")
    await stay[2].expect("PAIRED")
    stay[2].send("still talking")
    await stay[1].until(lambda: stay[1].msgs, what="a message")
    loop, resumers = resumes(daemon, problems)
    daemon.terminate()  # once: a second SIGTERM would end it before memcheck's report
    for c in stay:
        await c.until(lambda c=c: c.bye == "shutdown", what="BYE shutdown")
        await c.close()
    loop.run(lambda: all(c.ended for c in resumers), SLOW, "BYE shutdown to the resumers")
    if [c.ended for c in resumers] != ["shutdown"] * 3:
        problems.append(f"resumers at the stop: {[c.describe() for c in resumers]}")
    loop.close()


def main():
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed; skipping")
        return 77
    problems = []
    with tempfile.TemporaryDirectory(prefix="turnchat-valgrind-") as workdir:
        os.chmod(workdir, 0o755)  # the daemon, dropped to nobody, rereads its config
        memcheck = [valgrind, "--leak-check=full", "--show-leak-kinds=all",
                    "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
                    "--track-fds=no", f"--suppressions={os.path.join(HERE, 'valgrind.supp')}"]
        try:
            daemon = Daemon(workdir, wrapper=memcheck, ready_timeout=60)
        except AssertionError as e:
            print(e)
            return 1
        try:
            asyncio.run(asyncio.wait_for(drive(daemon, problems), 120))
        except Exception as e:  # noqa: BLE001 - reported, then the daemon is still stopped
            problems.append(f"driving the daemon: {type(e).__name__}: {e}")
        status = daemon.stop(60)
        if status is None:
            problems.append("turnchatd did not stop within 60 s of SIGTERM")
        report = daemon.log()
    summary = [line.split("== ", 1)[-1] for line in report.splitlines()
               if re.search(r"(definitely|indirectly|possibly) lost:|still reachable:|"
                            r"ERROR SUMMARY:", line)]
    print("\n".join(summary))
    if status != 0:
        problems.append(f"turnchatd under valgrind exited {status} (99: memcheck found errors)")
        print(report[-6000:])
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
