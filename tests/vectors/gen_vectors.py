#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""
Generate tests/vectors/kat_vectors.h: TLS records produced independently
of ktls and of tests/common/tlsdec.c, with the Python `cryptography`
package (AESGCM, ChaCha20Poly1305, AES-CBC) and the standard hmac module.

    python3 tests/vectors/gen_vectors.py > tests/vectors/kat_vectors.h

Everything is deterministic: keys are derived from the suite name with
SHA-256, CBC explicit IVs likewise, so rerunning gives the same header.

Two tables are written:

  kat_vectors[]   what a correct sender must put on the wire: minimal
                  padding, explicit GCM nonce = sequence number, TLS 1.3
                  without padding.  Shared with the engine's own KAT.
  kat_dec_only[]  records only a receiver is tested with: legal but unusual
                  (non-minimal CBC padding, TLS 1.3 zero padding) and
                  illegal ones (bad padding, bad MAC, oversize, wrong
                  explicit nonce), each illegal record with the word its
                  rejection must mention.
"""

import hashlib
import hmac
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import (AESGCM,
                                                         ChaCha20Poly1305)
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

# <ktls.h> constants (FreeBSD numbering).
CRYPTO_SHA1_HMAC = 7
CRYPTO_AES_CBC = 11
CRYPTO_SHA2_256_HMAC = 18
CRYPTO_SHA2_384_HMAC = 19
CRYPTO_AES_NIST_GCM_16 = 25
CRYPTO_CHACHA20_POLY1305 = 41

ALG_NAME = {
    0: "0",
    CRYPTO_SHA1_HMAC: "CRYPTO_SHA1_HMAC",
    CRYPTO_AES_CBC: "CRYPTO_AES_CBC",
    CRYPTO_SHA2_256_HMAC: "CRYPTO_SHA2_256_HMAC",
    CRYPTO_SHA2_384_HMAC: "CRYPTO_SHA2_384_HMAC",
    CRYPTO_AES_NIST_GCM_16: "CRYPTO_AES_NIST_GCM_16",
    CRYPTO_CHACHA20_POLY1305: "CRYPTO_CHACHA20_POLY1305",
}
MAC_HASH = {
    CRYPTO_SHA1_HMAC: hashlib.sha1,
    CRYPTO_SHA2_256_HMAC: hashlib.sha256,
    CRYPTO_SHA2_384_HMAC: hashlib.sha384,
}

APP, HS, ALERT, CCS = 23, 22, 21, 20
MAX_REC = 5


def det(label, n):
    """n deterministic bytes named by label."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"ktls kat %d %s" % (i, label.encode())).digest()
        i += 1
    return out[:n]


def pattern(n, start=0):
    return bytes((start + i) & 0xFF for i in range(n))


class Suite:
    def __init__(self, name, vminor, cipher, klen, auth=0):
        self.name = name
        self.vminor = vminor
        self.cipher = cipher
        self.klen = klen
        self.auth = auth
        if cipher == CRYPTO_AES_CBC:
            self.ivlen = 16
            self.maclen = MAC_HASH[auth]().digest_size
        elif cipher == CRYPTO_AES_NIST_GCM_16 and vminor == 3:
            self.ivlen = 4
            self.maclen = 0
        else:
            self.ivlen = 12
            self.maclen = 0

    def keys(self, tag=""):
        key = det(self.name + tag + " key", self.klen)
        iv = det(self.name + tag + " iv", self.ivlen)
        mk = det(self.name + tag + " mac", self.maclen) if self.maclen else b""
        return key, iv, mk


def nonce_xor(iv, seq):
    """RFC 7905 section 2, RFC 8446 section 5.3: iv XOR padded seq."""
    pad = b"\0" * 4 + seq.to_bytes(8, "big")
    return bytes(a ^ b for a, b in zip(iv, pad))


def hdr(typ, vminor, length):
    return bytes([typ, 3, vminor]) + length.to_bytes(2, "big")


