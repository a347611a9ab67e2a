/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Tests of the tests' own decryptor (tests/common/tlsdec.c) against
 * records produced outside ktls: tests/vectors/kat_vectors.h, made with
 * Python's `cryptography` package, and two records of RFC 8448.  The
 * decryptor is what the engine's records are judged by, so it must accept
 * exactly the records the RFCs allow and refuse every altered one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ktls.h>

#include "tap.h"
#include "tlsdec.h"
#include "../vectors/kat_vectors.h"

/* A kat_vector's parameters, decoded. */
struct kv {
	const struct kat_vector *v;
	struct tls_enable en;
	uint8_t	*key, *iv, *mk;
	uint8_t	*rec[KAT_MAX_RECORDS];
	size_t	reclen[KAT_MAX_RECORDS];
	uint8_t	*pt[KAT_MAX_RECORDS];
	size_t	ptlen[KAT_MAX_RECORDS];
};

static void
kv_free(struct kv *k)
{
	free(k->key);
	free(k->iv);
	free(k->mk);
	for (int i = 0; i < KAT_MAX_RECORDS; i++) {
		free(k->rec[i]);
		free(k->pt[i]);
	}
	memset(k, 0, sizeof(*k));
}

static int kv_load1(struct kv *, const struct kat_vector *);

/* Decode v into k; on failure k is left empty. */
static int
kv_load(struct kv *k, const struct kat_vector *v)
{
	if (kv_load1(k, v) == 0)
		return (0);
	kv_free(k);
	return (-1);
}

static int
kv_load1(struct kv *k, const struct kat_vector *v)
{
	uint8_t *seq;
	size_t n, seqlen;

	memset(k, 0, sizeof(*k));
	k->v = v;
	if ((k->key = kat_unhex(v->key, &n)) == NULL)
		return (-1);
	k->en.cipher_key = k->key;
	k->en.cipher_key_len = (int)n;
	if ((k->iv = kat_unhex(v->iv, &n)) == NULL)
		return (-1);
	k->en.iv = k->iv;
	k->en.iv_len = (int)n;
	if ((k->mk = kat_unhex(v->auth_key, &n)) == NULL)
		return (-1);
	k->en.auth_key = n > 0 ? k->mk : NULL;
	k->en.auth_key_len = (int)n;
	k->en.cipher_algorithm = v->cipher_alg;
	k->en.auth_algorithm = v->auth_alg;
	k->en.tls_vmajor = TLS_MAJOR_VER_ONE;
	k->en.tls_vminor = v->vminor;
	if ((seq = kat_unhex(v->rec_seq, &seqlen)) == NULL || seqlen != 8) {
		free(seq);
		return (-1);
	}
	memcpy(k->en.rec_seq, seq, 8);
	free(seq);
	if (v->nrecords > KAT_MAX_RECORDS)
		return (-1);
	for (size_t i = 0; i < v->nrecords; i++) {
		if ((k->rec[i] = kat_unhex(v->records[i].record,
		    &k->reclen[i])) == NULL ||
		    (k->pt[i] = kat_unhex(v->records[i].plaintext,
		    &k->ptlen[i])) == NULL)
			return (-1);
	}
	return (0);
}

static uint64_t
kv_seq0(const struct kv *k)
{
	uint64_t s = 0;

	for (int i = 0; i < 8; i++)
		s = s << 8 | k->en.rec_seq[i];
	return (s);
}

/* Pop one record and compare it with record i of the vector. */
static int
expect_record(struct tlsdec *d, const struct kv *k, size_t i)
{
	uint8_t type, *data;
	uint64_t seq;
	size_t len;
	int ok;

	if (tlsdec_next(d, &type, &seq, &data, &len) != 1) {
		tap_diag("%s: record %zu missing (%s)", k->v->name, i,
		    tlsdec_error(d) ? tlsdec_error(d) : "no error");
		return (0);
	}
	ok = type == k->v->records[i].type && seq == kv_seq0(k) + i &&
	    len == k->ptlen[i] && memcmp(data, k->pt[i], len) == 0;
	if (!ok)
		tap_diag("%s: record %zu: type %u seq %llu len %zu differ",
		    k->v->name, i, type, (unsigned long long)seq, len);
	free(data);
	return (ok);
}

