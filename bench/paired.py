#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Two servers measured at the same time: the ratio of their costs.

Back-to-back runs on these VMs swing by +-25%; two servers run at the
same moment see the same machine.  Both nginx servers (one worker each,
every process and thread pinned to the server CPU) serve the same files
while each has its own client on the client CPU, started together; each
server's CPU time (utime+stime of its processes, all threads, from
/proc/PID/stat) is divided by its own work: requests for wrk, GiB for a
download.  The ratio A/B of those costs is the figure (> 1: B is
cheaper).  Rounds alternate which server is started first; medians with
min-max.

A server is `stock` (nginx, OpenSSL encrypting in userspace) or
`ktls=BUILD_DIR` (the same nginx under that build's ktls-run; two builds
can be compared with each other).

usage: bench/paired.py [A] [B] [--rounds N] [--secs S]
                       [--what f1k,f64k,big] [--big-mib M] [--json FILE]
                       [--env-a KEY=VAL]... [--env-b KEY=VAL]...
--env-a/--env-b set a variable in one server's environment only (the same
build with and without a KTLS_* setting, say).
Defaults: A stock, B ktls=build, 5 rounds of 5 s, all three loads.
Runs in a network namespace of its own (reno), on 127.0.0.1 only, like
bench/run.py, whose helpers it uses; `make bench` calls it too.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as rb  # noqa: E402  (bench/run.py)

kn = rb.kn
NETNS_MARK = "KTLS_PAIRED_NETNS"
def cpu_features():
    """The CPU's model and the flags that decide AES code paths."""
    return {"model": rb.cpu_model(), "flags": rb.cpu_flags()}


def parse_env(pairs):
    """['KEY=VAL', ...] -> {KEY: VAL}."""
    env = {}
    for kv in pairs or ():
        key, eq, val = kv.partition("=")
        if not key or not eq:
            raise rb.BenchError("environment %r: want KEY=VAL" % kv)
        env[key] = val
    return env


def parse_server(spec, top):
    """'stock' or 'ktls=BUILD_DIR' -> (label, ktls-run path or None)."""
    if spec == "stock":
        return "stock", None
    m = re.match(r"ktls(?:=(.+))?$", spec)
    if not m:
        raise rb.BenchError("server %r: want stock or ktls=BUILD_DIR" % spec)
    build = os.path.abspath(m.group(1) or os.path.join(top, "build"))
    run = os.path.join(build, "tools", "ktls-run")
    if not os.access(run, os.X_OK):
        raise rb.BenchError("%s missing: build %s first" % (run, build))
    return "ktls=%s" % build, run


