#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""ktls-stat against live processes (TAP).

usage: test_stat.py KTLS_STAT STAT_PEER

STAT_PEER enables one ktls session on a loopback TCP pair, sends 100000
bytes through it, prints "ready <pid>" and holds the session until its
stdin closes ("stat_peer fork": a forked child with a session of its own,
30000 bytes, and "ready <child pid>").  Other ktls processes (tests run in
parallel) may answer too, so sums over all processes are checked as lower
bounds; a single process (-p) is checked exactly.
"""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

STAT, PEER = sys.argv[1], sys.argv[2]
TX = "kern.ipc.tls.stats.tx_bytes"
ACTIVE = "kern.ipc.tls.stats.active"
OFFLOAD = "kern.ipc.tls.stats.offload_total"

n = 0
failed = 0


def ok(cond, name, diag=None):
    global n, failed
    n += 1
    if not cond:
        failed += 1
        if diag:
            for line in str(diag).splitlines():
                print("# " + line)
    print(("ok" if cond else "not ok") + " %d - %s" % (n, name), flush=True)
    return cond


def skip(name, why):
    global n
    n += 1
    print("ok %d - %s # SKIP %s" % (n, name, why), flush=True)


class Peer:
    """A stat_peer process; .pid is the process to ask (the child in fork
    mode), .proc the process started."""

    def __init__(self, mode=None):
        args = [PEER] + ([mode] if mode else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.pid = None
        r, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if r else ""
        if line.startswith("ready "):
            self.pid = int(line.split()[1])

    def stop(self):
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def stat(*args, pre=()):
    p = subprocess.run(list(pre) + [STAT] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def parse(out):
    """sysctl(8) lines "name: value" into a dict; None if one is not."""
    d = {}
    for line in out.splitlines():
        name, sep, value = line.partition(": ")
        if not sep or not name.startswith("kern.ipc.tls.") or \
                not value.isdigit():
            return None
        d[name] = int(value)
    return d


def show(rc, out, err):
    return "exit %s\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)


def raw(pid, request, send=True):
    """One exchange on the control socket, as bytes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect("\0ktls.%d" % pid)
    if send:
        s.sendall(request)
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    s.close()
    return data.decode()


def unix_listeners():
    """{"@ktls.<pid>": inode} of the listening sockets."""
    d = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7].startswith("@ktls.") and \
                    int(fields[3], 16) & 0x10000:     # __SO_ACCEPTCON
                d[fields[7]] = fields[6]
    return d