/*
 * Every shared vector, fed in chunks of `chunk` bytes (0: each record in
 * one call), must decrypt to its plaintexts with nothing left over.
 */
static void
run_vector(const struct kat_vector *v, size_t chunk, int quiet)
{
	struct tlsdec *d;
	struct kv k;

	REQUIRE(kv_load(&k, v) == 0, );
	d = tlsdec_new(&k.en);
	if (d == NULL) {
		CHECK(d != NULL);
		kv_free(&k);
		return;
	}
	for (size_t i = 0; i < v->nrecords; i++) {
		size_t step = chunk ? chunk : k.reclen[i];

		for (size_t off = 0; off < k.reclen[i]; off += step) {
			size_t n = k.reclen[i] - off < step ?
			    k.reclen[i] - off : step;

			CHECK(tlsdec_feed(d, k.rec[i] + off, n) == 0);
		}
	}
	for (size_t i = 0; i < v->nrecords; i++)
		CHECK(expect_record(d, &k, i));
	CHECK(tlsdec_next(d, NULL, NULL, NULL, NULL) == 0);
	CHECK(tlsdec_pending(d) == 0);
	CHECK(tlsdec_error(d) == NULL);
	CHECK(tlsdec_records(d) == v->nrecords);
	CHECK(tlsdec_next_seq(d) == kv_seq0(&k) + v->nrecords);
	/* Senders must pad minimally; these vectors do. */
	CHECK(tlsdec_nonmin_padded(d) == 0);
	tlsdec_free(d);
	kv_free(&k);
	if (!quiet)
		tap_result("kat %s (%zu records, seq %s)", v->name,
		    v->nrecords, v->rec_seq);
}

static void
test_chunking(size_t chunk)
{
	for (size_t i = 0; i < KAT_NVECTORS; i++)
		run_vector(&kat_vectors[i], chunk, 1);
	tap_result("all vectors fed %zu byte(s) at a time", chunk);
}

/*
 * The whole stream of a vector in one feed: several records in one call,
 * as they come out of a socket read.
 */
static void
test_one_feed(void)
{
	for (size_t i = 0; i < KAT_NVECTORS; i++) {
		const struct kat_vector *v = &kat_vectors[i];
		struct tlsdec *d;
		struct kv k;
		uint8_t *all;
		size_t n = 0;

		if (kv_load(&k, v) != 0) {
			CHECK(0);
			continue;
		}
		for (size_t j = 0; j < v->nrecords; j++)
			n += k.reclen[j];
		all = malloc(n + 1);
		d = tlsdec_new(&k.en);
		if (all != NULL && d != NULL) {
			n = 0;
			for (size_t j = 0; j < v->nrecords; j++) {
				memcpy(all + n, k.rec[j], k.reclen[j]);
				n += k.reclen[j];
			}
			CHECK(tlsdec_feed(d, all, n) == 0);
			for (size_t j = 0; j < v->nrecords; j++)
				CHECK(expect_record(d, &k, j));
			CHECK(tlsdec_pending(d) == 0);
		} else
			CHECK(0);
		tlsdec_free(d);
		free(all);
		kv_free(&k);
	}
	tap_result("each vector's records in a single feed");
}

/*
 * Decryptor-only vectors: legal unusual records must pass (and count as
 * padded beyond the minimum), illegal ones must stop the stream with the
 * right reason.
 */
