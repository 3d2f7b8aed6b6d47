"""Counts every test case meson ran, including the cases inside each test
program (TAP lines) and inside pytest (its JUnit report), and prints the
closing line CI reads: "N passed, N failed".

Usage: count-results.py BUILD [BUILD...] [--sanitizer-logs DIR] [--stage NAME=STATUS...]
Each build directory's meson run is counted; a directory without one counts
as a failure. With --sanitizer-logs, each report file a sanitizer left in DIR
(its log_path) is one more failure, and an empty DIR one more pass. Each
--stage NAME=STATUS (a check run outside meson, such as the benchmark's
smoke run) is one pass when STATUS is 0 and one failure otherwise."""

import json
import os
import re
import sys
import xml.etree.ElementTree as ET

args = sys.argv[1:]
sanitizer_logs = None
if "--sanitizer-logs" in args:
    i = args.index("--sanitizer-logs")
    sanitizer_logs = args[i + 1]
    del args[i:i + 2]
passed = failed = skipped = 0
results = []
while "--stage" in args:
    i = args.index("--stage")
    name, _, status = args[i + 1].partition("=")
    if status == "0":
        passed += 1
    else:
        failed += 1
        print(f"stage {name} failed with status {status}", file=sys.stderr)
    del args[i:i + 2]

for build in args:
    log = os.path.join(build, "meson-logs", "testlog.json")
    try:
        results += [(build, json.loads(line)) for line in open(log) if line.strip()]
    except OSError:
        failed += 1  # the build or test run never got going

for build, result in results:
    ok = result["result"] in ("OK", "EXPECTEDFAIL")
    if result["name"].split(" / ")[-1] in ("e2e", "system", "packaging", "fresh"):
        junit = os.path.join(build, result["name"].split(" / ")[-1] + "-junit.xml")
        try:
            suite = ET.parse(junit).getroot()
            suites = [suite] if suite.tag == "testsuite" else list(suite)
            for s in suites:
                total = int(s.get("tests", 0))
                bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
                skip = int(s.get("skipped", 0))
                passed += total - bad - skip
                failed += bad
                skipped += skip
            if not ok and not any(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites):
                failed += 1  # pytest itself failed (e.g. a timeout)
        except (OSError, ET.ParseError):
            failed += 1
        continue
    cases = re.findall(r"^(ok|not ok)\b", result.get("stdout") or "", re.M)
    # TAP (the unit tests) is the only output here that starts with a plan.
    if (result.get("stdout") or "").startswith("1..") and cases:
        passed += cases.count("ok")
        failed += cases.count("not ok")
        if not ok and "not ok" not in cases:
            failed += 1
    elif ok:
        passed += 1
    elif result["result"] == "SKIP":
        skipped += 1
    else:
        failed += 1

if sanitizer_logs is not None:
    reports = sorted(os.listdir(sanitizer_logs)) if os.path.isdir(sanitizer_logs) else None
    if reports == []:
        passed += 1
    else:
        failed += len(reports or [None])
        for name in reports or ["(the directory is missing)"]:
            print(f"sanitizer report {sanitizer_logs}/{name}", file=sys.stderr)
            if reports:
                with open(os.path.join(sanitizer_logs, name), errors="replace") as f:
                    sys.stderr.write("".join(f.readlines()[:30]))

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(0 if failed == 0 and passed > 0 else 1)