def socket_inodes(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


a = Peer()
if not ok(a.pid is not None, "a peer enables a session and is ready"):
    print("1..%d" % n)
    sys.exit(1)

# One process, exactly.
rc, out, err = stat("-p", str(a.pid))
d = parse(out)
ok(rc == 0 and d is not None, "ktls-stat -p prints name: value lines",
   show(rc, out, err))
d = d or {}
ok(d.get(TX) == 100000, "-p: %s: 100000" % TX, out)
ok(d.get(ACTIVE) == 1, "-p: %s: 1" % ACTIVE, out)
ok(d.get(OFFLOAD) == 1, "-p: %s: 1" % OFFLOAD, out)
ok(list(d)[:2] == ["kern.ipc.tls.enable", "kern.ipc.tls.maxlen"] and
   "kern.ipc.tls.sw.gcm" in d, "-p: every node, in the library's order", out)

# The protocol itself.
ans = raw(a.pid, b"GET\n")
lines = ans.splitlines()
ok(lines[-1:] == ["END"] and all(len(x.split()) == 3 for x in lines[:-1]) and
   "%s 100000 counter" % TX in lines and
   "kern.ipc.tls.maxlen 16384 tunable" in lines,
   "GET: name value kind lines, then END", ans)
ans = raw(a.pid, b"NONSENSE\n")
ok(ans == "ERR EINVAL\n", "an unknown request: ERR EINVAL", ans)

# A client that connects and says nothing holds the server for a short
# time only.
silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
silent.connect("\0ktls.%d" % a.pid)
t0 = time.monotonic()
rc, out, err = stat("-p", str(a.pid), TX)
elapsed = time.monotonic() - t0
ok(rc == 0 and out == "%s: 100000\n" % TX and elapsed < 5,
   "a silent client delays the next one briefly (%.1fs)" % elapsed,
   show(rc, out, err))
silent.close()

# Two processes: summed.
b = Peer()
ok(b.pid is not None, "a second peer is ready")
rc, out, err = stat()
d = parse(out) or {}
ok(rc == 0 and d.get(TX, 0) >= 200000 and d.get(ACTIVE, 0) >= 2 and
   d.get(OFFLOAD, 0) >= 2, "ktls-stat sums over processes",
   show(rc, out, err))
ok(d.get("kern.ipc.tls.maxlen") == 16384,
   "a tunable is not summed (maxlen 16384)", out)

# Names.
rc, out, err = stat(TX)
lines = out.splitlines()
ok(rc == 0 and len(lines) == 1 and lines[0].startswith(TX + ": ") and
   int(lines[0].split(": ")[1]) >= 200000,
   "ktls-stat NAME prints only that line", show(rc, out, err))
rc, out, err = stat("-p", str(a.pid), TX, ACTIVE)
ok(rc == 0 and out == "%s: 100000\n%s: 1\n" % (TX, ACTIVE),
   "-p PID NAME NAME: those lines, in that order", show(rc, out, err))
rc, out, err = stat("-p", str(a.pid), "kern.ipc.tls.sw")
d = parse(out) or {}
ok(rc == 0 and sorted(d) == ["kern.ipc.tls.sw.cbc",
                             "kern.ipc.tls.sw.chacha20",
                             "kern.ipc.tls.sw.gcm"] and
   d["kern.ipc.tls.sw.gcm"] == 1, "a name prefix prints its subtree",
   show(rc, out, err))
rc, out, err = stat("kern.ipc.tls.nosuch")
ok(rc == 1 and out == "" and "unknown oid" in err,
   "an unknown name: exit 1, unknown oid", show(rc, out, err))
rc, out, err = stat("-p", str(a.pid), TX, "kern.ipc.tls.stats.tx")
ok(rc == 1 and out == "" and "kern.ipc.tls.stats.tx'" in err,
   "-p with an unknown name (not a prefix of a name): exit 1",
   show(rc, out, err))

# JSON.
rc, out, err = stat("-j", "-p", str(a.pid))
try:
    j = json.loads(out)
except ValueError:
    j = None
rc2, out2, _ = stat("-p", str(a.pid))
ok(rc == 0 and isinstance(j, dict) and j.get(TX) == 100000 and
   j.get(ACTIVE) == 1 and j.get(OFFLOAD) == 1 and
   list(j) == list((parse(out2) or {}).keys()),
   "-j -p: a JSON object with the same names and values",
   show(rc, out, err))
rc, out, err = stat("-j")
try:
    j = json.loads(out)
except ValueError:
    j = None
ok(rc == 0 and isinstance(j, dict) and j.get(TX, 0) >= 200000 and
   all(isinstance(v, int) for v in j.values()),
   "-j: the sums as JSON", show(rc, out, err))
rc, out, err = stat("-j", "-p", str(a.pid), TX)
ok(rc == 0 and json.loads(out or "null") == {TX: 100000},
   "-j with a name: that key only", show(rc, out, err))

# Another user.
if shutil.which("setpriv") is None:
    skip("another user is refused", "setpriv is missing")
    skip("another user: refusing processes are skipped", "setpriv is missing")
elif os.geteuid() != 0:
    skip("another user is refused", "the test does not run as root")
    skip("another user: refusing processes are skipped",
         "the test does not run as root")
else:
    # A copy nobody can run, wherever the build tree is.
    tmp = tempfile.mkdtemp()
    os.chmod(tmp, 0o755)
    nstat = os.path.join(tmp, "ktls-stat")
    shutil.copy(STAT, nstat)
    os.chmod(nstat, 0o755)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    p = subprocess.run(nobody + [nstat, "-p", str(a.pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    ok(p.returncode == 1 and out == "" and
       "%d: permission denied" % a.pid in err,
       "another user: -p PID is refused, nothing printed",
       show(p.returncode, out, err))
    p = subprocess.run(nobody + [nstat],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    ok(p.returncode == 0 and "%d: permission denied" % a.pid in err and
       "%d: permission denied" % b.pid in err and TX not in out,
       "another user: refusing processes are skipped with a warning",
       show(p.returncode, out, err))
    shutil.rmtree(tmp)

# fork(): the child answers under its own pid with its own counters; the
# parent goes on answering with its own.
if "thread" in os.environ.get("KTLS_SANITIZER", ""):
    # ThreadSanitizer cannot start threads in the child of a
    # multi-threaded fork ("dup thread with used id").
    for name in ("a fork()ed child enables a session of its own",
                 "the child answers under its pid: tx_bytes 30000, active 1",
                 "the parent still answers under its pid: tx_bytes 100000",
                 "the child listens on its own name, not on its parent's "
                 "socket", "the fork peer and its child end cleanly"):
        skip(name, "ThreadSanitizer: no threads after a multi-threaded fork")
else:
    c = Peer("fork")
    if ok(c.pid is not None and c.pid != c.proc.pid,
          "a fork()ed child enables a session of its own"):
        rc, out, err = stat("-p", str(c.pid))
        d = parse(out) or {}
        ok(rc == 0 and d.get(TX) == 30000 and d.get(ACTIVE) == 1 and
           d.get(OFFLOAD) == 1,
           "the child answers under its pid: tx_bytes 30000, active 1",
           show(rc, out, err))
        rc, out, err = stat("-p", str(c.proc.pid))
        d = parse(out) or {}
        ok(rc == 0 and d.get(TX) == 100000 and d.get(ACTIVE) == 1,
           "the parent still answers under its pid: tx_bytes 100000",
           show(rc, out, err))
        lst = unix_listeners()
        parent_ino = lst.get("@ktls.%d" % c.proc.pid)
        ok("@ktls.%d" % c.pid in lst and parent_ino is not None and
           parent_ino not in socket_inodes(c.pid),
           "the child listens on its own name, not on its parent's socket",
           lst)
    ok(c.stop() == 0, "the fork peer and its child end cleanly")

# A process that is gone.
ok(b.stop() == 0, "the second peer ends cleanly")
rc, out, err = stat("-p", str(b.pid))
ok(rc == 1 and out == "" and ("%d:" % b.pid) in err,
   "-p of a process that exited: exit 1 with a message",
   show(rc, out, err))
rc, out, err = stat("-p", str(a.pid))
d = parse(out) or {}
ok(rc == 0 and d.get(TX) == 100000, "the first peer still answers",
   show(rc, out, err))

rc, out, err = stat("-h")
ok(rc == 0 and out.startswith("usage: ktls-stat"), "-h prints the usage",
   show(rc, out, err))
rc, out, err = stat("-p", "x")
ok(rc == 1 and out == "", "-p with a bad pid: exit 1", show(rc, out, err))

ok(a.stop() == 0, "the first peer ends cleanly")
print("1..%d" % n)
sys.exit(1 if failed else 0)