static void
test_dec_only(const struct kat_vector *v)
{
	struct tlsdec *d;
	struct kv k;
	uint64_t nonmin = 0;
	size_t i;

	REQUIRE(kv_load(&k, v) == 0, );
	d = tlsdec_new(&k.en);
	if (d == NULL) {
		CHECK(d != NULL);
		kv_free(&k);
		return;
	}
	for (i = 0; i < v->nrecords; i++) {
		const struct kat_record *r = &v->records[i];
		int rv = tlsdec_feed(d, k.rec[i], k.reclen[i]);

		if (r->err == NULL) {
			CHECK(rv == 0);
			CHECK(expect_record(d, &k, i));
			nonmin += (uint64_t)r->nonmin_pad;
			CHECK(tlsdec_nonmin_padded(d) == nonmin);
			continue;
		}
		CHECK(rv == -1);
		CHECK(tlsdec_error(d) != NULL &&
		    strstr(tlsdec_error(d), r->err) != NULL);
		if (tlsdec_error(d) != NULL &&
		    strstr(tlsdec_error(d), r->err) == NULL)
			tap_diag("%s: wanted \"%s\", got \"%s\"", v->name,
			    r->err, tlsdec_error(d));
		CHECK(tlsdec_next(d, NULL, NULL, NULL, NULL) == 0);
		/* The stream is dead: even a good record is refused now. */
		CHECK(tlsdec_feed(d, k.rec[0], k.reclen[0]) == -1);
		break;
	}
	tlsdec_free(d);
	kv_free(&k);
	tap_result("decryptor-only %s", v->name);
}

/*
 * Feed records 0..i-1 of a vector, then record i with byte `pos` XORed
 * with `mask`.  Returns 1 if record i was refused: feed failed, or it
 * did not come out (a longer length field leaves it waiting for bytes).
 * *errp is set to the error, if any.
 */
static int
refused(const struct kv *k, size_t i, size_t pos, uint8_t mask,
    const char **errp, char *errbuf, size_t errlen)
{
	struct tlsdec *d;
	uint8_t *m;
	int rv, got = 0;

	*errp = NULL;
	if ((d = tlsdec_new(&k->en)) == NULL)
		return (0);
	for (size_t j = 0; j < i; j++)
		if (tlsdec_feed(d, k->rec[j], k->reclen[j]) != 0) {
			tlsdec_free(d);
			return (0);
		}
	while (tlsdec_next(d, NULL, NULL, NULL, NULL) == 1)
		;
	if ((m = malloc(k->reclen[i])) == NULL) {
		tlsdec_free(d);
		return (0);
	}
	memcpy(m, k->rec[i], k->reclen[i]);
	m[pos] ^= mask;
	rv = tlsdec_feed(d, m, k->reclen[i]);
	if (rv != 0 && tlsdec_error(d) != NULL) {
		snprintf(errbuf, errlen, "%s", tlsdec_error(d));
		*errp = errbuf;
	}
	while (tlsdec_next(d, NULL, NULL, NULL, NULL) == 1)
		got++;
	tlsdec_free(d);
	free(m);
	return (rv != 0 || got == 0);
}

/*
 * One flipped bit anywhere in any record, header included, must get the
 * record refused: the header by the strict checks (version, length, type,
 * or as AAD), the nonce by the sequence check, the rest by the tag or the
 * MAC and padding.  Large records are sampled every 97 bytes.
 */
static void
test_bitflip_all(const struct kat_vector *v)
{
	char eb[256];
	const char *err;
	struct kv k;
	size_t n = 0;

	REQUIRE(kv_load(&k, v) == 0, );
	for (size_t i = 0; i < v->nrecords; i++) {
		size_t step = k.reclen[i] > 512 ? 97 : 1;

		for (size_t pos = 0; pos < k.reclen[i]; pos += step) {
			uint8_t mask = (uint8_t)(1u << (pos % 8));

			n++;
			if (!refused(&k, i, pos, mask, &err, eb, sizeof(eb))) {
				tap_diag("%s: record %zu byte %zu ^ %02x "
				    "accepted", v->name, i, pos, mask);
				tap_case_failed = 1;
			}
		}
	}
	kv_free(&k);
	tap_result("bit flips: all %zu rejected in %s", n, v->name);
}

static int
has(const char *err, const char *word)
{
	if (err != NULL && strstr(err, word) != NULL)
		return (1);
	tap_diag("wanted \"%s\", got \"%s\"", word, err ? err : "(none)");
	return (0);
}

/* Index of the first non-empty record of a vector. */
static size_t
first_nonempty(const struct kv *k)
{
	for (size_t i = 0; i < k->v->nrecords; i++)
		if (k->ptlen[i] > 0)
			return (i);
	return (0);
}

