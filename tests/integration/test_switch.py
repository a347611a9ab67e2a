#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""ktls-switch and the LIST/MODE control requests against a live process
(TAP).

usage: test_switch.py KTLS_SWITCH STAT_PEER

"STAT_PEER switch" holds three enabled sessions: on 127.0.0.1, on ::1 and
on an AF_INET6 socket connected to 127.0.0.1 through ::ffff:127.0.0.1; it
prints them ("conn <kind> laddr lport faddr fport suite"), then
"ready <pid>"; each "send" line on its stdin sends more on every session
("sent"), and at end of input it checks that its receivers decrypted
exactly what was sent ("verified <bytes>", exit 0).

As root, the peer runs in a network namespace of its own (with its own
loopback, and its own abstract sockets): there it is the only process that
uses ktls, so -a and the empty case are checked exactly, and -i -a touches
no other test's connections.  Without one, the checks that need that are
skipped and the others look at the peer's connections only.

This host's kernel has no TLS (setsockopt TCP_ULP "tls" fails), so a
switch to kernel mode must fail with "Operation not supported" and leave
the connection in software mode, working.
"""
import errno
import os
import select
import shutil
import subprocess
import sys
import tempfile

SWITCH, PEER = sys.argv[1], sys.argv[2]

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


def show(rc, out, err):
    return "exit %s\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)


def run(cmd, timeout=60):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def netns_works():
    if os.geteuid() != 0 or not shutil.which("unshare") or \
            not shutil.which("nsenter") or not shutil.which("ip"):
        return False
    try:
        rc, _, _ = run(["unshare", "-n", "ip", "link", "set", "lo", "up"])
    except (OSError, subprocess.TimeoutExpired):
        return False
    return rc == 0


ISOLATED = netns_works()


class Peer:
    def __init__(self):
        if ISOLATED:
            # unshare and sh exec: the process started is the peer.
            args = ["unshare", "-n", "sh", "-c",
                    'ip link set lo up && exec "$0" switch', PEER]
        else:
            args = [PEER, "switch"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.fd = self.proc.stdout.fileno()
        self.buf = b""
        self.pid = None
        self.conns = {}
        self.lines = []
        while True:
            line = self.readline()
            self.lines.append(line)
            f = line.split()
            if len(f) == 7 and f[0] == "conn":
                self.conns[f[1]] = f[2:]
            elif len(f) == 2 and f[0] == "ready":
                self.pid = int(f[1])
                break
            else:
                break

    def readline(self):
        """One line of the peer's output ("" after 60 s or at EOF); read
        from the descriptor itself, so select() sees what is pending."""
        while b"\n" not in self.buf:
            r, _, _ = select.select([self.fd], [], [], 60)
            b = os.read(self.fd, 4096) if r else b""
            if not b:
                line, self.buf = self.buf, b""
                return line.decode()
            self.buf += b
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode() + "\n"

    def send(self):
        self.proc.stdin.write(b"send\n")
        self.proc.stdin.flush()
        return self.readline()

    def stop(self):
        self.proc.stdin.close()
        out = self.buf.decode()
        while True:
            b = os.read(self.fd, 4096)
            if not b:
                break
            out += b.decode()
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return rc, out


peer = Peer()
if not ok(peer.pid is not None and sorted(peer.conns) ==
          ["mapped", "v4", "v6"] and
          (not ISOLATED or peer.pid == peer.proc.pid),
          "a peer holds sessions on 127.0.0.1, ::1 and a v4-mapped socket%s"
          % (" (own network namespace)" if ISOLATED else ""),
          "".join(peer.lines)):
    print("1..%d" % n)
    sys.exit(1)

NS = ["nsenter", "-t", str(peer.pid), "-n", "--"] if ISOLATED else []


def tool(*args, pre=()):
    return run(NS + list(pre) + [SWITCH] + list(args))


def unmap(a):
    return a[7:] if a.startswith("::ffff:") and "." in a else a


# The connections as ktls-switch should show them (local side first; a
# v4-mapped address as IPv4).
want = {}
for kind, (la, lp, fa, fp, suite) in peer.conns.items():
    want[kind] = (unmap(la), lp, unmap(fa), fp, suite)
V4, V6, MAPPED = want["v4"], want["v6"], want["mapped"]


def pair(c):
    return "%s %s %s %s" % c[:4]


def listed(out):
    """-l lines of our peer: {(laddr, lport, faddr, fport): (mode, suite,
    name)}; None if a line is not in the expected form."""
    d = {}
    for line in out.splitlines():
        f = line.split(" ", 7)
        if len(f) != 8 or not f[1].isdigit() or not f[3].isdigit() or \
                not f[6].isdigit():
            return None
        if int(f[6]) == peer.pid:
            d[tuple(f[:4])] = (f[4], f[5], f[7])
    return d


def modes():
    rc, out, err = tool("-l", "-a")
    d = listed(out) or {}
    return {k: v[0] for k, v in d.items()}, show(rc, out, err)


# -l -a.
rc, out, err = tool("-l", "-a")
d = listed(out)
ok(rc == 0 and d is not None, "-l -a: exit 0, one line per connection",
   show(rc, out, err))
d = d or {}
ok(d.get(V4[:4]) == ("sw", V4[4], "stat_peer"),
   "-l -a: the 127.0.0.1 connection: addresses, ports, sw, suite, "
   "process", out)
ok(d.get(V6[:4]) == ("sw", V6[4], "stat_peer"),
   "-l -a: the ::1 connection: addresses, ports, sw, suite, process", out)
ok(d.get(MAPPED[:4]) == ("sw", MAPPED[4], "stat_peer"),
   "-l -a: the v4-mapped connection is shown with IPv4 addresses", out)
if ISOLATED:
    ok(len(d) == 3 and len(out.splitlines()) == 3 and err == "",
       "-l -a: exactly the three connections (own namespace)",
       show(rc, out, err))
else:
    skip("-l -a: exactly the three connections", "no network namespace")


# The protocol itself, on the peer's control socket.
RAW = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect("\0ktls.%d" % int(sys.argv[1]))
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
except OSError:
    pass
data = b""
while True:
    try:
        b = s.recv(65536)
    except OSError:
        break
    if not b:
        break
    data += b
sys.stdout.write(data.decode())
"""


