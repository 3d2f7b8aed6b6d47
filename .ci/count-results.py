"""Counts every test case meson ran, including the cases inside each test
program (TAP lines) and inside pytest (its JUnit report), and prints the
closing line CI reads: "N passed, N failed"."""

import json
import os
import re
import sys
import xml.etree.ElementTree as ET

build = sys.argv[1]
passed = failed = skipped = 0
log = os.path.join(build, "meson-logs", "testlog.json")

try:
    results = [json.loads(line) for line in open(log) if line.strip()]
except OSError:
    results = []
    failed += 1  # the build or test run never got going

for result in results:
    ok = result["result"] in ("OK", "EXPECTEDFAIL")
    if result["name"].split(" / ")[-1] in ("e2e", "system"):
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

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(0 if failed == 0 and passed > 0 else 1)
