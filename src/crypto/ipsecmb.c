/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Intel Multi-Buffer Crypto (ipsec-mb) backend: AES-GCM and
 * ChaCha20-Poly1305 through the library's direct, synchronous API (no job
 * queue: a record is one init/update/finalize sequence on the worker's own
 * thread).  CBC suites stay with OpenSSL.
 *
 * The library's code path (its "architecture": AVX, AVX2, AVX-512 with
 * VAES) is chosen once per process by timing, not by the library's own
 * default: on an AMD Zen 3 (AVX2 and VAES, no AVX-512) the default AVX2
 * path measured 1.22x slower than the AVX one at 16 KiB records, while on
 * AVX-512 machines the AVX-512/VAES path is 2-3x ahead of both.  Every
 * path the CPU can run, from AVX up to the library's default, seals the
 * same full-size records a few times, interleaved, and the fastest wins,
 * for AES-GCM and for ChaCha20-Poly1305 apart (about a millisecond, at
 * the first session).  KTLS_IPSECMB_ARCH=avx,
 * avx2 or avx512 at load time forces one (tests run every path);
 * "auto" is the library's default.  Below AVX2 by the library's own
 * reckoning (no VAES-class CPU) the backend declines and OpenSSL takes
 * every suite.
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
#include <stdio.h>
#include <string.h>
#include <time.h>

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
	aes_gcm_enc_dec_update_t gcm_dec_update;	/* receive */
	aes_gcm_enc_dec_finalize_t gcm_dec_finalize;
	chacha_poly_init_t	cp_init;
	chacha_poly_enc_dec_update_t cp_update;
	chacha_poly_enc_dec_update_t cp_dec_update;
	chacha_poly_finalize_t	cp_finalize;
};

/*
 * The library's direct API keeps no state in its manager (the IMB_MGR
 * holds the chosen path's function pointers, and the job queues this
 * backend does not use): one manager per chosen path serves every thread,
 * read only, once made.  The path is chosen per algorithm, AES-GCM and
 * ChaCha20-Poly1305 apart, since their code differs.
 */
static const struct mb_arch {
	const char	*name;
	IMB_ARCH	arch;
	void		(*init)(IMB_MGR *);
} mb_archs[] = {
	{ "avx",	IMB_ARCH_AVX,		init_mb_mgr_avx },
	{ "avx2",	IMB_ARCH_AVX2,		init_mb_mgr_avx2 },
	{ "avx512",	IMB_ARCH_AVX512,	init_mb_mgr_avx512 },
};
#define MB_NARCH	(sizeof(mb_archs) / sizeof(mb_archs[0]))

enum { MB_GCM, MB_CHACHA, MB_NALG };
static const char *const mb_alg_names[MB_NALG] = { "aes-gcm", "chacha20" };

static pthread_once_t mb_once = PTHREAD_ONCE_INIT;
/* Per algorithm: the chosen path and its manager; NULL: CPU too old. */
static const struct mb_arch *mb_path[MB_NALG];
static IMB_MGR *mb_mgr[MB_NALG];
static char mb_path_str[64];
/* KTLS_IPSECMB_ARCH at load time: -1 measure, -2 auto, or an index. */
static int mb_forced = -1;
static bool mb_forced_bad;

__attribute__((constructor)) static void
mb_load_env(void)
{
	const char *e = getenv("KTLS_IPSECMB_ARCH");

	if (e == NULL || *e == '\0')
		return;
	if (strcmp(e, "auto") == 0) {
		mb_forced = -2;
		return;
	}
	for (size_t i = 0; i < MB_NARCH; i++)
		if (strcmp(e, mb_archs[i].name) == 0)
			mb_forced = (int)i;
	if ((mb_forced_bad = mb_forced == -1))
		fprintf(stderr, "ktls: KTLS_IPSECMB_ARCH=%s is none of avx, "
		    "avx2, avx512, auto: the ipsecmb backend is off\n", e);
}

static uint64_t
mb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

#define MB_PROBE_LEN	16384	/* full-size records: what bulk costs */
#define MB_PROBE_RECS	8
#define MB_PROBE_ROUNDS	3

