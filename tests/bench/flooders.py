#!/usr/bin/python3
"""What eight flooders cost an honest pair (issue 10).

    tests/bench/flooders.py [--smoke] [--reps N] [--duration S] [--warmup S]
                            [--flooders N] [--interval S] [BUILD_DIR...]

An honest pair in free mode ping-pongs one line at a time, one round trip
every --interval seconds (10 lines/s per side, half the default rate_limit),
and records each round trip. Each rep measures two conditions on freshly
started turnchatds: no flooders, and --flooders separate processes that send
empty lines as fast as they can, read what comes back (ERR, then BYE flood)
and connect again when ended, until told to stop (or their own deadline).
The conditions alternate (0 then 8, then 8 then 0, ...) so that the
machine's noise hits both alike; every figure comes from this one run.
Per condition it prints the median and p99 round trip, the daemon's CPU
time (/proc/PID/stat) and how many lines it logged during the measurement,
and what the flooders sent and received. Given several build directories
(default: build), each rep runs both conditions on each of them, interleaved:
an A/B of two turnchatds in one run.

Every limit of the daemon is at its default (rate_limit 20, rate_burst 40,
max_per_address 32, log_level "info", ...): the config sets only where it
listens, a free loopback port. The honest pair connects from 127.0.0.1,
flooder N from 127.0.0.(10+N).

--smoke is the short version for CI (a few seconds, one rep): it checks
correctness only, never speed: every ping got its pong, in order; every
flooder was told BYE flood, and no flooder connection ended without a BYE;
the daemon logged no more lines per flooder connection than it documents.
The full run checks the same and reports, but never fails on, the figures. Exit status: 0, 1 on any such error or a
daemon that died, 2 on a setup problem.

Pinning (two cores or more): the flooders get core 0, as if they were other
machines; the daemon and the honest pair share core 1, so the pair also
waits for whatever CPU the daemon spends on the flooders. The pair must not
share a core with the flooders: on this machine's kernel (PREEMPT_NONE) a
woken process can wait milliseconds behind a busy one, even one under
SCHED_IDLE, and that delay is the bench's, not the daemon's.
"""
import argparse
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

PYTHON = "/usr/bin/python3"
CHUNK = b"\n" * 65536
PAIR_TIMEOUT = 5.0        # a pong later than this is an error, not a figure
FLOODER_GRACE = 10.0      # after its deadline, a flooder is killed
LOG_LINES_PER_FLOOD = 4   # connection from, refused a line, refused N more, over ... ending
LOG_LINES_FIXED = 30      # start, stop and the honest pair's own lines


# --- the flooder (a separate process) --------------------------------------