def seal(s, key, iv, mk, seq, typ, pt, state, **kw):
    """One wire record per the RFCs; kw bends it to make bad records."""
    if s.cipher == CRYPTO_AES_CBC:
        return seal_cbc(s, key, iv, mk, seq, typ, pt, state, **kw)
    if s.vminor == 4:
        # RFC 8446 section 5.2: inner = content || type || zeros.
        inner = pt + bytes([typ]) + b"\0" * kw.get("zpad", 0)
        if kw.get("no_type"):
            inner = pt
        h = hdr(APP, 3, len(inner) + 16)
        aead = (AESGCM if s.cipher == CRYPTO_AES_NIST_GCM_16
                else ChaCha20Poly1305)(key)
        return h + aead.encrypt(nonce_xor(iv, seq), inner, h)
    # TLS 1.2: RFC 5246 section 6.2.3.3 additional data.
    aad = seq.to_bytes(8, "big") + hdr(typ, 3, len(pt))
    if s.cipher == CRYPTO_AES_NIST_GCM_16:
        # RFC 5288 section 3: salt || explicit nonce.
        explicit = kw.get("explicit", seq).to_bytes(8, "big")
        body = explicit + AESGCM(key).encrypt(iv + explicit, pt, aad)
    else:
        body = ChaCha20Poly1305(key).encrypt(nonce_xor(iv, seq), pt, aad)
    return hdr(typ, 3, len(body)) + body


def seal_cbc(s, key, iv, mk, seq, typ, pt, state, **kw):
    # RFC 5246 section 6.2.3.1: MAC over seq || type || version || length
    # || content; section 6.2.3.2: pad to the block, each byte = padlen.
    mac = hmac.new(mk, seq.to_bytes(8, "big") + hdr(typ, s.vminor, len(pt))
                   + pt, MAC_HASH[s.auth]).digest()
    if kw.get("bad_mac"):
        mac = bytes([mac[0] ^ 0x01]) + mac[1:]
    padlen = (16 - (len(pt) + len(mac) + 1) % 16) % 16 + kw.get("extra_pad", 0)
    pad = bytes([padlen]) * (padlen + 1)
    if kw.get("bad_pad"):
        pad = bytes([pad[0] ^ 0x80]) + pad[1:]
    clear = pt + mac + pad
    if s.vminor == 1:
        # RFC 2246 section 6.2.3.2: the IV chains across records.
        civ = state.get("chain", iv)
        explicit = b""
    else:
        # RFC 4346 section 6.2.3.2: a fresh explicit IV per record.
        civ = det("%s explicit %d" % (s.name, seq), 16)
        if kw.get("iv_from") == "previous":
            civ = state["eiv"]
        elif kw.get("iv_from") == "residue":
            civ = state["last"]
        explicit = civ
    enc = Cipher(algorithms.AES(key), modes.CBC(civ)).encryptor()
    ct = enc.update(clear) + enc.finalize()
    if s.vminor == 1:
        state["chain"] = ct[-16:]
    state["eiv"], state["last"] = civ, ct[-16:]
    body = explicit + ct
    return hdr(typ, s.vminor, len(body)) + body


def cstr(b, indent):
    """A hex string literal, split so lines stay under 80 columns."""
    h = b.hex()
    step = 56
    if len(h) <= 32:
        return ' "%s"' % h
    parts = [h[i:i + step] for i in range(0, len(h), step)]
    return "\n" + indent + ("\n" + indent).join('"%s"' % p for p in parts)


