#!/usr/bin/python3
"""The restart row of the resume benchmark (issue 14): turnchatd under a
real systemd, the system tests' booted Debian 12 container
(tests/system/container.py), with 1000 resumable conversations in
pingpong, then `systemctl restart turnchat`: how long until every
conversation flows again. turnchat-bench (storm --server-drops) runs from
inside the container's network, notices the drops itself, comes back
after turnchat(1)'s jittered delay and measures from the first drop until
every pair has had a message arrive on both of its new connections.

Each rep starts the service afresh (a stop empties the descriptor store),
so that every restart keeps exactly one run's conversations. The config
raises the limits as tests/bench/run's does; the shipped unit's
LimitNOFILE (65536) has room for the 2000 connections.

Usage: restart.py [--reps N] [--pairs N] [--smoke] BUILD
BUILD is a meson build set up with --prefix=/usr (it is installed into
the container). Run as root. Exit status 0, 1 when a run reported an
error, 2 on a setup problem, 77 (skipped) without root, a tool, or a
/usr build. Bounded: each
bench run has a hard time limit, and the container is powered off at the
end."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import container  # noqa: E402
from guest import configure  # noqa: E402

PORT = 52928
LIMITS = dict(max_clients=30000, max_per_address=1000000, max_waiting_per_address=1000000,
              rate_limit=0, rate_burst=1000000, join_timeout=0, idle_timeout=0, exit_idle=0,
              log_level="notice")
SETTLE = 1.0  # seconds of pingpong before the restart


def field(result, key):
    m = re.search(rf" {key}=(\S+)", result)
    return float(m.group(1)) if m else None


def host_pid(box, unit="turnchat.service"):
    """The host's PID of unit's main process in the container, or None."""
    inner = box.systemctl("show", "-p", "MainPID", "--value", unit).stdout.strip()
    ns = os.readlink(f"/proc/{box.pid}/ns/pid")
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            with open(f"/proc/{entry}/status") as f:
                if any(line.startswith("NSpid:") and line.split()[-1] == inner for line in f):
                    return int(entry)
        except OSError:
            continue
    return None


def one_restart(box, bench, pairs, reconnect_ms):
    """One rep: a fresh service, pairs conversations, a restart. Returns
    (the bench's RESULT line, seconds systemctl restart took, the new
    daemon's journal lines about kept state), or raises RuntimeError."""
    box.systemctl("stop", "turnchat.socket", "turnchat.service", check=False)
    box.systemctl("reset-failed", "turnchat.socket", "turnchat.service", check=False)
    box.systemctl("start", "turnchat.socket", "turnchat.service")
    # This rep's journal only: the last stop wrote its own lines.
    cursor = box.run(["journalctl", "-u", "turnchat.service", "-n", "0", "--show-cursor",
                      "--no-pager"], check=False).stdout.rpartition("cursor: ")[2].strip()
    # Its CPU until the restart; the bench reports none for the storm, which
    # spans two daemons.
    pid = host_pid(box)
    if pid is None:
        raise RuntimeError("turnchatd's process not found")
    time_limit = 60 + pairs // 50
    argv = ["nsenter", "-t", str(box.pid), "-n", "--", bench, "storm", "--server-drops",
            "-p", str(PORT), "-P", str(pairs), "-d", "1", "--reconnect-ms", str(reconnect_ms),
            "-T", str(time_limit), "--pid", str(pid)]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took = None
    try:
        # The bench says when every pair talks; then the restart.
        errors = []
        for line in run.stderr:
            if "waiting for the server to drop them" in line:
                break
            errors.append(line.rstrip())
        else:
            raise RuntimeError("the bench ended before every pair talked: " + "; ".join(errors[:5]))
        time.sleep(SETTLE)
        started = time.monotonic()
        box.systemctl("restart", "turnchat.service", timeout=120)
        took = time.monotonic() - started
        out, err = run.communicate(timeout=time_limit + 40)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    result = next((line for line in out.splitlines() if line.startswith("RESULT ")), "")
    if run.returncode != 0 or not result:
        raise RuntimeError(f"turnchat-bench exited {run.returncode}:\n{out}{err}")
    journal = box.run(["journalctl", "-u", "turnchat.service", f"--after-cursor={cursor}",
                       "-o", "cat", "--no-pager"], check=False).stdout
    kept = [line for line in journal.splitlines() if "kept" in line]
    return result, took, kept


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--reconnect-ms", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="50 pairs, one rep")
    parser.add_argument("build")
    args = parser.parse_args()
    if args.smoke:
        args.reps, args.pairs = 1, 50
    build = os.path.abspath(args.build)
    bench = os.path.join(build, "tests", "bench", "turnchat-bench")
    missing = container.missing_commands()
    if missing:
        print(f"restart: not installed: {', '.join(missing)}; skipped")
        return 77
    if os.geteuid() != 0:
        print("restart: booting a container needs root; skipped")
        return 77
    if not os.access(bench, os.X_OK):
        print(f"restart: no {bench}: build first")
        return 2
    if container.build_prefix(build) != "/usr":
        print(f"restart: {build} is not set up with --prefix=/usr, which the units and the "
              "container need; skipped")
        return 77

    box = container.Container(container.ensure_rootfs(), build=build,
                              repo_units=os.path.join(container.REPO, "systemd"))
    problems, rows = [], []
    try:
        box.start()
        configure(box, port=PORT, host="127.0.0.1", **LIMITS)
        print(f"restart: {args.pairs} resumable pairs in pingpong, `systemctl restart "
              f"turnchat` after {SETTLE:.0f} s, clients back after 0.5-1.5 x "
              f"{args.reconnect_ms} ms; {args.reps} rep(s)")
        for rep in range(args.reps):
            try:
                result, took, kept = one_restart(box, bench, args.pairs, args.reconnect_ms)
            except (RuntimeError, subprocess.TimeoutExpired, AssertionError) as e:
                problems.append(f"rep {rep + 1}: {e}")
                continue
            rows.append((field(result, "storm_s"), field(result, "p50_us"),
                         field(result, "p99_us"), took))
            print(f"  rep {rep + 1}: every pair talking again {rows[-1][0]:.3f} s after the "
                  f"first drop (a pair: p50 {rows[-1][1] / 1000:.0f} ms, p99 "
                  f"{rows[-1][2] / 1000:.0f} ms); systemctl restart took {took:.2f} s")
            for line in kept:
                print(f"    journal: {line}")
    except container.SetupError as e:
        print(f"restart: {e}")
        return 2
    finally:
        box.stop()
    if rows:
        med = [statistics.median(column) for column in zip(*rows)]
        print(f"| restart 1 service, {args.pairs} conversations | {med[0]:.3f} s | "
              f"{med[1] / 1000:.0f} ms | {med[2] / 1000:.0f} ms | {med[3]:.2f} s | < 2 s | "
              f"{'yes' if med[0] < 2 and not problems else 'NO'} |")
        print("(medians: every pair back, a pair's own p50 and p99, systemctl restart)")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
