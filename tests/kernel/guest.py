#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Runs test programs inside a stock Debian kernel that has kernel TLS.

    guest.py --cache DIR --out-tap [--timeout S] PROG [PROG...]

The host's kernel may have no kTLS (this project exists for those), so the
tests of ktls's kernel mode, and of the kernel's records themselves, run in
a guest: Debian's cloud kernel (linux-image-cloud-amd64, whatever version
the archive has) booted by qemu under TCG, with an initramfs of busybox, the
kTLS and crypto modules, and the programs with their shared libraries.

Once per cache DIR (and again only if it is missing): the kernel package is
downloaded with apt-get, unpacked, cut down to vmlinuz and the modules kTLS
needs (with their dependency closure), and depmod'ed.  Every run builds a
fresh initramfs and boots once; all the programs run in that one boot, in
order, with cwd /tmp.

With --out-tap, prints one TAP stream: every program's cases renumbered into
one sequence, "name: " before each description; one failed case more for a
program without a plan, one that exits non-zero without a failed case, one
that never finishes (crash, timeout).  The rest of the console becomes "# "
comments.  Exit 0 when everything passed, 1 otherwise.  "1..0 # SKIP why"
and exit 0 when the guest cannot be had here (no qemu, no apt access); a
guest that boots and fails is a failure.
"""
import argparse
import glob
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

META = "linux-image-cloud-amd64"
# What kTLS's software path uses: tls itself, AES-GCM (gcm + ctr + ghash,
# or aesni-intel's own gcm(aes)), ChaCha20-Poly1305 (the rfc7539 template
# over a chacha20 and a poly1305).  Kept with their dependency closure and
# loaded in this order by /init; the ones a kernel lacks are left out.
MODULES = [
    "tls", "gcm", "ctr", "ghash-generic", "gf128mul", "cryptd",
    "crypto_simd", "aesni-intel", "ghash-clmulni-intel",
    "chacha20poly1305", "chacha_generic", "chacha-x86_64",
    "poly1305_generic", "poly1305-x86_64", "libchacha", "libpoly1305",
]
# Loaded explicitly by /init (the rest come in as dependencies).
LOAD = [
    "tls", "gcm", "ctr", "ghash-generic", "aesni-intel",
    "ghash-clmulni-intel", "chacha20poly1305", "chacha_generic",
    "chacha-x86_64", "poly1305_generic", "poly1305-x86_64",
]
STD_LIB_DIRS = {"/lib", "/lib64", "/usr/lib", "/usr/lib64",
                "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}
QEMU = "qemu-system-x86_64"
# Terminal control the firmware writes to the serial console.
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_]|c)")


class Skip(Exception):
    """The guest cannot be had in this environment (not a test failure)."""


def log(msg):
    print(f"# guest: {msg}", flush=True)


def modname(path_or_name):
    """Module name as the kernel spells it: no directory, suffix, dashes."""
    base = os.path.basename(path_or_name)
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def need_tools(*tools):
    for t in tools:
        if shutil.which(t) is None and not os.path.exists(t):
            raise Skip(f"{os.path.basename(t)} not installed "
                       f"(scripts/deps.sh installs it)")


def as_root(cmd):
    if os.geteuid() == 0:
        return cmd
    if shutil.which("sudo") is None:
        return None
    return ["sudo", "-n"] + cmd


def resolve_kernel_package():
    """The real linux-image-*-cloud-amd64 package the metapackage pulls."""
    def depends():
        p = run(["apt-cache", "depends", META])
        if p.returncode != 0:
            return None
        for line in p.stdout.splitlines():
            m = re.match(r"\s*\|?Depends:\s*(linux-image-\S+)", line)
            if m and re.search(r"-cloud-amd64(-unsigned)?$", m.group(1)):
                return m.group(1)
        return None

    pkg = depends()
    if pkg is None:
        apt_update()
        pkg = depends()
    if pkg is None:
        raise Skip(f"apt cannot resolve {META}")
    return pkg


def apt_update():
    cmd = as_root(["apt-get", "update", "-qq"])
    if cmd is None:
        raise Skip("apt-get update needs root (no sudo)")
    log("apt-get update")
    p = run(cmd, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise Skip("apt-get update failed: " + p.stdout.strip()[-200:])


def download(pkg, cache):
    for attempt in (0, 1):
        p = run(["apt-get", "download", "-q", pkg], cwd=cache,
                stdin=subprocess.DEVNULL)
        debs = sorted(glob.glob(os.path.join(cache, pkg + "_*.deb")),
                      key=os.path.getmtime)
        if p.returncode == 0 and debs:
            return debs[-1]
        if attempt == 0:
            # A stale index names files the mirror no longer has.
            apt_update()
    raise Skip(f"apt-get download {pkg} failed: " + p.stdout.strip()[-200:])


def module_closure(moddir, wanted):
    """Paths (relative to moddir) of wanted and everything they need."""
    by_name = {}
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if re.search(r"\.ko(\.(xz|zst|gz))?$", f):
                path = os.path.join(root, f)
                by_name[modname(f)] = os.path.relpath(path, moddir)
    keep = {}
    todo = [modname(w) for w in wanted]
    while todo:
        name = todo.pop()
        if name in keep or name not in by_name:
            continue
        keep[name] = by_name[name]
        path = os.path.join(moddir, by_name[name])
        for field in ("depends", "softdep"):
            p = run(["modinfo", "-F", field, path])
            if p.returncode != 0:
                raise RuntimeError(f"modinfo {path}: {p.stdout.strip()}")
            for tok in re.split(r"[\s,]+", p.stdout):
                if tok and not tok.endswith(":"):
                    todo.append(modname(tok))
    return keep


def build_guest(cache):
    """The cached guest tree: vmlinuz, lib/modules/VER, KVER, MODULES."""
    guest = os.path.join(cache, "guest")
    if os.path.exists(os.path.join(guest, "READY")):
        return guest
    need_tools("apt-get", "apt-cache", "dpkg-deb")
    need_tools(*[shutil.which(t) or "/sbin/" + t
                 for t in ("depmod", "modinfo")])
    os.makedirs(cache, exist_ok=True)
    t0 = time.monotonic()
    pkg = resolve_kernel_package()
    log(f"{META} -> {pkg}")
    deb = download(pkg, cache)
    tmp = tempfile.mkdtemp(prefix="build-", dir=cache)
    try:
        unpacked = os.path.join(tmp, "deb")
        p = run(["dpkg-deb", "-x", deb, unpacked])
        if p.returncode != 0:
            raise RuntimeError(f"dpkg-deb -x {deb}: {p.stdout.strip()}")
        vers = os.listdir(os.path.join(unpacked, "lib", "modules"))
        if len(vers) != 1:
            raise RuntimeError(f"{deb}: modules for {vers}")
        kver = vers[0]
        src = os.path.join(unpacked, "lib", "modules", kver)
        out = os.path.join(tmp, "guest")
        dst = os.path.join(out, "lib", "modules", kver)
        os.makedirs(dst)
        shutil.copy(os.path.join(unpacked, "boot", "vmlinuz-" + kver),
                    os.path.join(out, "vmlinuz"))
        keep = module_closure(src, MODULES)
        if "tls" not in keep:
            raise RuntimeError(f"{deb} has no tls module")
        for rel in keep.values():
            os.makedirs(os.path.dirname(os.path.join(dst, rel)),
                        exist_ok=True)
            shutil.copy(os.path.join(src, rel), os.path.join(dst, rel))
        for f in ("modules.builtin", "modules.builtin.modinfo",
                  "modules.order"):
            if os.path.exists(os.path.join(src, f)):
                shutil.copy(os.path.join(src, f), os.path.join(dst, f))
        # The package's modules.dep is made by its postinst: make ours.
        depmod = shutil.which("depmod") or "/sbin/depmod"
        p = run([depmod, "-b", out, kver])
        if p.returncode != 0 or not os.path.exists(
                os.path.join(dst, "modules.dep")):
            raise RuntimeError(f"depmod -b {out} {kver}: {p.stdout.strip()}")
        load = [m for m in LOAD if modname(m) in keep]
        with open(os.path.join(out, "KVER"), "w") as f:
            f.write(kver + "\n")
        with open(os.path.join(out, "MODULES"), "w") as f:
            f.write("\n".join(load) + "\n")
        with open(os.path.join(out, "READY"), "w") as f:
            f.write(f"{pkg} {os.path.basename(deb)}\n")
        try:
            os.rename(out, guest)
        except OSError:
            if not os.path.exists(os.path.join(guest, "READY")):
                raise
        log(f"built {guest} ({kver}, {len(keep)} modules) in "
            f"{time.monotonic() - t0:.1f}s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return guest


class Cpio:
    """An initramfs: cpio "newc", every entry root-owned."""

    def __init__(self):
        self.out = bytearray()
        self.names = set()
        self.ino = 1

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        name = name.strip("/")
        if name in self.names:
            return
        self.names.add(name)
        self._entry(name, mode, data, rdev)

    def _entry(self, name, mode, data, rdev):
        nb = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(nb), 0)
        self.ino += 1
        self.out += b"070701" + b"".join(b"%08X" % v for v in fields)
        self.out += nb
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def dir(self, path):
        path = path.strip("/")
        if not path or path in self.names:
            return
        self.dir(os.path.dirname(path))
        self._add(path, 0o040755)

    def file(self, path, data, perm=0o755):
        self.dir(os.path.dirname(path.strip("/")))
        self._add(path, 0o100000 | perm, data)

    def copy(self, path, host_path):
        with open(host_path, "rb") as f:
            data = f.read()
        self.file(path, data, os.stat(host_path).st_mode & 0o777)

    def symlink(self, path, target):
        self.dir(os.path.dirname(path.strip("/")))
        self._add(path, 0o120777, target.encode())

    def chardev(self, path, major, minor):
        self.dir(os.path.dirname(path.strip("/")))
        self._add(path, 0o020600, rdev=(major, minor))

    def tree(self, path, host_dir):
        for root, dirs, files in os.walk(host_dir):
            rel = os.path.relpath(root, host_dir)
            base = os.path.normpath(os.path.join(path, rel))
            self.dir(base)
            for f in sorted(files):
                self.copy(os.path.join(base, f), os.path.join(root, f))

    def bytes(self):
        self._entry("TRAILER!!!", 0, b"", (0, 0))
        self.out += b"\0" * (-len(self.out) % 512)
        return bytes(self.out)


def shared_libs(path):
    """(path in the guest, host file) of every library ldd finds for path."""
    p = run(["ldd", path])
    if p.returncode != 0:
        if "not a dynamic executable" in p.stdout:
            return []
        raise RuntimeError(f"ldd {path}: {p.stdout.strip()}")
    libs = []
    for line in p.stdout.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => not found", line)
        if m:
            raise RuntimeError(f"{path}: {m.group(1)} not found")
        m = re.match(r"\S+ => (/\S+) \(0x", line) or \
            re.match(r"(/\S+) \(0x", line)
        if m:
            libs.append((os.path.normpath(m.group(1)),
                         os.path.realpath(m.group(1))))
    return libs


def build_initramfs(guest, progs, names, tools=()):
    kver = open(os.path.join(guest, "KVER")).read().strip()
    load = open(os.path.join(guest, "MODULES")).read().split()
    c = Cpio()
    for d in ("proc", "sys", "dev", "tmp", "t", "etc", "root", "run"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3)
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        raise Skip("busybox not installed (scripts/deps.sh installs it)")
    p = run([busybox, "--list-full"])
    if p.returncode != 0:
        raise RuntimeError("busybox --list-full: " + p.stdout.strip())
    c.copy("bin/busybox", busybox)
    for applet in p.stdout.split():
        if applet != "bin/busybox":
            c.symlink(applet, "/bin/busybox")
    c.tree("lib/modules/" + kver,
           os.path.join(guest, "lib", "modules", kver))

    libdirs = ["/t"]
    objs = list(progs) + list(tools)
    for prog in progs:
        for so in sorted(glob.glob(os.path.join(os.path.dirname(prog),
                                                "*.so"))):
            c.copy("t/" + os.path.basename(so), os.path.realpath(so))
            objs.append(so)
    for obj in objs:
        for gpath, host in shared_libs(obj):
            # A library outside the system's directories (the build
            # tree's libktls, a sanitizer runtime) goes to /t: its host
            # path may lie under /tmp, where the guest mounts a tmpfs.
            if os.path.dirname(gpath) not in STD_LIB_DIRS and \
                    not os.path.basename(gpath).startswith("ld-linux"):
                gpath = "/t/" + os.path.basename(gpath)
            c.copy(gpath, host)
    for prog, name in zip(progs, names):
        c.copy("t/" + name, os.path.realpath(prog))
    for tool in tools:     # in /t, for the programs to run; not run itself
        c.copy("t/" + os.path.basename(tool), os.path.realpath(tool))

    init = ["#!/bin/sh",
            "export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp",
            "mount -t proc proc /proc",
            "mount -t sysfs sysfs /sys",
            "mount -t devtmpfs devtmpfs /dev",
            "mount -t tmpfs tmpfs /tmp",
            "ip link set lo up",
            f"for m in {' '.join(load)}; do",
            "\tmodprobe $m || echo \"modprobe $m failed\"",
            "done",
            "echo \"KTLS-GUEST-KERNEL $(uname -r)\"",
            f"export LD_LIBRARY_PATH={':'.join(libdirs)}",
            ]
    for name in names:
        init += ["cd /tmp",
                 f"echo 'KTLS-GUEST-BEGIN {name}'",
                 f"/t/{name} </dev/null 2>&1",
                 f"echo \"KTLS-GUEST-END {name} $?\""]
    init += ["echo KTLS-GUEST-DONE", "poweroff -f", ""]
    c.file("init", "\n".join(init).encode())
    return c.bytes()


class TapOut:
    """Turns the guest's console into one TAP stream on stdout."""

    CASE = re.compile(r"^(not ok|ok)\b(?:\s+\d+)?(?:\s*-)?\s*(.*)$")

    def __init__(self, names):
        self.n = 0
        self.failed = 0
        self.names = names
        self.state = {n: {"begun": False, "status": None, "plan": None,
                          "plan_rest": "", "cases": 0, "notok": 0}
                      for n in names}
        self.cur = None
        self.done = False
        self.kver = None

    def case(self, ok, desc):
        self.n += 1
        if not ok:
            self.failed += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {desc}", flush=True)

    def comment(self, line):
        print(f"# {line}" if line else "#", flush=True)

    def line(self, line):
        m = re.match(r"^KTLS-GUEST-(BEGIN|END|DONE|KERNEL)\b\s*(.*)$", line)
        if m:
            what, arg = m.groups()
            if what == "KERNEL":
                self.kver = arg
                self.comment(f"guest kernel {arg}")
            elif what == "BEGIN" and arg in self.state:
                self.cur = arg
                self.state[arg]["begun"] = True
                self.comment(f"--- {arg}")
            elif what == "END":
                name, _, status = arg.rpartition(" ")
                if name in self.state:
                    self.finish(name, status)
                self.cur = None
            elif what == "DONE":
                self.done = True
            return
        if self.cur is None:
            self.comment(line)
            return
        st = self.state[self.cur]
        m = self.CASE.match(line)
        if m:
            st["cases"] += 1
            ok = m.group(1) == "ok"
            if not ok:
                st["notok"] += 1
            self.case(ok, f"{self.cur}: {m.group(2)}")
            return
        m = re.match(r"^1\.\.(\d+)\s*(.*)$", line)
        if m:
            st["plan"] = int(m.group(1))
            st["plan_rest"] = m.group(2)
            return
        if line.startswith("Bail out!"):
            st["notok"] += 1
            self.case(False, f"{self.cur}: {line}")
            return
        print(line if line.startswith("#") else f"# {line}", flush=True)

    def finish(self, name, status):
        st = self.state[name]
        st["status"] = status
        if st["plan"] is None:
            self.case(False, f"{name}: no TAP plan")
        elif st["plan"] == 0 and st["cases"] == 0:
            why = re.sub(r"^#\s*SKIP\s*", "", st["plan_rest"], flags=re.I)
            self.case(True, f"{name} # SKIP {why or 'no cases'}")
        elif st["plan"] != st["cases"]:
            self.case(False, f"{name}: planned {st['plan']} cases, "
                      f"ran {st['cases']}")
        if status != "0" and st["notok"] == 0:
            self.case(False, f"{name}: exit status {status}")

    def end(self, why):
        for name in self.names:
            st = self.state[name]
            if st["status"] is None:
                if self.cur == name:
                    self.case(False, f"{name}: did not finish ({why})")
                elif st["begun"]:
                    self.case(False, f"{name}: no end marker ({why})")
                else:
                    self.case(False, f"{name}: never started ({why})")
        if not self.done and all(self.state[n]["status"] is not None
                                 for n in self.names):
            self.case(False, f"guest did not finish ({why})")
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed else 0