def flooder_main(port, source, deadline):
    """Floods until SIGTERM or deadline (time.monotonic(), the same clock in
    every process); prints 'started' once connected, then one JSON line."""
    global stop_at
    stop_at = deadline

    def stop(signum, frame):
        global stop_at
        stop_at = 0

    signal.signal(signal.SIGTERM, stop)
    signal.alarm(int(max(0, deadline - time.monotonic()) + FLOODER_GRACE))  # backstop
    stats = dict(source=source, connections=0, bytes_written=0, err_lines=0, bye_flood=0,
                 bye_other={}, ended_without_bye=0, connect_errors=0, cut_by_deadline=0)
    sel = selectors.DefaultSelector()
    started = False
    stats["started_at"] = time.monotonic()
    while time.monotonic() < stop_at:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((source, 0))
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
        except OSError:
            stats["connect_errors"] += 1
            s.close()
            time.sleep(0.01)
            continue
        stats["connections"] += 1
        if not started:
            print("started", flush=True)
            started = True
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        pending = b""
        ended = None
        sending = True
        while ended is None:
            now = time.monotonic()
            if now >= stop_at:
                stats["cut_by_deadline"] += 1
                break
            for _, events in sel.select(min(0.5, stop_at - now)):
                if events & selectors.EVENT_WRITE and sending:
                    try:
                        stats["bytes_written"] += s.send(CHUNK)
                    except BlockingIOError:
                        pass
                    except OSError:
                        # Reset: what arrived before it can still be read.
                        sending = False
                        sel.modify(s, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    try:
                        data = s.recv(262144)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        ended = ended or "eof"
                        continue
                    lines = (pending + data).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if line.startswith(b"ERR "):
                            stats["err_lines"] += 1
                        elif line.startswith(b"BYE "):
                            reason = line.split(b" ")[1].decode(errors="replace")
                            if reason == "flood":
                                stats["bye_flood"] += 1
                            else:
                                stats["bye_other"][reason] = stats["bye_other"].get(reason, 0) + 1
                            ended = "bye"
        if ended == "eof":
            stats["ended_without_bye"] += 1
        sel.unregister(s)
        s.close()
    stats["stopped_at"] = time.monotonic()
    print(json.dumps(stats), flush=True)


# --- the daemon ----------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def count_lines(path):
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def log_kinds(path):
    """How many log lines of each kind: numbers, addresses and names blanked."""
    kinds = Counter()
    with open(path, "rb") as f:
        for line in f:
            text = line.decode(errors="replace").strip()
            text = re.sub(r"^turnchatd(\[\d+\])?: ", "", text)
            text = re.sub(r"\(127\.[^)]*\)", "(ADDR)", text)
            text = re.sub(r"\d+", "N", text)
            kinds[text] += 1
    return kinds


class Daemon:
    def __init__(self, build, work, pin):
        self.port = free_port()
        self.conf = os.path.join(work, "turnchat.conf")
        self.log = os.path.join(work, "turnchatd.log")
        # Every server limit at its default: rate_limit 20, rate_burst 40,
        # max_per_address 32, log_level "info" and the rest. Only where it
        # listens is set: a free loopback port, so no other daemon is hit.
        with open(self.conf, "w") as f:
            f.write(f'host = "127.0.0.1";\nport = {self.port};\n')
        os.chmod(self.conf, 0o644)  # started as root, it reads it again as nobody
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([os.path.join(build, "src", "turnchatd"), "-f", "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT)
        if pin:
            os.sched_setaffinity(self.proc.pid, {1})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.log, "rb") as f:
                if b"ready" in f.read():
                    return
            time.sleep(0.05)
        self.stop()
        raise SetupError("turnchatd never became ready:\n" + open(self.log, errors="replace").read())

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()


class SetupError(Exception):
    pass


# --- the honest pair -----------------------------------------------------

class Peer:
    def __init__(self, port, source, name):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=PAIR_TIMEOUT,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.name = name
        self.expect("HELLO ")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise Problem(f"{self.name}: the daemon closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def expect(self, start):
        try:
            line = self.line()
        except socket.timeout:
            raise Problem(f"{self.name}: nothing within {PAIR_TIMEOUT} s while waiting for {start!r}")
        if not line.startswith(start):
            raise Problem(f"{self.name}: expected {start!r}, got {line!r}")
        return line

    def close(self):
        self.sock.close()


class Problem(Exception):
    pass


def honest_pair(port, room):
    a = Peer(port, "127.0.0.1", "ping side")
    b = Peer(port, "127.0.0.1", "pong side")
    for peer, name in ((a, "ping"), (b, "pong")):
        peer.send(f"/name {name}")
        peer.send("/mode free")
    a.send(f"/join {room}")
    a.expect(f"WAITING {room}")
    b.send(f"/join {room}")
    a.expect("PAIRED pong free -")
    b.expect("PAIRED ping free -")
    return a, b


def ping_pong(a, b, duration, interval):
    """One round trip every interval for duration seconds; returns the
    round trips in microseconds. Any lost, reordered or foreign line is a
    Problem. Never catches up in bursts: a late round trip delays the next."""
    rtts = []
    start = time.monotonic()
    next_at = start
    i = 0
    while True:
        now = time.monotonic()
        if now - start >= duration:
            return rtts
        if next_at > now:
            time.sleep(next_at - now)
        t0 = time.perf_counter_ns()
        a.send(f"ping {i}")
        line = b.expect("MSG ping ")
        if line != f"MSG ping {i}":
            raise Problem(f"ping {i} arrived as {line!r}")
        b.send(f"pong {i}")
        line = a.expect("MSG pong ")
        t1 = time.perf_counter_ns()
        if line != f"MSG pong {i}":
            raise Problem(f"ping {i} was answered with {line!r}")
        rtts.append((t1 - t0) / 1000)
        i += 1
        next_at = max(next_at + interval, time.monotonic())


# --- one measurement -----------------------------------------------------

def start_flooders(args, count, port, stop_at, pin, procs):
    """Starts them into procs (so that the caller can always end them) and
    returns once every one is connected and flooding."""
    for n in range(count):
        # Each from its own address (127.0.0.10, .11, ...): max_per_address
        # counts per address, and eight addresses are the harder case for
        # the daemon than one that soon meets that limit.
        source = f"127.0.0.{10 + n}"
        p = subprocess.Popen([PYTHON, os.path.abspath(__file__), "--flooder", str(port), source,
                              repr(stop_at)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        if pin:
            os.sched_setaffinity(p.pid, {0})
        procs.append(p)
    # The measurement starts only once every flooder is connected.
    deadline = time.monotonic() + 15
    for p in procs:
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        if not sel.select(max(0, deadline - time.monotonic())):
            raise SetupError("a flooder did not connect within 15 s")
        if p.stdout.readline().strip() != b"started":
            raise SetupError("a flooder did not start")


def collect_flooders(procs, stop_at):
    results = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(0, stop_at - time.monotonic()) + FLOODER_GRACE)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise Problem(f"flooder {p.pid} did not stop by itself")
        if p.returncode != 0 or not out.strip():
            raise Problem(f"flooder {p.pid} failed (exit {p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def measure(args, build, n_flooders, rep, pin):
    work = tempfile.mkdtemp(prefix="turnchat-flooders.")
    os.chmod(work, 0o755)
    daemon = Daemon(build, work, pin)
    row = dict(flooders=n_flooders, rep=rep, errors=[])
    procs = []
    try:
        a, b = honest_pair(daemon.port, f"r{rep}f{n_flooders}")
        # The flooders' own deadline, a backstop: the time to start them
        # (at most 15 s), the warm-up, the measurement and a margin. They
        # are told to stop (SIGTERM) as soon as the measurement is over.
        stop_at = time.monotonic() + 15 + args.warmup + args.duration + 2
        if n_flooders:
            start_flooders(args, n_flooders, daemon.port, stop_at, pin, procs)
        time.sleep(args.warmup)
        cpu0, log0, t0 = cpu_ticks(daemon.proc.pid), count_lines(daemon.log), time.monotonic()
        rtts = ping_pong(a, b, args.duration, args.interval)
        cpu1, log1, t1 = cpu_ticks(daemon.proc.pid), count_lines(daemon.log), time.monotonic()
        row.update(rtts=rtts, seconds=t1 - t0,
                   cpu_pct=100.0 * (cpu1 - cpu0) / os.sysconf("SC_CLK_TCK") / (t1 - t0),
                   log_lines=log1 - log0)
        # Done: tell the flooders to stop now rather than at their deadline.
        for p in procs:
            p.send_signal(signal.SIGTERM)
        if procs:
            row["flood"] = collect_flooders(procs, stop_at)
            procs.clear()
        a.send("/q")
        a.expect("BYE quit")
        b.expect("BYE peer-quit")
        a.close()
        b.close()
        if not daemon.alive():
            raise Problem("turnchatd died")
    except (Problem, OSError) as e:
        row["errors"].append(str(e))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if not daemon.alive():
            row["errors"].append(f"turnchatd died (status {daemon.proc.returncode})")
        daemon.stop()
        row["log_total"] = count_lines(daemon.log)
        row["log_kinds"] = log_kinds(daemon.log)
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)
    return row


# --- the report ----------------------------------------------------------

def percentile(values, p):
    """Nearest rank: the smallest value with at least p% at or below it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def flood_totals(rows):
    total = Counter()
    for row in rows:
        for f in row.get("flood", []):
            for key in ("connections", "bytes_written", "err_lines", "bye_flood",
                        "ended_without_bye", "connect_errors", "cut_by_deadline"):
                total[key] += f[key]
            total["bye_other"] += sum(f["bye_other"].values())
    return total


def flood_rates(rows):
    """Per second of flooding, all flooders together, averaged over rows."""
    rates = Counter()
    flooded = [row for row in rows if row.get("flood")]
    for row in flooded:
        for f in row["flood"]:
            span = max(f["stopped_at"] - f["started_at"], 1e-3)
            for key in ("connections", "bytes_written", "err_lines"):
                rates[key] += f[key] / span / len(flooded)
    return rates


def summary(rows):
    rtts = [r for row in rows for r in row.get("rtts", [])]
    seconds = sum(row.get("seconds", 0) for row in rows)
    cpu = [row["cpu_pct"] for row in rows if "cpu_pct" in row]
    logs = sum(row.get("log_lines", 0) for row in rows)
    return dict(n=len(rtts), p50=percentile(rtts, 50), p99=percentile(rtts, 99),
                max=max(rtts, default=float("nan")),
                cpu=percentile(cpu, 50) if cpu else float("nan"),
                log_lines=logs, log_rate=logs / seconds if seconds else float("nan"),
                seconds=seconds, flood=flood_totals(rows), rates=flood_rates(rows))


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def fmt_row(label, width, flooders, s):
    f, r = s["flood"], s["rates"]
    return (f"| {label:<{width}} | {flooders:>8} | {s['n']:>6} | {s['p50']:>9.0f} | {s['p99']:>9.0f} | {s['max']:>9.0f} "
            f"| {s['cpu']:>6.0f}% | {s['log_lines']:>9} | {s['log_rate']:>8.0f} "
            f"| {r['connections']:>8.0f} | {r['bytes_written'] / 1e6:>9.1f} "
            f"| {r['err_lines']:>9.0f} | {f['bye_flood']:>7} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--duration", type=float, help="seconds measured per condition and rep")
    ap.add_argument("--warmup", type=float, help="seconds of flooding before measuring")
    ap.add_argument("--flooders", type=int, default=8)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between round trips")
    ap.add_argument("--flooder", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("builds", nargs="*", metavar="BUILD_DIR",
                    help="default build; with several, each rep runs them all, interleaved")
    args = ap.parse_args()
    if args.flooder:
        flooder_main(int(args.flooder[0]), args.flooder[1], float(args.flooder[2]))
        return 0
    smoke = args.smoke
    builds = args.builds or ["build"]
    args.reps = args.reps or (1 if smoke else 5)
    args.duration = args.duration or (1.5 if smoke else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if smoke else 1.0)
    if args.reps < 1 or args.flooders < 1 or args.duration <= 0 or args.interval <= 0:
        print("flooders: --reps, --flooders, --duration and --interval must be positive",
              file=sys.stderr)
        return 2
    if 1 / args.interval > 20:
        print("flooders: note: more than rate_limit's default 20 lines/s per side; "
              "the honest pair will be refused", file=sys.stderr)
    for build in builds:
        daemon_bin = os.path.join(build, "src", "turnchatd")
        if not os.access(daemon_bin, os.X_OK):
            print(f"flooders: {daemon_bin} not found; build first (meson compile -C {build})",
                  file=sys.stderr)
            return 2
    pin = (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {1})  # the honest pair, beside the daemon
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))

    print(f"flooders: {'smoke' if smoke else 'full'}, {args.reps} rep(s) of 0 and {args.flooders} "
          f"flooders interleaved, {args.duration:g} s measured each after {args.warmup:g} s of "
          f"flooding, one round trip every {args.interval * 1000:g} ms")
    print(f"machine: {os.cpu_count()} cores, "
          f"{cpu_model()}, kernel {os.uname().release}; pinning: "
          + ("turnchatd and the honest pair on core 1, the flooders on core 0" if pin else "none"))
    rows = []
    conditions = [(b, n) for b in builds for n in (0, args.flooders)]
    for rep in range(1, args.reps + 1):
        # Alternate the order, so that neither condition always comes first.
        for build, n in (conditions if rep % 2 else conditions[::-1]):
            try:
                row = measure(args, build, n, rep, pin)
            except SetupError as e:
                print(f"flooders: {e}", file=sys.stderr)
                return 2
            row["build"] = build
            rows.append(row)

    print()
    width = max(len("build"), *(len(b) for b in builds))
    print(f"| {'build':<{width}} | {'flooders':>8} | {'trips':>6} | {'p50 us':>9} | {'p99 us':>9} "
          f"| {'max us':>9} | {'CPU':>7} | {'log lines':>9} | {'lines/s':>8} | {'conn/s':>8} "
          f"| {'MB/s sent':>9} | {'ERR/s':>9} | {'BYE fl.':>7} |")
    print("|" + "|".join("-" * w for w in (width + 2, 10, 8, 11, 11, 11, 9, 11, 10, 10, 11, 11, 9)) + "|")
    verdicts = []
    for build in builds:
        by = {n: summary([r for r in rows if r["build"] == build and r["flooders"] == n])
              for n in (0, args.flooders)}
        for n in (0, args.flooders):
            print(fmt_row(build, width, n, by[n]))
        quiet, loud = by[0], by[args.flooders]
        added50, added99 = loud["p50"] - quiet["p50"], loud["p99"] - quiet["p99"]
        verdicts.append(f"{build}: {args.flooders} flooders add {added50:+.0f} us to the median "
                        f"({loud['p50'] / quiet['p50']:.2f}x), {added99:+.0f} us to p99 "
                        f"({loud['p99'] / quiet['p99']:.2f}x)"
                        + ("" if smoke else "; target (p99 added <= 3000 us, 'a few ms'): "
                           + ("met" if added99 <= 3000 else "NOT met")))
    print()
    print("\n".join(verdicts))
    print("(trips: round trips of the honest pair, all reps together, as are p50, p99 and max;"
          " CPU: turnchatd's utime+stime during the measurement, % of one core, median of the reps;"
          " log lines: written during the measurement; conn/s, MB/s sent (empty lines written, as"
          " the kernel took them) and ERR/s: all flooders together, per second of flooding;"
          " BYE fl.: BYE flood received, all reps)")

    print()
    print("each rep:")
    for row in rows:
        rt = row.get("rtts", [])
        print(f"  {row['build']}, rep {row['rep']}, {row['flooders']} flooders: {len(rt)} trips, "
              f"p50 {percentile(rt, 50):.0f} us, p99 {percentile(rt, 99):.0f} us, "
              f"max {max(rt, default=float('nan')):.0f} us, CPU {row.get('cpu_pct', float('nan')):.0f}%, "
              f"log {row.get('log_lines', '-')} lines measured, {row.get('log_total', '-')} in all")
        if row.get("flood"):
            t = flood_totals([row])
            print(f"    flooders: {t['connections']} connections, {t['bytes_written']} empty lines "
                  f"written, {t['err_lines']} ERR, {t['bye_flood']} BYE flood, "
                  f"{t['bye_other']} other BYE, {t['ended_without_bye']} ended without BYE, "
                  f"{t['connect_errors']} failed connects, {t['cut_by_deadline']} cut by the end")
            others = Counter()
            for f in row["flood"]:
                others.update(f["bye_other"])
            if others:
                print(f"    other BYE: {dict(others)}")
            for text, count in row.get("log_kinds", Counter()).most_common(5):
                print(f"    log {count:>8} x {text[:100]}")
        for e in row["errors"]:
            print(f"    ERROR: {e}")

    problems = [f"{r['build']}, rep {r['rep']}, {r['flooders']} flooders: {e}"
                for r in rows for e in r["errors"]]
    for row in rows:
        where = f"{row['build']}, rep {row['rep']}, {row['flooders']} flooders"
        if "rtts" in row and not row["rtts"]:
            problems.append(f"{where}: no round trip completed")
        for f in row.get("flood", []):
            if f["bye_flood"] == 0:
                problems.append(f"{where}: the flooder from {f['source']} was never told BYE flood "
                                f"({f['connections']} connections, {f['err_lines']} ERR)")
            if f["ended_without_bye"]:
                problems.append(f"{where}: the flooder from {f['source']} saw {f['ended_without_bye']} "
                                f"of its {f['connections']} connections end without a BYE")
        # What the daemon promises: a few lines per connection, however
        # many lines that connection had refused.
        conns = sum(f["connections"] for f in row.get("flood", []))
        bound = LOG_LINES_PER_FLOOD * conns + LOG_LINES_FIXED
        if row.get("log_total", 0) > bound:
            problems.append(f"{where}: turnchatd logged {row['log_total']} lines, more than "
                            f"{LOG_LINES_PER_FLOOD} per flooder connection ({conns}) + {LOG_LINES_FIXED}")
    if problems:
        print()
        for p in problems:
            print(f"FAILED: {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
