#!/usr/bin/python3
"""Chaos test: 100 pairs converse on loopback while hostile connections do
their worst (hostile.py). Passes when every conversation finished with
nothing lost, duplicated or reordered, every hostile got the ERR or BYE it
had coming, the daemon's memory stayed under a ceiling, it answers a new
connection within a second at the end, holds no more file descriptors
than at the start, and stops cleanly on SIGTERM with no sanitizer report.

With TLS built in, the daemon also serves its TLS port with a certificate
made by turnchatd --make-certificate in the test's directory: a quarter of
the pairs converse over TLS and a tenth with one side on TLS, the actors of
hostile_tls.py misbehave there (garbage, stalled and vanishing handshakes,
records cut short, the wrong protocol on either port), and at the end the
daemon must spend next to no CPU while stalled handshakes wait.

Usage: chaos.py [--pairs N] [--rss-limit-mb N]; TURNCHAT_BUILD names the
build directory (meson sets it). Bounded: the whole run is cut at
--deadline seconds (default 170)."""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import hostile  # noqa: E402
import hostile_tls  # noqa: E402
import resumers  # noqa: E402
import turnchat_helpers  # noqa: E402
from peers import Client, conversation  # noqa: E402

# Room for the honest pairs, the hostile actors and the resumers' pairs
# at once; fill() fills what is left.
MAX_CLIENTS = 360
# CPU the daemon may spend while only stalled handshakes wait (seconds over
# QUIET_SECONDS): its once-a-second sweep, not a loop spinning on them.
QUIET_SECONDS = 2.0
QUIET_CPU = 0.1

SERVER_SETTINGS = """  max_clients = {max_clients};
  max_per_address = {per_address};
  max_waiting_per_address = {per_address};
  join_timeout = {join_timeout};
  slow_timeout = {slow_timeout};
  max_queue = 65536;
  rate_limit = 50;
  rate_burst = 100;
  log_level = "info";"""


def tls_built():
    out = subprocess.run([turnchat_helpers.TURNCHATD, "--help"], capture_output=True, text=True)
    return "--make-certificate" in out.stdout


def make_certificate(workdir):
    """A self-signed pair, made as the README says; (certificate, key)."""
    crt, key = os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key")
    conf = os.path.join(workdir, "make-certificate.conf")
    with open(conf, "w") as f:
        f.write(f'server: {{ tls_certificate = "{crt}"; tls_key = "{key}"; }};\n')
    out = subprocess.run([turnchat_helpers.TURNCHATD, "-c", conf, "--make-certificate"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"turnchatd --make-certificate failed: {out.stderr}")
    os.chmod(key, 0o644)  # a daemon started as root reads it as nobody too
    return crt, key


class Daemon(turnchat_helpers.Daemon):
    """turnchatd on the chaos config, and what it holds: memory, descriptors.
    tls: serve the TLS port too (self.tls_port; None without)."""

    def __init__(self, workdir, tls):
        settings = SERVER_SETTINGS.format(max_clients=MAX_CLIENTS,
                                          per_address=hostile.PER_ADDRESS,
                                          join_timeout=hostile.JOIN_TIMEOUT,
                                          slow_timeout=hostile.SLOW_TIMEOUT)
        top = ""
        self.tls_port = None
        if tls:
            crt, key = make_certificate(workdir)
            self.tls_port = turnchat_helpers.free_port()
            top = f"tls_port = {self.tls_port};"
            settings += f'\n  tls_certificate = "{crt}";\n  tls_key = "{key}";'
        # Under AddressSanitizer freed memory waits in a quarantine, resident,
        # 256 MiB of it by default: TLS frees a record buffer per message
        # (SSL_MODE_RELEASE_BUFFERS), so the ceiling would measure the
        # quarantine, not the daemon. A smaller one still catches a use
        # after free of anything freed in the last 64 MiB.
        env = dict(os.environ)
        if "quarantine_size_mb" not in env.get("ASAN_OPTIONS", ""):
            env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                         "quarantine_size_mb=64"]))
        try:
            super().__init__(workdir, settings=top, server_settings=settings, ready_timeout=20,
                             env=env)
        except AssertionError as e:
            raise SystemExit(f"turnchatd did not start: {e}") from None

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def guarded(coro, label, problems):
    """Runs one actor; an exception is one problem, not the end of the test."""
    try:
        return await coro
    except Exception as e:  # noqa: BLE001 - any failure of an actor is reported
        problems.append(f"{label}: {type(e).__name__}: {e}")
        return None