def raw(request):
    rc, out, err = run(NS + [sys.executable, "-c", RAW, str(peer.pid),
                             request.encode().hex()])
    return out if rc == 0 else "(exit %d: %s)" % (rc, err)


ans = raw("LIST\n")
lines = ans.splitlines()
conns = [l.split() for l in lines[:-1]]
ok(lines[-1:] == ["END"] and len(conns) == 3 and
   all(len(c) == 7 and c[0] == "conn" and c[5] == "sw" for c in conns) and
   sorted(tuple(c[1:5]) + (c[6],) for c in conns) ==
   sorted(tuple(w[:4]) + (w[4],) for w in want.values()),
   "LIST: conn laddr lport faddr fport mode suite, then END", ans)
ans = raw("MODE sw %s\n" % pair(V4))
ok(ans == "OK\n", "MODE sw on a software connection: OK", ans)
ans = raw("MODE ifnet %s\n" % pair(V4))
ok(ans == "ERR EOPNOTSUPP\n",
   "MODE ifnet without kernel TLS: ERR EOPNOTSUPP", ans)
ans = raw("MODE ifnet %s\n" % pair(V6))
ok(ans == "ERR EOPNOTSUPP\n", "MODE ifnet on ::1: ERR EOPNOTSUPP", ans)
ans = raw("MODE sw %s\n" % pair(MAPPED))
ok(ans == "OK\n", "MODE with IPv4 addresses finds the v4-mapped socket",
   ans)
ans = raw("MODE sw ::ffff:%s %s ::ffff:%s %s\n" % MAPPED[:4])
ok(ans == "OK\n", "MODE with ::ffff: addresses finds it too", ans)
ans = raw("MODE sw %s %s %s 1\n" % V4[:3])
ok(ans == "ERR ENOENT\n", "MODE on no such connection: ERR ENOENT", ans)
bad = ["MODE toe %s\n" % pair(V4), "MODE sw %s %s %s\n" % V4[:3],
       "MODE sw %s extra\n" % pair(V4), "MODE sw %s %s %s 65536\n" % V4[:3],
       "MODE sw 127.0.0.256 1 127.0.0.1 2\n", "MODE sw localhost %s %s %s\n"
       % V4[1:4], "MODE\n", "LIST x\n"]
answers = [raw(b) for b in bad]
ok(all(a == "ERR EINVAL\n" for a in answers),
   "malformed MODE/LIST requests: ERR EINVAL",
   "\n".join("%r -> %r" % x for x in zip(bad, answers)))
