#!/usr/bin/python3
"""turnchatd under valgrind's memcheck: a few conversations and the ways
they end (quit, a lost peer, a too-long line, a reload, people still
waiting and talking at the stop), then SIGTERM. Passes when memcheck finds
no error and nothing definitely, indirectly or possibly lost at exit.
Skipped (status 77) when valgrind is not installed.

What is "still reachable" at exit is printed, not failed: it is memory
the daemon can still name (e.g. a pool of spare buffers), not a leak."""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chaos import free_port  # noqa: E402
from peers import Client, conversation  # noqa: E402

BUILD = os.environ.get("TURNCHAT_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
HERE = os.path.dirname(os.path.abspath(__file__))


def stop(proc):
    """SIGTERM, once: a second one while the daemon is exiting, after it
    unblocked its signals, would kill it before memcheck's report."""
    if proc.poll() is None and not getattr(proc, "stopped", False):
        proc.send_signal(signal.SIGTERM)
        proc.stopped = True


async def drive(port, config, proc, problems):
    """Everything the daemon allocates for, ending in every way it can."""
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
    with open(config) as f:
        good = f.read()
    proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(2)
    with open(config, "w") as f:
        f.write(good + "server: { max_line = 1; };\n")
    proc.send_signal(signal.SIGHUP)
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
    stop(proc)
    for c in stay:
        await c.until(lambda c=c: c.bye == "shutdown", what="BYE shutdown")
        await c.close()


def main():
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed; skipping")
        return 77
    problems = []
    with tempfile.TemporaryDirectory(prefix="turnchat-valgrind-") as workdir:
        os.chmod(workdir, 0o755)  # the daemon, dropped to nobody, rereads its config
        port = free_port()
        config = os.path.join(workdir, "turnchat.conf")
        with open(config, "w") as f:
            f.write(f'host = "127.0.0.1";\nport = {port};\n')
        os.chmod(config, 0o644)
        log_path = os.path.join(workdir, "valgrind.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [valgrind, "--leak-check=full", "--show-leak-kinds=all",
                 "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
                 "--track-fds=no", f"--suppressions={os.path.join(HERE, 'valgrind.supp')}",
                 os.path.join(BUILD, "src", "turnchatd"), "-f", "-c", config],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "ready" not in open(log_path).read():
            if proc.poll() is not None or time.monotonic() > deadline:
                print(open(log_path).read())
                return 1
            time.sleep(0.1)
        try:
            asyncio.run(asyncio.wait_for(drive(port, config, proc, problems), 120))
        except Exception as e:  # noqa: BLE001 - reported, then the daemon is still stopped
            problems.append(f"driving the daemon: {type(e).__name__}: {e}")
        stop(proc)
        try:
            status = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            status = proc.wait()
            problems.append("turnchatd did not stop within 60 s of SIGTERM")
        report = open(log_path).read()
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
