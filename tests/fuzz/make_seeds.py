#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Writes the committed seed corpus, tests/fuzz/corpus/<target>/<name>.

Valid and near-valid inputs in each target's input format (see the
comment at the top of each tests/fuzz/fuzz_*.c).  Deterministic: running
it again rewrites the same files.  Usage: make_seeds.py [CORPUS_DIR]
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")

# <ktls.h>
SHA1, CBC, SHA256, SHA384, GCM, CHACHA = 7, 11, 18, 19, 25, 41
V10, V11, V12, V13 = 1, 2, 3, 4
CCS, ALERT, HANDSHAKE, APP = 20, 21, 22, 23
SIZEOF_TLS_ENABLE = 64
# <linux/tls.h>
TLS12, TLS13 = 0x0303, 0x0304
SOL_TLS, IPPROTO_TCP, SOL_SOCKET = 282, 6, 1

# name, vminor, cipher, key_len, iv_len, auth, auth_key_len
SUITES = [
    ("tls12-aes128gcm", V12, GCM, 16, 4, 0, 0),
    ("tls12-aes256gcm", V12, GCM, 32, 4, 0, 0),
    ("tls12-chacha", V12, CHACHA, 32, 12, 0, 0),
    ("tls13-aes128gcm", V13, GCM, 16, 12, 0, 0),
    ("tls13-aes256gcm", V13, GCM, 32, 12, 0, 0),
    ("tls13-chacha", V13, CHACHA, 32, 12, 0, 0),
    ("tls10-aes128cbc-sha1", V10, CBC, 16, 16, SHA1, 20),
    ("tls10-aes256cbc-sha1", V10, CBC, 32, 16, SHA1, 20),
    ("tls11-aes128cbc-sha1", V11, CBC, 16, 16, SHA1, 20),
    ("tls11-aes256cbc-sha1", V11, CBC, 32, 16, SHA1, 20),
    ("tls12-aes128cbc-sha1", V12, CBC, 16, 16, SHA1, 20),
    ("tls12-aes256cbc-sha1", V12, CBC, 32, 16, SHA1, 20),
    ("tls12-aes128cbc-sha256", V12, CBC, 16, 16, SHA256, 32),
    ("tls12-aes256cbc-sha256", V12, CBC, 32, 16, SHA256, 32),
    ("tls12-aes128cbc-sha384", V12, CBC, 16, 16, SHA384, 48),
    ("tls12-aes256cbc-sha384", V12, CBC, 32, 16, SHA384, 48),
]


def key_bytes(n, salt):
    return bytes((salt * 31 + i * 7) & 0xFF for i in range(n))


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# fuzz_enable: ctl, optlen, six ints, vmajor, vminor, rec_seq, key material.
# ctl bit 2 makes auth_key NULL, as an AEAD suite wants it.
def enable(ctl=None, optlen=SIZEOF_TLS_ENABLE, cipher=GCM, klen=16, ivlen=12,
           auth=0, alen=0, flags=0, vmajor=3, vminor=V13, seq=0, salt=1):
    if ctl is None:
        ctl = 0 if auth else 4  # an AEAD suite: auth_key NULL
    return (struct.pack("<BH6iBB", ctl, optlen, cipher, klen, ivlen, auth,
                        alen, flags, vmajor, vminor) +
            struct.pack(">Q", seq) +
            key_bytes(max(klen, 0), salt) + key_bytes(max(ivlen, 0), salt + 1) +
            key_bytes(max(alen, 0), salt + 2))


def seeds_enable():
    t = "fuzz_enable"
    for i, (name, vm, c, kl, il, a, al) in enumerate(SUITES):
        write(t, name, enable(cipher=c, klen=kl, ivlen=il, auth=a, alen=al,
                              vminor=vm, seq=i * 1000, salt=i))
    # Linux's 12-byte TLS 1.2 GCM IV (salt || first explicit nonce).
    write(t, "tls12-aes128gcm-iv12", enable(vminor=V12, ivlen=12, seq=5))
    # Near-valid: each one field off.
    write(t, "bad-keylen", enable(klen=24))
    write(t, "bad-flags", enable(flags=1))
    write(t, "bad-vmajor", enable(vmajor=2))
    write(t, "bad-optlen", enable(ctl=4 | 8, optlen=SIZEOF_TLS_ENABLE - 1))
    write(t, "null-iv", enable(ctl=4 | 2))
    write(t, "aead-with-mac", enable(auth=SHA256, alen=32))
    write(t, "aead-auth-ptr", enable(ctl=0))
    write(t, "cbc-short-mac", enable(cipher=CBC, klen=16, ivlen=16,
                                     auth=SHA256, alen=20, vminor=V12))
    write(t, "tls13-cbc", enable(cipher=CBC, klen=16, ivlen=16, auth=SHA1,
                                 alen=20, vminor=V13))
    write(t, "seq-last", enable(seq=0xFFFFFFFFFFFFFFFF))
    write(t, "ktls-off", enable(ctl=4 | 16))


# fuzz_linux_info: ctl, then ops.  Op 0: TLS_TX set (vsel, csel, lsel,
# bytes after the 4-byte header); op 2: TLS_TX get (lsel, optlen); op 3:
# get other SOL_TLS option; op 4: set other SOL_TLS option; op 5: TCP_ULP.
LAYOUTS = [(51, 40), (52, 56), (53, 40), (54, 56), (55, 40), (56, 40),
           (57, 40), (58, 56)]


def tx_set(vsel, li, lsel=0, salt=3):
    size = LAYOUTS[li][1]
    return bytes([0, vsel, li, lsel]) + key_bytes(size - 4, salt)


