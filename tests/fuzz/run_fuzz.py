#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Builds and runs the libFuzzer targets of tests/fuzz/, one at a time.

    run_fuzz.py [--time S] [--smoke] [--tap] [--source-dir D] [--build-dir B]
                [TARGET...]

Configures the clang build B (default build-fuzz; `CC=clang meson setup B
-Dfuzz=true -Db_lundef=false`) if it has no build.ninja yet, builds the
targets (`ninja -C B fuzzers`), then runs each one for S seconds
(-max_total_time) on a scratch copy of its committed corpus
(tests/fuzz/corpus/<target>/, never written to) under B/fuzz-run/<target>/,
crash inputs going to B/fuzz-run/<target>/artifacts/.  Prints one summary
line per target: executions, exec/s, coverage gained, corpus units added,
crashes.  --smoke: the committed corpus plus a few seconds of mutation
each (make test).  --tap: TAP output, one case per target; without clang
or its libFuzzer runtime the cases are skipped.  Exit status 1 if a target
crashed (or would not build).
"""
import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

TARGETS = ["fuzz_enable", "fuzz_linux_info", "fuzz_cmsg", "fuzz_frame"]
SMOKE_TIME = 8
REPORT_LINES = 25


def clang_ok():
    """clang with libFuzzer, ASan and UBSan runtimes (libclang-rt-*-dev)."""
    cc = shutil.which("clang")
    if cc is None:
        return False, "no clang"
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("#include <stddef.h>\n#include <stdint.h>\n"
                    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                    "{ (void)d; (void)n; return 0; }\n")
        p = subprocess.run([cc, "-fsanitize=fuzzer,address,undefined", src,
                            "-o", os.path.join(d, "t")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            return False, "clang cannot link libFuzzer (libclang-rt-dev?)"
    return True, ""


def build(src, bld, log):
    if not os.path.exists(os.path.join(bld, "build.ninja")):
        env = dict(os.environ, CC="clang")
        p = subprocess.run(["meson", "setup", bld, src, "-Dfuzz=true",
                            "-Db_lundef=false"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            log(p.stdout.decode(errors="replace"))
            return False
    # Two jobs: the machine is shared.
    p = subprocess.run(["ninja", "-C", bld, "-j2", "fuzzers"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        log(p.stdout.decode(errors="replace"))
        return False
    return True


def parse(out):
    """Figures from libFuzzer's output (-print_final_stats=1)."""
    r = {"execs": 0, "rate": 0, "new": 0, "cov0": None, "cov": None,
         "ft0": None, "ft": None, "corp0": None, "corp": None,
         "artifact": None, "kind": None}
    for line in out.splitlines():
        m = re.match(r"stat::number_of_executed_units:\s*(\d+)", line)
        if m:
            r["execs"] = int(m.group(1))
        m = re.match(r"stat::average_exec_per_sec:\s*(\d+)", line)
        if m:
            r["rate"] = int(m.group(1))
        m = re.match(r"stat::new_units_added:\s*(\d+)", line)
        if m:
            r["new"] = int(m.group(1))
        m = re.match(r"#\d+\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)", line)
        if m:
            if m.group(1) == "INITED":
                r["cov0"], r["ft0"], r["corp0"] = (int(m.group(2)),
                                                   int(m.group(3)),
                                                   int(m.group(4)))
            r["cov"], r["ft"], r["corp"] = (int(m.group(2)), int(m.group(3)),
                                            int(m.group(4)))
        m = re.search(r"Test unit written to (\S+)", line)
        if m:
            r["artifact"] = m.group(1)
        m = re.match(r"SUMMARY: (.*)", line)
        if m and r["kind"] is None:
            r["kind"] = m.group(1)
    return r


def report(out):
    """The first lines of a crash report: from the sanitizer's first line."""
    lines = out.splitlines()
    start = 0
    for i, line in enumerate(lines):
        if (re.search(r"==\d+==ERROR|runtime error:|deadly signal|"
                      r"^fuzz_\w+: |ktls: panic", line)):
            start = i
            break
    noise = re.compile(r"^(INFO:|MS:|0x|Base64:|stat::|artifact_prefix=|"
                       r"\s*$|\s*\\|\s+[0-9a-f]{2} )|"
                       r" in (fuzzer::|__libc_start|_start |main \()")
    keep = []
    for ln in lines[start:]:
        if not noise.search(ln) and not re.match(r"^\s*\^\s*$", ln):
            keep.append(ln)
        if ln.startswith("SUMMARY:"):
            break
    return keep[:REPORT_LINES]