/*
 * Targeted flips, with the reason checked: ciphertext and tag of each
 * AEAD family; ciphertext, MAC and padding of each CBC family.  CBC
 * decryption XORs the previous ciphertext block into each plaintext block,
 * so flipping bit b of byte j of the previous block flips exactly bit b of
 * byte j of the next plaintext block (RFC 5246 6.2.3.2 framing makes the
 * last block padding and MAC).
 */
static void
test_targeted(const struct kat_vector *v)
{
	char eb[256];
	const char *err;
	struct kv k;
	size_t i, len, hdr;

	REQUIRE(kv_load(&k, v) == 0, );
	i = first_nonempty(&k);
	len = k.reclen[i];
	if (v->cipher_alg != CRYPTO_AES_CBC) {
		hdr = v->vminor == TLS_MINOR_VER_TWO &&
		    v->cipher_alg == CRYPTO_AES_NIST_GCM_16 ? 13 : 5;
		CHECK(refused(&k, i, hdr, 0x01, &err, eb, sizeof(eb)));
		CHECK(has(err, "authentication"));
		CHECK(refused(&k, i, len - 1, 0x80, &err, eb, sizeof(eb)));
		CHECK(has(err, "authentication"));
		CHECK(refused(&k, i, len - 16, 0x10, &err, eb, sizeof(eb)));
		CHECK(has(err, "authentication"));
		kv_free(&k);
		tap_result("%s: flipped ciphertext and tag bits rejected",
		    v->name);
		return;
	}
	/*
	 * common_records() in gen_vectors.py: records 2 and 3 are
	 * content + MAC + 1 = 0 (mod 16), padding length 0, and one byte
	 * longer, padding length 15: the whole last block is padding.
	 */
	if (v->nrecords < 4) {
		CHECK(v->nrecords >= 4);
		kv_free(&k);
		tap_result("%s: targeted flips", v->name);
		return;
	}
	hdr = v->vminor == TLS_MINOR_VER_ZERO ? 5 : 21;
	/* Ciphertext: the first content block. */
	CHECK(refused(&k, 2, hdr, 0x04, &err, eb, sizeof(eb)));
	CHECK(has(err, "MAC"));
	/* MAC: first byte of the last block of record 2 is MAC. */
	len = k.reclen[2];
	CHECK(refused(&k, 2, len - 32, 0x01, &err, eb, sizeof(eb)));
	CHECK(has(err, "MAC"));
	/* Padding: a padding byte, then the padding length byte, of 3. */
	len = k.reclen[3];
	CHECK(refused(&k, 3, len - 32 + 3, 0x02, &err, eb, sizeof(eb)));
	CHECK(has(err, "padding"));
	CHECK(refused(&k, 3, len - 17, 0x01, &err, eb, sizeof(eb)));
	CHECK(has(err, "padding"));
	/* The MAC covers the header: the type (the AAD of RFC 5246). */
	CHECK(refused(&k, 3, 0, 0x01, &err, eb, sizeof(eb)));
	CHECK(has(err, "MAC"));
	kv_free(&k);
	tap_result("%s: flipped ciphertext, MAC and padding bits rejected",
	    v->name);
}

static const struct kat_vector *
find(const char *name)
{
	for (size_t i = 0; i < KAT_NVECTORS; i++)
		if (strcmp(kat_vectors[i].name, name) == 0)
			return (&kat_vectors[i]);
	return (NULL);
}

