/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Intel Multi-Buffer Crypto (ipsec-mb) backend: AES-GCM and
 * ChaCha20-Poly1305 through the library's direct, synchronous API (no job
 * queue: a record is one init/update/finalize sequence on the worker's own
 * thread), with the AVX2 or AVX-512/VAES code init_mb_mgr_auto() selects
 * for this CPU.  CBC suites stay with OpenSSL.
 *
 * ChaCha20-Poly1305 is taken too: measured with bench/crypto_speed on an
 * AVX-512 CPU (AMD Zen 4), the library's code beats OpenSSL 3.0's by about
 * 10% on 16 KiB records and by 70-100% on 1400-byte ones.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include "ktls.h"
#include "backend.h"

struct ktls_cctx {
	const struct ktls_suite	*suite;
	/*
	 * In key memory: the AES-GCM key schedule (round keys and GHASH key
	 * powers), or the raw ChaCha20 key, which the library expands itself.
	 */
	void			*key;
	size_t			key_size;
	const uint8_t		*iv;		/* static IV or salt: key memory */
	uint64_t		nonce_off;	/* see ktls_crypto_params */
	/*
	 * Chosen once by mb_try(): mb_gcm or mb_chacha, and the library's
	 * functions for this key size (what IMB_AES{128,256}_GCM_* and
	 * IMB_CHACHA20_POLY1305_* call; they keep no state in the manager).
	 */
	void			(*seal)(struct ktls_cctx *,
				    const struct ktls_crypt_op *,
				    const uint8_t *, const uint8_t *, size_t);
	aes_gcm_init_t		gcm_init;
	aes_gcm_enc_dec_update_t gcm_update;
	aes_gcm_enc_dec_finalize_t gcm_finalize;
	chacha_poly_init_t	cp_init;
	chacha_poly_enc_dec_update_t cp_update;
	chacha_poly_finalize_t	cp_finalize;
};

/*
 * An IMB_MGR is not thread-safe, so each thread has its own, made on first
 * use.  A session's records are all encrypted on its worker thread, and the
 * direct GCM calls keep no state in the manager between records, so a key
 * schedule made with one thread's manager serves with another's.  The key
 * destructor frees a manager when its thread exits.
 */
static _Thread_local IMB_MGR *mb_mgr;
static pthread_key_t mb_key;
static pthread_once_t mb_once = PTHREAD_ONCE_INIT;
static int mb_key_err;
/* The CPU lacks what the fast code paths need: a fact for the process. */
static atomic_bool mb_unsupported;

static void
mb_mgr_dtor(void *p)
{
	free_mb_mgr(p);
}

static void
mb_once_fn(void)
{
	mb_key_err = pthread_key_create(&mb_key, mb_mgr_dtor);
}

/* This thread's manager, or NULL (CPU too old, or out of memory). */
static IMB_MGR *
mb_get(void)
{
	IMB_MGR *m;
	IMB_ARCH arch = IMB_ARCH_NONE;

	if (mb_mgr != NULL)
		return (mb_mgr);
	if (atomic_load_explicit(&mb_unsupported, memory_order_relaxed))
		return (NULL);
	pthread_once(&mb_once, mb_once_fn);
	if (mb_key_err != 0 || (m = alloc_mb_mgr(0)) == NULL)
		return (NULL);
	init_mb_mgr_auto(m, &arch);
	/*
	 * Only the AVX2 and AVX-512 code paths are worth a second backend;
	 * below them (AVX, SSE, no AES-NI) OpenSSL keeps every suite.
	 */
	if (imb_get_errno(m) != 0 || arch < IMB_ARCH_AVX2) {
		atomic_store(&mb_unsupported, true);
		free_mb_mgr(m);
		return (NULL);
	}
	if (pthread_setspecific(mb_key, m) != 0) {
		free_mb_mgr(m);
		return (NULL);
	}
	mb_mgr = m;
	return (m);
}