class Vector:
    def __init__(self, s, label, key, iv, mk, seq, exact, note):
        self.s, self.label = s, label
        self.key, self.iv, self.mk, self.seq = key, iv, mk, seq
        self.exact, self.note = exact, note
        self.recs = []

    def emit(self, out):
        s = self.s
        i1, i2, i3 = "\t", "\t    ", "\t\t    "
        out.append("%s/* %s */" % (i1, self.note))
        out.append('%s{ .name = "%s",' % (i1, self.label))
        out.append('%s.suite = "%s", .vminor = %d,' % (i2, s.name, s.vminor))
        out.append("%s.cipher_alg = %s, .auth_alg = %s,"
                   % (i2, ALG_NAME[s.cipher], ALG_NAME[s.auth]))
        out.append("%s.key =%s," % (i2, cstr(self.key, i3)))
        out.append("%s.iv =%s," % (i2, cstr(self.iv, i3)))
        out.append("%s.auth_key =%s," % (i2, cstr(self.mk, i3)))
        out.append("%s.rec_seq = \"%s\", .exact = %d, .nrecords = %d,"
                   % (i2, self.seq.to_bytes(8, "big").hex(), self.exact,
                      len(self.recs)))
        out.append("%s.records = {" % i2)
        for typ, pt, wire, err, npad in self.recs:
            out.append("\t\t{ .type = %d," % typ)
            if err:
                out.append('\t\t  .err = "%s",' % err)
            if npad:
                out.append("\t\t  .nonmin_pad = 1,")
            out.append("\t\t  .plaintext =%s," % cstr(pt, "\t\t"))
            out.append("\t\t  .record =%s }," % cstr(wire, "\t\t"))
        out.append("%s} }," % i2)


def build(s, label, seq, recs, exact=1, note=None, tag=""):
    """recs: (type, plaintext[, kw]) in order; kw may carry err/nonmin."""
    key, iv, mk = s.keys(tag)
    v = Vector(s, label, key, iv, mk, seq, exact, note or label)
    state = {}
    assert len(recs) <= MAX_REC
    for n, r in enumerate(recs):
        typ, pt = r[0], r[1]
        kw = dict(r[2]) if len(r) > 2 else {}
        err = kw.pop("err", None)
        npad = kw.pop("nonmin", 0)
        # Sequence numbers are 64 bits (RFC 5246 6.1); the wrap is only
        # here to build a record that must be refused.
        wire = seal(s, key, iv, mk, (seq + n) % 2**64, typ, pt, state, **kw)
        v.recs.append((typ, pt, wire, err, npad))
    return v


SUITES = [
    Suite("TLS1.2-AES-128-GCM", 3, CRYPTO_AES_NIST_GCM_16, 16),
    Suite("TLS1.2-AES-256-GCM", 3, CRYPTO_AES_NIST_GCM_16, 32),
    Suite("TLS1.2-CHACHA20-POLY1305", 3, CRYPTO_CHACHA20_POLY1305, 32),
    Suite("TLS1.3-AES-128-GCM", 4, CRYPTO_AES_NIST_GCM_16, 16),
    Suite("TLS1.3-AES-256-GCM", 4, CRYPTO_AES_NIST_GCM_16, 32),
    Suite("TLS1.3-CHACHA20-POLY1305", 4, CRYPTO_CHACHA20_POLY1305, 32),
    Suite("TLS1.0-AES-128-CBC-SHA1", 1, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC),
    Suite("TLS1.0-AES-256-CBC-SHA1", 1, CRYPTO_AES_CBC, 32, CRYPTO_SHA1_HMAC),
    Suite("TLS1.1-AES-128-CBC-SHA1", 2, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC),
    Suite("TLS1.1-AES-256-CBC-SHA1", 2, CRYPTO_AES_CBC, 32, CRYPTO_SHA1_HMAC),
    Suite("TLS1.2-AES-128-CBC-SHA1", 3, CRYPTO_AES_CBC, 16, CRYPTO_SHA1_HMAC),
    Suite("TLS1.2-AES-256-CBC-SHA1", 3, CRYPTO_AES_CBC, 32, CRYPTO_SHA1_HMAC),
    Suite("TLS1.2-AES-128-CBC-SHA256", 3, CRYPTO_AES_CBC, 16,
          CRYPTO_SHA2_256_HMAC),
    Suite("TLS1.2-AES-256-CBC-SHA256", 3, CRYPTO_AES_CBC, 32,
          CRYPTO_SHA2_256_HMAC),
    Suite("TLS1.2-AES-128-CBC-SHA384", 3, CRYPTO_AES_CBC, 16,
          CRYPTO_SHA2_384_HMAC),
    Suite("TLS1.2-AES-256-CBC-SHA384", 3, CRYPTO_AES_CBC, 32,
          CRYPTO_SHA2_384_HMAC),
]
BY_NAME = {s.name: s for s in SUITES}

