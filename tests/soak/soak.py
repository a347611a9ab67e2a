#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Soak test: stock nginx (2 workers) under ktls-run, 1,000 concurrent TLS
clients downloading files of 1 KiB to 64 MiB for a bounded time, with
random client aborts.

The load is tests/soak/soak_client.c (OpenSSL, epoll): each client slot
loops connect, handshake (TLS 1.2 / 1.3 x AES-128-GCM, AES-256-GCM,
CHACHA20-POLY1305, some sessions resumed), one request or several on a
keep-alive connection; every completed body is compared byte for byte with
the file and by SHA-256 and length.  5% of the requests are picked to be
aborted (RST through SO_LINGER 0, or a plain close) right after they are
sent or at a random byte of the body, and are not checked; a small body
that arrives whole before its abort point completes (and is checked), so
about 3% end aborted.
This script checks, and prints TAP:

- the clients ran, without connect/handshake/truncation/stall errors;
- every completed download was byte-exact;
- every "Connection: close" response ended with nginx's close_notify
  (an alert record, sent through ktls);
- ktls encrypted at least every body byte the clients received;
- the workers' RSS is stable: the median of the last third of the run is
  at most 20% + 16 MiB above the first third's (anonymous memory, summed
  over the workers; the bound is argued at RSS_REL below);
- every session is freed at the end: kern.ipc.tls.stats.active back to 0
  in each worker (ktls-stat -j -p PID);
- nginx's error.log has no [alert]/[crit]/[emerg], no worker exit, no
  line that is not nginx's (a sanitizer's report), and [error]/[warn]
  lines only of kinds that client aborts cause (what was let through is
  listed, [info] included);
- the workers survived (no crash, no respawn) and nginx quits with 0.

usage: soak.py [--duration SECS] [--clients N] [--client PATH]
               [--abort-pct P] [--keepalive-pct P] [--threads N]
               [--grace SECS] [--seed N] [--keep] BUILD_DIR
(defaults: 20 s, 1,000 clients; `make soak DURATION=... CLIENTS=...`)
Only 127.0.0.1 is used.  Throughput is reported, never asserted.
"""
import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True          # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import ktlsnginx as kn  # noqa: E402

SANITIZER = os.environ.get("KTLS_SANITIZER", "none") not in ("", "none")
if SANITIZER:
    # Leak reports of nginx (uninstrumented, given the runtime by
    # ktls-run) are nginx's, not ktls's.  ASan's quarantine (256 MiB by
    # default) keeps freed memory and fills over minutes: RSS would grow
    # by it whatever ktls does, and how fast depends on the start-up, so
    # it is kept small for the RSS check to mean anything.
    os.environ.setdefault("ASAN_OPTIONS",
                          "detect_leaks=0:quarantine_size_mb=16")

KIB, MIB = 1024, 1024 * 1024
# name, size, weight (how often it is asked for), at most this many
# downloads of it at once (0: no limit).  The limits keep the bytes in
# flight bounded: with 1,000 clients sharing two CPUs, unlimited 64 MiB
# downloads would take most connections, crawl, and hardly any would
# complete in a short run (nor drain in the grace time at the end).
FILES = [
    ("f1k", KIB, 30, 0),
    ("f16k", 16 * KIB, 25, 0),
    ("f64k1", 64 * KIB + 1, 20, 0),
    ("f1m", MIB, 15, 0),
    ("f8m", 8 * MIB, 7, 48),
    ("f64m", 64 * MIB, 3, 12),
]
# RSS bound: last third's median <= first third's * (1 + RSS_REL) +
# RSS_ABS.  The measure is RssAnon + RssShmem summed over the workers
# (connections move between the two workers: the sum is what must not
# grow).  RssFile (shared libraries) is reported, not bounded.  20% covers
# malloc's arenas and fragmentation settling under churn and the load mix
# drifting between the thirds; 16 MiB is the floor for small baselines
# (fewer clients: a worker with ~500 connections holds ~25 MiB here).
# Between the two medians (2/3 of the run after the warm-up) the 20 s run
# makes ~8,000 connections and ~20,000 requests: a leak of ~3.5 KiB per
# connection or ~1.5 KiB per request goes past the bound; `make soak`'s
# 300 s, sixteen times as many, catches a sixteenth of that.  RSS_WARMUP:
# seconds left out at the start (see rss_check).
RSS_REL, RSS_ABS = 0.20, 16 * MIB
RSS_WARMUP = 2
# [error]/[warn] lines that a client's abort explains (the client went
# away while nginx was reading, writing or shutting down).
ABORT_CAUSED = [
    r"\(104: Connection reset by peer\)",
    r"\(32: Broken pipe\)",
    r"client prematurely closed connection",
    r"client closed connection",
    r"peer closed connection in SSL handshake",
]
ACTIVE = "kern.ipc.tls.stats.active"

ENV = {k: v for k, v in os.environ.items()
       if k not in ("LD_PRELOAD", "KTLS_ENABLE", "OPENSSL_CONF")}
ENV["LC_ALL"] = "C"

n_case = 0


def tap(ok, name, diag=None, skip=None):
    global n_case
    n_case += 1
    print("%s %d - %s%s" % ("ok" if ok else "not ok", n_case,
                            name.replace("#", ""),
                            " # SKIP " + skip if skip else ""), flush=True)
    if diag and not ok:
        for line in str(diag).splitlines()[:60]:
            print("#   " + line, flush=True)
    return ok


def note(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def mib(x):
    return "%.1f MiB" % (x / MIB)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def make_files(www):
    """The files of FILES in www, random; the manifest's lines."""
    lines = []
    for name, size, weight, maxconc in FILES:
        h = hashlib.sha256()
        path = os.path.join(www, name)
        with open(path, "wb") as f:
            left = size
            while left:
                b = os.urandom(min(left, 4 * MIB))
                h.update(b)
                f.write(b)
                left -= len(b)
        lines.append("%s %d %s %d %d %s" % (name, size, h.hexdigest(),
                                            weight, maxconc, path))
    return lines