def boot(guest, initrd, names, timeout):
    cmd = [QEMU, "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024",
           "-kernel", os.path.join(guest, "vmlinuz"), "-initrd", initrd,
           "-append", "console=ttyS0 panic=-1 quiet",
           "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
           "-monitor", "none", "-net", "none"]
    tap = TapOut(names)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = queue.Queue()

    def reader():
        for raw in proc.stdout:
            lines.put(raw)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    why = "guest exited"
    deadline = t0 + timeout
    while True:
        try:
            raw = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            why = f"timeout after {timeout:.0f}s"
            proc.kill()
            break
        if raw is None:
            break
        line = ANSI.sub("", raw.decode(errors="replace"))
        tap.line(line.rstrip("\r\n").replace("\r", ""))
    rc = proc.wait()
    log(f"qemu exit {rc} after {time.monotonic() - t0:.1f}s")
    return tap.end(why)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", required=True,
                    help="directory for the kernel package and tree")
    ap.add_argument("--out-tap", action="store_true", required=True,
                    help="print one TAP stream (the only output mode)")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds for the boot and every program (600)")
    ap.add_argument("--tool", action="append", default=[],
                    help="a program copied to /t for the tests, not run")
    ap.add_argument("progs", nargs="+", metavar="PROG")
    args = ap.parse_args()

    names = [os.path.basename(p) for p in args.progs]
    bad = [p for p in args.progs if not os.access(p, os.X_OK)]
    if bad or len(set(names)) != len(names):
        for p in bad:
            print(f"not ok {args.progs.index(p) + 1} - {p}: no such program")
        if len(set(names)) != len(names):
            print("Bail out! two programs of the same name")
        print(f"1..{len(bad)}")
        return 1
    try:
        if shutil.which(QEMU) is None:
            raise Skip(f"{QEMU} not installed (scripts/deps.sh installs it)")
        guest = build_guest(os.path.abspath(args.cache))
        t0 = time.monotonic()
        image = build_initramfs(guest, [os.path.abspath(p)
                                        for p in args.progs], names,
                                [os.path.abspath(t) for t in args.tool])
    except Skip as e:
        print(f"1..0 # SKIP {e}")
        return 0
    except (RuntimeError, OSError) as e:
        print(f"not ok 1 - guest: {e}\n1..1")
        return 1
    with tempfile.TemporaryDirectory(prefix="run-",
                                     dir=os.path.abspath(args.cache)) as d:
        initrd = os.path.join(d, "initrd.cpio")
        with open(initrd, "wb") as f:
            f.write(image)
        log(f"initramfs {len(image) / 1e6:.1f} MB in "
            f"{time.monotonic() - t0:.1f}s; booting {' '.join(names)}")
        return boot(guest, initrd, names, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
