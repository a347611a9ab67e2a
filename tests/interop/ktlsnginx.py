# SPDX-License-Identifier: BSD-2-Clause
"""Helpers for the nginx interop test: a throw-away stock nginx under
ktls-run (configuration from nginx.conf.in, shared with scripts/demo.sh),
self-signed certificate, free ports, ktls-stat counters, and bounded,
leak-free process handling.  Python 3 standard library only."""
import ctypes
import json
import re
import os
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX = "/usr/sbin/nginx"
TX_BYTES = "kern.ipc.tls.stats.tx_bytes"
TX_RECORDS = "kern.ipc.tls.stats.tx_records"

# Every process group we started, so that cleanup() can end them all.
_groups = set()


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Servers get SIGTERM if we die (even by SIGKILL from a test harness's
    # timeout); nginx's master then ends its workers.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(cmd, server=False, **kw):
    """Popen in a new session (own process group), remembered for cleanup.
    server: also SIGTERM it when this process dies."""
    if server:
        kw["preexec_fn"] = _die_with_parent
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    _groups.add(p.pid)
    return p


def kill_group(p, sig=signal.SIGKILL):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap(p, timeout=10):
    """Ends process p and its group: p is waited for at most timeout s."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    kill_group(p)
    _groups.discard(p.pid)


def cleanup():
    for pgid in list(_groups):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _groups.clear()


def make_cert(d):
    """cert.pem and key.pem in d: self-signed RSA 2048, CN=localhost."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", os.path.join(d, "key.pem"),
         "-out", os.path.join(d, "cert.pem"), "-days", "2",
         "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=60)


def write_config(d, port, http_port, workers=1, user=None,
                 worker_connections=None):
    """nginx.conf in d from the template.  user: the workers' user (as
    root only); by default the current user.  worker_connections: instead
    of the template's 1024 (the soak test's 1,000 clients)."""
    with open(os.path.join(HERE, "nginx.conf.in")) as f:
        conf = f.read()
    if os.geteuid() != 0:
        user = ""
    else:
        user = "user %s;" % (user or "root")
    # KTLS_NGINX_CONF_EXTRA: main-context directives added (debugging aid).
    extra = os.environ.get("KTLS_NGINX_CONF_EXTRA", "")
    for k, v in (("EXTRA", extra), ("DIR", d), ("PORT", port), ("HTTP_PORT", http_port),
                 ("WORKERS", workers), ("USER", user)):
        conf = conf.replace("@%s@" % k, str(v))
    if worker_connections:
        conf = re.sub(r"worker_connections \d+;",
                      "worker_connections %d;" % worker_connections, conf)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    os.makedirs(os.path.join(d, "www"), exist_ok=True)
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def children(pid):
    """PIDs of pid's direct children (from /proc)."""
    out = []
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            out = [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


class Nginx:
    """Stock nginx, in the foreground (daemon off) under ktls-run."""

    def __init__(self, d, ktls_run, workers=2, user=None,
                 worker_connections=None):
        self.d = d
        self.worker_connections = worker_connections
        self.user = user
        self.ktls_run = ktls_run
        self.workers = workers
        self.proc = None
        self.port = self.http_port = None

    def start(self, timeout=20):
        for _attempt in range(3):
            self.port, self.http_port = free_port(), free_port()
            conf = write_config(self.d, self.port, self.http_port,
                                self.workers, self.user,
                                self.worker_connections)
            cmd = [NGINX, "-e", os.path.join(self.d, "error.log"),
                   "-p", self.d, "-c", conf]
            if self.ktls_run:
                cmd = [self.ktls_run, "--"] + cmd
            self.log = open(os.path.join(self.d, "nginx.out"), "ab")
            self.proc = spawn(cmd, server=True, stdin=subprocess.DEVNULL,
                              stdout=self.log, stderr=subprocess.STDOUT)
            end = time.monotonic() + timeout
            while time.monotonic() < end and self.proc.poll() is None:
                if (port_open(self.port) and port_open(self.http_port) and
                        len(self.workers_pids()) >= self.workers):
                    return True
                time.sleep(0.1)
            self.stop()
        return False

    def workers_pids(self):
        return children(self.proc.pid) if self.proc else []

    def reload(self):
        os.kill(self.proc.pid, signal.SIGHUP)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=40):
        """Graceful quit (SIGQUIT), then SIGKILL; the exit status or None."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        reap(self.proc, 1)
        self.log.close()
        self.proc = None
        return rc

    def error_log(self):
        try:
            with open(os.path.join(self.d, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def ktls_stat(tool, pid=None, timeout=20):
    """kern.ipc.tls.* of `ktls-stat -j` as a dict (empty: nobody uses ktls).
    Raises RuntimeError when ktls-stat fails or prints no JSON."""
    cmd = [tool, "-j"] + (["-p", str(pid)] if pid else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    try:
        d = json.loads(p.stdout.decode() or "null")
    except ValueError:
        d = None
    if not isinstance(d, dict):
        raise RuntimeError("ktls-stat -j: exit %d, stdout %r, stderr %r" %
                           (p.returncode, p.stdout[:200], p.stderr[:200]))
    return d


def tx_bytes(tool, pid=None):
    return int(ktls_stat(tool, pid).get(TX_BYTES, 0))


def _descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, stack = [], [root]
    while stack:
        for c in kids.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def tx_bytes_ours(tool):
    """tx_bytes summed over this test's own processes that use ktls, so
    that other ktls users on the machine do not move the figure."""
    with open("/proc/net/unix") as f:
        users = set(int(m) for m in re.findall(r"@ktls\.(\d+)", f.read()))
    total = 0
    for pid in users.intersection(_descendants(os.getpid())):
        try:
            total += tx_bytes(tool, pid)
        except RuntimeError:
            pass    # it exited meanwhile
    return total