static void
mb_free(struct ktls_cctx *c)
{
	if (c == NULL)
		return;
	ktls_keymem_free(c->key, c->key_size);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

static void mb_gcm(struct ktls_cctx *c, const struct ktls_crypt_op *op,
    const uint8_t *nonce, const uint8_t *aad, size_t aadlen);
static void mb_chacha(struct ktls_cctx *c, const struct ktls_crypt_op *op,
    const uint8_t *nonce, const uint8_t *aad, size_t aadlen);

static int
mb_try(const struct ktls_crypto_params *p, struct ktls_cctx **ctxp)
{
	const struct ktls_suite *s = p->suite;
	struct ktls_cctx *c;
	IMB_MGR *m;

	switch (s->cipher_alg) {
	case CRYPTO_AES_NIST_GCM_16:
		if (s->key_len != 16 && s->key_len != 32)
			return (-EOPNOTSUPP);
		break;
	case CRYPTO_CHACHA20_POLY1305:
		break;
	default:		/* CBC: OpenSSL's */
		return (-EOPNOTSUPP);
	}
	if ((m = mb_get()) == NULL)
		return (-EOPNOTSUPP);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (-ENOMEM);
	c->suite = s;
	c->key_size = s->cipher_alg == CRYPTO_AES_NIST_GCM_16 ?
	    sizeof(struct gcm_key_data) : s->key_len;
	if ((c->key = ktls_keymem_alloc(c->key_size)) == NULL) {
		free(c);
		return (-ENOMEM);
	}
	if (s->cipher_alg == CRYPTO_CHACHA20_POLY1305) {
		memcpy(c->key, p->cipher_key, s->key_len);
		c->seal = mb_chacha;
		c->cp_init = m->chacha20_poly1305_init;
		c->cp_update = m->chacha20_poly1305_enc_update;
		c->cp_finalize = m->chacha20_poly1305_finalize;
	} else if (s->key_len == 16) {
		IMB_AES128_GCM_PRE(m, p->cipher_key, c->key);
		c->seal = mb_gcm;
		c->gcm_init = m->gcm128_init;
		c->gcm_update = m->gcm128_enc_update;
		c->gcm_finalize = m->gcm128_enc_finalize;
	} else {
		IMB_AES256_GCM_PRE(m, p->cipher_key, c->key);
		c->seal = mb_gcm;
		c->gcm_init = m->gcm256_init;
		c->gcm_update = m->gcm256_enc_update;
		c->gcm_finalize = m->gcm256_enc_finalize;
	}
	c->iv = p->iv;
	c->nonce_off = p->nonce_off;
	*ctxp = c;
	return (0);
}

static void
mb_gcm(struct ktls_cctx *c, const struct ktls_crypt_op *op,
    const uint8_t *nonce, const uint8_t *aad, size_t aadlen)
{
	const struct ktls_suite *s = c->suite;
	struct gcm_context_data gctx;
	uint8_t *dst = op->rec + s->prefix_len, *trailer = dst + op->len;

	c->gcm_init(c->key, &gctx, nonce, aad, aadlen);
	if (op->len != 0)
		c->gcm_update(c->key, &gctx, dst, op->src, op->len);
	if (ktls_suite_is_tls13(s)) {
		/* RFC 8446 section 5.2: the real type ends the plaintext. */
		c->gcm_update(c->key, &gctx, trailer, &op->type, 1);
		trailer++;
	}
	c->gcm_finalize(c->key, &gctx, trailer, s->tag_len);
	/* The context holds keystream and the running GHASH. */
	explicit_bzero(&gctx, sizeof(gctx));
}

static void
mb_chacha(struct ktls_cctx *c, const struct ktls_crypt_op *op,
    const uint8_t *nonce, const uint8_t *aad, size_t aadlen)
{
	const struct ktls_suite *s = c->suite;
	struct chacha20_poly1305_context_data cctx;
	uint8_t *dst = op->rec + s->prefix_len, *trailer = dst + op->len;

	c->cp_init(c->key, &cctx, nonce, aad, aadlen);
	if (op->len != 0)
		c->cp_update(c->key, &cctx, dst, op->src, op->len);
	if (ktls_suite_is_tls13(s)) {
		c->cp_update(c->key, &cctx, trailer, &op->type, 1);
		trailer++;
	}
	c->cp_finalize(&cctx, trailer, s->tag_len);
	/* The context holds the one-time Poly1305 key and keystream. */
	explicit_bzero(&cctx, sizeof(cctx));
}

static int
mb_encrypt(struct ktls_cctx *c, const struct ktls_crypt_op *op)
{
	const struct ktls_suite *s = c->suite;
	uint8_t nonce[12], aad[13];
	size_t aadlen;

	ktls_aead_nonce(s, c->iv, op->seq + c->nonce_off, nonce);
	if (s->explicit_iv_len != 0)
		memcpy(op->rec + KTLS_HDR_LEN, nonce + 4, 8);
	aadlen = ktls_aead_aad(s, op, aad);
	c->seal(c, op, nonce, aad, aadlen);
	explicit_bzero(nonce, sizeof(nonce));	/* iv ^ seq gives the iv */
	return (0);
}

const struct ktls_backend ktls_backend_ipsecmb = {
	.name = "ipsecmb",
	.prio = 200,
	.try = mb_try,
	.encrypt = mb_encrypt,
	.free = mb_free,
};