HELLO = b"GET / HTTP/1.1\r\nHost: ktls.test\r\n\r\n"


def common_records(s):
    """Per suite: app data, an empty app record, a handshake-typed and an
    alert-typed record, and lengths around the CBC block boundaries."""
    recs = [(APP, HELLO), (APP, b"")]
    if s.cipher == CRYPTO_AES_CBC:
        # Content + MAC + 1 hitting 16k exactly (padlen 0) and one past
        # (padlen 15).
        first = (16 - (s.maclen + 1) % 16) % 16
        recs.append((APP, pattern(first + 32, 0x40)))
        recs.append((APP, pattern(first + 33, 0x80)))
    else:
        # TLS 1.3 KeyUpdate (RFC 8446 section 4.6.3), TLS 1.2
        # HelloRequest (RFC 5246 section 7.4.1.1).
        recs.append((HS, bytes.fromhex("1800000100" if s.vminor == 4
                                       else "00000000")))
    recs.append((ALERT, bytes([1, 0])))  # warning, close_notify
    return recs


# Starting sequence numbers: non-zero, some crossing a 32-bit boundary so
# that a carry into the upper half of the nonce/AAD is exercised.
SEQS = [0x0000000000000007, 0x00000000fffffffe, 0x0102030405060708,
        0x7ffffffffffffffe, 0x000000000000002a, 0x00000001fffffffd]