def seeds_linux_info():
    t = "fuzz_linux_info"
    write(t, "tls12-gcm128", bytes([0]) + tx_set(0, 0) + bytes([2, 0, 40]))
    write(t, "tls13-gcm256", bytes([0]) + tx_set(1, 1) + bytes([2, 0, 56]))
    write(t, "tls13-chacha", bytes([0]) + tx_set(1, 3) + bytes([2, 0, 4]))
    write(t, "tls12-chacha", bytes([0]) + tx_set(0, 3, salt=9))
    write(t, "ccm128", bytes([0]) + tx_set(0, 2))
    write(t, "aria256", bytes([0]) + tx_set(1, 7))
    write(t, "gcm128-short", bytes([0]) + tx_set(0, 0, lsel=2)[:4] +
          bytes([0xFF]) + key_bytes(35, 4))
    write(t, "header-only", bytes([0, 0, 0, 0, 1]))
    write(t, "get-before-set", bytes([0, 2, 0, 40, 5, 0, 16, 3, 3, 0, 4]))
    write(t, "zerocopy-ro", bytes([0, 4, 3, 4, 1, 0, 0, 0, 3, 3, 0, 4]))
    write(t, "tls-rx", bytes([0, 4, 2, 40]) + key_bytes(40, 5))
    write(t, "ulp-again", bytes([1, 4]) + b"tls\0")


# fuzz_cmsg: flags, iov bytes, u16 controllen, control bytes.
def cmsg(level, ctype, data):
    ln = 16 + len(data)
    pad = (-ln) % 8
    return struct.pack("<Qii", ln, level, ctype) + data + bytes(pad)


def cmsg_input(flags, ilen, control, clen=None):
    if clen is None:
        clen = len(control)
    return bytes([flags, ilen]) + struct.pack("<H", clen) + control


def seeds_cmsg():
    t = "fuzz_cmsg"
    one = 0x10  # one iovec
    write(t, "tcp-handshake", cmsg_input(one, 20, cmsg(IPPROTO_TCP, 1,
                                                       bytes([HANDSHAKE]))))
    write(t, "soltls-alert", cmsg_input(one, 2, cmsg(SOL_TLS, 1,
                                                     bytes([ALERT]))))
    write(t, "two-cmsgs", cmsg_input(0x20, 30,
                                     cmsg(SOL_SOCKET, 1, bytes(4)) +
                                     cmsg(SOL_TLS, 1, bytes([APP]))))
    write(t, "more", cmsg_input(one | 1, 40, cmsg(SOL_TLS, 1,
                                                  bytes([HANDSHAKE]))))
    write(t, "no-control", cmsg_input(0x30, 63, b""))
    write(t, "bad-len", cmsg_input(one, 5, cmsg(IPPROTO_TCP, 1, bytes(2))))
    write(t, "bad-type", cmsg_input(one, 5, cmsg(SOL_TLS, 2, bytes([23]))))
    write(t, "null-control", cmsg_input(one | 4, 5, b"", clen=24))
    write(t, "empty-iov", cmsg_input(0, 0, cmsg(SOL_TLS, 1, bytes([22]))))


# fuzz_frame: suite, u16 maxlen-1, ops (bits 0-2 kind, 3 MSG_MORE,
# 4 MSG_DONTWAIT, 5-6 iovecs-1).
MORE, DONTWAIT = 8, 16


def op(kind, flags=0, niov=1):
    return bytes([kind | flags | (niov - 1) << 5])


def u16(v):
    return struct.pack("<H", v)


def frame(suite, maxlen, *ops):
    return bytes([suite]) + u16(maxlen - 1) + b"".join(ops)


def seeds_frame():
    t = "fuzz_frame"
    write(t, "tls13-sizes", frame(
        3, 16384,
        op(3) + u16(1), op(3) + u16(16384), op(3) + u16(16385),
        op(4) + u16(33010), op(5) + u16(17000) + bytes([HANDSHAKE - 20]),
        op(3) + u16(0)))
    write(t, "tls12-gcm-more", frame(
        0, 16384,
        op(2, MORE) + bytes([100]), op(2, MORE) + bytes([200]), op(1),
        op(6, MORE) + u16(5) + bytes([ALERT - 20]), op(3) + u16(10),
        op(7, MORE, 3) + u16(20000), op(2) + bytes([7])))
    write(t, "tls10-cbc-maxlen", frame(
        6, 1,
        op(3) + u16(5), op(0) + u16(99), op(3) + u16(1000),
        op(0) + u16(16383), op(2, MORE) + bytes([50]), op(0) + u16(9),
        op(2, MORE) + bytes([50]), op(1)))
    write(t, "tls12-chacha-dontwait", frame(
        2, 16384,
        op(7, DONTWAIT) + u16(40000), op(7, DONTWAIT, 4) + u16(40000),
        op(7, DONTWAIT | MORE) + u16(30000), op(3) + u16(1)))
    write(t, "tls12-sha384-types", frame(
        14, 4096,
        op(5) + u16(10) + bytes([CCS - 20]),
        op(6) + u16(4097) + bytes([HANDSHAKE - 20]),
        op(5, MORE) + u16(3) + bytes([4]), op(3) + u16(3)))
    write(t, "tls11-cbc-writev", frame(
        8, 16384, op(4) + u16(40000), op(4) + u16(1), op(4) + u16(0)))
    write(t, "tls13-chacha-more", frame(
        5, 16384,
        op(7, MORE, 2) + u16(16383), op(2, MORE) + bytes([2]),
        op(7) + u16(16384)))


seeds_enable()
seeds_linux_info()
seeds_cmsg()
seeds_frame()