def run_target(t, src, bld, seconds):
    exe = os.path.join(bld, "tests", "fuzz", t)
    work = os.path.join(bld, "fuzz-run", t)
    corpus = os.path.join(work, "corpus")
    arts = os.path.join(work, "artifacts")
    shutil.rmtree(work, ignore_errors=True)
    seeds = os.path.join(src, "tests", "fuzz", "corpus", t)
    if os.path.isdir(seeds):
        shutil.copytree(seeds, corpus)
    else:
        os.makedirs(corpus)
    os.makedirs(arts)
    env = dict(os.environ)
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    env.pop("LD_PRELOAD", None)
    # The targets parse options and frame records; the guard (a seccomp
    # filter over the binary's text, which in a fuzz build holds the
    # sanitizer runtime too, whose threads block every signal) is not
    # theirs to test: test_guard does, in the normal and ASan builds.
    env["KTLS_GUARD"] = "0"
    cmd = [exe, f"-max_total_time={seconds}", "-print_final_stats=1",
           "-timeout=60", "-rss_limit_mb=4096", "-max_len=4096",
           f"-artifact_prefix={arts}/", corpus]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=seconds + 300)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace"), "timeout"
    with open(os.path.join(work, "log.txt"), "w") as f:
        f.write(out)
    r = parse(out)
    r["rc"] = rc
    r["secs"] = time.monotonic() - start
    r["log"] = os.path.join(work, "log.txt")
    r["crashed"] = rc != 0
    return r, out


def summary(t, r):
    cov = (f"cov {r['cov0']} -> {r['cov']} (+{r['cov'] - r['cov0']})"
           if r["cov0"] is not None and r["cov"] is not None else "cov ?")
    ft = (f"ft {r['ft0']} -> {r['ft']}"
          if r["ft0"] is not None and r["ft"] is not None else "ft ?")
    return (f"{t}: {r['execs']} execs in {r['secs']:.0f} s "
            f"({r['rate']}/s), {cov}, {ft}, {r['new']} new units, "
            f"crashes {1 if r['crashed'] else 0}")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--source-dir",
                    default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--time", type=int, default=60)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--tap", action="store_true")
    ap.add_argument("targets", nargs="*")
    a = ap.parse_args()
    src = os.path.abspath(a.source_dir)
    bld = os.path.abspath(a.build_dir or os.path.join(src, "build-fuzz"))
    targets = a.targets or TARGETS
    seconds = SMOKE_TIME if a.smoke else a.time

    def log(s):
        for line in s.rstrip().splitlines():
            print(("# " if a.tap else "") + line, flush=True)

    if a.tap:
        print(f"1..{len(targets)}", flush=True)
    ok, why = clang_ok()
    if not ok:
        if a.tap:
            for i, t in enumerate(targets, 1):
                print(f"ok {i} - {t} # SKIP {why}")
            return 0
        log(f"run_fuzz: {why} (apt-get install clang libclang-rt-14-dev)")
        return 1

    # One user of the fuzz build at a time (make fuzz, make test in two
    # build directories...).
    os.makedirs(bld, exist_ok=True)
    lock = os.open(bld, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    t0 = time.monotonic()
    if not build(src, bld, log):
        if a.tap:
            for i, t in enumerate(targets, 1):
                print(f"not ok {i} - {t}: the fuzz build failed")
        else:
            log("run_fuzz: the fuzz build failed")
        return 1
    log(f"fuzz build {bld}: ready in {time.monotonic() - t0:.0f} s; "
        f"{seconds} s per target")

    failed = 0
    for i, t in enumerate(targets, 1):
        r, out = run_target(t, src, bld, seconds)
        line = summary(t, r)
        if r["crashed"]:
            failed += 1
            what = r["kind"] or f"exit {r['rc']}"
            where = r["artifact"] or "(no input saved)"
            if a.tap:
                print(f"not ok {i} - {t}: {what}; input {where}")
            else:
                log(line)
                log(f"{t}: CRASH {what}; input {where}; log {r['log']}")
            for ln in report(out):
                print("#   " + ln if a.tap else "    " + ln)
        elif a.tap:
            print(f"ok {i} - {line}")
        else:
            log(line)
        sys.stdout.flush()
    os.close(lock)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