def hkdf_expand_label(secret, label, length):
    """RFC 8446 section 7.1 with an empty context, SHA-256."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\0"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def rfc8448_vectors():
    """
    RFC 8448 section 3 ("Simple 1-RTT Handshake"): the client's and the
    server's first application data records (50 bytes 00..31), under the
    application traffic secrets of that trace, TLS_AES_128_GCM_SHA256.
    The server's is its second record (after NewSessionTicket): seq 1.
    Keys and IVs are derived here per RFC 8446 section 7.3, and the records
    are checked to decrypt: a wrong byte anywhere fails the GCM tag.
    """
    s = BY_NAME["TLS1.3-AES-128-GCM"]
    pt = pattern(50)
    traces = [
        ("client", 0,
         "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
         "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f"
         "2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae6"
         "3aeebb21694915e4"),
        ("server", 1,
         "a11af9f05531f856ad47116b45a9503282" "04b4f44bfb6b3a4b4f1f3fcb631643",
         "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36"
         "e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf33254"
         "0dd032e167c2955d"),
    ]
    out = []
    for who, seq, secret, wire in traces:
        secret = bytes.fromhex(secret)
        wire = bytes.fromhex(wire)
        key = hkdf_expand_label(secret, b"key", 16)
        iv = hkdf_expand_label(secret, b"iv", 12)
        inner = AESGCM(key).decrypt(nonce_xor(iv, seq), wire[5:], wire[:5])
        assert inner == pt + bytes([APP]), who
        v = Vector(s, "RFC8448 1-RTT %s appdata" % who, key, iv, b"", seq, 1,
                   "RFC 8448 section 3, %s application data, seq %d"
                   % (who, seq))
        v.recs.append((APP, pt, wire, None, 0))
        out.append(v)
    return out


def good_vectors():
    out = []
    for n, s in enumerate(SUITES):
        exact = 0 if (s.cipher == CRYPTO_AES_CBC and s.vminor > 1) else 1
        note = s.name
        if s.vminor == 1:
            note += ": IV chains across records"
        elif not exact:
            note += ": random explicit IV: decryption only"
        out.append(build(s, s.name, SEQS[n % len(SEQS)], common_records(s),
                         exact, note))
    # Full-size records: 2^14 bytes of content (RFC 8446 section 5.1,
    # RFC 5246 section 6.2.1), then one more to check the sequence goes on.
    big = pattern(16384, 0x11)
    for name, seq in (("TLS1.2-AES-128-GCM", 0x1122334455667788),
                      ("TLS1.3-CHACHA20-POLY1305", 0x00000000ffffffff),
                      ("TLS1.0-AES-128-CBC-SHA1", 0x0000000000000100)):
        s = BY_NAME[name]
        out.append(build(s, name + " max", seq, [(APP, big), (APP, b"x")],
                         1, name + ": a record of 2^14 bytes", " max"))
    out += rfc8448_vectors()
    return out


def dec_only_vectors():
    out = []
    g = BY_NAME["TLS1.2-AES-128-GCM"]
    out.append(build(g, g.name + " wrong nonce", 0x10, [
        (APP, b"ok"),
        (APP, b"nonce", {"explicit": 0x99, "err": "nonce"})],
        0, "TLS 1.2 GCM with an explicit nonce that is not the sequence"))
    out.append(build(g, g.name + " oversize", 0x20, [
        (APP, pattern(16385), {"err": "length"})],
        0, "TLS 1.2 GCM, 2^14 + 1 bytes of content"))
    t = BY_NAME["TLS1.3-AES-256-GCM"]
    out.append(build(t, t.name + " seq wrap", 2**64 - 1, [
        (APP, b"last"),
        (APP, b"wrapped", {"err": "sequence"})],
        0, "TLS 1.3: the last sequence number, then one past it"))
    out.append(build(t, t.name + " zero padding", 0x30, [
        (HS, b"padded", {"zpad": 7, "nonmin": 1}),
        (APP, b"", {"zpad": 1, "nonmin": 1}),
        (APP, b"\0\0", {"no_type": 1, "err": "type"})],
        0, "TLS 1.3 zero padding (legal), then an all-zero inner plaintext"))
    # RFC 5246 6.2.1, RFC 8446 5.4: only application data may be empty.
    out.append(build(g, g.name + " empty handshake", 0x28, [
        (HS, b"", {"err": "zero-length"})],
        0, "TLS 1.2 GCM, an empty handshake record"))
    out.append(build(t, t.name + " empty alert", 0x38, [
        (ALERT, b"", {"err": "zero-length"})],
        0, "TLS 1.3, an empty alert record"))
    c0 = BY_NAME["TLS1.0-AES-256-CBC-SHA1"]
    out.append(build(c0, c0.name + " empty CCS", 0x48, [
        (APP, b""),
        (CCS, b"", {"err": "zero-length"})],
        0, "TLS 1.0 CBC, an empty change_cipher_spec record"))
    out.append(build(t, t.name + " oversize", 0x40, [
        (APP, pattern(16385), {"err": "length"})],
        0, "TLS 1.3, 2^14 + 1 bytes of content"))
    for name in ("TLS1.0-AES-128-CBC-SHA1", "TLS1.1-AES-256-CBC-SHA1",
                 "TLS1.2-AES-128-CBC-SHA256", "TLS1.2-AES-256-CBC-SHA384"):
        c = BY_NAME[name]
        out.append(build(c, name + " padding", 0x50, [
            (APP, b"pad 32 more", {"extra_pad": 32, "nonmin": 1}),
            (APP, b"bad padding!", {"bad_pad": 1, "err": "padding"})],
            0, name + ": long padding, then a bad padding byte"))
        out.append(build(c, name + " bad MAC", 0x60, [
            (APP, b"bad mac", {"bad_mac": 1, "err": "MAC"})],
            0, name + ": wrong MAC"))
    # RFC 4346 6.2.3.2: the explicit IV must be unpredictable; reusing
    # the last one or chaining as TLS 1.0 did is what 1.1 outlawed.
    c = BY_NAME["TLS1.2-AES-128-CBC-SHA256"]
    for how in ("previous", "residue"):
        out.append(build(c, c.name + " IV " + how, 0x80, [
            (APP, b"first"),
            (APP, b"second", {"iv_from": how, "err": "explicit IV"})],
            0, "TLS 1.2 CBC, explicit IV taken from the %s record" % how))
    c = BY_NAME["TLS1.2-AES-256-CBC-SHA1"]
    out.append(build(c, c.name + " oversize", 0x70, [
        (APP, pattern(16385), {"err": "length"})],
        0, "TLS 1.2 CBC, 2^14 + 1 bytes of content"))
    return out


HEAD = """/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Known-answer TLS records.  GENERATED by tests/vectors/gen_vectors.py with
 * Python's `cryptography` package, independently of ktls and of
 * tests/common/tlsdec.c; do not edit, regenerate:
 *
 *	python3 tests/vectors/gen_vectors.py > tests/vectors/kat_vectors.h
 *
 * kat_vectors[]: what a correct sender puts on the wire for the given
 * struct tls_enable parameters, record after record from rec_seq on.
 * Where .exact is 1 (every AEAD suite, and TLS 1.0 CBC whose IV chains from
 * tls_enable.iv) the wire bytes are fully determined and an encryptor must
 * reproduce them byte for byte.  Where .exact is 0 (TLS 1.1/1.2 CBC) each
 * record starts with a random explicit IV (RFC 4346 section 6.2.3.2) that
 * the generator chose arbitrarily: only the record length and decryption
 * to the same type and plaintext can be checked.  Every padding is minimal.
 * The "RFC8448 ..." entries are the application data records of RFC 8448
 * section 3 (keys derived from that trace's traffic secrets).
 *
 * kat_dec_only[]: records only a receiver is tested with.  .err names the
 * word a decryptor's error must contain when it rejects that record (NULL:
 * the record is legal); .nonmin_pad marks legal records with more padding
 * than the minimum.
 *
 * All byte strings are lowercase hex without separators; rec_seq is the
 * 8-byte big-endian tls_enable.rec_seq.
 */
