/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Cross-backend: for every suite that another backend (ipsec-mb, the
 * engine's own VAES AES-GCM) and OpenSSL both serve, the same keys, nonces
 * and plaintext must give the same record, byte for byte, in place and
 * out of place, for record lengths around the AES block and at the TLS
 * maximum, with sequence numbers (and TLS 1.2 explicit nonces) about to
 * wrap.  OpenSSL is pinned to the published vectors by test_backend, so
 * this pins the others for inputs the vectors do not cover.  Last, one
 * session is driven from two threads at once (ipsec-mb: each thread makes
 * its own IMB_MGR, and the key schedule made with the first thread's
 * manager must serve the others).
 *
 * Inputs are random; KTLS_TEST_SEED=N repeats a run.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "ktls.h"
#include "ktls_int.h"
#include "rng.h"
#include "tap.h"
#include "session.h"

static const size_t lens[] = { 0, 1, 15, 16, 17, 255, 1400, 16383, 16384 };
#define NLENS	(sizeof(lens) / sizeof(lens[0]))
#define GUARD	32	/* bytes after a record that no backend may touch */

/* The backend compared with OpenSSL. */
static const char *cand;

static void
be64enc(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Keys and nonces of one session, as an application would pass them. */
struct keys {
	uint8_t	key[32];
	uint8_t	iv[12];
	uint64_t seq;		/* the first record's sequence number */
	int	iv_len;		/* 12: Linux's salt || first explicit nonce */
};

static struct ktls_session *
session(const struct ktls_suite *su, const struct keys *k, const char *be,
    int *errp)
{
	return (test_session(su, k->key, k->iv, k->iv_len, k->seq, be, errp));
}

/*
 * Frame and encrypt one record into rec (record length + GUARD bytes), as
 * the core does: header written, explicit nonce bytes reserved.
 */
static int
seal(struct ktls_session *s, uint64_t seq, uint8_t type, const uint8_t *pt,
    size_t len, bool in_place, uint8_t *rec)
{
	const struct ktls_suite *su = s->suite;
	size_t rlen = ktls_suite_record_len(su, len);
	struct ktls_crypt_op op = { .seq = seq, .type = type, .rec = rec,
	    .len = len };

	/* Bytes the backend must write, or must leave alone. */
	memset(rec, 0xaa, rlen + GUARD);
	/* RFC 8446 section 5.2: a TLS 1.3 record's outer type and version. */
	rec[0] = ktls_suite_is_tls13(su) ? 23 : type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)((rlen - KTLS_HDR_LEN) >> 8);
	rec[4] = (uint8_t)(rlen - KTLS_HDR_LEN);
	if (in_place) {
		memcpy(rec + su->prefix_len, pt, len);
		op.src = rec + su->prefix_len;
	} else {
		op.src = pt;
	}
	return (s->be->encrypt(s->cctx, &op));
}

static bool
guard_intact(const uint8_t *rec, size_t rlen)
{
	for (size_t i = 0; i < GUARD; i++)
		if (rec[rlen + i] != 0xaa)
			return (false);
	return (true);
}

/*
 * Receive: s opens rec (rlen bytes, sealed at seq from pt[0..len) of
 * type) in place and out of place, to pt (TLS 1.3: then the type); the
 * same record with one bit flipped (header, nonce, ciphertext or tag, by
 * flip) is refused with EBADMSG and nothing of it written, and leaves
 * nothing in libcrypto's error queue.
 */
static void
open_check(struct ktls_session *s, const uint8_t *rec, size_t rlen,
    uint64_t seq, const uint8_t *pt, size_t len, uint8_t type, size_t flip)
{
	const struct ktls_suite *su = s->suite;
	size_t n = ktls_suite_open_len(su, rlen), at;
	uint8_t *copy = malloc(rlen), *out = malloc(n + GUARD);
	struct ktls_open_op op = { .seq = seq, .rec = copy, .rec_len = rlen };
	bool tls13 = ktls_suite_is_tls13(su);

	REQUIRE(copy != NULL && out != NULL && s->be->decrypt != NULL, );
	CHECK(n == len + (tls13 ? 1 : 0));
	/* Out of place. */
	memcpy(copy, rec, rlen);
	memset(out, 0xaa, n + GUARD);
	op.dst = out;
	CHECK(s->be->decrypt(s->cctx, &op) == 0);
	CHECK(memcmp(out, pt, len) == 0 && (!tls13 || out[len] == type));
	CHECK(guard_intact(out, n));
	/* In place. */
	op.dst = copy + su->prefix_len;
	CHECK(s->be->decrypt(s->cctx, &op) == 0);
	CHECK(memcmp(copy + su->prefix_len, pt, len) == 0);
	/*
	 * One bit flipped: nothing of it comes out.  Not in the version or
	 * length fields, which the core checks against the suite and the
	 * record (TLS 1.2's additional data takes neither from the header).
	 */
	at = flip % rlen;
	if (at >= 1 && at < KTLS_HDR_LEN)
		at = rlen - 1;
	memcpy(copy, rec, rlen);
	copy[at] ^= (uint8_t)(1u << (flip / rlen % 8));
	memset(out, 0xaa, n + GUARD);
	op.dst = out;
	ERR_clear_error();
	CHECK(s->be->decrypt(s->cctx, &op) == -EBADMSG);
	for (size_t i = 0; i < n; i++)
		CHECK(out[i] == 0);
	CHECK(guard_intact(out, n));
	CHECK(ERR_peek_error() == 0);
	free(copy);
	free(out);
}

/* Every length, in place and out of place, one session pair. */
static void
compare(const struct ktls_suite *su, const struct keys *k, const char *what)
{
	struct ktls_session *mb, *os;
	size_t max = ktls_suite_record_len(su, 16384) + GUARD;
	uint8_t *pt = malloc(16384), *r1 = malloc(max), *r2 = malloc(max);
	static const uint8_t types[] = { 23, 22, 21 };
	int e1, e2;

	mb = session(su, k, cand, &e1);
	os = session(su, k, "openssl", &e2);
	CHECK(e1 == 0 && e2 == 0);
	if (mb == NULL || os == NULL)
		goto out;
	for (size_t i = 0; i < NLENS; i++) {
		size_t len = lens[i], rlen = ktls_suite_record_len(su, len);
		uint64_t seq = k->seq + i;
		uint8_t type = types[i % 3];

		rng_fill(pt, len);
		for (int ip = 1; ip >= 0; ip--) {
			CHECK(seal(os, seq, type, pt, len, ip, r2) == 0);
			CHECK(seal(mb, seq, type, pt, len, ip, r1) == 0);
			CHECK(guard_intact(r1, rlen));
			if (memcmp(r1, r2, rlen) != 0) {
				tap_diag("%s %s: %zu-byte record at seq %#jx "
				    "%s differs", su->name, what, len,
				    (uintmax_t)seq, ip ? "in place" :
				    "out of place");
				CHECK(0);
			}
		}
		/* Both open OpenSSL's record, and refuse it tampered. */
		open_check(mb, r2, rlen, seq, pt, len, type, (size_t)rng());
		open_check(os, r2, rlen, seq, pt, len, type, (size_t)rng());
	}
out:
	ktls_session_destroy(mb);
	ktls_session_destroy(os);
	free(pt);
	free(r1);
	free(r2);
}

/* Two threads, one ipsec-mb session, records of their own each. */
#define TREC	300
struct tjob {
	struct ktls_session *s;
	uint64_t	seq;
	uint8_t		*pt;		/* TREC plaintexts of 16384 bytes */
	uint8_t		*want;		/* TREC records made by OpenSSL */
	size_t		stride;
	int		bad;
};

static size_t
tlen(size_t i)
{
	return (lens[i % NLENS]);
}

static void *
tmain(void *arg)
{
	struct tjob *j = arg;
	const struct ktls_suite *su = j->s->suite;
	uint8_t *rec = malloc(j->stride);

	for (size_t i = 0; i < TREC; i++) {
		size_t len = tlen(i), rlen = ktls_suite_record_len(su, len);

		if (seal(j->s, j->seq + i, 23, j->pt + i * 16384, len,
		    i % 2 == 0, rec) != 0 || !guard_intact(rec, rlen) ||
		    memcmp(rec, j->want + i * j->stride, rlen) != 0)
			j->bad++;
	}
	free(rec);
	return (NULL);
}

static void
threads(const struct ktls_suite *su, const struct keys *k)
{
	struct ktls_session *mb, *os;
	struct tjob jobs[2];
	pthread_t tid[2];
	size_t stride = ktls_suite_record_len(su, 16384) + GUARD;
	int e1, e2;

	mb = session(su, k, cand, &e1);
	os = session(su, k, "openssl", &e2);
	CHECK(e1 == 0 && e2 == 0);
	if (mb == NULL || os == NULL)
		goto out;
	for (int t = 0; t < 2; t++) {
		struct tjob *j = &jobs[t];

		j->s = mb;
		j->seq = k->seq + (uint64_t)t * 1000000;
		j->stride = stride;
		j->bad = 0;
		j->pt = malloc(TREC * 16384);
		j->want = malloc(TREC * stride);
		rng_fill(j->pt, TREC * 16384);
		for (size_t i = 0; i < TREC; i++)
			CHECK(seal(os, j->seq + i, 23, j->pt + i * 16384,
			    tlen(i), false, j->want + i * stride) == 0);
	}
	for (int t = 0; t < 2; t++)
		CHECK(pthread_create(&tid[t], NULL, tmain, &jobs[t]) == 0);
	for (int t = 0; t < 2; t++) {
		pthread_join(tid[t], NULL);
		if (jobs[t].bad != 0)
			tap_diag("thread %d: %d of %d records differ", t,
			    jobs[t].bad, TREC);
		CHECK(jobs[t].bad == 0);
		free(jobs[t].pt);
		free(jobs[t].want);
	}
out:
	ktls_session_destroy(mb);
	ktls_session_destroy(os);
}

static void
random_keys(const struct ktls_suite *su, struct keys *k)
{
	memset(k, 0, sizeof(*k));
	rng_fill(k->key, su->key_len);
	rng_fill(k->iv, sizeof(k->iv));
	k->iv_len = su->iv_len;
	k->seq = rng();
}

/* Every AEAD suite of backend cand against OpenSSL's records. */
static void
against_openssl(void)
{
	const struct ktls_suite *su;
	struct keys k;
	int err;

	for (unsigned int i = 0; (su = ktls_suite_get(i)) != NULL; i++) {
		struct ktls_session *s;

		if (su->kind == KTLS_CBC)
			continue;
		random_keys(su, &k);
		if ((s = session(su, &k, cand, &err)) == NULL) {
			/* Not one of its suites (main() saw it runs here). */
			if (err != -EOPNOTSUPP)
				tap_skip(strerror(-err), "%s: %s == openssl",
				    su->name, cand);
			continue;
		}
		ktls_session_destroy(s);

		compare(su, &k, "random seq");
		tap_result("%s: %s == openssl, random keys and seq",
		    su->name, cand);

		random_keys(su, &k);
		k.seq = UINT64_MAX - 4;	/* the lengths run across 2^64 */
		compare(su, &k, "seq near 2^64");
		tap_result("%s: %s == openssl, seq wrapping 2^64",
		    su->name, cand);

		if (su->kind == KTLS_AEAD_EXPLICIT) {
			/*
			 * Linux's crypto_info: salt || first explicit nonce,
			 * which the session turns into nonce_off.  Once with
			 * a random one, once with one about to wrap.
			 */
			random_keys(su, &k);
			k.iv_len = 12;
			compare(su, &k, "12-byte iv");
			be64enc(k.iv + 4, UINT64_MAX - 2);
			compare(su, &k, "12-byte iv near 2^64");
			tap_result("%s: %s == openssl, Linux 12-byte iv "
			    "(nonce_off)", su->name, cand);
		}

		random_keys(su, &k);
		threads(su, &k);
		tap_result("%s: one %s session, two threads, %d records "
		    "each", su->name, cand, TREC);
	}
}

int
main(void)
{
	const struct ktls_backend *be;
	bool have = false;

	ktls_init();
	rng_seed();
	for (unsigned int bi = 0; (be = ktls_backend_get(bi)) != NULL; bi++) {
		if (strcmp(be->name, "openssl") == 0)
			continue;
		have = true;
		cand = be->name;
		if (be->path != NULL && be->path() == NULL) {
			tap_skip("no code path for it on this CPU",
			    "%s == openssl", cand);
			continue;
		}
		against_openssl();
	}
	if (!have)
		tap_skip("no backend but OpenSSL built (no libipsec-mb-dev, "
		    "no VAES intrinsics)", "backends and openssl records "
		    "identical");
	return (tap_done());
}
