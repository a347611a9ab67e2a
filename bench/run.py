#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""`make bench`: what ktls costs and saves, measured in one run on this
machine.  Prints a table, writes bench/results/latest.json (every raw run
and the summaries) and bench/results/latest.png.

Everything runs in a network namespace of its own (unshare -n, lo up,
reno as the default congestion control: the host's bbr paces loopback
traffic and distorts every figure), on 127.0.0.1 only.  The server side
(nginx, and ktls's threads inside its worker) is pinned to one CPU, the
clients to another.

 1. Large file: 1 GiB in the page cache, TLS 1.3 AES-128-GCM, one nginx
    worker, curl as the client.  Server CPU-seconds per GiB (utime+stime of
    nginx's processes, all threads, from /proc/PID/stat) and throughput
    (bytes / curl's total time) for
      (a) stock nginx HTTPS (sendfile on, Options KTLS, no ktls-run: the
          kernel has no kTLS, so OpenSSL encrypts in userspace),
      (b) the same configuration under ktls-run,
      (c) plain HTTP from the stock nginx (sendfile: the TCP part's floor),
    rounds interleaved (a, b, c, a, b, c, ...); median and min-max; the
    headline ratio (a)/(b) of CPU-s/GiB.  Under ktls-run the worker's
    tx_bytes (ktls-stat -j) must grow by at least the bytes served, or the
    bench fails.
 2. Small responses: wrk -t1 -c32 -d5s over HTTPS keep-alive, 1 KiB and
    64 KiB files, stock and under ktls-run: requests/s.
 3. Encryption speed per core: build/bench/crypto_speed --json (each
    backend, when built) and `openssl speed -evp aes-128-gcm` (OpenSSL EVP).
 4. Memory: build/bench/idle_conns --json: RSS per idle enabled connection.
 5. Guard (src/core/guard.c, invariant 7; issue 10): what it costs.
      (i)  build/bench/guard_cost, ns per call of write-family calls on
           descriptors that are never enabled (and on the enabled socket),
           one process per configuration: no interposer; the interposer
           with nothing enabled (no filter); the interposer after an
           enable (the filter on); the same with KTLS_GUARD=0 (no filter).
           /proc/PID/status Seccomp must say 0, 0, 2, 0, or the bench
           fails.
      (ii) nginx under ktls-run with the guard on and with KTLS_GUARD=0 in
           its environment (the interposer reads it at load time, before
           nginx clears its environment), two servers, rounds interleaved
           on/off: large-file server CPU-s/GiB as in 1, 1 KiB wrk
           requests/s as in 2, and the on/off ratio of each round.  The
           worker's Seccomp must be 0 before its first TLS request in both,
           then 2 with the guard and 0 without, after every run, or the
           bench fails.

The machine may be shared: the bench waits (at most --wait-idle s) for
the CPUs to be idle, and a run during which other work took more than 15%
of the wall time on the two CPUs is made again (4 attempts in all; the
runs thrown away are in the JSON, and the table says how many).

usage: bench/run.py [BUILD_DIR] [--quick] [--out DIR] [--wait-idle SECS]
  --quick: fewer and shorter runs, a 256 MiB file (to try the bench out;
           written to $TMPDIR/ktls-bench-quick/quick.{json,png} unless
           --out; the committed results come from a full run).

This is not a test: `make test` never runs it.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "interop"))
import ktlsnginx as kn  # noqa: E402

NETNS_MARK = "KTLS_BENCH_NETNS"
GIB = 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
CIPHER = "TLS_AES_128_GCM_SHA256"
# A run during which other work took more than this share of the wall time
# on the two CPUs is made again, at most ATTEMPTS times in all.
OTHER_MAX = 0.15
ATTEMPTS = 4


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- set-up

def enter_netns(argv):
    """Re-executes this script in a new network namespace, once."""
    if os.environ.get(NETNS_MARK) == "1":
        return
    if shutil.which("unshare") is None:
        raise BenchError("unshare (util-linux) is missing")
    env = dict(os.environ)
    env[NETNS_MARK] = "1"
    cmd = ["unshare", "-n", "--", sys.executable,
           os.path.abspath(__file__)] + argv
    sys.stdout.flush()
    os.execvpe("unshare", cmd, env)


def setup_netns():
    """lo up and reno as the default congestion control, in our netns."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    path = "/proc/sys/net/ipv4/tcp_congestion_control"
    with open(path, "w") as f:
        f.write("reno\n")
    with open(path) as f:
        cc = f.read().strip()
    if cc != "reno":
        raise BenchError("could not make reno the default in the namespace "
                         "(%s says %s)" % (path, cc))
    if not _lo_up():
        raise BenchError("loopback is not up in the namespace")
    return cc


def _lo_up():
    out = subprocess.run(["ip", "-o", "addr", "show", "lo"],
                         stdout=subprocess.PIPE, timeout=10).stdout.decode()
    return "127.0.0.1" in out


def two_cpus():
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise BenchError("the bench needs 2 CPUs (server on one, client on "
                         "the other); this process may use %s" % cpus)
    return cpus[0], cpus[1]


def tool_version(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        return p.stdout.decode(errors="replace").splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


CPU_FLAGS = ("aes", "pclmulqdq", "avx2", "avx512f", "avx512vl", "vaes",
             "vpclmulqdq", "gfni")


def cpu_flags():
    """The CPU flags that decide AES code paths: {flag: present}."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {fl: fl in flags for fl in CPU_FLAGS}


def kernel_tls_available():
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            return "tls" in f.read().split()
    except OSError:
        return False


# ----------------------------------------------------------- nginx side

class BenchNginx(kn.Nginx):
    """The interop tests' nginx (same template), 1 worker, every process
    pinned to one CPU (taskset: ktls's threads inherit it), with three
    bench-only changes: no access log, keep-alive connections that last
    (no handshakes in the middle of a wrk run), and TLS 1.3 restricted to
    AES-128-GCM (wrk cannot choose).  env: variables set in nginx's
    environment (ktls-run passes it on; the interposer reads KTLS_* when
    it is loaded, before nginx clears its environment).  KTLS_GUARD is
    never inherited from the bench's own: the figures are with the guard
    unless a server is started with KTLS_GUARD=0 on purpose."""

    def __init__(self, d, ktls_run, cpu, env=None, workers=1,
                 affinity=False):
        super().__init__(d, ktls_run, workers=workers)
        self.cpu = cpu                  # a CPU number or a taskset list
        self.nworkers = workers
        self.affinity = affinity        # worker_cpu_affinity auto
        self.env = dict(os.environ)
        self.env.pop("KTLS_GUARD", None)
        self.env.update(env or {})

    def _patch(self, path):
        with open(path) as f:
            conf = f.read()
        edits = [
            (r"access_log [^;]*;", "access_log off;"),
            (r"keepalive_requests [^;]*;", "keepalive_requests 100000000;"),
            (r"keepalive_timeout [^;]*;", "keepalive_timeout 300s;"),
            (r"(ssl_conf_command Options KTLS;)",
             r"\1\n        ssl_conf_command Ciphersuites %s;" % CIPHER),
        ]
        for pat, rep in edits:
            conf, n = re.subn(pat, rep, conf, count=1)
            if n != 1:
                raise BenchError("tests/interop/nginx.conf.in changed: no "
                                 "match for %r" % pat)
        with open(path, "w") as f:
            f.write(conf)

    def start(self, timeout=20):
        for _attempt in range(3):
            self.port, self.http_port = kn.free_port(), kn.free_port()
            conf = kn.write_config(self.d, self.port, self.http_port,
                                   self.nworkers)
            self._patch(conf)
            if self.affinity:
                with open(conf) as f:
                    text = f.read()
                text = text.replace("worker_processes %d;" % self.nworkers,
                                    "worker_processes %d;\nworker_cpu_affinity"
                                    " auto;" % self.nworkers, 1)
                with open(conf, "w") as f:
                    f.write(text)
            cmd = [kn.NGINX, "-e", os.path.join(self.d, "error.log"),
                   "-p", self.d, "-c", conf]
            if self.ktls_run:
                cmd = [self.ktls_run, "--"] + cmd
            cmd = ["taskset", "-c", str(self.cpu)] + cmd
            self.log = open(os.path.join(self.d, "nginx.out"), "ab")
            self.proc = kn.spawn(cmd, server=True, stdin=subprocess.DEVNULL,
                                 stdout=self.log, stderr=subprocess.STDOUT,
                                 env=self.env)
            end = time.monotonic() + timeout
            while time.monotonic() < end and self.proc.poll() is None:
                if (kn.port_open(self.port) and kn.port_open(self.http_port)
                        and len(self.workers_pids()) >= self.nworkers):
                    return True
                time.sleep(0.1)
            self.stop()
        return False

    def pids(self):
        return [self.proc.pid] + self.workers_pids()

    def url(self, name, tls=True):
        if tls:
            return "https://127.0.0.1:%d/%s" % (self.port, name)
        return "http://127.0.0.1:%d/%s" % (self.http_port, name)


def cpu_ticks(pids):
    """utime + stime (all threads, exited ones included) of pids."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        rest = s[s.rindex(")") + 2:].split()
        total += int(rest[11]) + int(rest[12])   # fields 14, 15
    return total


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def cpu_stat():
    """{cpu index: (busy ticks, all ticks)} from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + (v[4] if len(v) > 4 else 0)   # idle + iowait
                out[int(m.group(1))] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


def busy_s(c0, c1, cpu):
    """Seconds CPU cpu was busy (any process, irq, softirq) between two
    cpu_stat() samples."""
    return (c1[cpu][0] - c0[cpu][0]) / CLK_TCK


def child_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def other_share(c0, c1, cpus, ours_s, wall_s):
    """CPU time of the two CPUs not spent by the server or the client
    (other people's work, kernel threads), as a fraction of wall time."""
    busy = sum(busy_s(c0, c1, c) for c in cpus)
    return max(0.0, busy - ours_s) / wall_s if wall_s > 0 else 0.0


def machine_busy(secs=2.0):
    """Fraction of each CPU busy over secs while the bench does nothing:
    other people's work that will disturb the figures."""
    c0 = cpu_stat()
    time.sleep(secs)
    c1 = cpu_stat()
    return {cpu: round((c1[cpu][0] - c0[cpu][0]) /
                       max(1, c1[cpu][1] - c0[cpu][1]), 3) for cpu in c1}


def sched_ns(pids):
    """CPU time in ns of every live thread of pids (schedstat): a finer
    cross-check of cpu_ticks (threads that exited are not counted)."""
    total = 0
    for pid in pids:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


def thread_affinity(pid):
    """{thread name: Cpus_allowed_list} of every thread of pid."""
    out = {}
    try:
        for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
            name = cpus = "?"
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("Name:"):
                        name = line.split(None, 1)[1].strip()
                    elif line.startswith("Cpus_allowed_list:"):
                        cpus = line.split(None, 1)[1].strip()
            out["%s/%s" % (tid, name)] = cpus
    except OSError:
        pass
    return out


def seccomp_state(pid):
    """/proc/PID/status Seccomp: 0 none, 2 a filter (the guard's)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    raise BenchError("/proc/%d/status has no Seccomp line" % pid)


def make_www(tmp, big_bytes):
    """tmp/www: big (big_bytes, in the page cache), f1k, f64k."""
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    block = os.urandom(1 << 20)
    with open(os.path.join(www, "big"), "wb") as f:
        for _ in range(big_bytes >> 20):
            f.write(block)
    for name, size in (("f1k", 1024), ("f64k", 65536)):
        with open(os.path.join(www, name), "wb") as f:
            f.write(os.urandom(size))
    # Into the page cache (and read once, for good measure).
    with open(os.path.join(www, "big"), "rb") as f:
        while f.read(8 << 20):
            pass
    return www


def run_checked(cmd, timeout, what, env=None):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        raise BenchError("%s: timed out after %d s" % (what, timeout))
    if p.returncode != 0:
        raise BenchError("%s: exit %d: %s" % (
            what, p.returncode, p.stderr.decode(errors="replace")[-500:]))
    return p.stdout.decode(errors="replace")


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.ktls_run = os.path.join(self.build, "tools", "ktls-run")
        self.ktls_stat = os.path.join(self.build, "tools", "ktls-stat")
        self.preload = os.path.join(self.build, "src", "interpose",
                                    "libktls-preload.so")
        for f in (self.ktls_run, self.ktls_stat, kn.NGINX):
            if not os.access(f, os.X_OK):
                raise BenchError("%s missing: build first (make)" % f)
        for t in ("curl", "wrk", "openssl", "taskset", "ip"):
            if shutil.which(t) is None:
                raise BenchError("%s missing (scripts/deps.sh)" % t)
        self.server_cpu, self.client_cpu = two_cpus()
        self.quick = args.quick
        self.runs = 2 if self.quick else 5
        self.wrk_runs = 2 if self.quick else 3
        self.wrk_secs = 2 if self.quick else 5
        self.big_bytes = (256 << 20) if self.quick else GIB
        # The guard: nginx rounds (each on and off), guard_cost's batches
        # per process and processes per configuration.
        self.guard_runs = 2 if self.quick else 5
        self.guard_batches = 11 if self.quick else 21
        self.guard_passes = 1 if self.quick else 3
        self.results = {}
        self.tmp = None
        self.servers = {}

    def client(self, cmd):
        return ["taskset", "-c", str(self.client_cpu)] + cmd

    # ------------------------------------------------------------ files

    def make_files(self):
        return make_www(self.tmp, self.big_bytes)

    def start_servers(self, www, servers=None):
        """servers: (mode, ktls-run or None, env) of each; by default the
        stock nginx and the one under ktls-run."""
        if servers is None:
            servers = (("stock", None, None), ("ktls", self.ktls_run, None))
        if not os.path.exists(os.path.join(self.tmp, "cert.pem")):
            kn.make_cert(self.tmp)
        for mode, run, env in servers:
            d = os.path.join(self.tmp, mode)
            os.makedirs(d)
            for f in ("cert.pem", "key.pem"):
                shutil.copy(os.path.join(self.tmp, f), d)
            os.symlink(www, os.path.join(d, "www"))
            n = BenchNginx(d, run, self.server_cpu, env)
            if not n.start():
                raise BenchError("nginx (%s) did not start: %s" % (
                    mode, n.error_log()[-1000:]))
            self.servers[mode] = n

    def stop_servers(self):
        for mode, n in self.servers.items():
            errs = [l for l in n.error_log().splitlines()
                    if re.search(r"\[(alert|crit|emerg)\]", l)]
            n.stop()
            if errs:
                raise BenchError("nginx (%s) error.log has alerts:\n%s" % (
                    mode, "\n".join(errs[-10:])))
        self.servers = {}

    def tx_bytes(self, n, before=False):
        """The workers' kern.ipc.tls.stats.tx_bytes.  before: a worker
        that has not used ktls yet (no control socket) counts 0."""
        total = 0
        for pid in n.workers_pids():
            try:
                total += kn.tx_bytes(self.ktls_stat, pid)
            except RuntimeError:
                if not before:
                    raise
        return total

    def undisturbed(self, fn, *args):
        """fn(*args), repeated (at most ATTEMPTS times in all) while other
        work took more than OTHER_MAX of the wall time on our two CPUs:
        this machine is shared.  The runs thrown away are kept in the
        result's "discarded"; a result still disturbed says so."""
        discarded = []
        for _ in range(ATTEMPTS):
            r = fn(*args)
            if r["other_cpu_share"] <= OTHER_MAX:
                break
            discarded.append(dict(r))
            time.sleep(1)
        else:
            r["disturbed"] = True
            discarded.pop()
        if discarded:
            r["discarded"] = discarded
        return r

    # ------------------------------------------------------------ curl

    def curl_args(self, tls):
        a = ["curl", "-sS", "--http1.1", "--max-time", "300",
             "-o", "/dev/null",
             "-w", "%{http_code} %{size_download} %{time_total} "
                   "%{ssl_verify_result}\\n"]
        if tls:
            a += ["-k", "--tlsv1.3", "--tls13-ciphers", CIPHER]
        return a

    def check_cipher(self, n):
        """The negotiated suite, as a client that does not choose sees it."""
        p = subprocess.run(["curl", "-sS", "-k", "-v", "-o", "/dev/null",
                            n.url("f1k")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=30)
        m = re.search(r"SSL connection using (\S+) / (\S+)",
                      p.stderr.decode(errors="replace"))
        if not m or m.group(1) != "TLSv1.3" or m.group(2) != CIPHER:
            raise BenchError("nginx negotiated %s, not TLSv1.3 / %s" % (
                m.groups() if m else "nothing", CIPHER))
        return "%s / %s" % m.groups()

    def download(self, mode, tls):
        n = self.servers["stock" if mode == "http" else mode]
        url = n.url("big", tls)
        pids = n.pids()
        tx0 = self.tx_bytes(n, True) if n.ktls_run else None
        c0, n0, t0 = cpu_stat(), sched_ns(pids), cpu_ticks(pids)
        k0 = child_cpu_s()
        w0 = time.monotonic()
        out = run_checked(self.client(self.curl_args(tls) + [url]), 600,
                          "curl %s" % url)
        w1 = time.monotonic()
        k1 = child_cpu_s()
        t1, n1, c1 = cpu_ticks(pids), sched_ns(pids), cpu_stat()
        code, size, ttotal = out.split()[:3]
        size, ttotal = int(size), float(ttotal)
        if code != "200" or size != self.big_bytes:
            raise BenchError("curl %s: status %s, %d bytes (want %d)" % (
                url, code, size, self.big_bytes))
        r = {"bytes": size, "cpu_ticks": t1 - t0,
             "cpu_s": (t1 - t0) / CLK_TCK, "curl_time_s": ttotal,
             "wall_s": w1 - w0, "cpu_s_schedstat": (n1 - n0) / 1e9,
             "server_cpu_busy_s": busy_s(c0, c1, self.server_cpu),
             "client_cpu_busy_s": busy_s(c0, c1, self.client_cpu),
             "client_cpu_s": k1 - k0}
        r["other_cpu_share"] = other_share(
            c0, c1, (self.server_cpu, self.client_cpu),
            r["cpu_s"] + r["client_cpu_s"], r["wall_s"])
        r["cpu_s_per_gib"] = r["cpu_s"] / (size / GIB)
        r["gbps"] = size / ttotal / 1e9
        if n.ktls_run:
            tx1 = self.tx_bytes(n)
            r["ktls_tx_bytes"] = tx1 - tx0
            if tx1 - tx0 < size:
                raise BenchError(
                    "nginx under ktls-run served %d bytes but ktls encrypted "
                    "only %d (ktls-stat tx_bytes): TLS was NOT offloaded to "
                    "ktls" % (size, tx1 - tx0))
        return r

    def large_file(self):
        modes = [("stock_https", "stock", True), ("ktls_https", "ktls", True),
                 ("plain_http", "http", False)]
        log("== large file: %d MiB, %d interleaved rounds of (a) stock HTTPS, "
            "(b) under ktls-run, (c) plain HTTP" % (self.big_bytes >> 20,
                                                    self.runs))
        for key, mode, tls in modes:          # warm-up, not counted
            self.download(mode, tls)
        ktls_worker = self.servers["ktls"].workers_pids()[0]
        runs = {k: [] for k, _, _ in modes}
        for i in range(self.runs):
            line = []
            for key, mode, tls in modes:
                r = self.undisturbed(self.download, mode, tls)
                runs[key].append(r)
                line.append("%s %.3f CPU-s/GiB %.2f GB/s" % (
                    key, r["cpu_s_per_gib"], r["gbps"]))
            log("   round %d: %s" % (i + 1, "; ".join(line)))
        summary = {}
        for key in runs:
            summary[key] = {
                "cpu_s_per_gib": med(r["cpu_s_per_gib"] for r in runs[key]),
                "gbps": med(r["gbps"] for r in runs[key]),
            }
        summary["other_cpu_share"] = med(
            r["other_cpu_share"] for v in runs.values() for r in v)
        a = [r["cpu_s_per_gib"] for r in runs["stock_https"]]
        b = [r["cpu_s_per_gib"] for r in runs["ktls_https"]]
        ratio = {
            "median": summary["stock_https"]["cpu_s_per_gib"]["median"] /
            summary["ktls_https"]["cpu_s_per_gib"]["median"],
            "per_round": [x / y for x, y in zip(a, b)],
        }
        ratio["per_round_min"] = min(ratio["per_round"])
        ratio["per_round_max"] = max(ratio["per_round"])
        self.results["large_file"] = {
            "file_bytes": self.big_bytes,
            "client": "curl --http1.1 --tlsv1.3 --tls13-ciphers %s "
                      "-o /dev/null (CPU %d)" % (CIPHER, self.client_cpu),
            "server": "nginx, 1 worker, sendfile on, every process on CPU "
                      "%d" % self.server_cpu,
            "cpu_measure": "utime+stime of nginx master+worker (all threads)"
                           ", /proc/PID/stat, %d ticks/s" % CLK_TCK,
            "ktls_worker_threads_affinity": thread_affinity(ktls_worker),
            # These figures include the guard's cost: 2 = its filter is on.
            "ktls_worker_seccomp": seccomp_state(ktls_worker),
            "runs": runs, "summary": summary,
            "ratio_stock_over_ktls_cpu": ratio,
        }

    # ---------------------------------------------------------- paired

    def paired(self):
        """The headline ratios: stock and ktls at the same time on the same
        CPUs, each server's CPU divided by its own work (bench/paired.py)."""
        import paired as pr
        rounds = 2 if self.quick else 5
        log("== paired: stock and ktls at once (both on CPU %d, a client "
            "each on CPU %d), %d rounds per load, cost = server CPU / own "
            "work" % (self.server_cpu, self.client_cpu, rounds))
        pair = pr.Pair(self.tmp, None, ("stock", None),
                       ("ktls", self.ktls_run), self.server_cpu,
                       self.client_cpu)
        pair.servers = [self.servers["stock"], self.servers["ktls"]]
        res = pr.measure(pair, ["f1k", "f64k", "big"], rounds,
                         self.wrk_secs, self.big_bytes)
        self.results["paired"] = {
            "method": "both servers at once, each on CPU %d with its own "
                      "client on CPU %d (wrk -t1 -c32, curl); cost = server "
                      "CPU (utime+stime, all threads) / its own requests or "
                      "GiB; ratio = stock's cost / ktls's" % (
                          self.server_cpu, self.client_cpu),
            "loads": res,
        }

    # ------------------------------------------------------------- wrk

    def wrk(self, mode, name, secs):
        n = self.servers[mode]
        url = n.url(name)
        tx0 = self.tx_bytes(n, True) if n.ktls_run else None
        t0, c0, k0, w0 = cpu_ticks(n.pids()), cpu_stat(), child_cpu_s(), \
            time.monotonic()
        out = run_checked(self.client(
            ["wrk", "-t1", "-c32", "-d%ds" % secs, "--latency", url]),
            secs + 60, "wrk %s" % url)
        t1, c1, k1, w1 = cpu_ticks(n.pids()), cpu_stat(), child_cpu_s(), \
            time.monotonic()
        m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not m or not rps:
            raise BenchError("wrk %s: unreadable output:\n%s" % (url, out))
        if re.search(r"Non-2xx or 3xx responses", out):
            raise BenchError("wrk %s: error responses:\n%s" % (url, out))
        r = {"requests": int(m.group(1)), "rps": float(rps.group(1)),
             "server_cpu_s": (t1 - t0) / CLK_TCK, "client_cpu_s": k1 - k0,
             "wall_s": w1 - w0}
        r["other_cpu_share"] = other_share(
            c0, c1, (self.server_cpu, self.client_cpu),
            r["server_cpu_s"] + r["client_cpu_s"], r["wall_s"])
        err = re.search(r"Socket errors: (.*)", out)
        if err:
            r["socket_errors"] = err.group(1).strip()
        size = os.path.getsize(os.path.join(self.tmp, "www", name))
        if n.ktls_run:
            tx1 = self.tx_bytes(n)
            r["ktls_tx_bytes"] = tx1 - tx0
            if tx1 - tx0 < r["requests"] * size:
                raise BenchError(
                    "wrk %s under ktls-run: %d responses of %d bytes but ktls"
                    " encrypted only %d bytes: TLS was NOT offloaded" % (
                        url, r["requests"], size, tx1 - tx0))
        return r

    def small(self):
        cases = [(name, mode) for name in ("f1k", "f64k")
                 for mode in ("stock", "ktls")]
        log("== small responses: wrk -t1 -c32 -d%ds (CPU %d), HTTPS "
            "keep-alive, %d interleaved rounds" % (
                self.wrk_secs, self.client_cpu, self.wrk_runs))
        for name, mode in cases:              # warm-up, not counted
            self.wrk(mode, name, 1)
        runs = {"%s_%s" % (name, mode): [] for name, mode in cases}
        for i in range(self.wrk_runs):
            line = []
            for name, mode in cases:
                r = self.undisturbed(self.wrk, mode, name, self.wrk_secs)
                runs["%s_%s" % (name, mode)].append(r)
                line.append("%s/%s %.0f req/s" % (name, mode, r["rps"]))
            log("   round %d: %s" % (i + 1, "; ".join(line)))
        summary = {k: {"rps": med(r["rps"] for r in v),
                       "server_cpu_us_per_request":
                       med(r["server_cpu_s"] / r["requests"] * 1e6
                           for r in v)}
                   for k, v in runs.items()}
        summary["other_cpu_share"] = med(
            r["other_cpu_share"] for v in runs.values() for r in v)
        for name in ("f1k", "f64k"):
            summary[name + "_ratio_ktls_over_stock"] = (
                summary[name + "_ktls"]["rps"]["median"] /
                summary[name + "_stock"]["rps"]["median"])
        self.results["small_responses"] = {
            "client": "wrk -t1 -c32 -d%ds (CPU %d), TLS 1.3 %s" % (
                self.wrk_secs, self.client_cpu, CIPHER),
            "files": {"f1k": 1024, "f64k": 65536},
            "runs": runs, "summary": summary,
        }

    # ----------------------------------------------------------- crypto

    def crypto(self):
        log("== encryption speed per core (CPU %d)" % self.client_cpu)
        res = {"rows": [], "notes": []}
        exe = os.path.join(self.build, "bench", "crypto_speed")
        if os.access(exe, os.X_OK):
            out = run_checked(self.client([exe, "--json"]), 300,
                              "crypto_speed --json")
            for line in out.splitlines():
                line = line.strip()
                if not line.startswith("{"):
                    continue
                row = json.loads(line)
                if "path" in row:       # the backend's code path here
                    res.setdefault("paths", {})[row["backend"]] = \
                        row["path"]
                    continue
                if "chosen" in row:     # the backend a session gets
                    res.setdefault("chosen", {})[row["suite"]] = \
                        row["chosen"]
                    continue
                row["source"] = "crypto_speed"
                res["rows"].append(row)
            if not res["rows"]:
                res["notes"].append("crypto_speed printed no JSON lines")
        else:
            res["notes"].append("crypto_speed not built (%s): per-backend "
                                "figures skipped" % exe)
        secs = 1 if self.quick else 3
        for record in (16384, 1400):
            out = run_checked(self.client(
                ["openssl", "speed", "-evp", "aes-128-gcm", "-bytes",
                 str(record), "-seconds", str(secs), "-mr"]), 120,
                "openssl speed")
            m = re.search(r"^\+F:\d+:[^:]+:([\d.]+)", out, re.M)
            if not m:
                raise BenchError("openssl speed: unreadable output")
            res["rows"].append({"backend": "openssl speed -evp",
                                "suite": "AES-128-GCM", "record": record,
                                "gbps": float(m.group(1)) / 1e9,
                                "source": "openssl speed"})
        for note in res["notes"]:
            log("   note: " + note)
        for be, path in res.get("paths", {}).items():
            log("   %s: %s" % (be, path))
        for su, be in res.get("chosen", {}).items():
            log("   %s sessions: %s" % (su, be))
        for r in res["rows"]:
            log("   %-22s %-28s %6d B  %.2f GB/s%s" % (
                r.get("backend"), r.get("suite"), r.get("record", 0),
                r.get("gbps", 0), " open" if r.get("op") == "open" else ""))
        self.results["crypto"] = res

    # ----------------------------------------------------------- memory

    def memory(self):
        n = 10000
        log("== memory: %d idle enabled connections (idle_conns)" % n)
        exe = os.path.join(self.build, "bench", "idle_conns")
        if not os.access(exe, os.X_OK):
            self.results["memory"] = {"note": "idle_conns not built (%s)" %
                                      exe}
            log("   note: idle_conns not built")
            return
        p = subprocess.run([exe, "--json", "-n", str(n)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=300)
        if p.returncode != 0:
            raise BenchError("idle_conns: exit %d: %s" % (
                p.returncode, p.stderr.decode(errors="replace")))
        r = json.loads(p.stdout.decode())
        note = p.stderr.decode(errors="replace").strip()
        if note:
            r["note"] = note
            log("   note: " + note)
        log("   %.0f bytes per idle enabled connection (%d connections, "
            "VmRSS %d -> %d KiB)" % (
                r["bytes_per_conn"], r["n"], r["enabled"]["rss_kib"]["base"],
                r["enabled"]["rss_kib"]["after"]))
        self.results["memory"] = r

    # ------------------------------------------------------------ guard

    def check_guard(self, mode, want):
        """The guard state of mode's worker (Seccomp), which must be want:
        0 before its first TLS request and with KTLS_GUARD=0, 2 with the
        guard once a session exists.  The bench fails otherwise."""
        got = [seccomp_state(pid) for pid in self.servers[mode].workers_pids()]
        if not got or any(g != want for g in got):
            raise BenchError(
                "nginx (%s): worker Seccomp %s, want %d: the guard is not in "
                "the state this configuration says" % (mode, got, want))
        return want

    def guard_trapped(self, mode):
        """kern.ipc.tls.guard.trapped of mode's workers: the write-family
        calls its filter trapped (SIGSYS) and the engine completed."""
        return sum(int(kn.ktls_stat(self.ktls_stat, pid).get(
            "kern.ipc.tls.guard.trapped", 0))
            for pid in self.servers[mode].workers_pids())

    def guard_run(self, mode, want, fn, *args):
        """fn(*args) (download or wrk) on mode's server, with the worker's
        guard state checked after it and the calls it trapped."""
        g0 = self.guard_trapped(mode)
        r = fn(*args)
        r["guard_trapped"] = self.guard_trapped(mode) - g0
        r["worker_seccomp"] = self.check_guard(mode, want)
        return r

    def guard_nginx(self, www):
        """Two nginx under ktls-run, with the guard and with KTLS_GUARD=0,
        the same file set, rounds interleaved on/off: the large file's
        server CPU per GiB and 1 KiB requests/s (the machinery of 1 and
        2)."""
        modes = (("guard_on", 2), ("guard_off", 0))
        self.start_servers(www, (
            ("guard_on", self.ktls_run, None),
            ("guard_off", self.ktls_run, {"KTLS_GUARD": "0"})))
        log("== guard: nginx under ktls-run, guard on vs KTLS_GUARD=0, %d "
            "interleaved rounds of the %d MiB file and of wrk 1 KiB -d%ds" % (
                self.guard_runs, self.big_bytes >> 20, self.wrk_secs))
        # Invariant 6: no filter before the first enable, in either.
        for mode, _ in modes:
            self.check_guard(mode, 0)
        for mode, want in modes:              # warm-up, not counted
            self.download(mode, True)
            self.wrk(mode, "f1k", 1)
            self.check_guard(mode, want)
        runs = {m: {"large": [], "f1k": []} for m, _ in modes}
        for i in range(self.guard_runs):
            line = []
            for mode, want in modes:
                r = self.undisturbed(self.guard_run, mode, want,
                                     self.download, mode, True)
                runs[mode]["large"].append(r)
                line.append("%s %.3f CPU-s/GiB" % (mode, r["cpu_s_per_gib"]))
            log("   round %d: %s" % (i + 1, "; ".join(line)))
        for i in range(self.guard_runs):
            line = []
            for mode, want in modes:
                r = self.undisturbed(self.guard_run, mode, want, self.wrk,
                                     mode, "f1k", self.wrk_secs)
                runs[mode]["f1k"].append(r)
                line.append("%s %.0f req/s" % (mode, r["rps"]))
            log("   round %d: %s" % (i + 1, "; ".join(line)))
        self.stop_servers()
        metrics = (
            ("cpu_s_per_gib", "large", lambda r: r["cpu_s_per_gib"]),
            # The same from schedstat (ns, live threads): the ticks of
            # /proc/PID/stat are 10 ms, a few % of a run.
            ("cpu_s_per_gib_schedstat", "large",
             lambda r: r["cpu_s_schedstat"] / (r["bytes"] / GIB)),
            ("gbps", "large", lambda r: r["gbps"]),
            ("f1k_rps", "f1k", lambda r: r["rps"]),
            ("f1k_server_cpu_us_per_request", "f1k",
             lambda r: r["server_cpu_s"] / r["requests"] * 1e6),
        )
        # Each run's count: a handful per run is not per request.
        trapped = {k: [r["guard_trapped"] for r in v]
                   for k, v in runs["guard_on"].items()}
        summary = {}
        for name, kind, get in metrics:
            on = [get(r) for r in runs["guard_on"][kind]]
            off = [get(r) for r in runs["guard_off"][kind]]
            s = {"guard_on": med(on), "guard_off": med(off),
                 "ratio_on_over_off": med(x / y for x, y in zip(on, off))}
            s["ratio_on_over_off"]["per_round"] = [x / y for x, y in
                                                   zip(on, off)]
            # Within noise: the rounds' on/off ratios straddle 1.  Ratios
            # all on one side with overlapping on and off ranges is said
            # as such: a small cost that every round shows.
            r = s["ratio_on_over_off"]
            overlap = (s["guard_on"]["min"] <= s["guard_off"]["max"] and
                       s["guard_off"]["min"] <= s["guard_on"]["max"])
            s["within_noise"] = r["min"] <= 1 <= r["max"]
            if s["within_noise"]:
                s["verdict"] = "within noise"
            elif overlap:
                s["verdict"] = "on %s off in every round, ranges overlap" % (
                    ">" if r["min"] > 1 else "<")
            else:
                s["verdict"] = "OUTSIDE noise (ranges apart)"
            summary[name] = s
        summary["other_cpu_share"] = med(
            r["other_cpu_share"] for v in runs.values() for k in v.values()
            for r in k)
        return {"server": "nginx under ktls-run, 1 worker, every process on "
                          "CPU %d; guard_off: KTLS_GUARD=0 in its "
                          "environment" % self.server_cpu,
                "client": "curl as in large_file, wrk -t1 -c32 -d%ds (CPU "
                          "%d)" % (self.wrk_secs, self.client_cpu),
                "file_bytes": self.big_bytes, "rounds": self.guard_runs,
                "worker_seccomp_want": {m: w for m, w in modes},
                "guard_on_trapped": trapped,
                "runs": runs, "summary": summary}

    # guard_cost's configurations: key, label, interposer, environment,
    # --enable, the Seccomp the process must report.
    GUARD_CONFIGS = (
        ("plain", "no interposer", False, {}, False, 0),
        ("preload", "interposer, nothing enabled", True, {}, False, 0),
        ("guard_on", "enabled, guard on", True, {}, True, 2),
        ("guard_off", "enabled, KTLS_GUARD=0", True, {"KTLS_GUARD": "0"},
         True, 0),
    )

    def guard_cost(self, exe, cfg):
        key, _label, preload, extra, enable, want = cfg
        # Nothing of the bench's own environment reaches the engine: the
        # configuration alone says what it does (no autocork, as the
        # engine's default: each record leaves when it is made).
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("KTLS_")}
        if preload:
            env["LD_PRELOAD"] = self.preload
            env["KTLS_ENABLE"] = "1"
        env.update(extra)
        cmd = self.client([exe, "--batches", str(self.guard_batches)] +
                          (["--enable"] if enable else []))
        c0, k0, w0 = cpu_stat(), child_cpu_s(), time.monotonic()
        out = run_checked(cmd, 600, "guard_cost (%s)" % key, env)
        w1, k1, c1 = time.monotonic(), child_cpu_s(), cpu_stat()
        try:
            r = json.loads(out)
        except ValueError:
            raise BenchError("guard_cost (%s): unreadable output: %s" % (
                key, out[-500:]))
        r["wall_s"] = w1 - w0
        r["other_cpu_share"] = other_share(c0, c1, (self.client_cpu,),
                                           k1 - k0, w1 - w0)
        if r["interposer_mapped"] != preload:
            raise BenchError("guard_cost (%s): interposer mapped: %s, want "
                             "%s" % (key, r["interposer_mapped"], preload))
        # Invariant 6: never a filter before the first enable.
        if r["seccomp_before_enable"] != 0 or r["seccomp"] != want:
            raise BenchError(
                "guard_cost (%s): Seccomp %d before the enable and %d after,"
                " want 0 and %d: the guard is not in the state this "
                "configuration says" % (key, r["seccomp_before_enable"],
                                        r["seccomp"], want))
        if want == 2:
            for case in ("write_enabled", "syscall_enabled"):
                c = r["cases"][case]
                if "ns_per_call" not in c:
                    raise BenchError("guard_cost (%s): %s: %s" % (
                        key, case, c.get("skipped")))
        return r

    def guard_calls(self):
        exe = os.path.join(self.build, "bench", "guard_cost")
        log("== guard: ns per call (guard_cost, CPU %d), %d process(es) per "
            "configuration, %d batches each" % (
                self.client_cpu, self.guard_passes, self.guard_batches))
        if not os.access(exe, os.X_OK):
            raise BenchError("%s missing: build first (make)" % exe)
        if not os.access(self.preload, os.R_OK):
            raise BenchError("%s missing: build first (make)" % self.preload)
        runs = {cfg[0]: [] for cfg in self.GUARD_CONFIGS}
        for _ in range(self.guard_passes):    # interleaved configurations
            for cfg in self.GUARD_CONFIGS:
                runs[cfg[0]].append(self.undisturbed(self.guard_cost, exe,
                                                     cfg))
        summary = {}
        for key, v in runs.items():
            cases = {}
            for case in v[0]["cases"]:
                rs = [r["cases"][case] for r in v]
                c = {"what": rs[0]["what"]}
                for m in ("ns_per_call", "cpu_ns_per_call"):
                    if all(m in x for x in rs):
                        # Median of the processes' medians, their extremes.
                        c[m] = {"median": statistics.median(
                                    x[m]["median"] for x in rs),
                                "min": min(x[m]["min"] for x in rs),
                                "max": max(x[m]["max"] for x in rs),
                                "n": sum(x[m]["n"] for x in rs)}
                if "skipped" in rs[0]:
                    c["skipped"] = rs[0]["skipped"]
                if "probe_wire_bytes" in rs[0]:
                    c["probe_wire_bytes"] = rs[0]["probe_wire_bytes"]
                cases[case] = c
            summary[key] = {"seccomp": v[0]["seccomp"], "cases": cases}
        for key, label, *_ in self.GUARD_CONFIGS:
            c = summary[key]["cases"]
            log("   %-28s Seccomp %d: %s" % (
                label, summary[key]["seccomp"], "; ".join(
                    "%s %.0f ns" % (k, x["ns_per_call"]["median"])
                    for k, x in c.items() if "ns_per_call" in x)))
        return {"program": exe + " --batches %d" % self.guard_batches,
                "cpu": self.client_cpu, "passes": self.guard_passes,
                "batches": self.guard_batches,
                "configs": {key: {"label": label, "interposer": pre,
                                  "env": extra, "enable": en,
                                  "seccomp_want": want}
                            for key, label, pre, extra, en, want in
                            self.GUARD_CONFIGS},
                "runs": runs, "summary": summary}

    # -------------------------------------------------------------- all

    def run(self):
        cc = setup_netns()
        start = time.monotonic()
        busy = machine_busy()
        end = start + self.args.wait_idle
        while max(busy.values()) > 0.1 and time.monotonic() < end:
            log("   waiting for the machine to be idle (CPU busy %s)" % busy)
            time.sleep(3)
            busy = machine_busy()
        self.results["meta"] = {
            "date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "quick": self.quick,
            "kernel": platform.release(),
            "cpu": cpu_model(),
            "cpu_flags": cpu_flags(),
            "cpus_online": os.cpu_count(),
            "server_cpu": self.server_cpu, "client_cpu": self.client_cpu,
            "network": "own network namespace (unshare -n), lo, "
                       "congestion control %s" % cc,
            "kernel_tls_ulp_available": kernel_tls_available(),
            "cpu_busy_before_bench": busy,
            "loadavg_before": loadavg(),
            "nginx": tool_version([kn.NGINX, "-v"]),
            "openssl": tool_version(["openssl", "version"]),
            "curl": tool_version(["curl", "--version"]),
            "wrk": tool_version(["wrk", "--version"]),
        }
        if max(busy.values()) > 0.1:
            log("WARNING: the machine is not idle before the bench (CPU busy "
                "fractions %s): other work will disturb the figures" % busy)
        if self.results["meta"]["kernel_tls_ulp_available"]:
            log("WARNING: this kernel has kTLS: stock nginx (a) may use the "
                "kernel's TLS, not OpenSSL in userspace")
        self.tmp = tempfile.mkdtemp(prefix="ktls-bench.")
        try:
            www = self.make_files()
            self.start_servers(www)
            self.results["meta"]["negotiated"] = {
                m: self.check_cipher(n) for m, n in self.servers.items()}
            self.paired()
            self.large_file()
            self.small()
            self.stop_servers()
            # Servers of its own (on and off, both fresh), the same files.
            guard = {"nginx": self.guard_nginx(www)}
            os.unlink(os.path.join(www, "big"))
        finally:
            for n in self.servers.values():
                n.stop()
            kn.cleanup()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.crypto()
        self.memory()
        guard["calls"] = self.guard_calls()
        self.results["guard"] = guard
        self.results["meta"]["loadavg_after"] = \
            loadavg()
        self.results["meta"]["duration_s"] = round(time.monotonic() - start, 1)


def med(values):
    v = list(values)
    return {"median": statistics.median(v), "min": min(v), "max": max(v),
            "n": len(v)}


# ------------------------------------------------------------- reporting

def fmt(s, prec=3):
    return "%.*f [%.*f-%.*f]" % (prec, s["median"], prec, s["min"], prec,
                                 s["max"])


def disturbance(runs):
    rs = [r for v in runs.values() for r in v]
    return (sum(len(r.get("discarded", [])) for r in rs),
            sum(1 for r in rs if r.get("disturbed")), len(rs))


def fmt_pct(s):
    return "%.0f [%.0f-%.0f]" % (s["median"] * 100, s["min"] * 100,
                                 s["max"] * 100)


# guard_cost's cases, as the table names them.
GUARD_ROWS = (
    ("write_devnull", "write(2) /dev/null"),
    ("syscall_devnull", "syscall(SYS_write) /dev/null"),
    ("stdio_devnull", "fputs+fflush /dev/null"),
    ("write_unix", "write(2) AF_UNIX socket"),
    ("getppid", "getppid (not write family)"),
    ("fstat_devnull", "fstat(2) /dev/null (ref.)"),
    ("write_enabled", "write(2) enabled socket"),
    ("syscall_enabled", "syscall(SYS_write) enabled"),
)


def fmt_ns(s):
    return "%.0f [%.0f-%.0f]" % (s["median"], s["min"], s["max"])


def guard_verdict(s):
    r = s["ratio_on_over_off"]
    return "%.3f [%.3f-%.3f]  %s" % (r["median"], r["min"], r["max"],
                                     s["verdict"])


def guard_table(g):
    out = []
    w = out.append
    c = g.get("calls")
    if c:
        sm = c["summary"]
        keys = [k for k in ("plain", "preload", "guard_on", "guard_off")
                if k in sm]
        w("Guard (invariant 7): ns per call of 1 byte, median [min-max] of "
          "%d batches x %d process(es), one process per configuration, "
          "CPU %d" % (c["batches"], c["passes"], c["cpu"]))
        w("  %-29s %-17s %-17s %-17s %-17s %s" % (
            "", "no interposer", "interposer,", "enabled,", "enabled,",
            "guard on"))
        w("  %-29s %-17s %-17s %-17s %-17s %s" % (
            "", "", "nothing enabled", "guard on", "KTLS_GUARD=0",
            "- off"))
        w("  %-29s %s" % ("Seccomp (checked)", "".join(
            "%-18d" % sm[k]["seccomp"] for k in keys)))
        for case, label in GUARD_ROWS:
            cells = []
            for k in keys:
                x = sm[k]["cases"].get(case, {})
                if "ns_per_call" in x:
                    cells.append(fmt_ns(x["ns_per_call"]))
                elif x.get("probe_wire_bytes") == 1:
                    cells.append("plaintext!")
                else:
                    cells.append("-")
            on = sm.get("guard_on", {}).get("cases", {}).get(case, {})
            off = sm.get("guard_off", {}).get("cases", {}).get(case, {})
            diff = ("%+.0f" % (on["ns_per_call"]["median"] -
                               off["ns_per_call"]["median"])
                    if "ns_per_call" in on and "ns_per_call" in off else "")
            w("  %-29s %s%s" % (label, "".join("%-18s" % x for x in cells),
                                diff))
        w("  enabled socket: until the peer has read every record (the "
          "worker's work included); plaintext!: with KTLS_GUARD=0 "
          "syscall(SYS_write) bypasses the engine (not timed)")
        w("  with the guard up, wrapped calls go through the engine's "
          "system-call page (not trapped); syscall(2) and stdio are "
          "trapped (SIGSYS) and completed by its handler")
        n, d, t = disturbance({k: v for k, v in c["runs"].items()})
        w("  %d guard_cost runs redone, %d of %d still disturbed" % (n, d, t))
    ng = g.get("nginx")
    if ng:
        s = ng["summary"]
        w("")
        w("nginx under ktls-run, guard on vs KTLS_GUARD=0 (worker Seccomp 2 "
          "/ 0, checked after every run): median [min-max] of %d "
          "interleaved rounds" % ng["rounds"])
        w("  %-30s %-22s %-22s %s" % ("", "guard on", "KTLS_GUARD=0",
                                      "on/off per round"))
        for key, label, prec in (
                ("cpu_s_per_gib", "%d MiB file: CPU-s/GiB" % (
                    ng["file_bytes"] >> 20), 3),
                ("cpu_s_per_gib_schedstat", "  (schedstat, ns)", 3),
                ("gbps", "  throughput GB/s", 2),
                ("f1k_rps", "1 KiB wrk -c32: req/s", 0),
                ("f1k_server_cpu_us_per_request", "  server CPU us/request", 1)):
            w("  %-30s %-22s %-22s %s" % (
                label, fmt(s[key]["guard_on"], prec),
                fmt(s[key]["guard_off"], prec), guard_verdict(s[key])))
        t = ng.get("guard_on_trapped")
        if t:
            w("  calls the guard trapped (SIGSYS) in the worker, each run "
              "(kern.ipc.tls.guard.trapped): large file %s, 1 KiB %s" % (
                  t["large"], t["f1k"]))
        w("  within noise: the rounds' on/off ratios straddle 1; other work "
          "on the 2 CPUs: %s%% of wall time; %d runs redone, %d of %d still "
          "disturbed" % ((fmt_pct(s["other_cpu_share"]),) +
                                     disturbance({
                                         m + k: v for m, x in
                                         ng["runs"].items()
                                         for k, v in x.items()})))
    return out


def table(res):
    meta = res["meta"]
    out = []
    w = out.append
    w("")
    w("ktls bench, %s%s" % (meta["date"], " (QUICK: not for the record)"
                            if meta["quick"] else ""))
    w("  %s, %s CPUs, kernel %s; %s; %s" % (
        meta["cpu"], meta["cpus_online"], meta["kernel"], meta["nginx"],
        meta["openssl"]))
    w("  %s; server on CPU %d, clients on CPU %d" % (
        meta["network"], meta["server_cpu"], meta["client_cpu"]))
    busy = meta.get("cpu_busy_before_bench", {})
    if busy and max(busy.values()) > 0.1:
        w("  WARNING: CPUs were busy before the bench (%s): other work "
          "disturbed these figures" % ", ".join(
              "cpu%s %.0f%%" % (k, v * 100) for k, v in busy.items()))
    fl = meta.get("cpu_flags")
    if fl:
        w("  CPU AES features: %s" % ", ".join(
            ("%s" if on else "no %s") % f for f, on in fl.items()))
    paths = res.get("crypto", {}).get("paths")
    if paths:
        w("  backend code paths: %s" % "; ".join(
            "%s: %s" % kv for kv in paths.items()))
    pa = res.get("paired")
    if pa:
        w("")
        w("HEADLINE: stock and ktls at the same time, server cost per unit "
          "of its own work, median [min-max] of %d rounds" % (
              pa["loads"]["f1k"]["ratio_a_over_b"]["n"]))
        for load, label in (("f1k", "1 KiB responses"),
                            ("f64k", "64 KiB responses"),
                            ("big", "large file")):
            r = pa["loads"][load]
            unit = ("us CPU/request" if r["unit"] == "us_per_request"
                    else "CPU-s/GiB")
            w("  %-17s stock %-22s ktls %-22s %s; stock/ktls %s" % (
                label, fmt(r["a"], 3), fmt(r["b"], 3), unit,
                fmt(r["ratio_a_over_b"], 2)))
        w("  (> 1: ktls costs less.  The sequential figures below swing "
          "+-25% run to run on a VM; these do not)")
    lf = res.get("large_file")
    if lf:
        s = lf["summary"]
        w("")
        w("Large file (%d MiB, cached), TLS 1.3 AES-128-GCM, nginx 1 worker, "
          "curl client; median [min-max] of %d" % (
              lf["file_bytes"] >> 20, s["stock_https"]["gbps"]["n"]))
        w("  %-28s %-26s %s" % ("", "server CPU-s/GiB", "throughput GB/s"))
        for key, label in (("stock_https", "(a) stock nginx HTTPS"),
                           ("ktls_https", "(b) nginx under ktls-run"),
                           ("plain_http", "(c) plain HTTP sendfile")):
            w("  %-28s %-26s %s" % (label, fmt(s[key]["cpu_s_per_gib"]),
                                    fmt(s[key]["gbps"], 2)))
        w("  other work on the 2 CPUs during the runs kept: %s%% of wall "
          "time, median [min-max]; %d runs redone, %d of %d still "
          "disturbed" % ((fmt_pct(s["other_cpu_share"]),) +
                         disturbance(lf["runs"])))
        r = lf["ratio_stock_over_ktls_cpu"]
        w("  sequential (a)/(b) server CPU per GiB: %.2fx  (per round "
          "%.2f-%.2f)" % (r["median"], r["per_round_min"],
                          r["per_round_max"]))
    sr = res.get("small_responses")
    if sr:
        s = sr["summary"]
        w("")
        w("Small responses: %s, HTTPS keep-alive; requests/s, median "
          "[min-max] of %d" % (sr["client"], s["f1k_stock"]["rps"]["n"]))
        w("  %-8s %-28s %-28s %s" % ("", "stock nginx", "under ktls-run",
                                     "ktls/stock"))
        for name, label in (("f1k", "1 KiB"), ("f64k", "64 KiB")):
            w("  %-8s %-28s %-28s %.2fx" % (
                label, fmt(s[name + "_stock"]["rps"], 0),
                fmt(s[name + "_ktls"]["rps"], 0),
                s[name + "_ratio_ktls_over_stock"]))
        w("  other work on the 2 CPUs during the runs kept: %s%% of wall "
          "time; %d runs redone, %d of %d still disturbed" % (
              (fmt_pct(s["other_cpu_share"]),) + disturbance(sr["runs"])))
    cr = res.get("crypto")
    if cr:
        w("")
        w("Encryption speed, one core, GB/s (\"open\": decryption)")
        recs = sorted({r.get("record") for r in cr["rows"]}, reverse=True)
        groups = {}
        for r in cr["rows"]:
            k = (r.get("backend") + (" open" if r.get("op") == "open"
                                     else ""), r.get("suite"))
            groups.setdefault(k, {})[r.get("record")] = r.get("gbps")
        w("  %-22s %-26s %s" % ("backend", "suite", "  ".join(
            "%8s" % ("%d B" % x) for x in recs)))
        for (b, su), v in groups.items():
            w("  %-22s %-26s %s" % (b, su, "  ".join(
                "%8s" % ("%.2f" % v[x] if x in v else "-") for x in recs)))
        for note in cr["notes"]:
            w("  note: " + note)
    m = res.get("memory")
    if m:
        w("")
        if "bytes_per_conn" in m:
            w("Memory: %d idle enabled connections: %.0f bytes of RSS per "
              "connection (beyond the kernel socket; VmRSS %d -> %d KiB)" % (
                  m["n"], m["bytes_per_conn"],
                  m["enabled"]["rss_kib"]["base"],
                  m["enabled"]["rss_kib"]["after"]))
        if m.get("note"):
            w("  note: " + m["note"])
    g = res.get("guard")
    if g:
        w("")
        w("\n".join(guard_table(g)))
    w("")
    return "\n".join(out)


def guard_line(g):
    """The guard's figures in one line, for the chart."""
    if not g:
        return None
    parts = []
    ng = g.get("nginx")
    if ng:
        s = ng["summary"]
        parts.append("nginx on/off: CPU-s/GiB %.3fx, 1 KiB req/s %.3fx" % (
            s["cpu_s_per_gib"]["ratio_on_over_off"]["median"],
            s["f1k_rps"]["ratio_on_over_off"]["median"]))
    c = g.get("calls")
    if c:
        on = c["summary"]["guard_on"]["cases"]
        off = c["summary"]["guard_off"]["cases"]

        def ns(x, k):
            return x[k]["ns_per_call"]["median"]
        parts.append("per call, on vs off: write(2) %.0f vs %.0f ns, "
                     "syscall(SYS_write) %.0f vs %.0f ns (trapped)" % (
                         ns(on, "write_devnull"), ns(off, "write_devnull"),
                         ns(on, "syscall_devnull"),
                         ns(off, "syscall_devnull")))
    return "Guard (KTLS_GUARD=0 = off): " + "; ".join(parts)


def chart(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing (python3-matplotlib): no chart"

    def bars(ax, labels, sums, title, ylabel, colors, fmtv="%.3g"):
        meds = [s["median"] for s in sums]
        err = [[s["median"] - s["min"] for s in sums],
               [s["max"] - s["median"] for s in sums]]
        ax.bar(labels, meds, yerr=err, capsize=4, color=colors)
        for i, s in enumerate(sums):
            ax.annotate(fmtv % s["median"], (i, s["max"]), ha="center",
                        va="bottom", xytext=(0, 3), textcoords="offset points",
                        fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.12)

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    col = ["#888888", "#2a7ab0", "#7fb77e"]
    lf = res.get("large_file")
    if lf:
        s = lf["summary"]
        keys = ["stock_https", "ktls_https", "plain_http"]
        labels = ["(a) stock\nHTTPS", "(b) ktls-run\nHTTPS", "(c) plain\nHTTP"]
        bars(axes[0][0], labels, [s[k]["cpu_s_per_gib"] for k in keys],
             "Large file: server CPU-s per GiB (lower is better)\n"
             "(a)/(b) = %.2fx" % lf["ratio_stock_over_ktls_cpu"]["median"],
             "CPU-s / GiB", col)
        bars(axes[0][1], labels, [s[k]["gbps"] for k in keys],
             "Large file: throughput, one server core", "GB/s", col)
    sr = res.get("small_responses")
    if sr:
        s = sr["summary"]
        keys = ["f1k_stock", "f1k_ktls", "f64k_stock", "f64k_ktls"]
        labels = ["1 KiB\nstock", "1 KiB\nktls-run", "64 KiB\nstock",
                  "64 KiB\nktls-run"]
        bars(axes[1][0], labels, [s[k]["rps"] for k in keys],
             "Small responses: wrk -c32, HTTPS keep-alive (median, min-max)",
             "requests/s", [col[0], col[1], col[0], col[1]], "%.0f")
    cr = res.get("crypto")
    ax = axes[1][1]
    rows = [r for r in (cr or {}).get("rows", [])
            if "AES-128-GCM" in str(r.get("suite"))]
    if rows:
        names = []
        for r in rows:
            if r.get("backend") not in names:
                names.append(r.get("backend"))
        recs = sorted({r.get("record") for r in rows}, reverse=True)
        width = 0.8 / max(1, len(recs))
        for j, rec in enumerate(recs):
            xs, ys = [], []
            for r in rows:
                if r.get("record") == rec:
                    xs.append(names.index(r.get("backend")) + j * width)
                    ys.append(r.get("gbps"))
            ax.bar(xs, ys, width, label="%d-byte records" % rec)
            for x, y in zip(xs, ys):
                ax.annotate("%.2f" % y, (x, y), ha="center", va="bottom",
                            xytext=(0, 3), textcoords="offset points",
                            fontsize=8)
        ax.set_xticks([i + width * (len(recs) - 1) / 2
                       for i in range(len(names))])
        ax.set_xticklabels(names, fontsize=8)
        ax.set_ylabel("GB/s")
        ax.legend(fontsize=8)
        ax.margins(y=0.12)
        ax.set_title("AES-128-GCM encryption, one core" + (
            "" if not cr["notes"] else " (crypto_speed not built)"),
            fontsize=10)
    m = res.get("memory", {})
    sub = "ktls bench %s, %s" % (res["meta"]["date"], res["meta"]["cpu"])
    if "bytes_per_conn" in m:
        sub += "; memory: %.0f B RSS per idle enabled connection (%d)" % (
            m["bytes_per_conn"], m["n"])
    fig.suptitle(sub, fontsize=10)
    line = guard_line(res.get("guard"))
    if line:
        fig.text(0.5, 0.005, line, ha="center", va="bottom", fontsize=9)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default=os.path.join(TOP, "build"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--wait-idle", type=float, default=90, metavar="SECS",
                    help="wait at most SECS for other work to stop using "
                    "the CPUs before starting (default 90)")
    args = ap.parse_args()
    if args.out is None:
        args.out = (os.path.join(tempfile.gettempdir(), "ktls-bench-quick")
                    if args.quick else os.path.join(TOP, "bench", "results"))
    if os.geteuid() != 0:
        print("bench: needs root (a network namespace of its own, reno as "
              "its congestion control)", file=sys.stderr)
        return 1
    enter_netns(sys.argv[1:])
    try:
        b = Bench(args)
        b.run()
    except BenchError as e:
        print("bench: FAILED: %s" % e, file=sys.stderr)
        return 1
    res = b.results
    os.makedirs(args.out, exist_ok=True)
    name = "quick" if args.quick else "latest"
    jpath = os.path.join(args.out, name + ".json")
    with open(jpath, "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    ppath = os.path.join(args.out, name + ".png")
    note = chart(res, ppath)
    print(table(res))
    print("bench: wrote %s" % jpath)
    print("bench: %s" % (note or "wrote " + ppath))
    return 0


if __name__ == "__main__":
    sys.exit(main())
