/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The receive path's record checks (src/core/recv.c) on records sealed
 * here with OpenSSL's EVP interface straight from RFC 5288 / 7905 / 8446,
 * no engine code: for every AEAD suite and every backend that takes it,
 * the header's wire length and Linux's header errors (EMSGSIZE, EBADMSG,
 * EINVAL), the content type (TLS 1.3: the inner type, zero padding
 * removed), the plaintext in place and out of place, and EBADMSG with
 * nothing released for a flipped bit or a TLS 1.3 record of zeros only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ktls.h"
#include "ktls_int.h"
#include "rng.h"
#include "tap.h"
#include "session.h"

struct keys {
	uint8_t key[32];
	uint8_t iv[12];		/* salt (4, TLS 1.2 GCM) or the static IV */
};

/*
 * Seal one record: header, (TLS 1.2 GCM) explicit nonce = seq, payload,
 * (TLS 1.3) inner type and pad zeros, tag.  Returns the record's length.
 */
static size_t
seal(const struct ktls_suite *su, const struct keys *k, uint64_t seq,
    uint8_t type, const uint8_t *pt, size_t len, size_t pad, uint8_t *rec)
{
	const EVP_CIPHER *c = EVP_get_cipherbyname(su->cipher_name);
	bool tls13 = ktls_suite_is_tls13(su);
	size_t inner = len + (tls13 ? 1 + pad : 0);
	size_t pre = KTLS_HDR_LEN + su->explicit_iv_len;
	size_t rlen = pre + inner + 16;
	uint8_t nonce[12], aad[13], *body = rec + pre;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl, aadlen;

	rec[0] = tls13 ? 23 : type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)((rlen - KTLS_HDR_LEN) >> 8);
	rec[4] = (uint8_t)(rlen - KTLS_HDR_LEN);
	memcpy(nonce, k->iv, 12);
	if (su->explicit_iv_len == 8) {
		for (int i = 0; i < 8; i++)
			nonce[4 + i] = rec[5 + i] = (uint8_t)(seq >> (56 - 8 * i));
	} else {
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= (uint8_t)(seq >> (56 - 8 * i));
	}
	if (tls13) {
		memcpy(aad, rec, 5);
		aadlen = 5;
	} else {
		for (int i = 0; i < 8; i++)
			aad[i] = (uint8_t)(seq >> (56 - 8 * i));
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = (uint8_t)(len >> 8);
		aad[12] = (uint8_t)len;
		aadlen = 13;
	}
	memcpy(body, pt, len);
	if (tls13) {
		body[len] = type;
		memset(body + len + 1, 0, pad);
	}
	EVP_EncryptInit_ex(ctx, c, NULL, k->key, nonce);
	EVP_EncryptUpdate(ctx, NULL, &outl, aad, aadlen);
	EVP_EncryptUpdate(ctx, body, &outl, body, (int)inner);
	EVP_EncryptFinal_ex(ctx, body + inner, &outl);
	EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, body + inner);
	EVP_CIPHER_CTX_free(ctx);
	return (rlen);
}

static struct ktls_session *
session(const struct ktls_suite *su, const struct keys *k, const char *be)
{
	int error;

	return (test_session(su, k->key, k->iv, su->iv_len, 0, be, &error));
}

#define MAXREC	(KTLS_HDR_LEN + 8 + 16384 + 1 + 300 + 16)

static void
test_headers(const struct ktls_suite *su)
{
	size_t over = su->explicit_iv_len + su->tag_len;
	size_t max = 16384 + over + (ktls_suite_is_tls13(su) ? 1 : 0);
	uint8_t h[5] = { 23, 3, 3, 0, 0 };
	size_t wl = 0;

	h[3] = (uint8_t)(max >> 8);
	h[4] = (uint8_t)max;
	CHECK(ktls_rx_header(su, h, &wl) == 0 && wl == 5 + max);
	h[3] = (uint8_t)((max + 1) >> 8);
	h[4] = (uint8_t)(max + 1);
	CHECK(ktls_rx_header(su, h, &wl) == -EMSGSIZE);
	h[3] = 0;
	h[4] = (uint8_t)over;
	CHECK(ktls_rx_header(su, h, &wl) == 0 && wl == 5 + over);
	h[4] = (uint8_t)(over - 1);
	CHECK(ktls_rx_header(su, h, &wl) == -EBADMSG);
	h[4] = (uint8_t)over;
	h[2] = 1;	/* 3,1 */
	CHECK(ktls_rx_header(su, h, &wl) == -EINVAL);
	h[1] = 2;
	h[2] = 3;
	CHECK(ktls_rx_header(su, h, &wl) == -EINVAL);
	/* Too long is reported before a bad version, as Linux does. */
	h[3] = 0xff;
	CHECK(ktls_rx_header(su, h, &wl) == -EMSGSIZE);
	CHECK(ktls_rx_min_record(su) == 5 + over +
	    (ktls_suite_is_tls13(su) ? 1u : 0u));
	tap_result("%s: header lengths and errors", su->name);
}