#ifndef KTLS_KAT_VECTORS_H
#define KTLS_KAT_VECTORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ktls.h>

#define KAT_MAX_RECORDS	%d

#if defined(__GNUC__)
#define KAT_UNUSED	__attribute__((unused))
#else
#define KAT_UNUSED
#endif

struct kat_record {
	uint8_t		type;		/* the (inner) content type */
	int		nonmin_pad;	/* legal, padded beyond the minimum */
	const char	*err;		/* NULL, or a word of the rejection */
	const char	*plaintext;	/* hex */
	const char	*record;	/* hex: the whole record */
};

struct kat_vector {
	const char	*name;		/* this vector */
	const char	*suite;		/* name in src/core/suite.c */
	uint8_t		vminor;		/* TLS_MINOR_VER_* */
	int		cipher_alg;
	int		auth_alg;
	const char	*key;		/* hex */
	const char	*iv;		/* hex */
	const char	*auth_key;	/* hex, "" for AEAD */
	const char	*rec_seq;	/* hex, 8 bytes */
	int		exact;		/* 1: the wire bytes are determined */
	size_t		nrecords;
	struct kat_record records[KAT_MAX_RECORDS];
};

/*
 * Decode hex into a malloc'd buffer (at least one byte, so that an empty
 * string still gives a pointer); returns NULL on bad input or no memory.
 */
static inline uint8_t *
kat_unhex(const char *hex, size_t *lenp)
{
	size_t i, n;
	uint8_t *p;

	for (n = 0; hex[n] != '\\0'; n++)
		;
	if (n %% 2 != 0 || (p = malloc(n / 2 + 1)) == NULL)
		return (NULL);
	for (i = 0; i < n; i++) {
		int c = hex[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else {
			free(p);
			return (NULL);
		}
		if (i %% 2 == 0)
			p[i / 2] = (uint8_t)(v << 4);
		else
			p[i / 2] |= (uint8_t)v;
	}
	*lenp = n / 2;
	return (p);
}
"""


def main():
    out = [HEAD % MAX_REC]
    out.append("static const struct kat_vector kat_vectors[] KAT_UNUSED = {")
    for v in good_vectors():
        v.emit(out)
    out.append("};")
    out.append("")
    out.append("static const struct kat_vector kat_dec_only[] KAT_UNUSED = {")
    for v in dec_only_vectors():
        v.emit(out)
    out.append("};")
    out.append("")
    out.append("#define KAT_NVECTORS\t"
               "(sizeof(kat_vectors) / sizeof(kat_vectors[0]))")
    out.append("#define KAT_NDEC_ONLY\t"
               "(sizeof(kat_dec_only) / sizeof(kat_dec_only[0]))")
    out.append("")
    out.append("#endif /* KTLS_KAT_VECTORS_H */")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