# 255 bytes before the newline are accepted (blanks separate fields),
# 256 are not.
head = "MODE sw %s %s " % V4[:2]
tail = " %s %s" % V4[2:4]
line = head + " " * (255 - len(head) - len(tail)) + tail
ans = raw(line + "\n")
ok(len(line) == 255 and ans == "OK\n", "a request line of 255 bytes", ans)
ans = raw(line + " \n")
ok("OK" not in ans, "a request line of 256 bytes is refused", ans)
ans = raw("GET\n")
ok(ans.endswith("END\n") and "kern.ipc.tls.stats.active 3 counter" in ans,
   "GET still answers", ans[-300:])


# -i: this kernel has no TLS.
rc, out, err = tool("-i", *V4[:4])
ok(rc != 0 and out == "" and "Operation not supported" in err and
   pair(V4) in err,
   "-i laddr lport faddr fport: Operation not supported, exit != 0",
   show(rc, out, err))
rc, out, err = tool("-i", "[%s]:%s" % V6[:2], "[%s]:%s" % V6[2:4])
ok(rc != 0 and out == "" and "Operation not supported" in err,
   "-i [v6]:port [v6]:port: Operation not supported, exit != 0",
   show(rc, out, err))
# The errno name round-trips: the name the server sends ("ERR <name>",
# src/proto/ktls_ctl.h) is the errno of that name to ktls-switch, which
# prints its strerror, not the bare name (its fallback for a name it does
# not know).
ans = raw("MODE ifnet %s\n" % pair(V4))
name = ans[4:].rstrip("\n") if ans.startswith("ERR ") else ""
rc, out, err = tool("-i", *V4[:4])
ok(name.startswith("E") and hasattr(errno, name) and rc == 1 and
   "ktls-switch: %s: %s\n" % (pair(V4), os.strerror(getattr(errno, name)))
   in err and name not in err,
   "ERR <name> from the server (%s) is that errno to ktls-switch" % name,
   "server: %r\n%s" % (ans, show(rc, out, err)))
m, diag = modes()
ok(m.get(V4[:4]) == "sw" and m.get(V6[:4]) == "sw",
   "after the failed -i both connections are still sw", diag)
ans = peer.send()
ok(ans == "sent\n", "the peer still sends on every session after -i", ans)


# -s on connections already in software mode: switched, every syntax.
forms = [
    ("ipv4, four arguments", list(V4[:4]), V4),
    ("ipv4, addr:port", ["%s:%s" % V4[:2], "%s:%s" % V4[2:4]], V4),
    ("ipv4, addr.port", ["%s.%s" % V4[:2], "%s.%s" % V4[2:4]], V4),
    ("ipv6, four arguments", list(V6[:4]), V6),
    ("ipv6, [addr]:port", ["[%s]:%s" % V6[:2], "[%s]:%s" % V6[2:4]], V6),
    ("ipv6, addr.port", ["%s.%s" % V6[:2], "%s.%s" % V6[2:4]], V6),
    ("ipv6, addr:port (last colon)", ["%s:%s" % V6[:2], "%s:%s" % V6[2:4]],
     V6),
    ("ipv6, [addr] port", ["[%s]" % V6[0], V6[1], "[%s]" % V6[2], V6[3]],
     V6),
    ("v4-mapped socket by its IPv4 addresses", list(MAPPED[:4]), MAPPED),
    ("v4-mapped socket by ::ffff: addresses",
     ["[::ffff:%s]:%s" % MAPPED[:2], "[::ffff:%s]:%s" % MAPPED[2:4]],
     MAPPED),
]
for name, args, conn in forms:
    rc, out, err = tool("-s", *args)
    ok(rc == 0 and out == "%s: switched\n" % pair(conn) and err == "",
       "-s %s: switched, exit 0" % name, show(rc, out, err))
rc, out, err = tool(*V4[:4])
ok(rc == 0 and out == "%s: switched\n" % pair(V4),
   "no -i or -s: software mode (switched, exit 0)", show(rc, out, err))


# Errors.
rc, out, err = tool("-s", V4[0], V4[1], V4[2], "1")
ok(rc == 1 and out == "" and "no such connection" in err,
   "an unknown connection: exit 1, no such connection", show(rc, out, err))
rc, out, err = tool("-s", V4[0], V4[1], V6[2], V6[3])
ok(rc == 1 and out == "" and "different address families" in err,
   "an IPv4 and an IPv6 address: exit 1", show(rc, out, err))
