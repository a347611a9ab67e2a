#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Interop test: stock Debian nginx + OpenSSL 3 (`ssl_conf_command Options
KTLS;`, `sendfile on;`) under ktls-run, fetched by three independent TLS
clients (curl/OpenSSL, gnutls-cli and wget/GnuTLS, openssl s_client).

Every download is checked byte for byte (SHA-256 of the body against the
file) and against ktls's counters: kern.ipc.tls.stats.tx_bytes (ktls-stat
-j, summed over processes) must grow by at least what was served, so a
silent fallback to userspace TLS fails.  Prints TAP.

usage: test_nginx.py BUILD_DIR        (only 127.0.0.1 is used)
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True          # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktlsnginx as kn  # noqa: E402

# A sanitizer build (make test-asan, test-tsan): meson passes b_sanitize.
SANITIZER = os.environ.get("KTLS_SANITIZER", "none") not in ("", "none")
if SANITIZER:
    # Leak reports of the uninstrumented programs (nginx, clients) that
    # ktls-run gives the runtime to are theirs, not ktls's.
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0")

KIB, MIB = 1024, 1024 * 1024
SIZES = [0, 1, 16383, 16384, 16385, MIB + 7, 100 * MIB]
BIG = 100 * MIB
CIPHERS = {
    # name: (TLS 1.3 suite, TLS 1.2 OpenSSL name, GnuTLS priority name)
    "AES-128-GCM": ("TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                    "AES-128-GCM"),
    "AES-256-GCM": ("TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                    "AES-256-GCM"),
    "CHACHA20-POLY1305": ("TLS_CHACHA20_POLY1305_SHA256",
                          "ECDHE-RSA-CHACHA20-POLY1305", "CHACHA20-POLY1305"),
}
VERSIONS = ["1.3", "1.2"]
LIMIT = 1500            # seconds for everything (meson's timeout: 1800)

# Clients must not inherit an interposer from whoever runs us.
ENV = {k: v for k, v in os.environ.items()
       if k not in ("LD_PRELOAD", "KTLS_ENABLE", "OPENSSL_CONF")}
ENV["LC_ALL"] = "C"

n_case = 0


def tap(ok, name, diag=None, skip=None):
    global n_case
    n_case += 1
    name = name.replace("#", "")
    if skip:
        print("ok %d - %s # SKIP %s" % (n_case, name, skip), flush=True)
        return True
    print("%s %d - %s" % ("ok" if ok else "not ok", n_case, name), flush=True)
    if diag and not ok:
        for line in str(diag).splitlines()[:40]:
            print("#   " + line, flush=True)
    return ok


def note(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def fname(size):
    return "f%d" % size


class Body:
    """Collects a response: optional raw HTTP head (split at the first
    CRLFCRLF), SHA-256 and length of the body, the body's first `keep`
    bytes."""

    def __init__(self, raw_http, keep=0):
        self.in_body = not raw_http
        self.head = b""
        self.sha = hashlib.sha256()
        self.n = 0
        self.keep = keep
        self.kept = bytearray()

    def feed(self, chunk):
        if not self.in_body:
            self.head += chunk
            i = self.head.find(b"\r\n\r\n")
            if i < 0:
                return
            chunk = self.head[i + 4:]
            self.head = self.head[:i + 4]
            self.in_body = True
        self.sha.update(chunk)
        self.n += len(chunk)
        if len(self.kept) < self.keep:
            self.kept += chunk[:self.keep - len(self.kept)]

    def status(self):
        m = re.match(rb"HTTP/1\.[01] (\d{3})", self.head)
        return int(m.group(1)) if m else None

    def header(self, name):
        m = re.search(rb"(?im)^" + name.encode() + rb":\s*([^\r\n]*)",
                      self.head)
        return m.group(1).decode() if m else None


def run_client(cmd, stdin_data=None, raw_http=False, timeout=120,
               hold_stdin=False, keep=0, cwd=None, env=None):
    """Runs a client, streaming its stdout into a Body.  At most `timeout`
    seconds: then its process group is killed.  hold_stdin keeps stdin open
    until stdout ends (gnutls-cli).  Returns (rc, Body, stderr, secs)."""
    t0 = time.monotonic()
    p = kn.spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, env=env or ENV, cwd=cwd)
    timer = threading.Timer(timeout, kn.kill_group, [p])
    timer.start()
    err = []
    et = threading.Thread(target=lambda: err.append(p.stderr.read()))
    et.start()
    body = Body(raw_http, keep)
    try:
        if stdin_data:
            p.stdin.write(stdin_data)
            p.stdin.flush()
        if not hold_stdin:
            p.stdin.close()
        while True:
            chunk = p.stdout.read1(1 << 20)
            if not chunk:
                break
            body.feed(chunk)
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        timer.cancel()
        kn.reap(p, max(1, timeout - (time.monotonic() - t0)))
        et.join(10)
    stderr = (err[0] if err else b"").decode(errors="replace")
    if time.monotonic() - t0 >= timeout:
        stderr += "\n[killed after %ds]" % timeout
    return p.returncode, body, stderr, time.monotonic() - t0


class Ctx:
    pass


C = Ctx()


def url(path, port=None, scheme="https"):
    return "%s://127.0.0.1:%d/%s" % (scheme, port or C.nginx.port, path)


def request(path, extra=b""):
    return (b"GET /" + path.encode() + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n" +
            extra + b"\r\n")


# ---------------------------------------------------------------- clients
# Each returns (rc, Body, stderr, secs, header_bytes_or_None, verdict) where
# verdict is None when the negotiated version/cipher is right or unknown,
# else a string saying what was negotiated.

def curl_tls_args(ver, cipher):
    s13, s12, _ = CIPHERS[cipher]
    if ver == "1.3":
        return ["--tlsv1.3", "--tls13-ciphers", s13]
    return ["--tlsv1.2", "--tls-max", "1.2", "--ciphers", s12]


CURL_W = "%{stderr}KTLSW %{http_code} %{size_header} %{size_download} " \
         "%{num_connects}\\n"


def fetch_curl(path, ver, cipher, timeout=120):
    s13, s12, _ = CIPHERS[cipher]
    cmd = (["curl", "-sS", "-v", "-k", "--http1.1", "-o", "-", "-w", CURL_W]
           + curl_tls_args(ver, cipher) + [url(path)])
    rc, body, err, secs = run_client(cmd, timeout=timeout)
    m = re.search(r"KTLSW (\d+) (\d+) (\d+)", err)
    st, hdr = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    body.http_status = st
    m = re.search(r"SSL connection using (\S+) / (\S+)", err)
    got = (m.group(1), m.group(2)) if m else None
    want = ("TLSv" + ver, s13 if ver == "1.3" else s12)
    verdict = None if got == want else "negotiated %s, wanted %s" % (got,
                                                                      want)
    return rc, body, err, secs, hdr, verdict


def gnutls_priority(ver, cipher):
    return "NORMAL:-VERS-ALL:+VERS-TLS%s:-CIPHER-ALL:+%s" % (
        ver, CIPHERS[cipher][2])


def fetch_gnutls_cli(path, ver, cipher, timeout=120):
    log = os.path.join(C.tmp, "gnutls-cli.log")
    if os.path.exists(log):
        os.unlink(log)
    cmd = ["gnutls-cli", "--insecure", "--port", str(C.nginx.port),
           "--priority", gnutls_priority(ver, cipher), "--logfile", log,
           "127.0.0.1"]
    rc, body, err, secs = run_client(cmd, request(path), raw_http=True,
                                     hold_stdin=True, timeout=timeout)
    body.http_status = body.status()
    try:
        with open(log, errors="replace") as f:
            info = f.read()
    except OSError:
        info = ""
    m = re.search(r"- Description: (\S+)", info)
    desc = m.group(1) if m else ""
    ok = desc.startswith("(TLS%s-" % ver) and \
        desc.endswith("-(%s)" % CIPHERS[cipher][2])
    return (rc, body, err + info, secs, len(body.head),
            None if ok else "negotiated %r" % desc)


def fetch_wget(path, ver, cipher, timeout=120):
    """wget is built on GnuTLS; the priority string allows exactly one
    version and one cipher, so a completed download used them."""
    cmd = ["wget", "-q", "--no-check-certificate", "--ciphers",
           gnutls_priority(ver, cipher), "-O", "-", url(path)]
    rc, body, err, secs = run_client(cmd, timeout=timeout)
    body.http_status = 200 if rc == 0 else None
    return rc, body, err, secs, None, None


def fetch_s_client(path, ver, cipher, timeout=120, port=None, req=None,
                   keep=0):
    s13, s12, _ = CIPHERS[cipher]
    cmd = ["openssl", "s_client", "-brief", "-ign_eof", "-connect",
           "127.0.0.1:%d" % (port or C.nginx.port)]
    cmd += (["-tls1_3", "-ciphersuites", s13] if ver == "1.3" else
            ["-tls1_2", "-cipher", s12])
    rc, body, err, secs = run_client(cmd, req or request(path),
                                     raw_http=True, timeout=timeout,
                                     keep=keep)
    body.http_status = body.status()
    pm = re.search(r"Protocol version: (\S+)", err)
    cm = re.search(r"Ciphersuite: (\S+)", err)
    got = (pm and pm.group(1), cm and cm.group(1))
    want = ("TLSv" + ver, s13 if ver == "1.3" else s12)
    return (rc, body, err, secs, len(body.head),
            None if got == want else "negotiated %s, wanted %s" % (got, want))


# ---------------------------------------------------------------- checks

def tx():
    return kn.tx_bytes_ours(C.stat)


def check_download(name, fetch, path, size, expect_sha, *args, **kw):
    """One download with byte and counter checks; one TAP line."""
    try:
        before = tx()
    except Exception as e:  # noqa: BLE001
        return tap(False, name, "ktls-stat: %s" % e)
    rc, body, err, secs, hdr, verdict = fetch(path, *args, **kw)
    try:
        delta = tx() - before
    except Exception as e:  # noqa: BLE001
        return tap(False, name, "ktls-stat: %s" % e)
    problems = []
    if rc != 0:
        problems.append("client exit status %s" % rc)
    if body.http_status != 200:
        problems.append("HTTP status %s" % body.http_status)
    if body.n != size:
        problems.append("body %d bytes, want %d" % (body.n, size))
    elif body.sha.hexdigest() != expect_sha:
        problems.append("SHA-256 of the body differs from the file's")
    if verdict:
        problems.append(verdict)
    need = size + (hdr or 0)
    if delta < need:
        problems.append("tx_bytes grew by %d, want >= %d (body %d + "
                        "headers %s): not sent through ktls" %
                        (delta, need, size, hdr))
    if problems:
        tail = [l for l in err.strip().splitlines()
                if not re.match(r"[<>{}] |\* (old SSL|Connection #)", l)]
        problems.append("--- client stderr (tail):")
        problems += tail[-8:]
    C.times.append((name, secs))
    return tap(not problems, "%s (%.2fs, tx_bytes +%d)" % (name, secs, delta),
               "\n".join(problems))


def sha_of(path, start=0, length=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        left = length if length is not None else 1 << 62
        while left > 0:
            b = f.read(min(left, 1 << 20))
            if not b:
                break
            h.update(b)
            left -= len(b)
    return h.hexdigest()


# ---------------------------------------------------------------- cases

def case_matrix():
    clients = [("curl", fetch_curl), ("gnutls-cli", fetch_gnutls_cli),
               ("openssl s_client", fetch_s_client)]
    for cname, fetch in clients:
        for ver in VERSIONS:
            for cipher in CIPHERS:
                for size in SIZES:
                    f, n = fetch, cname
                    if cname == "gnutls-cli" and size == BIG:
                        # gnutls-cli writes what it receives one byte per
                        # write(2) (~1 MB/s): 100 MiB takes GnuTLS's wget.
                        f, n = fetch_wget, "wget(GnuTLS)"
                    check_download("%s TLS%s %s %d bytes" % (n, ver, cipher,
                                                             size),
                                   f, fname(size), size, C.sha[size], ver,
                                   cipher, timeout=180)


def case_keepalive():
    sizes = [0, 1, 16385, MIB + 7, 16384, 16383]
    for ver in VERSIONS:
        d = tempfile.mkdtemp(dir=C.tmp)
        cmd = ["curl", "-sS", "-k", "--http1.1", "-w", CURL_W]
        cmd += curl_tls_args(ver, "AES-128-GCM")
        for i, s in enumerate(sizes):
            cmd += ["-o", os.path.join(d, str(i)), url(fname(s))]
        before = tx()
        rc, body, err, secs = run_client(cmd, timeout=120)
        delta = tx() - before
        problems = []
        lines = re.findall(r"KTLSW (\d+) (\d+) (\d+) (\d+)", err)
        if rc != 0:
            problems.append("curl exit %d" % rc)
        if len(lines) != len(sizes):
            problems.append("%d transfers reported, want %d" %
                            (len(lines), len(sizes)))
        conns = sum(int(x[3]) for x in lines)
        if conns != 1:
            problems.append("%d connections opened, want 1 (keep-alive)" %
                            conns)
        for i, s in enumerate(sizes):
            p = os.path.join(d, str(i))
            if not os.path.exists(p) or sha_of(p) != C.sha[s]:
                problems.append("request %d (%d bytes): body wrong" % (i, s))
        need = sum(sizes) + sum(int(x[1]) for x in lines)
        if delta < need:
            problems.append("tx_bytes grew by %d, want >= %d" % (delta, need))
        shutil.rmtree(d, ignore_errors=True)
        tap(not problems, "curl TLS%s: %d requests on one keep-alive "
            "connection (%.2fs)" % (ver, len(sizes), secs),
            "\n".join(problems + err.splitlines()[-10:]))


def case_pipelined():
    """s_client, HTTP/1.1 pipelining: three requests in one write, three
    responses (three SSL_sendfile calls) back to back on one connection."""
    sizes = [MIB + 7, 16385, 1]
    req = b""
    for i, s in enumerate(sizes):
        last = i == len(sizes) - 1
        req += (b"GET /" + fname(s).encode() + b" HTTP/1.1\r\nHost: x\r\n" +
                (b"Connection: close\r\n" if last else b"") + b"\r\n")
    for ver in VERSIONS:
        before = tx()
        rc, body, err, secs, _hdr, verdict = fetch_s_client(
            None, ver, "AES-256-GCM", req=req, keep=4 * MIB)
        delta = tx() - before
        # Reassemble what came back and cut it into responses.
        raw = body.head + bytes(body.kept)
        problems = []
        if body.n > len(body.kept):
            problems.append("too much data: %d bytes" % body.n)
        off = 0
        for s in sizes:
            i = raw.find(b"\r\n\r\n", off)
            if i < 0:
                problems.append("response for %d bytes missing" % s)
                break
            head = raw[off:i]
            if not head.startswith(b"HTTP/1.1 200"):
                problems.append("status line %r" % head[:40])
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if not m or int(m.group(1)) != s:
                problems.append("content-length %r, want %d" %
                                (m and m.group(1), s))
            b = raw[i + 4:i + 4 + s]
            if hashlib.sha256(b).hexdigest() != C.sha[s]:
                problems.append("body of the %d-byte response wrong" % s)
            off = i + 4 + s
        if off != len(raw) and not problems:
            problems.append("%d bytes after the last response" %
                            (len(raw) - off))
        if verdict:
            problems.append(verdict)
        if delta < len(raw):
            problems.append("tx_bytes grew by %d, want >= %d" %
                            (delta, len(raw)))
        tap(not problems and rc == 0, "openssl s_client TLS%s: 3 pipelined "
            "HTTP/1.1 requests on one connection (%.2fs)" % (ver, secs),
            "\n".join(problems + ["exit %s" % rc] + err.splitlines()[-8:]))


def case_parallel(nclients=100):
    d = tempfile.mkdtemp(dir=C.tmp)
    sizes = [MIB + 7, 16385, 0, 16384, 1, MIB + 7, 16383]
    jobs = []
    before = tx()
    t0 = time.monotonic()
    for i in range(nclients):
        s = sizes[i % len(sizes)]
        ver = VERSIONS[i % 2]
        cipher = list(CIPHERS)[i % 3]
        out = os.path.join(d, str(i))
        cmd = (["curl", "-sS", "-k", "--http1.1", "-o", out, "-w", CURL_W]
               + curl_tls_args(ver, cipher) + [url(fname(s))])
        p = kn.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, env=ENV)
        jobs.append((p, s, out))
    problems = []
    hdr_total = 0
    deadline = time.monotonic() + 180
    for i, (p, s, out) in enumerate(jobs):
        try:
            _, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kn.kill_group(p)
            _, err = p.communicate()
        kn.reap(p, 1)
        err = err.decode(errors="replace")
        m = re.search(r"KTLSW (\d+) (\d+)", err)
        if p.returncode != 0 or not m or m.group(1) != "200":
            problems.append("client %d: exit %s, %s" % (i, p.returncode,
                                                        err.strip()[-200:]))
            continue
        hdr_total += int(m.group(2))
        if sha_of(out) != C.sha[s]:
            problems.append("client %d: body of %d bytes wrong" % (i, s))
    secs = time.monotonic() - t0
    delta = tx() - before
    need = sum(s for _, s, _ in jobs) + hdr_total
    if delta < need:
        problems.append("tx_bytes grew by %d, want >= %d" % (delta, need))
    shutil.rmtree(d, ignore_errors=True)
    tap(not problems, "%d curl clients at once, TLS 1.2 and 1.3, all three "
        "ciphers (%.2fs)" % (nclients, secs), "\n".join(problems))


def parse_multipart(raw, ctype):
    m = re.search(r"boundary=(\S+)", ctype or "")
    if not m:
        return None
    b = b"--" + m.group(1).encode()
    parts = []
    for chunk in raw.split(b)[1:]:
        if chunk.startswith(b"--"):
            break
        i = chunk.find(b"\r\n\r\n")
        head, data = chunk[:i], chunk[i + 4:]
        if data.endswith(b"\r\n"):
            data = data[:-2]
        r = re.search(rb"(?i)content-range:\s*bytes (\d+)-(\d+)/(\d+)", head)
        parts.append(((int(r.group(1)), int(r.group(2))) if r else None,
                      data))
    return parts


def case_ranges():
    path = os.path.join(C.www, fname(MIB + 7))
    with open(path, "rb") as f:
        data = f.read()
    for ver in VERSIONS:
        # One range: nginx sendfile()s from an offset.
        cmd = (["curl", "-sS", "-k", "--http1.1", "-i", "-r", "1000-20000",
                "-o", "-"] + curl_tls_args(ver, "AES-128-GCM") +
               [url(fname(MIB + 7))])
        before = tx()
        rc, body, err, secs = run_client(cmd, raw_http=True, keep=64 * KIB)
        delta = tx() - before
        want = data[1000:20001]
        ok = (rc == 0 and body.status() == 206 and bytes(body.kept) == want
              and body.n == len(want) and delta >= len(want))
        tap(ok, "curl TLS%s: range 1000-20000 of %d bytes (tx_bytes +%d)" %
            (ver, MIB + 7, delta),
            "exit %s status %s body %d bytes, equal %s\n%s" %
            (rc, body.status(), body.n, bytes(body.kept) == want, err[-500:]))
        # Several ranges: multipart/byteranges, file parts by sendfile.
        ranges = [(0, 99), (16380, 16390), (20000, 70000),
                  (MIB + 7 - 583, MIB + 6)]
        spec = ",".join("%d-%d" % r for r in ranges)
        cmd = (["curl", "-sS", "-k", "--http1.1", "-i", "-r", spec, "-o", "-"]
               + curl_tls_args(ver, "CHACHA20-POLY1305") +
               [url(fname(MIB + 7))])
        before = tx()
        rc, body, err, secs = run_client(cmd, raw_http=True, keep=1 * MIB)
        delta = tx() - before
        parts = parse_multipart(bytes(body.kept),
                                body.header("Content-Type")) or []
        problems = []
        if rc != 0 or body.status() != 206:
            problems.append("exit %s, status %s" % (rc, body.status()))
        if [p[0] for p in parts] != ranges:
            problems.append("parts %s, want %s" % ([p[0] for p in parts],
                                                   ranges))
        for (r, pdata) in parts:
            if r and pdata != data[r[0]:r[1] + 1]:
                problems.append("part %s: bytes wrong (%d bytes)" %
                                (r, len(pdata)))
        if delta < body.n:
            problems.append("tx_bytes grew by %d, want >= %d" %
                            (delta, body.n))
        tap(not problems, "curl TLS%s: multi-range %s (multipart/byteranges)"
            % (ver, spec), "\n".join(problems) + "\n" + err[-500:])
    # A range of the 100 MiB file, from an odd offset to the end.
    start = 12345679
    cmd = (["curl", "-sS", "-k", "--http1.1", "-r", "%d-" % start, "-o", "-",
            "-w", CURL_W] + curl_tls_args("1.3", "AES-256-GCM") +
           [url(fname(BIG))])
    before = tx()
    rc, body, err, secs = run_client(cmd, timeout=120)
    delta = tx() - before
    want_sha = sha_of(os.path.join(C.www, fname(BIG)), start)
    ok = (rc == 0 and "KTLSW 206" in err and body.n == BIG - start and
          body.sha.hexdigest() == want_sha and delta >= BIG - start)
    tap(ok, "curl TLS1.3: range %d- of the 100 MiB file (%.2fs)" %
        (start, secs), "exit %s, %d bytes, tx_bytes +%d\n%s" %
        (rc, body.n, delta, err[-500:]))


def case_reload():
    """2 workers; slow downloads run across a reload (SIGHUP to the master):
    those started before are finished by the old workers, those started
    after by the new ones, all byte-exact."""
    ng = C.nginx
    old = set(ng.workers_pids())
    d = tempfile.mkdtemp(dir=C.tmp)
    jobs = []

    def start(tag, i, ver):
        out = os.path.join(d, "%s%d" % (tag, i))
        cmd = (["curl", "-sS", "-k", "--http1.1", "--limit-rate", "40M",
                "-o", out, "-w", CURL_W] + curl_tls_args(ver, "AES-128-GCM")
               + [url(fname(BIG))])
        jobs.append((tag, kn.spawn(cmd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=ENV), out))

    for i in range(4):
        start("before", i, VERSIONS[i % 2])
    time.sleep(1.0)
    problems = []
    running = sum(1 for _, p, _ in jobs if p.poll() is None)
    if running < 4:
        problems.append("only %d of 4 downloads still running at reload" %
                        running)
    ng.reload()
    new = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = set(ng.workers_pids()) - old
        if len(new) >= ng.workers:
            break
        time.sleep(0.1)
    if len(new) < ng.workers:
        problems.append("reload: %d new workers after 30 s" % len(new))
    # A moment for the old workers to close their listening sockets.
    time.sleep(0.5)
    for i in range(4):
        start("after", i, VERSIONS[i % 2])
    t0 = time.monotonic()
    deadline = t0 + 240
    for tag, p, out in jobs:
        try:
            _, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            kn.kill_group(p)
            _, err = p.communicate()
        kn.reap(p, 1)
        err = err.decode(errors="replace")
        if p.returncode != 0 or "KTLSW 200" not in err:
            problems.append("%s: exit %s %s" % (tag, p.returncode,
                                                 err.strip()[-300:]))
        elif sha_of(out) != C.sha[BIG]:
            problems.append("%s: body wrong" % tag)
    # New workers served the downloads started after the reload.
    try:
        newtx = sum(kn.tx_bytes(C.stat, pid) for pid in new)
    except Exception as e:  # noqa: BLE001
        newtx = -1
        problems.append("ktls-stat -p: %s" % e)
    if newtx < 4 * BIG:
        problems.append("new workers' tx_bytes %d, want >= %d" %
                        (newtx, 4 * BIG))
    # Old workers leave once their connections are done.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and old & set(ng.workers_pids()):
        time.sleep(0.2)
    if old & set(ng.workers_pids()):
        problems.append("old workers %s still there 60 s after their "
                        "downloads" % sorted(old & set(ng.workers_pids())))
    shutil.rmtree(d, ignore_errors=True)
    tap(not problems and ng.alive(), "nginx reload (SIGHUP, 2 workers) with "
        "4 downloads of 100 MiB running and 4 started after: all complete "
        "byte-exact", "\n".join(problems))


OPENSSL_KTLS_CONF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Options = KTLS
"""


def case_s_server():
    conf = os.path.join(C.tmp, "openssl-ktls.cnf")
    with open(conf, "w") as f:
        f.write(OPENSSL_KTLS_CONF)
    tests = [("1.3", "AES-256-GCM", MIB + 7), ("1.2", "AES-128-GCM", MIB + 7),
             ("1.2", "CHACHA20-POLY1305", 16385)]
    port = kn.free_port()
    env = dict(ENV, OPENSSL_CONF=conf)
    logpath = os.path.join(C.tmp, "s_server.out")
    srvlog = open(logpath, "ab")
    log = open(logpath, "rb")
    cmd = [C.run, "--", "openssl", "s_server", "-accept",
           "127.0.0.1:%d" % port, "-cert", os.path.join(C.tmp, "cert.pem"),
           "-key", os.path.join(C.tmp, "key.pem"), "-WWW", "-sendfile"]
    srv = kn.spawn(cmd, server=True, stdin=subprocess.DEVNULL, stdout=srvlog,
                   stderr=subprocess.STDOUT, env=env, cwd=C.www)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and srv.poll() is None and \
                not kn.port_open(port):
            time.sleep(0.1)
        srv_up = srv.poll() is None
        for ver, cipher, size in tests:
            if not srv_up:
                tap(False, "openssl s_server -WWW -sendfile under ktls-run: "
                    "did not start")
                continue
            name = ("openssl s_server -WWW -sendfile (KTLS) under ktls-run "
                    "-> s_client TLS%s %s %d bytes" % (ver, cipher, size))
            log.seek(0, os.SEEK_END)
            mark = log.tell()
            before = tx()
            rc, body, err, secs, hdr, verdict = fetch_s_client(
                fname(size), ver, cipher, port=port)
            delta = tx() - before
            want_msg = "KTLS SENDFILE '%s' OK" % fname(size)
            out = ""
            for _ in range(20):             # s_server's line, at most 2 s
                log.seek(mark)
                out = log.read().decode(errors="replace")
                if want_msg in out or srv.poll() is not None:
                    break
                time.sleep(0.1)
            problems = []
            if rc != 0 or body.status() != 200:
                problems.append("exit %s status %s" % (rc, body.status()))
            if body.n != size or body.sha.hexdigest() != C.sha[size]:
                problems.append("body %d bytes, want %d, sha ok: %s" %
                                (body.n, size,
                                 body.sha.hexdigest() == C.sha[size]))
            if verdict:
                problems.append(verdict)
            if want_msg not in out or \
                    "KTLS is not available" in out or \
                    "Error SSL_sendfile" in out:
                problems.append("s_server did not SSL_sendfile() through "
                                "KTLS: " + out.strip()[-300:])
            if delta < size:
                problems.append("tx_bytes grew by %d, want >= %d" %
                                (delta, size))
            tap(not problems, "%s (tx_bytes +%d)" % (name, delta),
                "\n".join(problems) + "\n" + err[-300:])
    finally:
        kn.kill_group(srv, signal.SIGTERM)
        kn.reap(srv, 5)
        log.close()
        srvlog.close()


def case_other_user():
    """Debian runs nginx's workers as www-data: here a second nginx whose
    worker runs as nobody (the master as root), counted by ktls-stat."""
    if os.geteuid() != 0:
        return tap(True, "nginx workers as another user", skip="not root")
    d = os.path.join(C.tmp, "nobody")
    os.makedirs(d)
    os.chmod(C.tmp, 0o755)
    for f in ("cert.pem", "key.pem"):
        shutil.copy(os.path.join(C.tmp, f), d)
    os.symlink(C.www, os.path.join(d, "www"))
    ng = kn.Nginx(d, C.run, workers=1, user="nobody nogroup")
    main = C.nginx
    try:
        if not tap(ng.start(), "nginx with its worker as user nobody starts "
                   "under ktls-run", ng.error_log()[-2000:]):
            return
        uids = []
        for pid in ng.workers_pids():
            with open("/proc/%d/status" % pid) as f:
                uids += re.findall(r"(?m)^Uid:\s+(\d+)", f.read())
        nobody = subprocess.run(["id", "-u", "nobody"], stdout=subprocess.PIPE,
                                timeout=10).stdout.decode().strip()
        tap(uids and all(u == nobody for u in uids), "its worker runs as "
            "nobody (uid %s)" % nobody, "worker uids %s" % uids)
        C.nginx = ng
        for size in (MIB + 7, BIG):
            check_download("worker as nobody: curl TLS1.3 AES-256-GCM %d "
                           "bytes" % size, fetch_curl, fname(size), size,
                           C.sha[size], "1.3", "AES-256-GCM")
    finally:
        C.nginx = main
        rc = ng.stop()
        tap(rc == 0, "nginx with its worker as nobody quits with status 0",
            "exit %s\n%s" % (rc, ng.error_log()[-1500:]))


def case_plain():
    """Sockets that never enable TLS behave exactly as without ktls."""
    # nginx's plain-HTTP server: same process, its sockets never enable TLS.
    before = tx()
    rc, body, err, secs = run_client(
        ["curl", "-sS", "--http1.1", "-o", "-", "-w", CURL_W,
         url(fname(BIG), C.nginx.http_port, "http")], timeout=120)
    delta = tx() - before
    ok = rc == 0 and "KTLSW 200" in err and body.n == BIG and \
        body.sha.hexdigest() == C.sha[BIG] and delta < BIG
    tap(ok, "plain HTTP from nginx under ktls-run: 100 MiB byte-exact, not "
        "counted by ktls (tx_bytes +%d, %.2fs)" % (delta, secs),
        "exit %s, %d bytes\n%s" % (rc, body.n, err[-400:]))
    # The same client commands with and without ktls-run.  In a sanitizer
    # build ktls-run preloads the sanitizer's runtime, with which curl and
    # wget deadlock in setlocale() by themselves (glibc 2.36, without
    # ktls): there Python's HTTP client (OpenSSL without the KTLS option)
    # stands in for curl.
    if SANITIZER:
        get = ("import sys,ssl,urllib.request as u;"
               "c=ssl.create_default_context();c.check_hostname=False;"
               "c.verify_mode=ssl.CERT_NONE;"
               "sys.stdout.buffer.write(u.urlopen(sys.argv[1],context=c)"
               ".read())")
        cmds = [
            ("python3 urllib http://", ["python3", "-c", get,
             url(fname(MIB + 7), C.nginx.http_port, "http")]),
            ("python3 urllib https:// (OpenSSL without the KTLS option)",
             ["python3", "-c", get, url(fname(16385))]),
        ]
    else:
        cmds = [
            ("curl http://", ["curl", "-sS", "-i", "--http1.1",
                              url(fname(MIB + 7), C.nginx.http_port,
                                  "http")]),
            ("curl https:// (OpenSSL without the KTLS option)",
             ["curl", "-sS", "-k", "--http1.1", url(fname(16385))]),
        ]
    cmds.append(("sha256sum", ["sha256sum",
                               os.path.join(C.www, fname(MIB + 7))]))
    for name, cmd in cmds:
        res = []
        for wrap in ([], [C.run, "--"]):
            rc, body, err, _ = run_client(wrap + cmd, timeout=60, keep=4 * MIB)
            out = bytes(body.kept)
            if name.startswith("curl http://"):   # the Date: line may differ
                out = re.sub(rb"(?im)^date:[^\r\n]*", b"", out)
            res.append((rc, out, err))
        same = res[0][:2] == res[1][:2] and res[0][0] == 0
        tap(same, "%s: identical output and status with and without "
            "ktls-run" % name, "without: exit %s %d bytes\nwith: exit %s %d "
            "bytes %s" % (res[0][0], len(res[0][1]), res[1][0], len(res[1][1]),
                          res[1][2][-300:]))


# ---------------------------------------------------------------- main

def main():
    if len(sys.argv) != 2:
        print("usage: test_nginx.py BUILD_DIR", file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    C.run = os.path.join(build, "tools", "ktls-run")
    C.stat = os.path.join(build, "tools", "ktls-stat")
    missing = [p for p in (kn.NGINX, "/usr/bin/curl", "/usr/bin/gnutls-cli",
                           "/usr/bin/wget", "/usr/bin/openssl")
               if not os.access(p, os.X_OK)]
    if missing:
        print("1..0 # SKIP not installed: %s (scripts/deps.sh)" %
              " ".join(missing))
        return 0
    t_start = time.monotonic()
    C.tmp = tempfile.mkdtemp(prefix="ktls-nginx-")
    C.www = os.path.join(C.tmp, "www")
    C.times = []
    os.makedirs(C.www)

    def on_signal(sig, _frame):
        kn.cleanup()
        shutil.rmtree(C.tmp, ignore_errors=True)
        os._exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def out_of_time():
        print("not ok %d - the whole test within %d s" % (n_case + 1, LIMIT),
              flush=True)
        print("1..%d" % (n_case + 1), flush=True)
        kn.cleanup()
        shutil.rmtree(C.tmp, ignore_errors=True)
        os._exit(1)

    watchdog = threading.Timer(LIMIT, out_of_time)
    watchdog.daemon = True
    watchdog.start()
    C.nginx = None
    try:
        C.sha = {}
        for s in SIZES:
            h = hashlib.sha256()
            with open(os.path.join(C.www, fname(s)), "wb") as f:
                left = s
                while left:
                    b = os.urandom(min(left, 4 * MIB))
                    h.update(b)
                    f.write(b)
                    left -= len(b)
            C.sha[s] = h.hexdigest()
        kn.make_cert(C.tmp)
        tools_ok = all(os.access(p, os.X_OK) for p in (C.run, C.stat))
        if not tap(tools_ok, "ktls-run and ktls-stat built in %s/tools" %
                   build):
            print("1..%d" % n_case)
            return 1
        C.nginx = kn.Nginx(C.tmp, C.run, workers=2)
        started = C.nginx.start()
        if not tap(started, "stock nginx (2 workers) starts under ktls-run "
                   "on 127.0.0.1:%s" % C.nginx.port, C.nginx.error_log()):
            print("1..%d" % n_case)
            return 1
        preloaded = []
        for pid in C.nginx.workers_pids() + [C.nginx.proc.pid]:
            try:
                with open("/proc/%d/maps" % pid) as f:
                    preloaded.append("libktls-preload" in f.read())
            except OSError:
                preloaded.append(False)
        tap(all(preloaded), "the interposer is loaded in nginx's master and "
            "workers", str(preloaded))
        try:
            kn.ktls_stat(C.stat)
            tap(True, "ktls-stat -j answers")
        except Exception as e:  # noqa: BLE001
            tap(False, "ktls-stat -j answers", str(e))

        for case in (case_matrix, case_keepalive, case_pipelined,
                     case_parallel, case_ranges, case_reload, case_s_server,
                     case_other_user, case_plain):
            try:
                case()
            except Exception:  # noqa: BLE001
                tap(False, "%s ran to its end" % case.__name__,
                    traceback.format_exc())

        log = C.nginx.error_log()
        bad = [l for l in log.splitlines()
               if re.search(r"\[(alert|crit|emerg)\]", l)]
        tap(not bad, "nginx error.log has no alert/crit/emerg lines",
            "\n".join(bad[:20]))
        alive = C.nginx.alive()
        rc = C.nginx.stop()
        tap(alive and rc == 0, "nginx still running at the end, and quits "
            "(SIGQUIT) with status 0 within 40 s", "alive %s, exit %s" %
            (alive, rc))
        slow = sorted(C.times, key=lambda x: -x[1])[:3]
        note("slowest downloads: " + ", ".join("%s %.2fs" % x for x in slow))
        note("total %.1fs" % (time.monotonic() - t_start))
    finally:
        if C.nginx and C.nginx.proc:
            if os.environ.get("KTLS_TEST_KEEP"):
                note("error.log tail:\n" + C.nginx.error_log()[-3000:])
            C.nginx.stop(timeout=10)
        kn.cleanup()
        shutil.rmtree(C.tmp, ignore_errors=True)
        watchdog.cancel()
    print("1..%d" % n_case, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