class Pair:
    """Two servers, A and B, started on the same files."""

    def __init__(self, tmp, www, a, b, server_cpu, client_cpu, env=None,
                 workers=1, affinity=False, clients=1):
        self.tmp, self.www = tmp, www
        self.server_cpu, self.client_cpu = server_cpu, client_cpu
        self.specs = (a, b)
        self.env = env or ({}, {})
        self.workers, self.affinity = workers, affinity
        self.clients = clients          # wrk threads / curl downloads
        self.servers = []

    def start(self):
        if not os.path.exists(os.path.join(self.tmp, "cert.pem")):
            kn.make_cert(self.tmp)
        for i, (label, run) in enumerate(self.specs):
            d = tempfile.mkdtemp(prefix="srv%d." % i, dir=self.tmp)
            for f in ("cert.pem", "key.pem"):
                shutil.copy(os.path.join(self.tmp, f), d)
            os.symlink(self.www, os.path.join(d, "www"))
            n = rb.BenchNginx(d, run, self.server_cpu, self.env[i],
                              workers=self.workers, affinity=self.affinity)
            if not n.start():
                raise rb.BenchError("nginx (%s) did not start: %s" % (
                    label, n.error_log()[-1000:]))
            self.servers.append(n)

    def stop(self):
        for n in self.servers:
            n.stop()
        self.servers = []

    def client(self, cmd):
        return ["taskset", "-c", str(self.client_cpu)] + cmd

    def _together(self, cmds, first):
        """Run both clients at once (first one started first); their
        outputs, and each server's CPU seconds over the same interval."""
        order = (first, 1 - first)
        outs = [None, None]
        errs = []
        t0 = [rb.cpu_ticks(n.pids()) for n in self.servers]
        s0 = [rb.sched_ns(n.pids()) for n in self.servers]

        def go(i):
            try:
                outs[i] = rb.run_checked(self.client(cmds[i]), 900,
                                         " ".join(cmds[i]))
            except rb.BenchError as e:
                errs.append(e)
        th = [threading.Thread(target=go, args=(i,)) for i in order]
        w0 = time.monotonic()
        for t in th:
            t.start()
        for t in th:
            t.join()
        wall = time.monotonic() - w0
        if errs:
            raise errs[0]
        t1 = [rb.cpu_ticks(n.pids()) for n in self.servers]
        s1 = [rb.sched_ns(n.pids()) for n in self.servers]
        cpu = [(t1[i] - t0[i]) / rb.CLK_TCK for i in range(2)]
        sched = [(s1[i] - s0[i]) / 1e9 for i in range(2)]
        return outs, cpu, sched, wall

    def wrk(self, name, secs, first):
        cmds = [["wrk", "-t%d" % self.clients, "-c%d" % (32 * self.clients),
                 "-d%ds" % secs, n.url(name)] for n in self.servers]
        outs, cpu, sched, wall = self._together(cmds, first)
        res = []
        for i, out in enumerate(outs):
            m = re.search(r"(\d+) requests in", out)
            if not m or re.search(r"Non-2xx or 3xx responses", out):
                raise rb.BenchError("wrk %s: %s" % (cmds[i][-1], out))
            req = int(m.group(1))
            res.append({"requests": req, "server_cpu_s": cpu[i],
                        "server_cpu_s_schedstat": sched[i],
                        "us_per_request": cpu[i] / req * 1e6,
                        "rps": req / secs})
        return res, wall

    def download(self, name, size, first):
        # clients > 1: that many downloads at once (curl --parallel).
        cmds = [["curl", "-sS", "-k", "--http1.1", "--tlsv1.3",
                 "--tls13-ciphers", rb.CIPHER, "--max-time", "600",
                 "-w", "%{http_code} %{size_download}\n"] +
                (["--parallel", "--parallel-max", str(self.clients)]
                 if self.clients > 1 else []) +
                [a for _ in range(self.clients)
                 for a in ("-o", "/dev/null", n.url(name))]
                for n in self.servers]
        outs, cpu, sched, wall = self._together(cmds, first)
        res = []
        for i, out in enumerate(outs):
            lines = out.split("\n")[:self.clients]
            for line in lines:
                code, got = line.split()[:2]
                if code != "200" or int(got) != size:
                    raise rb.BenchError("curl %s: %s" % (cmds[i][-1], out))
            gib = size * self.clients / rb.GIB
            res.append({"bytes": size * self.clients,
                        "server_cpu_s": cpu[i],
                        "server_cpu_s_schedstat": sched[i],
                        "cpu_s_per_gib": cpu[i] / gib})
        return res, wall


def measure(pair, what, rounds, secs, big_bytes, log=rb.log):
    """{load: {"a": [...], "b": [...], "ratio": med, "rounds": [...]}}:
    ratio = A's cost per unit / B's, per round, then its median."""
    out = {}
    labels = [s[0] for s in pair.specs]
    for load in what:
        per = {"a": [], "b": [], "ratio": []}
        unit = "cpu_s_per_gib" if load == "big" else "us_per_request"
        # A warm-up round, not counted.
        if load == "big":
            pair.download("big", big_bytes, 0)
        else:
            pair.wrk(load, 1, 0)
        for r in range(rounds):
            first = r % 2
            if load == "big":
                res, _ = pair.download("big", big_bytes, first)
            else:
                res, _ = pair.wrk(load, secs, first)
            per["a"].append(res[0])
            per["b"].append(res[1])
            per["ratio"].append(res[0][unit] / res[1][unit])
            log("   %s round %d: %s %.3f, %s %.3f %s: A/B %.3f" % (
                load, r + 1, labels[0], res[0][unit], labels[1],
                res[1][unit], unit, per["ratio"][-1]))
        out[load] = {
            "unit": unit,
            "a": rb.med(x[unit] for x in per["a"]),
            "b": rb.med(x[unit] for x in per["b"]),
            "ratio_a_over_b": rb.med(per["ratio"]),
            "rounds": per,
        }
        if load != "big":
            out[load]["a_rps_while_paired"] = rb.med(
                x["rps"] for x in per["a"])
            out[load]["b_rps_while_paired"] = rb.med(
                x["rps"] for x in per["b"])
    return out


