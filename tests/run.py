#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Runs every test program of the Meson build and adds up their TAP cases.

Prints each program's output, then one summary line of its own:
"N passed, M failed, K skipped".  A program that crashes, times out or
prints no plan counts as one failed case.  Exit status 1 on any failure.
"""
import json
import os
import re
import subprocess
import sys
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
# NAME: run only these; -NAME[,NAME...]=why: leave them out, each counted
# as one skip.
only = [a for a in sys.argv[2:] if not a.startswith("-")]
left_out = {}
for a in sys.argv[2:]:
    if a.startswith("-"):
        names, why = a[1:].split("=", 1)
        left_out.update((n, why) for n in names.split(","))
tests = json.loads(subprocess.check_output(
    ["meson", "introspect", build, "--tests"]))
passed = failed = skipped = 0
for t in tests:
    if only and t["name"] not in only:
        continue
    if t["name"] in left_out:
        print(f"=== {t['name']}: left out ({left_out[t['name']]})")
        skipped += 1
        continue
    env = dict(os.environ)
    env.update(t.get("env") or {})
    timeout = t.get("timeout") or 600
    print(f"=== {t['name']}", flush=True)
    start = time.monotonic()
    try:
        p = subprocess.run(t["cmd"], env=env, cwd=t.get("workdir") or None,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        rc = "timeout"
    sys.stdout.write(out)
    n_ok = n_fail = n_skip = 0
    plan = False
    for line in out.splitlines():
        if re.match(r"^1\.\.\d+", line):
            plan = True
        elif re.match(r"^not ok \d+", line):
            n_fail += 1
        elif re.match(r"^ok \d+", line):
            if re.search(r"#\s*SKIP", line, re.I):
                n_skip += 1
            else:
                n_ok += 1
    if rc != 0 and n_fail == 0 or not plan:
        print(f"# {t['name']}: exit {rc}, plan {'seen' if plan else 'missing'}")
        n_fail += 1
    passed += n_ok
    failed += n_fail
    skipped += n_skip
    print(f"=== {t['name']}: {n_ok} passed, {n_fail} failed, {n_skip} skipped"
          f" ({time.monotonic() - start:.1f}s)", flush=True)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
