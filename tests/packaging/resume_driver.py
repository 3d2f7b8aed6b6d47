"""Pairs of resumable clients (tests/lib/resumable.py) that talk without
pause until told to finish, then report whether every line of every pair
arrived exactly once and in order. test_deb_install.py copies it, with
resumable.py, into the container and runs it there with the container's
python3, while it restarts, kills and reinstalls the daemon.

    python3 resume_driver.py PORT PAIRS MODE FINISH_FILE

MODE is turns, free, or mixed (every other pair in each).
It prints "ready" once every pair is paired, then, when FINISH_FILE
exists, stops saying new lines, waits for everything said to arrive, and
prints one JSON object: pairs, lines, drops, resumes, problems. It exits 0
when there are no problems. Bounded: it talks for 300 s at most, and waits
90 s at most for what was said to arrive."""

import json
import os
import sys
import time

from resumable import Loop, connector, lost_or_doubled, pair

port, count, mode, finish = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
deadline = time.monotonic() + 300
loop = Loop()
# A restart takes the daemon a moment; a reinstall, apt's time: be patient.
kw = dict(backoff=(0.05, 1.0), attempts=200, give_up=120.0, keepalive=10.0)
# Each pair from its own loopback address: max_per_address counts them.
modes = ["turns", "free"] if mode == "mixed" else [mode]
pairs = [pair(loop, connector(port, source=f"127.0.{1 + i // 250}.{1 + i % 250}"), f"room{i}",
              modes[i % len(modes)], (f"w{i}", f"c{i}"), timeout=30, **kw)
         for i in range(count)]
print("ready", flush=True)

said = 0


def talk():
    """Each side says its next line whenever it has nothing waiting."""
    global said
    for i, (w, c) in enumerate(pairs):
        for side in (w, c):
            if side.ended is None and len(side.said) - side.acked < 2:
                side.say(f"{side.name} line {len(side.said) + 1}")
                said += 1


while not os.path.exists(finish) and time.monotonic() < deadline:
    talk()
    loop.wait(0.05)


def settled():
    return all(s.ended is not None or (s.acked == len(s.said) and s.phase == "paired")
               for p in pairs for s in p)


problems = []
try:
    loop.run(settled, 90, "every line acknowledged")
except TimeoutError:
    problems = [f"not settled: {s.describe()}" for p in pairs for s in p
                if not (s.ended is not None or (s.acked == len(s.said) and s.phase == "paired"))]
for w, c in pairs:
    problems += lost_or_doubled(w, c)
    for s in (w, c):
        if s.ended is not None:
            problems.append(f"{s.name} ended: {s.ended}")
report = {"pairs": len(pairs), "lines": sum(len(s.said) for p in pairs for s in p),
          "drops": sum(s.drops for p in pairs for s in p),
          "resumes": sum(s.resumes for p in pairs for s in p), "problems": problems[:20]}
print(json.dumps(report), flush=True)
loop.close()
sys.exit(1 if problems else 0)