async def sample_memory(daemon, stats, stop):
    while not stop.is_set():
        try:
            stats["rss"] = max(stats["rss"], daemon.rss_kib())
        except OSError:
            return
        await asyncio.sleep(0.2)


async def fill(port, problems, door, all_started):
    """Fills the server to max_clients while the conversations go on, checks
    that the next person is told server-full, then lets everyone go."""
    await all_started.wait()
    async with door:
        fillers, refused = [], []
        for k in range(MAX_CLIENTS + 1):
            c = await Client.open(port, f"127.0.4.{k // 6 + 1}", f"filler {k}", problems)
            await c.expect("HELLO")
            c.send(f"/join fill{k}")
            line = await c.expect("")
            (refused if line and line.startswith("BYE") else fillers).append(c)
            if len(refused) == 2:
                break
        for c in refused:
            await c.until(lambda c=c: c.eof, 5, "EOF after server-full")
            if [line.split(" ")[:2] for line in c.lines][1:] != [["BYE", "server-full"]]:
                c.problem(f"expected HELLO and BYE server-full only, got {c.lines}")
        if len(refused) < 2:
            problems.append(f"{len(fillers)} more connections and never told server-full")
        for c in fillers + refused:
            await c.close()
        await asyncio.sleep(0.5)  # the daemon sees them go before others come in
    return f"fill ({len(fillers)} fillers)"


def pair_tls(i, tls_port):
    """Which sides of pair i speak TLS: (waiter's port, caller's port), None for plain."""
    if tls_port is None or (i % 4 != 1 and i % 10 != 2):
        return None, None
    if i % 4 == 1:
        return tls_port, tls_port
    return (tls_port, None) if i % 20 == 2 else (None, tls_port)


async def quiet_while_handshakes_stall(daemon, problems):
    """Stalled handshakes of each kind wait; the daemon must not spin on them."""
    held = await hostile_tls.held_handshakes(daemon.tls_port)
    await asyncio.sleep(0.3)
    before = daemon.cpu_seconds()
    await asyncio.sleep(QUIET_SECONDS)
    spent = daemon.cpu_seconds() - before
    hostile_tls.close_all(held)
    print(f"with {len(held)} handshakes stalled: {spent:.2f} s of daemon CPU in "
          f"{QUIET_SECONDS:.0f} s")
    if spent > QUIET_CPU:
        problems.append(f"the daemon spent {spent:.2f} s of CPU in {QUIET_SECONDS:.0f} s while "
                        f"{len(held)} handshakes stalled (at most {QUIET_CPU} s)")


def hostile_actors(port, problems, door):
    src = iter(f"127.0.2.{i}" for i in range(1, 255))
    actors = []
    for seed in range(10):
        actors.append(hostile.garbage(port, next(src), problems, door, seed))
    for seed in range(4):
        actors.append(hostile.long_line(port, next(src), problems, door, seed))
    for seed in range(8):
        actors.append(hostile.slowloris(port, next(src), problems, door, seed, seed % 2 == 1))
    for seed in range(4):
        actors.append(hostile.dirty(port, (next(src), next(src)), problems, door, seed))
    for seed in range(2):
        actors.append(hostile.rate_flood(port, (next(src), next(src)), problems, door, seed))
    for seed in range(3):
        actors.append(hostile.unread_flood(port, (next(src), next(src)), problems, door, seed))
    for seed in range(4):
        actors.append(hostile.reset_mid_line(port, (next(src), next(src)), problems, door, seed))
    actors.append(hostile.per_address(port, "127.0.3.1", problems, door))
    return actors


