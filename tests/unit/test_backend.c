/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Known answers for every suite, through the engine's own framing
 * (ktls_frame) and every registered backend: the records must be the
 * vectors' wire bytes exactly where the format is deterministic (AEAD,
 * TLS 1.0 CBC), and decrypt to the same type and plaintext with tlsdec
 * where TLS 1.1+ CBC draws a random explicit IV.  Each backend is run
 * in place (write path) and out of place (source elsewhere).
 */
#include <errno.h>
#include <string.h>

#include "ktls.h"
#include "ktls_int.h"
#include "tap.h"
#include "tlsdec.h"
#include "../vectors/kat_vectors.h"

struct kat_bufs {
	uint8_t	*key, *iv, *auth, *seq;
	size_t	key_len, iv_len, auth_len, seq_len;
};

static void
kat_enable(const struct kat_vector *v, struct kat_bufs *b,
    struct tls_enable *en)
{
	b->key = kat_unhex(v->key, &b->key_len);
	b->iv = kat_unhex(v->iv, &b->iv_len);
	b->auth = kat_unhex(v->auth_key, &b->auth_len);
	b->seq = kat_unhex(v->rec_seq, &b->seq_len);
	memset(en, 0, sizeof(*en));
	en->cipher_key = b->key;
	en->iv = b->iv;
	en->auth_key = b->auth_len ? b->auth : NULL;
	en->cipher_algorithm = v->cipher_alg;
	en->cipher_key_len = (int)b->key_len;
	en->iv_len = (int)b->iv_len;
	en->auth_algorithm = v->auth_alg;
	en->auth_key_len = (int)b->auth_len;
	en->tls_vmajor = TLS_MAJOR_VER_ONE;
	en->tls_vminor = v->vminor;
	memcpy(en->rec_seq, b->seq, 8);
}

static void
kat_free(struct kat_bufs *b)
{
	free(b->key);
	free(b->iv);
	free(b->auth);
	free(b->seq);
}

/*
 * One vector, one backend, in place or not.  False if the backend declines
 * the suite, which only OpenSSL, the backend of every suite, may not do.
 */