/* Header checks that must fire before the record's bytes are all in. */
static void
test_headers(void)
{
	/* pos 3: the 16-bit length field is set to val. */
	static const struct {
		const char *vec;
		size_t pos;
		unsigned int val;
		const char *word;
	} cases[] = {
		{ "TLS1.2-AES-128-GCM", 1, 2, "version" },
		{ "TLS1.2-AES-128-GCM", 2, 1, "version" },
		{ "TLS1.2-AES-128-GCM", 0, 99, "type" },
		{ "TLS1.2-AES-128-GCM", 0, 0, "type" },
		{ "TLS1.3-AES-128-GCM", 0, 22, "type" },
		{ "TLS1.3-AES-128-GCM", 2, 4, "version" },
		{ "TLS1.0-AES-128-CBC-SHA1", 2, 3, "version" },
		{ "TLS1.1-AES-128-CBC-SHA1", 2, 1, "version" },
		{ "TLS1.2-AES-256-CBC-SHA384", 2, 2, "version" },
		/* Past RFC 5246 6.2.3's 2^14 + 2048. */
		{ "TLS1.2-AES-256-CBC-SHA384", 3, 16384 + 2048 + 16, "length" },
		/* 2^14 bytes of content and one more. */
		{ "TLS1.2-AES-128-GCM", 3, 16384 + 8 + 16 + 1, "length" },
		{ "TLS1.2-CHACHA20-POLY1305", 3, 16384 + 16 + 1, "length" },
		{ "TLS1.3-CHACHA20-POLY1305", 3, 16384 + 1 + 16 + 1, "length" },
		/* Shorter than the tag (nonce, type), or no whole blocks. */
		{ "TLS1.2-CHACHA20-POLY1305", 3, 15, "length" },
		{ "TLS1.3-AES-256-GCM", 3, 16, "length" },
		{ "TLS1.2-AES-128-GCM", 3, 23, "length" },
		{ "TLS1.0-AES-128-CBC-SHA1", 3, 16, "length" },
		{ "TLS1.1-AES-256-CBC-SHA1", 3, 32, "length" },
		{ "TLS1.1-AES-256-CBC-SHA1", 3, 49, "length" },
		{ "TLS1.2-AES-128-CBC-SHA256", 3, 48, "length" },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct kat_vector *v = find(cases[c].vec);
		struct tlsdec *d;
		struct kv k;
		uint8_t h[5];

		if (v == NULL || kv_load(&k, v) != 0) {
			CHECK(0);
			continue;
		}
		if ((d = tlsdec_new(&k.en)) == NULL) {
			CHECK(0);
			kv_free(&k);
			continue;
		}
		memcpy(h, k.rec[0], 5);
		if (cases[c].pos == 3) {
			h[3] = (uint8_t)(cases[c].val >> 8);
			h[4] = (uint8_t)cases[c].val;
		} else
			h[cases[c].pos] = (uint8_t)cases[c].val;
		/* Only the 5 header bytes: refused without waiting. */
		CHECK(tlsdec_feed(d, h, 5) == -1);
		CHECK(has(tlsdec_error(d), cases[c].word));
		tlsdec_free(d);
		kv_free(&k);
	}
	tap_result("bad headers refused on their 5 bytes");
}

/* tlsdec_pending and partial records. */
static void
test_pending(void)
{
	const struct kat_vector *v = find("TLS1.2-CHACHA20-POLY1305");
	struct tlsdec *d;
	struct kv k;

	REQUIRE(v != NULL && kv_load(&k, v) == 0, );
	d = tlsdec_new(&k.en);
	if (d == NULL) {
		CHECK(0);
		kv_free(&k);
		return;
	}
	CHECK(tlsdec_pending(d) == 0);
	CHECK(tlsdec_feed(d, k.rec[0], 4) == 0);
	CHECK(tlsdec_pending(d) == 4);
	CHECK(tlsdec_next(d, NULL, NULL, NULL, NULL) == 0);
	CHECK(tlsdec_feed(d, k.rec[0] + 4, k.reclen[0] - 5) == 0);
	CHECK(tlsdec_pending(d) == k.reclen[0] - 1);
	CHECK(tlsdec_next(d, NULL, NULL, NULL, NULL) == 0);
	CHECK(tlsdec_feed(d, k.rec[0] + k.reclen[0] - 1, 1) == 0);
	CHECK(tlsdec_pending(d) == 0);
	CHECK(tlsdec_feed(d, k.rec[1], 3) == 0);
	CHECK(tlsdec_pending(d) == 3);
	CHECK(tlsdec_feed(d, NULL, 0) == 0);
	CHECK(expect_record(d, &k, 0));
	CHECK(tlsdec_next(d, NULL, NULL, NULL, NULL) == 0);
	CHECK(tlsdec_error(d) == NULL);
	tlsdec_free(d);
	kv_free(&k);
	tap_result("partial records wait, pending counts them");
}