def make_ec_cert(d):
    """cert.pem and key.pem in d: self-signed ECDSA P-256.  Cheaper
    handshakes than RSA leave more of the two CPUs to the connections
    that ktls serves (nginx's ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20
    takes both)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", os.path.join(d, "key.pem"),
         "-out", os.path.join(d, "cert.pem"), "-days", "2",
         "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=60)


def proc_mem(pid):
    """VmRSS, RssAnon, RssFile, RssShmem of pid in bytes (None: gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0]) * 1024
    except (OSError, ValueError):
        return None
    return out


def cpu_secs(pid):
    """CPU seconds (user + system) pid has used, its threads included."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def ktls_active(tool, pid):
    return int(kn.ktls_stat(tool, pid).get(ACTIVE, 0))


class Sampler(threading.Thread):
    """Every second: the workers' memory; every 5 s: their active
    sessions; every 10 s: access.log emptied (it would grow ~100 bytes a
    request in a long run)."""

    def __init__(self, ng, stat, pids):
        super().__init__(daemon=True)
        self.ng, self.stat, self.pids = ng, stat, pids
        self.samples = []       # (t, {pid: mem})
        self.active = []        # (t, sum of active)
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        k = 0
        while not self.stop_ev.is_set():
            t = time.monotonic() - self.t0
            self.samples.append((t, {p: proc_mem(p) for p in self.pids}))
            if k % 5 == 2:
                total = 0
                for p in self.pids:
                    try:
                        total += ktls_active(self.stat, p)
                    except Exception:  # noqa: BLE001
                        pass
                self.active.append((t, total))
            if k % 10 == 9:
                try:
                    os.truncate(os.path.join(self.ng.d, "access.log"), 0)
                except OSError:
                    pass
            k += 1
            self.stop_ev.wait(max(0.0, self.t0 + k - time.monotonic()))


def rss_check(samples, duration):
    """(ok, text): anonymous RSS summed over workers, first vs last third
    of the run's samples.  Left out: the first RSS_WARMUP seconds (the
    clients ramp up over the first second: a sample taken before they are
    all connected is not the run), and the drain after the run."""
    def total(mem, keys):
        return sum(sum(m.get(k, 0) for k in keys) for m in mem.values()
                   if m is not None)
    run = [(t, m) for t, m in samples if RSS_WARMUP <= t <= duration]
    third = (duration - RSS_WARMUP) / 3.0
    first = [m for t, m in run if t < RSS_WARMUP + third]
    last = [m for t, m in run if t >= RSS_WARMUP + 2 * third]
    if len(first) < 3 or len(last) < 3:
        return None, "too few samples for a trend: %d and %d" % (
            len(first), len(last))
    figs = {}
    for label, keys in (("anon", ("RssAnon", "RssShmem")),
                        ("vmrss", ("VmRSS",)), ("file", ("RssFile",))):
        figs[label] = (statistics.median(total(m, keys) for m in first),
                       statistics.median(total(m, keys) for m in last))
    a1, a3 = figs["anon"]
    bound = a1 * (1 + RSS_REL) + RSS_ABS
    peak = max(total(m, ("VmRSS",)) for _, m in run)
    text = ("workers' RssAnon+RssShmem median, first third %s, last third "
            "%s (bound %s = +%d%% + %s); VmRSS %s -> %s (peak %s); RssFile "
            "(libraries) %s -> %s; %d + %d samples" % (
                mib(a1), mib(a3), mib(bound), RSS_REL * 100, mib(RSS_ABS),
                mib(figs["vmrss"][0]), mib(figs["vmrss"][1]), mib(peak),
                mib(figs["file"][0]), mib(figs["file"][1]), len(first),
                len(last)))
    return a3 <= bound, text


def classify_log(log):
    """(bad lines, {kind: count} of the lines let through).  Bad: any
    [alert]/[crit]/[emerg]; [error]/[warn] not explained by a client's
    abort; a worker that exited other than with 0 (nginx says so at
    [notice]); and any line not in nginx's format -- the workers' stderr
    goes to error.log, so that is where a sanitizer's report or anything
    else a worker prints ends up."""
    bad, ignored = [], {}
    for line in log.splitlines():
        m = re.match(r"\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)", line)
        if not m:
            if line.strip():
                bad.append(line)
            continue
        level, msg = m.group(1), m.group(2)
        if re.search(r"exited on signal|exited with code [1-9]", msg):
            bad.append(line)
            continue
        # The kind: the message up to ", client:", digits folded.
        kind = re.sub(r"\d+", "N", msg.split(", client:")[0])
        if level in ("alert", "crit", "emerg"):
            bad.append(line)
            continue
        if level in ("error", "warn") and not any(
                re.search(p, msg) for p in ABORT_CAUSED):
            bad.append(line)
            continue
        if level in ("error", "warn", "info"):
            key = "[%s] %s" % (level, kind)
            ignored[key] = ignored.get(key, 0) + 1
    return bad, ignored


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--client", help="soak_client (default: "
                    "BUILD/tests/soak_client)")
    ap.add_argument("--abort-pct", type=float, default=5)
    ap.add_argument("--keepalive-pct", type=float, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--grace", type=float, default=30,
                    help="seconds for downloads in progress at the end")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (nginx's logs)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    run = os.path.join(build, "tools", "ktls-run")
    stat = os.path.join(build, "tools", "ktls-stat")
    client = a.client or os.path.join(build, "tests", "soak_client")
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4),
                                                            "little")
    missing = [p for p in (kn.NGINX, "/usr/bin/openssl", run, stat, client)
               if not os.access(p, os.X_OK)]
    if missing:
        print("1..0 # SKIP not there: %s" % " ".join(missing))
        return 0
    soft, hard = raise_nofile()
    # A worker may hold most connections, two descriptors each once
    # ktls has them (README), and the client one each.
    need = 2 * a.clients + 100
    if soft < need:
        print("1..0 # SKIP RLIMIT_NOFILE %d (hard %d): %d clients need %d" %
              (soft, hard, a.clients, need))
        return 0
    limit = a.duration + a.grace + 150
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="ktls-soak-")
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    ng = None

    def finish_tmp():
        if a.keep:
            note("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def on_signal(sig, _frame):
        kn.cleanup()
        finish_tmp()
        os._exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def out_of_time():
        print("not ok %d - the whole soak within %d s" % (n_case + 1, limit),
              flush=True)
        print("1..%d" % (n_case + 1), flush=True)
        kn.cleanup()
        finish_tmp()
        os._exit(1)

    watchdog = threading.Timer(limit, out_of_time)
    watchdog.daemon = True
    watchdog.start()
    note("seed %d, %d clients, %g s, abort %g%%, keep-alive %g%%, "
         "RLIMIT_NOFILE %d" % (seed, a.clients, a.duration, a.abort_pct,
                               a.keepalive_pct, soft))
    try:
        manifest = make_files(www)
        with open(os.path.join(tmp, "manifest"), "w") as f:
            f.write("\n".join(manifest) + "\n")
        make_ec_cert(tmp)
        # Each worker may get most of the clients (no accept_mutex):
        # room for all of them, and spares.
        ng = kn.Nginx(tmp, run, workers=2,
                      worker_connections=max(1024, 2 * a.clients + 512))
        if not tap(ng.start(), "stock nginx (2 workers) starts under "
                   "ktls-run on 127.0.0.1:%s" % ng.port, ng.error_log()):
            print("1..%d" % n_case)
            return 1
        pids = sorted(ng.workers_pids())
        pre = []
        for pid in pids:
            try:
                with open("/proc/%d/maps" % pid) as f:
                    pre.append("libktls-preload" in f.read())
            except OSError:
                pre.append(False)
        tap(len(pids) == 2 and all(pre), "the interposer is loaded in both "
            "workers %s" % pids, str(pre))

        # ---------------------------------------------------- the load
        cmd = [client, "--port", str(ng.port), "--manifest",
               os.path.join(tmp, "manifest"), "--clients", str(a.clients),
               "--duration", str(a.duration), "--grace", str(a.grace),
               "--abort-pct", str(a.abort_pct), "--keepalive-pct",
               str(a.keepalive_pct), "--threads", str(a.threads),
               "--seed", str(seed), "--ca", os.path.join(tmp, "cert.pem"),
               "--progress", str(max(5, round(a.duration / 20)))]
        sampler = Sampler(ng, stat, pids)
        sampler.start()
        cpu0 = {pid: cpu_secs(pid) for pid in pids}
        p = kn.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, env=ENV)

        def relay():
            for line in p.stderr:
                note("client: " + line.decode(errors="replace").rstrip())
        rt = threading.Thread(target=relay, daemon=True)
        rt.start()
        # The client ends by itself after duration + grace at most.
        timer = threading.Timer(a.duration + a.grace + 60, kn.kill_group,
                                [p])
        timer.start()
        out = p.stdout.read()
        timer.cancel()
        kn.reap(p, 10)
        rt.join(5)
        cpu = sum(cpu_secs(pid) - cpu0[pid] for pid in pids)
        sampler.stop_ev.set()
        sampler.join(5)
        try:
            r = json.loads(out.decode(errors="replace"))
        except ValueError:
            r = None
        if not tap(r is not None and p.returncode == 0,
                   "soak_client ran to its end", "exit %s, stdout %r" %
                   (p.returncode, out[-500:])):
            r = {}
        g = r.get
        secs = g("seconds", 0) or 1
        errs = r.get("errors", [])
        n_err = sum(g(k, 0) for k in ("err_connect", "err_handshake",
                                      "err_cipher", "err_status",
                                      "err_truncated", "err_stall",
                                      "err_other"))
        tap(g("completed", 0) > 0 and n_err == 0,
            "clients ran: %d connections (%d of %d resumptions), %d "
            "requests, %d "
            "completed downloads (%d on keep-alive), %d aborts (%d RST), "
            "%d cut at the end, %.2f GB of bodies received" % (
                g("connections", 0), g("resumed", 0), g("resume_tried", 0),
                g("requests", 0),
                g("completed", 0), g("keepalive_completed", 0),
                g("aborts", 0), g("aborts_rst", 0), g("cut_at_end", 0),
                g("body_bytes", 0) / 1e9),
            "errors: " + ", ".join("%s %d" % (k[4:], v)
                                   for k, v in sorted(r.items())
                                   if k.startswith("err_") and v) +
            "\n" + "\n".join(errs))
        tap(g("err_verify", 1) == 0 and g("err_extra", 1) == 0 and
            g("completed", 0) > 0,
            "every completed download byte-exact: %d downloads, %.2f GB, "
            "SHA-256 and length and byte for byte" % (
                g("completed", 0), g("completed_bytes", 0) / 1e9),
            "corrupt %s, bytes past the body %s\n%s" % (
                g("err_verify"), g("err_extra"), "\n".join(errs)))
        note("completed per file: " + ", ".join(
            "%s %d (aborted %d)" % (f["name"], f["completed"], f["aborted"])
            for f in r.get("files", [])))
        note("completed per suite: " + ", ".join(
            "%s %d" % kv for kv in r.get("suites", {}).items()))
        note("resumed of tried per suite: " + ", ".join(
            "%s %d/%d" % (k, v[0], v[1])
            for k, v in r.get("resumed_per_suite", {}).items()))
        tap(g("eof_without_close_notify", 1) == 0,
            "every response with Connection: close ended by nginx's "
            "close_notify alert (sent through ktls): %d" %
            g("close_notify", 0), "%s ended without" %
            g("eof_without_close_notify"))

        # -------------------------------------------------- ktls counters
        tx = 0
        try:
            tx = sum(kn.tx_bytes(stat, pid) for pid in pids)
        except Exception as e:  # noqa: BLE001
            note("ktls-stat: %s" % e)
        tap(tx >= g("body_bytes", 1), "ktls encrypted every body byte "
            "received: tx_bytes %d >= %d" % (tx, g("body_bytes", 0)))

        ok, text = rss_check(sampler.samples, a.duration)
        if ok is None:
            tap(True, "RSS stable", skip="%s (a run of %g s)" %
                (text, a.duration))
        else:
            tap(ok, "RSS stable: " + text, text)

        # Sessions freed: every worker's active back to 0 (bounded wait).
        deadline = time.monotonic() + 30
        t_free = time.monotonic()
        act, err = {}, None
        while True:
            err = None
            try:
                act = {pid: ktls_active(stat, pid) for pid in pids}
            except Exception as e:  # noqa: BLE001
                err = str(e)
            if err is None and not any(act.values()):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        waited = time.monotonic() - t_free
        peak = max((n for _, n in sampler.active), default=0)
        tap(err is None and not any(act.values()),
            "every session freed: kern.ipc.tls.stats.active 0 in both "
            "workers %.1f s after the clients ended (peak seen %d)" %
            (waited, peak), "active %s %s" % (act, err or ""))
        for pid in pids:
            try:
                s = kn.ktls_stat(stat, pid)
                note("worker %d: %s" % (pid, ", ".join(
                    "%s %s" % (k.split(".")[-1], v) for k, v in
                    sorted(s.items()) if ".stats." in k)))
            except Exception as e:  # noqa: BLE001
                note("worker %d: ktls-stat: %s" % (pid, e))

        # ------------------------------------------------- nginx's log
        log = ng.error_log()
        bad, ignored = classify_log(log)
        n_info = sum(n for k, n in ignored.items() if k.startswith("[info]"))
        tap(not bad, "nginx error.log clean: no [alert]/[crit]/[emerg], no "
            "worker exit, nothing but nginx's lines, [error]/[warn] only "
            "from client aborts (%d let through, and %d [info], listed "
            "below)" % (sum(ignored.values()) - n_info, n_info),
            "\n".join(bad[:40]))
        for k, n in sorted(ignored.items(), key=lambda x: -x[1]):
            note("  let through: %6d x %s" % (n, k[:150]))
        same = sorted(ng.workers_pids()) == pids
        alive = ng.alive()
        rc = ng.stop()
        ng = None
        tap(same and alive and rc == 0, "nginx's workers ran to the end "
            "(no crash, no respawn) and nginx quits (SIGQUIT) with 0",
            "same workers %s, alive %s, exit %s" % (same, alive, rc))
        gb = g("body_bytes", 0) / 1e9
        note("summary: %.1f s, %d clients, %d connections (%.0f/s), %d "
             "completed downloads (%.0f/s), %d aborts, %.2f GB received "
             "(%.2f GB/s), nginx workers %.1f CPU-s, seed %d, %.1f s in "
             "all" % (secs, a.clients, g("connections", 0),
                      g("connections", 0) / secs, g("completed", 0),
                      g("completed", 0) / secs, g("aborts", 0), gb,
                      gb / secs, cpu, seed, time.monotonic() - t_start))
    except Exception:  # noqa: BLE001
        tap(False, "soak.py ran to its end", traceback.format_exc())
    finally:
        if ng is not None and ng.proc:
            ng.stop(timeout=10)
        kn.cleanup()
        watchdog.cancel()
        finish_tmp()
    print("1..%d" % n_case, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