static bool
run_vector(const struct kat_vector *v, const char *backend, bool in_place)
{
	struct kat_bufs b = { 0 };
	struct tls_enable en;
	struct ktls_session *s = NULL;
	struct ktls_sock *so;
	struct tlsdec *dec;
	uint64_t seq = 0;
	int error;

	kat_enable(v, &b, &en);
	setenv("KTLS_BACKEND", backend, 1);
	error = ktls_session_create(&en, sizeof(en), &s);
	unsetenv("KTLS_BACKEND");
	if (error == -EOPNOTSUPP && strcmp(backend, "openssl") != 0) {
		kat_free(&b);
		return (false);
	}
	CHECK(error == 0);
	dec = tlsdec_new(&en);
	CHECK(dec != NULL);
	if (s == NULL || dec == NULL)
		goto out;
	CHECK(strcmp(s->suite->name, v->suite) == 0);
	CHECK(strcmp(s->be->name, backend) == 0);

	/* A socket that is never connected: only framing state is used. */
	so = calloc(1, sizeof(*so));
	pthread_mutex_init(&so->mtx, NULL);
	atomic_init(&so->refs, 1);
	so->tx = s;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | en.rec_seq[i];
	so->next_seq = seq;

	for (size_t i = 0; i < v->nrecords; i++) {
		const struct kat_record *kr = &v->records[i];
		size_t plen = 0, wlen = 0;
		uint8_t *pt = kat_unhex(kr->plaintext, &plen);
		uint8_t *want = kat_unhex(kr->record, &wlen);
		struct ktls_record *r = ktls_record_alloc(plen);
		uint8_t *payload = r->buf + s->suite->prefix_len;
		uint8_t type, *got;
		size_t glen;
		uint64_t gseq;

		memcpy(payload, pt, plen);
		CHECK(ktls_frame(so, r, kr->type, plen) == 0);
		struct ktls_crypt_op op = { .seq = r->seq, .type = kr->type,
		    .rec = r->buf, .src = in_place ? payload : pt, .len = plen };
		if (!in_place)
			memset(payload, 0xee, plen);	/* must not be read */
		CHECK(s->be->encrypt(s->cctx, &op) == 0);
		CHECK(r->wire_len == wlen);
		if (v->exact && r->wire_len == wlen &&
		    memcmp(r->buf, want, wlen) != 0) {
			tap_diag("%s record %zu differs", v->name, i);
			CHECK(0);
		}
		/*
		 * Receive: the backend opens the vector's own record (made
		 * by Python's cryptography package) back to the plaintext.
		 */
		if (s->suite->kind != KTLS_CBC && v->exact) {
			uint8_t *w = malloc(wlen), *o = malloc(wlen);
			struct ktls_open_op oop = { .seq = r->seq, .rec = w,
			    .rec_len = wlen, .dst = in_place ?
			    w + s->suite->prefix_len : o };
			size_t olen = ktls_suite_open_len(s->suite, wlen);

			REQUIRE(w != NULL && o != NULL, true);
			memcpy(w, want, wlen);
			CHECK(s->be->decrypt != NULL &&
			    s->be->decrypt(s->cctx, &oop) == 0);
			CHECK(olen == plen +
			    (ktls_suite_is_tls13(s->suite) ? 1 : 0));
			CHECK(memcmp(oop.dst, pt, plen) == 0);
			CHECK(!ktls_suite_is_tls13(s->suite) ||
			    oop.dst[plen] == kr->type);
			free(w);
			free(o);
		}
		if (s->suite->kind == KTLS_CBC) {	/* never received */
			struct ktls_open_op oop = { .seq = r->seq,
			    .rec = want, .rec_len = wlen, .dst = NULL };

			CHECK(s->be->decrypt == NULL ||
			    s->be->decrypt(s->cctx, &oop) == -EOPNOTSUPP);
		}
		/* Decrypt what the engine made, whatever the IV. */
		CHECK(tlsdec_feed(dec, r->buf, r->wire_len) == 0);
		if (tlsdec_next(dec, &type, &gseq, &got, &glen) == 1) {
			CHECK(type == kr->type);
			CHECK(gseq == r->seq);
			CHECK(glen == plen && memcmp(got, pt, plen) == 0);
			free(got);
		} else {
			tap_diag("%s record %zu: %s", v->name, i,
			    tlsdec_error(dec) ? tlsdec_error(dec) : "none");
			CHECK(0);
		}
		so->head = r->next;
		if (so->head == NULL)
			so->tail = NULL;
		so->queued -= r->wire_len;
		atomic_fetch_sub(&ktls_unsent, r->wire_len);
		ktls_record_free(r);
		free(pt);
		free(want);
	}
	CHECK(tlsdec_nonmin_padded(dec) == 0);	/* minimal padding, as FreeBSD */
	pthread_mutex_destroy(&so->mtx);
	free(so);
out:
	tlsdec_free(dec);
	ktls_session_destroy(s);
	kat_free(&b);
	return (true);
}

int
main(void)
{
	const struct ktls_backend *be;

	ktls_init();
	for (unsigned int bi = 0; (be = ktls_backend_get(bi)) != NULL; bi++) {
		if (be->path != NULL && be->path() == NULL) {
			tap_skip("no code path for it on this CPU",
			    "%s: the known-answer vectors", be->name);
			continue;
		}
		for (size_t i = 0; i < sizeof(kat_vectors) /
		    sizeof(kat_vectors[0]); i++) {
			for (int ip = 1; ip >= 0; ip--) {
				/*
				 * A suite the backend does not do (ipsec-mb
				 * and vaes: CBC; vaes: ChaCha20) is no case
				 * (run_vector() fails OpenSSL declining).
				 */
				if (!run_vector(&kat_vectors[i], be->name,
				    ip))
					continue;
				tap_result("%s %s (%s): %s", be->name,
				    kat_vectors[i].name,
				    ip ? "in place" : "out of place",
				    kat_vectors[i].exact ? "exact wire bytes" :
				    "decrypts (random explicit IV)");
			}
		}
	}
	return (tap_done());
}