/*
 * The sequence number is part of every nonce or MAC: starting one off
 * must fail the first record, and a dropped or repeated record the next.
 */
static void
test_sequence(const char *name, const char *word)
{
	const struct kat_vector *v = find(name);
	struct tlsdec *d;
	struct kv k;

	REQUIRE(v != NULL && kv_load(&k, v) == 0, );
	k.en.rec_seq[7] ^= 1;
	d = tlsdec_new(&k.en);
	CHECK(d != NULL && tlsdec_feed(d, k.rec[0], k.reclen[0]) == -1 &&
	    has(tlsdec_error(d), word));
	tlsdec_free(d);
	k.en.rec_seq[7] ^= 1;
	/* Record 1 skipped. */
	d = tlsdec_new(&k.en);
	CHECK(d != NULL && tlsdec_feed(d, k.rec[0], k.reclen[0]) == 0 &&
	    tlsdec_feed(d, k.rec[2], k.reclen[2]) == -1);
	/* What came before the bad record is still there. */
	CHECK(d != NULL && expect_record(d, &k, 0));
	tlsdec_free(d);
	/* Record 0 replayed. */
	d = tlsdec_new(&k.en);
	CHECK(d != NULL && tlsdec_feed(d, k.rec[0], k.reclen[0]) == 0 &&
	    tlsdec_feed(d, k.rec[0], k.reclen[0]) == -1);
	tlsdec_free(d);
	kv_free(&k);
	tap_result("%s: wrong start, dropped or replayed record refused",
	    name);
}

/* Parameters that are no suite of FreeBSD's KTLS are refused. */
static void
test_new_rejects(void)
{
	static const uint8_t key[32], iv[16], mk[48];
	struct tls_enable ok = {
		.cipher_key = key, .cipher_key_len = 16,
		.iv = iv, .iv_len = 4,
		.cipher_algorithm = CRYPTO_AES_NIST_GCM_16,
		.tls_vmajor = TLS_MAJOR_VER_ONE,
		.tls_vminor = TLS_MINOR_VER_TWO,
	};
	struct tls_enable cbc = {
		.cipher_key = key, .cipher_key_len = 32,
		.iv = iv, .iv_len = 16,
		.auth_key = mk, .auth_key_len = 20,
		.cipher_algorithm = CRYPTO_AES_CBC,
		.auth_algorithm = CRYPTO_SHA1_HMAC,
		.tls_vmajor = TLS_MAJOR_VER_ONE,
		.tls_vminor = TLS_MINOR_VER_ZERO,
	};
	struct tls_enable e;
	struct tlsdec *d;

#define REJECT(expr) do {						\
	e = ok;								\
	expr;								\
	d = tlsdec_new(&e);						\
	CHECK(d == NULL);						\
	tlsdec_free(d);							\
} while (0)
	d = tlsdec_new(&ok);
	CHECK(d != NULL);
	tlsdec_free(d);
	d = tlsdec_new(&cbc);
	CHECK(d != NULL);
	tlsdec_free(d);

	REJECT(e.flags = 1);
	REJECT(e.tls_vmajor = 2);
	REJECT(e.tls_vminor = TLS_MINOR_VER_ONE);	/* GCM in TLS 1.1 */
	REJECT(e.tls_vminor = 5);
	REJECT(e.cipher_key_len = 24);
	REJECT(e.iv_len = 8);		/* TLS 1.2 GCM: salt, or salt || explicit */
	REJECT(e.tls_vminor = TLS_MINOR_VER_THREE);	/* ... 1.3 the IV */
	REJECT(e.auth_algorithm = CRYPTO_SHA1_HMAC);
	REJECT(e.cipher_algorithm = 99);
	REJECT((e.cipher_algorithm = CRYPTO_CHACHA20_POLY1305,
	    e.iv_len = 12));				/* 16-byte key */
	REJECT((e.cipher_algorithm = CRYPTO_CHACHA20_POLY1305,
	    e.cipher_key_len = 32, e.iv_len = 12,
	    e.tls_vminor = TLS_MINOR_VER_ONE));
	REJECT((e = cbc, e.tls_vminor = TLS_MINOR_VER_THREE));
	REJECT((e = cbc, e.auth_algorithm = CRYPTO_SHA2_256_HMAC,
	    e.auth_key_len = 32));		/* SHA-256 is TLS 1.2 only */
	REJECT((e = cbc, e.auth_key_len = 32));
	REJECT((e = cbc, e.auth_algorithm = 0));
	REJECT((e = cbc, e.iv_len = 0));	/* TLS 1.0 needs its IV */
	REJECT((e = cbc, e.auth_key = NULL));