def enter_netns(argv):
    if os.environ.get(NETNS_MARK) == "1" or \
            os.environ.get(rb.NETNS_MARK) == "1":
        return
    env = dict(os.environ)
    env[NETNS_MARK] = "1"
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "-n", "--", sys.executable,
                           os.path.abspath(__file__)] + argv, env)


def main():
    top = os.path.dirname(HERE)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", nargs="?", default="stock")
    ap.add_argument("b", nargs="?", default="ktls")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--what", default="f1k,f64k,big")
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--json", default=None)
    ap.add_argument("--workers", type=int, default=1,
                    help="nginx workers per server (default 1)")
    ap.add_argument("--affinity", action="store_true",
                    help="worker_cpu_affinity auto (each worker on a CPU)")
    ap.add_argument("--all-cpus", action="store_true",
                    help="servers and clients on every CPU (the scaling "
                    "case: 2 workers, 2 clients each, every CPU busy)")
    ap.add_argument("--env-a", action="append", metavar="KEY=VAL",
                    help="set in server A's environment (repeatable)")
    ap.add_argument("--env-b", action="append", metavar="KEY=VAL",
                    help="set in server B's environment (repeatable)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("paired: needs root (a network namespace)", file=sys.stderr)
        return 1
    enter_netns(sys.argv[1:])
    try:
        cc = rb.setup_netns()
        a, b = parse_server(args.a, top), parse_server(args.b, top)
        env = (parse_env(args.env_a), parse_env(args.env_b))
        server_cpu, client_cpu = rb.two_cpus()
        clients = 1
        if args.all_cpus:
            server_cpu = client_cpu = ",".join(
                str(c) for c in sorted(os.sched_getaffinity(0)))
            clients = args.workers
        what = [w for w in args.what.split(",") if w]
        big = args.big_mib << 20
        meta = {"cpu": cpu_features(), "server_cpu": server_cpu,
                "client_cpu": client_cpu, "congestion_control": cc,
                "a": a[0], "b": b[0], "env_a": env[0], "env_b": env[1],
                "rounds": args.rounds,
                "wrk_secs": args.secs, "big_bytes": big,
                "workers": args.workers, "affinity": args.affinity,
                "clients_per_server": clients,
                "method": "both servers at once, each on CPU %s with its "
                          "own client on CPU %s; cost = server CPU / own "
                          "work" % (server_cpu, client_cpu)}
        rb.log("paired: A %s%s, B %s%s; %s (%s)" % (
            a[0], "".join(" %s=%s" % kv for kv in env[0].items()),
            b[0], "".join(" %s=%s" % kv for kv in env[1].items()),
            meta["cpu"]["model"], ", ".join(
                f for f, on in meta["cpu"]["flags"].items() if on)))
        tmp = tempfile.mkdtemp(prefix="ktls-paired.")
        pair = Pair(tmp, rb.make_www(tmp, big), a, b, server_cpu,
                    client_cpu, env=env, workers=args.workers,
                    affinity=args.affinity, clients=clients)
        try:
            pair.start()
            res = measure(pair, what, args.rounds, args.secs, big)
        finally:
            pair.stop()
            kn.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
    except rb.BenchError as e:
        print("paired: FAILED: %s" % e, file=sys.stderr)
        return 1
    for load, r in res.items():
        print("%-5s A %s  B %s  (%s)  A/B %s" % (
            load, rb.fmt(r["a"]), rb.fmt(r["b"]), r["unit"],
            rb.fmt(r["ratio_a_over_b"])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": res}, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