/* Nanoseconds for MB_PROBE_RECS records of alg with m's path. */
static uint64_t
mb_probe(IMB_MGR *m, int alg, uint8_t *buf)
{
	static const uint8_t key[32] = { 1 }, iv[12] = { 2 }, aad[13] = { 3 };
	struct gcm_key_data kd;
	struct gcm_context_data gd;
	struct chacha20_poly1305_context_data cd;
	uint8_t tag[16];
	uint64_t t0;

	if (alg == MB_GCM)
		IMB_AES128_GCM_PRE(m, key, &kd);
	t0 = mb_now_ns();
	for (int i = 0; i < MB_PROBE_RECS; i++) {
		if (alg == MB_GCM) {
			IMB_AES128_GCM_INIT(m, &kd, &gd, iv, aad, sizeof(aad));
			IMB_AES128_GCM_ENC_UPDATE(m, &kd, &gd, buf, buf,
			    MB_PROBE_LEN);
			IMB_AES128_GCM_ENC_FINALIZE(m, &kd, &gd, tag,
			    sizeof(tag));
		} else {
			IMB_CHACHA20_POLY1305_INIT(m, key, &cd, iv, aad,
			    sizeof(aad));
			IMB_CHACHA20_POLY1305_ENC_UPDATE(m, key, &cd, buf, buf,
			    MB_PROBE_LEN);
			IMB_CHACHA20_POLY1305_ENC_FINALIZE(m, &cd, tag,
			    sizeof(tag));
		}
	}
	return (mb_now_ns() - t0);
}

/*
 * For each algorithm, the fastest of the paths in m[] (NULL: not run
 * here): the least time of a few interleaved rounds.
 */
static void
mb_pick(IMB_MGR *m[MB_NARCH], size_t pick[MB_NALG])
{
	uint64_t ns[MB_NALG][MB_NARCH], t;
	uint8_t *buf = calloc(1, MB_PROBE_LEN);

	for (int alg = 0; alg < MB_NALG; alg++) {
		pick[alg] = MB_NARCH;
		for (size_t i = 0; i < MB_NARCH; i++)
			ns[alg][i] = UINT64_MAX;
	}
	for (int r = 0; buf != NULL && r < MB_PROBE_ROUNDS; r++)
		for (int alg = 0; alg < MB_NALG; alg++)
			for (size_t i = 0; i < MB_NARCH; i++)
				if (m[i] != NULL &&
				    (t = mb_probe(m[i], alg, buf)) < ns[alg][i])
					ns[alg][i] = t;
	for (int alg = 0; alg < MB_NALG; alg++)
		for (size_t i = 0; i < MB_NARCH; i++)
			if (m[i] != NULL && (pick[alg] == MB_NARCH ||
			    ns[alg][i] < ns[alg][pick[alg]]))
				pick[alg] = i;
	free(buf);
}

static void
mb_once_fn(void)
{
	IMB_MGR *m[MB_NARCH] = { NULL }, *probe;
	IMB_ARCH best = IMB_ARCH_NONE;
	size_t pick[MB_NALG], i;

	if (mb_forced_bad || (probe = alloc_mb_mgr(0)) == NULL)
		return;
	init_mb_mgr_auto(probe, &best);
	if (imb_get_errno(probe) != 0)
		best = IMB_ARCH_NONE;
	free_mb_mgr(probe);
	/*
	 * Only a CPU whose best path is AVX2 or AVX-512 is worth a second
	 * backend; below that (AVX, SSE, no AES-NI) OpenSSL keeps every suite.
	 */
	if (best < IMB_ARCH_AVX2)
		return;
	for (i = 0; i < MB_NARCH; i++) {
		if (mb_archs[i].arch > best || (mb_forced >= 0 &&
		    (int)i != mb_forced) || (mb_forced == -2 &&
		    mb_archs[i].arch != best) || (m[i] = alloc_mb_mgr(0)) == NULL)
			continue;
		mb_archs[i].init(m[i]);
		if (imb_get_errno(m[i]) != 0) {
			free_mb_mgr(m[i]);
			m[i] = NULL;
		}
	}
	mb_pick(m, pick);
	for (int alg = 0; alg < MB_NALG; alg++) {
		if (pick[alg] == MB_NARCH)
			continue;
		mb_path[alg] = &mb_archs[pick[alg]];
		mb_mgr[alg] = m[pick[alg]];
	}
	for (i = 0; i < MB_NARCH; i++)
		if (m[i] != NULL && m[i] != mb_mgr[MB_GCM] &&
		    m[i] != mb_mgr[MB_CHACHA])
			free_mb_mgr(m[i]);
	if (mb_path[MB_GCM] != NULL && mb_path[MB_CHACHA] != NULL)
		snprintf(mb_path_str, sizeof(mb_path_str), "%s %s, %s %s%s",
		    mb_alg_names[MB_GCM], mb_path[MB_GCM]->name,
		    mb_alg_names[MB_CHACHA], mb_path[MB_CHACHA]->name,
		    mb_forced == -1 ? " (timed)" : " (KTLS_IPSECMB_ARCH)");
}

/* alg's manager (read only), or NULL: the CPU lacks a fast path. */
static IMB_MGR *
mb_get(int alg)
{
	pthread_once(&mb_once, mb_once_fn);
	return (mb_mgr[alg]);
}