#undef REJECT
	tap_result("tlsdec_new refuses parameters of no KTLS suite");
}

/*
 * The vectors cover what the brief asked for: every suite of the table,
 * each from a non-zero sequence number, with an empty record where legal.
 */
static void
test_coverage(void)
{
	static const char *want[] = {
		"TLS1.2-AES-128-GCM", "TLS1.2-AES-256-GCM",
		"TLS1.2-CHACHA20-POLY1305", "TLS1.3-AES-128-GCM",
		"TLS1.3-AES-256-GCM", "TLS1.3-CHACHA20-POLY1305",
		"TLS1.0-AES-128-CBC-SHA1", "TLS1.0-AES-256-CBC-SHA1",
		"TLS1.1-AES-128-CBC-SHA1", "TLS1.1-AES-256-CBC-SHA1",
		"TLS1.2-AES-128-CBC-SHA1", "TLS1.2-AES-256-CBC-SHA1",
		"TLS1.2-AES-128-CBC-SHA256", "TLS1.2-AES-256-CBC-SHA256",
		"TLS1.2-AES-128-CBC-SHA384", "TLS1.2-AES-256-CBC-SHA384",
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct kat_vector *v = find(want[i]);
		int empty = 0;

		CHECK(v != NULL);
		if (v == NULL)
			continue;
		CHECK(strcmp(v->rec_seq, "0000000000000000") != 0);
		CHECK(v->nrecords >= 2);
		for (size_t j = 0; j < v->nrecords; j++)
			empty |= v->records[j].plaintext[0] == '\0';
		CHECK(empty);
		CHECK(v->exact == !(v->cipher_alg == CRYPTO_AES_CBC &&
		    v->vminor != TLS_MINOR_VER_ZERO));
	}
	CHECK(find("RFC8448 1-RTT server appdata") != NULL);
	CHECK(find("RFC8448 1-RTT client appdata") != NULL);
	tap_result("vectors cover every suite from a non-zero sequence");
}

int
main(void)
{
	static const size_t chunks[] = { 1, 3, 7, 16, 1000 };

	test_coverage();
	test_new_rejects();
	for (size_t i = 0; i < KAT_NVECTORS; i++)
		run_vector(&kat_vectors[i], 0, 0);
	test_one_feed();
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		test_chunking(chunks[i]);
	for (size_t i = 0; i < KAT_NDEC_ONLY; i++)
		test_dec_only(&kat_dec_only[i]);
	for (size_t i = 0; i < KAT_NVECTORS; i++) {
		/* The per-suite vectors; "max" ones are sampled below. */
		if (strchr(kat_vectors[i].name, ' ') == NULL)
			test_targeted(&kat_vectors[i]);
	}
	for (size_t i = 0; i < KAT_NVECTORS; i++)
		test_bitflip_all(&kat_vectors[i]);
	test_headers();
	test_pending();
	test_sequence("TLS1.2-AES-128-GCM", "nonce");
	test_sequence("TLS1.2-CHACHA20-POLY1305", "authentication");
	test_sequence("TLS1.3-AES-256-GCM", "authentication");
	test_sequence("TLS1.0-AES-128-CBC-SHA1", "MAC");
	test_sequence("TLS1.2-AES-128-CBC-SHA384", "MAC");
	return (tap_done());
}