static void
test_open(const struct ktls_suite *su, const char *be)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 100, 1400, 4096,
	    16383, 16384 };
	static const uint8_t types[] = { 23, 21, 22 };
	static uint8_t pt[16384], rec[MAXREC], out[MAXREC + 32];
	bool tls13 = ktls_suite_is_tls13(su);
	struct ktls_session *s;
	struct keys k;
	uint64_t seq;

	rng_fill(k.key, sizeof(k.key));
	rng_fill(k.iv, sizeof(k.iv));
	if ((s = session(su, &k, be)) == NULL) {
		/* A backend may decline a suite; OpenSSL takes every one. */
		CHECK(strcmp(be, "openssl") != 0);
		if (strcmp(be, "openssl") == 0)
			tap_result("%s %s: a session", su->name, be);
		return;
	}
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
	for (size_t ti = 0; ti < sizeof(types); ti++)
	for (int inplace = 0; inplace <= 1; inplace++) {
		size_t len = lens[li], pad = tls13 ? rng() % 40 : 0, rl, wl, n;
		uint8_t type = types[ti], t = 0;
		uint8_t *dst;

		if (len + pad > 16384)
			pad = 0;
		seq = rng();
		rng_fill(pt, len);
		rl = seal(su, &k, seq, type, pt, len, pad, rec);
		REQUIRE(ktls_rx_header(su, rec, &wl) == 0 && wl == rl, );
		dst = inplace ? rec + su->prefix_len : out + 1;
		memset(out, 0xaa, sizeof(out));
		n = (size_t)-1;
		CHECK(ktls_rx_open(s, seq, rec, rl, dst, &t, &n) == 0);
		CHECK(t == type && n == len && memcmp(dst, pt, len) == 0);
		if (!inplace)	/* nothing written past the plaintext's room */
			CHECK(out[0] == 0xaa && out[1 +
			    ktls_suite_open_len(su, rl)] == 0xaa);
		if (!inplace && len > 0) {
			/*
			 * One bit of the type, the explicit nonce, the
			 * ciphertext or the tag: nothing of it comes out.
			 */
			size_t at = rng() % (rl - 4);
			static uint8_t z[16384 + 300];

			at = at == 0 ? 0 : at + 4;
			rec[at] ^= (uint8_t)(1u << (rng() % 8));
			CHECK(ktls_rx_open(s, seq, rec, rl, dst, &t, &n) ==
			    -EBADMSG);
			CHECK(memcmp(dst, z, ktls_suite_open_len(su, rl)) ==
			    0);
		}
		/* Under another sequence number it does not open either. */
		if (!inplace) {
			rl = seal(su, &k, seq, type, pt, len, pad, rec);
			CHECK(ktls_rx_open(s, seq + 1, rec, rl, dst, &t, &n) ==
			    -EBADMSG);
		}
	}
	if (tls13) {
		/* An inner plaintext of zeros only: no content type. */
		size_t rl, n, wl;
		uint8_t t;

		rl = seal(su, &k, 7, 0, pt, 0, 20, rec);
		CHECK(ktls_rx_header(su, rec, &wl) == 0 && wl == rl);
		CHECK(ktls_rx_open(s, 7, rec, rl, out, &t, &n) == -EBADMSG);
	}
	ktls_session_destroy(s);
	tap_result("%s %s: opens sealed records, refuses forged ones",
	    su->name, be);
}

int
main(void)
{
	const struct ktls_suite *su;
	const struct ktls_backend *be;

	ktls_init();
	rng_seed();
	for (unsigned int i = 0; (su = ktls_suite_get(i)) != NULL; i++) {
		if (su->kind == KTLS_CBC)
			continue;	/* never received (docs/rx.md) */
		test_headers(su);
		for (unsigned int b = 0; (be = ktls_backend_get(b)) != NULL;
		    b++)
			test_open(su, be->name);
	}
	return (tap_done());
}