usage_cases = [[], ["-a", V4[0]], ["-l"], ["-l"] + list(V4[:4]),
               ["-l", "-i", "-a"], ["-l", "-s", "-a"], list(V4[:3]),
               list(V4[:4]) + ["x"], ["-S", "rack", "-a"], ["-x", "-a"],
               ["%s:" % V4[0], "%s:%s" % V4[2:4]],
               ["%s" % V4[1], "%s" % V4[3]],
               [":%s" % V4[1], ":%s" % V4[3]]]
for args in usage_cases:
    rc, out, err = tool(*args)
    ok(rc == 2 and out == "" and "usage: ktls-switch" in err,
       "usage error %r: exit 2 and the usage" % (args,), show(rc, out, err))
rc, out, err = tool("-h")
ok(rc == 0 and out.startswith("usage: ktls-switch") and "-a" in out,
   "-h: the usage on stdout, exit 0", show(rc, out, err))


# All connections.
if ISOLATED:
    rc, out, err = tool("-s", "-a")
    ok(rc == 0 and sorted(out.splitlines()) ==
       sorted("%s: switched" % pair(c) for c in (V4, V6, MAPPED)),
       "-s -a: every connection switched, exit 0", show(rc, out, err))
    rc, out, err = tool("-i", "-a")
    ok(rc == 1 and out == "" and
       err.count("Operation not supported") == 3,
       "-i -a: Operation not supported for each of the three, exit 1",
       show(rc, out, err))
    m, diag = modes()
    ok(sorted(m.values()) == ["sw", "sw", "sw"],
       "after -i -a every connection is still sw", diag)
    rc, out, err = tool("-a")
    ok(rc == 0 and len(out.splitlines()) == 3,
       "-a alone: software mode for all, exit 0", show(rc, out, err))
else:
    for name in ("-s -a", "-i -a", "after -i -a", "-a alone"):
        skip(name, "no network namespace: would touch other processes")
ans = peer.send()
ok(ans == "sent\n", "the peer still sends after all the switching", ans)


# No process uses ktls (a network namespace of its own has none).
if ISOLATED:
    rc, out, err = run(["unshare", "-n", SWITCH, "-l", "-a"])
    ok(rc == 0 and out == "" and "no process uses ktls" in err,
       "-l -a with no process: nothing listed, exit 0", show(rc, out, err))
    rc, out, err = run(["unshare", "-n", SWITCH, "-s", "-a"])
    ok(rc == 0 and out == "", "-s -a with no process: exit 0",
       show(rc, out, err))
    rc, out, err = run(["unshare", "-n", SWITCH] + list(V4[:4]))
    ok(rc == 1 and out == "" and "no such connection" in err,
       "a connection with no process: exit 1, no such connection",
       show(rc, out, err))
else:
    for name in ("-l -a with no process", "-s -a with no process",
                 "a connection with no process"):
        skip(name, "no network namespace")


# Another user: the peer (root's) refuses.
if shutil.which("setpriv") is None:
    for i in range(3):
        skip("another user is refused", "setpriv is missing")
elif os.geteuid() != 0:
    for i in range(3):
        skip("another user is refused", "the test does not run as root")
else:
    # A copy nobody can run, wherever the build tree is.
    tmp = tempfile.mkdtemp()
    os.chmod(tmp, 0o755)
    nswitch = os.path.join(tmp, "ktls-switch")
    shutil.copy(SWITCH, nswitch)
    os.chmod(nswitch, 0o755)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    refused = "pid %d (stat_peer): Permission denied" % peer.pid
    rc, out, err = run(NS + nobody + [nswitch, "-i"] + list(V4[:4]))
    ok(rc == 1 and out == "" and refused in err and
       "no such connection" in err,
       "another user: the owner refuses (Permission denied), exit 1",
       show(rc, out, err))
    rc, out, err = run(NS + nobody + [nswitch, "-l", "-a"])
    ok(rc == 0 and str(peer.pid) not in out and refused in err,
       "another user: -l -a lists nothing of the peer and says why",
       show(rc, out, err))
    rc, out, err = run(NS + nobody + [nswitch, "-s", "-a"])
    ok(rc == 1 and refused in err,
       "another user: -s -a exits 1 on a refusing process",
       show(rc, out, err))
    shutil.rmtree(tmp)
m, diag = modes()
ok(len(m) == 3 and sorted(m.values()) == ["sw", "sw", "sw"],
   "the peer's connections are all listed, sw, at the end", diag)

rc, out = peer.stop()
ok(rc == 0 and "verified 180000" in out,
   "the peer's receivers decrypted every byte sent, before and after the "
   "switches", "exit %s, %s" % (rc, out))

print("1..%d" % n)
sys.exit(1 if failed else 0)