async def run(daemon, args, problems):
    port = daemon.port
    door = asyncio.Lock()
    all_started = asyncio.Event()
    started = [0]

    def one_started():
        started[0] += 1
        if started[0] == args.pairs:
            all_started.set()

    stats, stop = {"rss": 0}, asyncio.Event()
    sampler = asyncio.ensure_future(sample_memory(daemon, stats, stop))
    baseline_fds = daemon.fds()
    t0 = time.monotonic()
    talks = [conversation(port, i, ("turns", "free")[i % 2], args.lines,
                          (f"127.0.1.{i % 250 + 1}", f"127.0.1.{(i + 125) % 250 + 1}"),
                          problems, one_started, pair_tls(i, daemon.tls_port))
             for i in range(args.pairs)]
    jobs = [guarded(c, f"pair {i}", problems) for i, c in enumerate(talks)]
    jobs += [guarded(a, "hostile", problems) for a in hostile_actors(port, problems, door)]
    if daemon.tls_port:
        jobs += [guarded(a, "hostile TLS", problems)
                 for a in hostile_tls.actors(port, daemon.tls_port, problems, door)]
    jobs.append(guarded(fill(port, problems, door, all_started), "fill", problems))
    resume_jobs, pool = resumers.actors(port, problems, door)
    jobs += [guarded(r, "resume", problems) for r in resume_jobs]
    try:
        done = await asyncio.gather(*jobs)
    finally:
        pool.shutdown(wait=False)
    done, resumed = done[:-len(resume_jobs)], done[-len(resume_jobs):]
    finished = sum(1 for d in done[:args.pairs] if d)
    print(f"{finished} of {args.pairs} conversations, {sum(1 for d in done[args.pairs:] if d)}"
          f" of {len(done) - args.pairs} hostile actors and {sum(1 for r in resumed if r)} of "
          f"{len(resumed)} resume actors finished in {time.monotonic() - t0:.1f} s")
    print("hostile actors: " + ", ".join(sorted({str(d).split(" ")[0] for d in done[args.pairs:] if d})))
    print("resume actors: " + "; ".join(r for r in resumed if r))
    print(next((d for d in done if d and d.startswith("fill")), "fill did not finish"))
    if finished != args.pairs:
        problems.append(f"only {finished} of {args.pairs} conversations finished")

    if daemon.tls_port:
        await quiet_while_handshakes_stall(daemon, problems)

    # A newcomer is served at once, after all that.
    t = time.monotonic()
    c = await Client.open(port, "127.0.5.1", "newcomer", problems)
    await c.expect("HELLO", timeout=1)
    if time.monotonic() - t > 1:
        problems.append(f"a new connection waited {time.monotonic() - t:.2f} s for HELLO")
    await c.close()

    # Every connection is gone; so must the daemon's descriptors be (closing
    # connections may take their grace period to go).
    deadline = time.monotonic() + 12
    while daemon.fds() > baseline_fds and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    if daemon.fds() > baseline_fds:
        problems.append(f"the daemon holds {daemon.fds()} descriptors, {baseline_fds} at the start")
    stop.set()
    await sampler
    print(f"daemon memory: at most {stats['rss'] / 1024:.1f} MiB resident")
    if stats["rss"] > args.rss_limit_mb * 1024:
        problems.append(f"the daemon grew to {stats['rss'] / 1024:.1f} MiB "
                        f"(limit {args.rss_limit_mb} MiB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--lines", type=int, default=80, help="lines each side says")
    parser.add_argument("--rss-limit-mb", type=int,
                        default=int(os.environ.get("CHAOS_RSS_LIMIT_MB", "64")))
    parser.add_argument("--deadline", type=int, default=170)
    args = parser.parse_args()

    problems = []
    with tempfile.TemporaryDirectory(prefix="turnchat-chaos-") as workdir:
        tls = tls_built()
        print("TLS: " + ("served too" if tls else "not built in; plain text only"))
        daemon = Daemon(workdir, tls)
        try:
            asyncio.run(asyncio.wait_for(run(daemon, args, problems), args.deadline))
        except asyncio.TimeoutError:
            problems.append(f"the run passed its deadline of {args.deadline} s")
        alive = daemon.proc.poll() is None
        status = daemon.stop()
        log = daemon.log()
        if not alive:
            problems.append(f"turnchatd died during the run (status {daemon.proc.returncode})")
        elif status != 0:
            problems.append(f"turnchatd exited {status} on SIGTERM")
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                problems.append(f"sanitizer report in the daemon's log: {marker}")
        if any(token in log for token in resumers.TOKENS):
            problems.append("a resume token is in the daemon's log")
        # Someone left away would still count: everyone has gone by now.
        if alive and "shutting down: 0 clients, 0 conversations" not in log:
            problems.append("the daemon still held people at the stop: " + next(
                (line for line in log.splitlines() if "shutting down:" in line), "(no line)"))
        if problems:
            print(f"--- turnchatd log (last 40 lines) ---\n" + "\n".join(log.splitlines()[-40:]))
    for p in problems[:50]:
        print("PROBLEM:", p)
    if len(problems) > 50:
        print(f"... and {len(problems) - 50} more")
    print("chaos: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
