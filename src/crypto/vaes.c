/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The "vaes" backend: AES-GCM records (TLS 1.2 and 1.3, 128 and 256-bit
 * keys) through this engine's own VAES/VPCLMULQDQ code on 256-bit vectors
 * (gcm_vaes.c).  It is a timed backend: the registry gives it a suite
 * only where a short measurement at the first session finds it faster
 * than the backend that would take that suite otherwise (ipsec-mb's
 * AVX-512 code wins on AVX-512 CPUs; on an AMD Zen 3 this one does).
 * KTLS_BACKEND=vaes forces it wherever the CPU can run it (tests).  It
 * opens received records too (the tag checked before a byte is written).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ktls.h"
#include "backend.h"
#include "gcm_vaes.h"

struct ktls_cctx {
	const struct ktls_suite	*suite;
	struct ktls_gcm_key	*key;		/* key memory */
	const uint8_t		*iv;		/* key memory */
	uint64_t		nonce_off;
};

static int
vaes_try(const struct ktls_crypto_params *p, struct ktls_cctx **ctxp)
{
	const struct ktls_suite *s = p->suite;
	struct ktls_cctx *c;

	if (s->cipher_alg != CRYPTO_AES_NIST_GCM_16 ||
	    (s->key_len != 16 && s->key_len != 32) || s->tag_len != 16 ||
	    !ktls_gcm_vaes_usable())
		return (-EOPNOTSUPP);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (-ENOMEM);
	if ((c->key = ktls_keymem_alloc(sizeof(*c->key))) == NULL) {
		free(c);
		return (-ENOMEM);
	}
	ktls_gcm_vaes_setkey(c->key, p->cipher_key, s->key_len);
	c->suite = s;
	c->iv = p->iv;
	c->nonce_off = p->nonce_off;
	*ctxp = c;
	return (0);
}

static int
vaes_encrypt(struct ktls_cctx *c, const struct ktls_crypt_op *op)
{
	const struct ktls_suite *s = c->suite;
	uint8_t nonce[12], aad[13], *dst = op->rec + s->prefix_len;
	int tls13 = ktls_suite_is_tls13(s);
	size_t aadlen;

	ktls_aead_nonce(s, c->iv, op->seq + c->nonce_off, nonce);
	if (s->explicit_iv_len != 0)
		memcpy(op->rec + KTLS_HDR_LEN, nonce + 4, 8);
	aadlen = ktls_aead_aad(s, op, aad);
	/* TLS 1.3: the real type ends the plaintext (RFC 8446 5.2). */
	ktls_gcm_vaes_seal(c->key, nonce, aad, aadlen, op->src, op->len,
	    tls13 ? &op->type : NULL, dst, dst + op->len + (tls13 ? 1 : 0));
	explicit_bzero(nonce, sizeof(nonce));
	return (0);
}

static int
vaes_decrypt(struct ktls_cctx *c, const struct ktls_open_op *op)
{
	const struct ktls_suite *s = c->suite;
	size_t len = ktls_suite_open_len(s, op->rec_len), aadlen;
	const uint8_t *ct = op->rec + s->prefix_len;
	uint8_t nonce[12], aad[13];
	int error;

	ktls_aead_open_nonce(s, c->iv, op, nonce);
	aadlen = ktls_aead_open_aad(s, op, aad);
	error = ktls_gcm_vaes_open(c->key, nonce, aad, aadlen, ct, len,
	    op->dst, ct + len);
	explicit_bzero(nonce, sizeof(nonce));
	return (error);
}

static void
vaes_free(struct ktls_cctx *c)
{
	if (c == NULL)
		return;
	ktls_keymem_free(c->key, sizeof(*c->key));
	explicit_bzero(c, sizeof(*c));
	free(c);
}

static const char *
vaes_path(void)
{
	return (ktls_gcm_vaes_usable() ? "aes-gcm vaes-avx2" : NULL);
}

const struct ktls_backend ktls_backend_vaes = {
	.name = "vaes",
	.prio = 300,
	.timed = true,
	.try = vaes_try,
	.encrypt = vaes_encrypt,
	.decrypt = vaes_decrypt,
	.free = vaes_free,
	.path = vaes_path,
};