/* The code paths in use, or NULL when the backend declines. */
static const char *
mb_path_name(void)
{
	pthread_once(&mb_once, mb_once_fn);
	return (mb_path_str[0] != '\0' ? mb_path_str : NULL);
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
	if ((m = mb_get(s->cipher_alg == CRYPTO_CHACHA20_POLY1305 ?
	    MB_CHACHA : MB_GCM)) == NULL)
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
		c->cp_dec_update = m->chacha20_poly1305_dec_update;
		c->cp_finalize = m->chacha20_poly1305_finalize;
	} else if (s->key_len == 16) {
		IMB_AES128_GCM_PRE(m, p->cipher_key, c->key);
		c->seal = mb_gcm;
		c->gcm_init = m->gcm128_init;
		c->gcm_update = m->gcm128_enc_update;
		c->gcm_finalize = m->gcm128_enc_finalize;
		c->gcm_dec_update = m->gcm128_dec_update;
		c->gcm_dec_finalize = m->gcm128_dec_finalize;
	} else {
		IMB_AES256_GCM_PRE(m, p->cipher_key, c->key);
		c->seal = mb_gcm;
		c->gcm_init = m->gcm256_init;
		c->gcm_update = m->gcm256_enc_update;
		c->gcm_finalize = m->gcm256_enc_finalize;
		c->gcm_dec_update = m->gcm256_dec_update;
		c->gcm_dec_finalize = m->gcm256_dec_finalize;
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
	if (ktls_suite_is_tls13(s) && op->src == dst) {
		/*
		 * RFC 8446 section 5.2: the real type ends the plaintext.  In
		 * place it goes after the payload first, and one update
		 * takes both (+3% at 16 KiB, +14% at 1400 bytes, measured
		 * on an AMD Zen 3 for issue 12).
		 */
		*trailer++ = op->type;
		c->gcm_update(c->key, &gctx, dst, dst, op->len + 1);
	} else {
		if (op->len != 0)
			c->gcm_update(c->key, &gctx, dst, op->src, op->len);
		if (ktls_suite_is_tls13(s)) {
			c->gcm_update(c->key, &gctx, trailer, &op->type, 1);
			trailer++;
		}
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
	if (ktls_suite_is_tls13(s) && op->src == dst) {
		*trailer++ = op->type;		/* as in mb_gcm() */
		c->cp_update(c->key, &cctx, dst, dst, op->len + 1);
	} else {
		if (op->len != 0)
			c->cp_update(c->key, &cctx, dst, op->src, op->len);
		if (ktls_suite_is_tls13(s)) {
			c->cp_update(c->key, &cctx, trailer, &op->type, 1);
			trailer++;
		}
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

/*
 * Receive: decrypt, compute the tag, compare it in constant time; on a
 * mismatch the plaintext written is wiped before the error returns.
 */
static int
mb_decrypt(struct ktls_cctx *c, const struct ktls_open_op *op)
{
	const struct ktls_suite *s = c->suite;
	size_t len = ktls_suite_open_len(s, op->rec_len), aadlen;
	const uint8_t *ct = op->rec + s->prefix_len;
	uint8_t nonce[12], aad[13], tag[16];
	unsigned int diff = 0;

	ktls_aead_open_nonce(s, c->iv, op, nonce);
	aadlen = ktls_aead_open_aad(s, op, aad);
	if (s->cipher_alg == CRYPTO_CHACHA20_POLY1305) {
		struct chacha20_poly1305_context_data cctx;

		c->cp_init(c->key, &cctx, nonce, aad, aadlen);
		if (len != 0)
			c->cp_dec_update(c->key, &cctx, op->dst, ct, len);
		c->cp_finalize(&cctx, tag, s->tag_len);
		explicit_bzero(&cctx, sizeof(cctx));
	} else {
		struct gcm_context_data gctx;

		c->gcm_init(c->key, &gctx, nonce, aad, aadlen);
		if (len != 0)
			c->gcm_dec_update(c->key, &gctx, op->dst, ct, len);
		c->gcm_dec_finalize(c->key, &gctx, tag, s->tag_len);
		explicit_bzero(&gctx, sizeof(gctx));
	}
	explicit_bzero(nonce, sizeof(nonce));
	for (size_t i = 0; i < s->tag_len; i++)
		diff |= (unsigned int)(tag[i] ^ ct[len + i]);
	explicit_bzero(tag, sizeof(tag));
	if (diff != 0) {
		explicit_bzero(op->dst, len);
		return (-EBADMSG);
	}
	return (0);
}

const struct ktls_backend ktls_backend_ipsecmb = {
	.name = "ipsecmb",
	.prio = 200,
	.try = mb_try,
	.encrypt = mb_encrypt,
	.decrypt = mb_decrypt,
	.free = mb_free,
	.path = mb_path_name,
};
