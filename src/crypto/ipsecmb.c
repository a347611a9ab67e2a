/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Intel Multi-Buffer Crypto (ipsec-mb) backend: AES-GCM through the
 * library's direct, synchronous API (no job queue: a record is one call
 * sequence on the worker's own thread), with the AVX2 or AVX-512/VAES code
 * init_mb_mgr_auto() selects for this CPU.  CBC suites stay with OpenSSL.
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

/*
 * ChaCha20-Poly1305: the library has a direct API for it, but on the CPUs
 * measured (AMD Zen 4, AVX-512) OpenSSL's AVX-512 code is faster for TLS
 * record sizes, so this backend declines the suite and OpenSSL keeps it.
 */

struct ktls_cctx {
	const struct ktls_suite	*suite;
	struct gcm_key_data	*key;		/* in key memory */
	uint8_t			iv[12];		/* static IV or salt */
	uint64_t		nonce_off;	/* see ktls_crypto_params */
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
	 * The SSE and no-AES-NI fallbacks are slower than OpenSSL's AES-NI
	 * code; leave those machines to OpenSSL.
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
	ktls_keymem_free(c->key, sizeof(*c->key));
	explicit_bzero(c, sizeof(*c));
	free(c);
}

static int
mb_try(const struct ktls_crypto_params *p, struct ktls_cctx **ctxp)
{
	const struct ktls_suite *s = p->suite;
	struct ktls_cctx *c;
	IMB_MGR *m;

	if (s->cipher_alg != CRYPTO_AES_NIST_GCM_16 ||
	    (s->key_len != 16 && s->key_len != 32) || s->tag_len != 16)
		return (-EOPNOTSUPP);
	if ((m = mb_get()) == NULL)
		return (-EOPNOTSUPP);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (-ENOMEM);
	/* The expanded key and the GHASH key powers are key material. */
	if ((c->key = ktls_keymem_alloc(sizeof(*c->key))) == NULL) {
		free(c);
		return (-ENOMEM);
	}
	c->suite = s;
	if (s->key_len == 16)
		IMB_AES128_GCM_PRE(m, p->cipher_key, c->key);
	else
		IMB_AES256_GCM_PRE(m, p->cipher_key, c->key);
	memcpy(c->iv, p->iv, s->iv_len);
	c->nonce_off = p->nonce_off;
	*ctxp = c;
	return (0);
}

static int
mb_encrypt(struct ktls_cctx *c, const struct ktls_crypt_op *op)
{
	const struct ktls_suite *s = c->suite;
	struct gcm_context_data gctx;
	uint8_t nonce[12], aad[13], *dst = op->rec + s->prefix_len;
	uint8_t *trailer = dst + op->len;
	aes_gcm_init_t init;
	aes_gcm_enc_dec_update_t update;
	aes_gcm_enc_dec_finalize_t finalize;
	size_t aadlen;
	IMB_MGR *m;

	if ((m = mb_get()) == NULL)
		return (-ENOMEM);
	/* What IMB_AES{128,256}_GCM_{INIT,ENC_UPDATE,ENC_FINALIZE} call. */
	if (s->key_len == 16) {
		init = m->gcm128_init;
		update = m->gcm128_enc_update;
		finalize = m->gcm128_enc_finalize;
	} else {
		init = m->gcm256_init;
		update = m->gcm256_enc_update;
		finalize = m->gcm256_enc_finalize;
	}

	ktls_aead_nonce(s, c->iv, op->seq + c->nonce_off, nonce);
	if (s->explicit_iv_len != 0)
		memcpy(op->rec + KTLS_HDR_LEN, nonce + 4, 8);
	aadlen = ktls_aead_aad(s, op, aad);
	init(c->key, &gctx, nonce, aad, aadlen);
	if (op->len != 0)
		update(c->key, &gctx, dst, op->src, op->len);
	if (ktls_suite_is_tls13(s)) {
		/* RFC 8446 section 5.2: the real type ends the plaintext. */
		update(c->key, &gctx, trailer, &op->type, 1);
		trailer++;
	}
	finalize(c->key, &gctx, trailer, s->tag_len);
	/* The context holds keystream and the running GHASH. */
	explicit_bzero(&gctx, sizeof(gctx));
	return (0);
}

const struct ktls_backend ktls_backend_ipsecmb = {
	.name = "ipsecmb",
	.prio = 200,
	.try = mb_try,
	.encrypt = mb_encrypt,
	.free = mb_free,
};
