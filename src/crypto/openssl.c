/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The OpenSSL libcrypto backend: every suite, through EVP (whose providers
 * use AES-NI, VAES and the like where the CPU has them).  The role of
 * FreeBSD's ktls_ocf.
 *
 * Invariant 5: libcrypto keeps key schedules in its own heap, which ktls
 * cannot lock or keep out of core dumps.  So no key schedule outlives a
 * record: each record keys the session's context from key memory and
 * resets it after (EVP_CIPHER_CTX_reset() frees, cleansed, what the
 * provider keyed; EVP_MAC_CTX_free() likewise for HMAC).  The price, measured
 * (AES-128-GCM, one core): 16 KiB records 4.64 -> 4.30 GB/s, 1400-byte
 * records 2.81 -> 1.85 GB/s.  The ipsecmb backend, which keeps its key
 * schedules in key memory, serves the AEAD suites where the CPU allows.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ktls.h"
#include "backend.h"

struct ktls_cctx {
	const struct ktls_suite	*suite;
	EVP_CIPHER		*cipher;	/* fetched; no key in it */
	EVP_CIPHER_CTX		*x;		/* keyed for one record at a time */
	EVP_MAC			*hmac;		/* CBC suites */
	const uint8_t		*key;		/* the session's key memory */
	const uint8_t		*auth_key;
	const uint8_t		*iv;		/* AEAD static IV or salt: key memory */
	uint64_t		nonce_off;	/* see ktls_crypto_params */
	uint8_t			chain[16];	/* TLS 1.0: the next record's IV */
	/* ossl_aead or ossl_cbc, chosen once by ossl_try(). */
	int			(*seal)(struct ktls_cctx *,
				    const struct ktls_crypt_op *);
};

static void
ossl_free(struct ktls_cctx *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->x);
	EVP_CIPHER_free(c->cipher);
	EVP_MAC_free(c->hmac);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* The context keyed for one record; ossl_unkey() after it. */
static EVP_CIPHER_CTX *
ossl_keyed(const struct ktls_cctx *c)
{
	if (!EVP_EncryptInit_ex2(c->x, c->cipher, c->key, NULL, NULL)) {
		EVP_CIPHER_CTX_reset(c->x);
		return (NULL);
	}
	if (c->hmac != NULL)		/* CBC: the record is padded already */
		EVP_CIPHER_CTX_set_padding(c->x, 0);
	return (c->x);
}

/* The record is done: the key schedule goes, cleansed. */
static void
ossl_unkey(const struct ktls_cctx *c)
{
	EVP_CIPHER_CTX_reset(c->x);
}

/* An HMAC context keyed for one record; EVP_MAC_CTX_free() cleanses it. */
static EVP_MAC_CTX *
ossl_mac_keyed(const struct ktls_cctx *c)
{
	EVP_MAC_CTX *m = EVP_MAC_CTX_new(c->hmac);
	OSSL_PARAM params[2];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)c->suite->mac_name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (m == NULL || !EVP_MAC_init(m, c->auth_key, c->suite->mac_len,
	    params)) {
		EVP_MAC_CTX_free(m);
		return (NULL);
	}
	return (m);
}

static int ossl_aead(struct ktls_cctx *c, const struct ktls_crypt_op *op);
static int ossl_cbc(struct ktls_cctx *c, const struct ktls_crypt_op *op);

static int
ossl_try(const struct ktls_crypto_params *p, struct ktls_cctx **ctxp)
{
	const struct ktls_suite *s = p->suite;
	struct ktls_cctx *c;
	EVP_MAC_CTX *m;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (-ENOMEM);
	c->suite = s;
	c->key = p->cipher_key;
	c->auth_key = p->auth_key;
	c->cipher = EVP_CIPHER_fetch(NULL, s->cipher_name, NULL);
	if (c->cipher == NULL ||
	    (c->x = EVP_CIPHER_CTX_new()) == NULL)
		goto decline;
	/* Can it be keyed?  Then let go of the schedule at once. */
	if (ossl_keyed(c) == NULL)
		goto decline;
	ossl_unkey(c);
	if (s->mac_name != NULL) {	/* MAC-then-encrypt */
		memcpy(c->chain, p->iv, 16);
		if ((c->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
		    (m = ossl_mac_keyed(c)) == NULL)
			goto decline;
		EVP_MAC_CTX_free(m);
		c->seal = ossl_cbc;
	} else {
		c->iv = p->iv;
		c->nonce_off = p->nonce_off;
		c->seal = ossl_aead;
	}
	*ctxp = c;
	return (0);

decline:
	ossl_free(c);
	return (-EOPNOTSUPP);
}

static int
ossl_aead(struct ktls_cctx *c, const struct ktls_crypt_op *op)
{
	const struct ktls_suite *s = c->suite;
	uint8_t nonce[12], aad[13], *dst = op->rec + s->prefix_len;
	uint8_t *trailer = dst + op->len;
	EVP_CIPHER_CTX *x;
	size_t aadlen;
	int n, ok;

	ktls_aead_nonce(s, c->iv, op->seq + c->nonce_off, nonce);
	if (s->explicit_iv_len != 0)
		memcpy(op->rec + KTLS_HDR_LEN, nonce + 4, 8);
	aadlen = ktls_aead_aad(s, op, aad);
	if ((x = ossl_keyed(c)) == NULL)
		return (-EIO);
	ok = EVP_EncryptInit_ex2(x, NULL, NULL, nonce, NULL) &&
	    EVP_EncryptUpdate(x, NULL, &n, aad, (int)aadlen) &&
	    EVP_EncryptUpdate(x, dst, &n, op->src, (int)op->len);
	if (ok && ktls_suite_is_tls13(s)) {
		/* RFC 8446 section 5.2: the real type ends the plaintext. */
		ok = EVP_EncryptUpdate(x, trailer, &n, &op->type, 1);
		trailer++;
	}
	ok = ok && EVP_EncryptFinal_ex(x, trailer, &n) &&
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, s->tag_len, trailer);
	ossl_unkey(c);
	explicit_bzero(nonce, sizeof(nonce));	/* iv ^ seq gives the iv */
	return (ok ? 0 : -EIO);
}

static int
ossl_cbc(struct ktls_cctx *c, const struct ktls_crypt_op *op)
{
	const struct ktls_suite *s = c->suite;
	uint8_t mhdr[13], *dst = op->rec + s->prefix_len, *iv, *p;
	size_t maclen, tlen = ktls_suite_trailer_len(s, op->len);
	size_t padlen = tlen - s->mac_len - 1, total = op->len + tlen;
	EVP_CIPHER_CTX *x;
	EVP_MAC_CTX *m;
	int n, ok;

	/* RFC 5246 section 6.2.3.2: MAC, then pad, then encrypt. */
	ktls_cbc_mac_header(s, op, mhdr);
	if ((m = ossl_mac_keyed(c)) == NULL)
		return (-EIO);
	ok = EVP_MAC_update(m, mhdr, sizeof(mhdr)) &&
	    EVP_MAC_update(m, op->src, op->len) &&
	    EVP_MAC_final(m, dst + op->len, &maclen, s->mac_len);
	EVP_MAC_CTX_free(m);
	if (!ok)
		return (-EIO);
	if (op->src != dst)
		memmove(dst, op->src, op->len);
	memset(dst + op->len + s->mac_len, (int)padlen, padlen + 1);

	if (s->explicit_iv_len != 0) {
		/* TLS 1.1+ (RFC 4346 section 6.2.3.2): a fresh random IV. */
		iv = op->rec + KTLS_HDR_LEN;
		if (RAND_bytes(iv, 16) != 1)
			return (-EIO);
	} else {
		iv = c->chain;
	}
	if ((x = ossl_keyed(c)) == NULL)
		return (-EIO);
	ok = EVP_EncryptInit_ex2(x, NULL, NULL, iv, NULL) &&
	    EVP_EncryptUpdate(x, dst, &n, dst, (int)total) &&
	    (size_t)n == total;
	ossl_unkey(c);
	if (!ok)
		return (-EIO);
	/* TLS 1.0 (RFC 2246 section 6.2.3.2): the last block chains on. */
	p = dst + total - 16;
	memcpy(c->chain, p, 16);
	return (0);
}

/*
 * Initialise libcrypto now, so that its exit handler is registered before
 * the engine's (init.c): exit handlers run in reverse order, so the engine
 * drains its queues before libcrypto tears itself down.
 */
static void
ossl_init(void)
{
	OPENSSL_init_crypto(0, NULL);
}

static int
ossl_encrypt(struct ktls_cctx *c, const struct ktls_crypt_op *op)
{
	return (c->seal(c, op));
}

/*
 * Receive, AEAD suites only: the context keyed for decryption, the tag
 * set before the data, EVP_DecryptFinal_ex() verifying it; what was
 * written is wiped when it does not.  CBC suites are never received.
 */
static int
ossl_decrypt(struct ktls_cctx *c, const struct ktls_open_op *op)
{
	const struct ktls_suite *s = c->suite;
	size_t len, aadlen;
	const uint8_t *ct;
	uint8_t nonce[12], aad[13], fin[16];
	int n, ok;

	if (s->kind == KTLS_CBC)
		return (-EOPNOTSUPP);
	len = ktls_suite_open_len(s, op->rec_len);
	ct = op->rec + s->prefix_len;
	ktls_aead_open_nonce(s, c->iv, op, nonce);
	aadlen = ktls_aead_open_aad(s, op, aad);
	if (!EVP_DecryptInit_ex2(c->x, c->cipher, c->key, NULL, NULL)) {
		EVP_CIPHER_CTX_reset(c->x);
		return (-EIO);
	}
	ok = EVP_DecryptInit_ex2(c->x, NULL, NULL, nonce, NULL) &&
	    EVP_CIPHER_CTX_ctrl(c->x, EVP_CTRL_AEAD_SET_TAG, s->tag_len,
	    (void *)(uintptr_t)(ct + len)) &&
	    EVP_DecryptUpdate(c->x, NULL, &n, aad, (int)aadlen) &&
	    (len == 0 || EVP_DecryptUpdate(c->x, op->dst, &n, ct, (int)len));
	if (!ok) {
		ossl_unkey(c);
		explicit_bzero(nonce, sizeof(nonce));
		explicit_bzero(op->dst, len);
		return (-EIO);
	}
	/*
	 * The application's own libcrypto calls share this thread's error
	 * queue: a forged record must leave nothing in it.
	 */
	ERR_set_mark();
	ok = EVP_DecryptFinal_ex(c->x, fin, &n);
	ERR_pop_to_mark();
	ossl_unkey(c);
	explicit_bzero(nonce, sizeof(nonce));
	if (!ok) {
		explicit_bzero(op->dst, len);
		return (-EBADMSG);
	}
	return (0);
}

const struct ktls_backend ktls_backend_openssl = {
	.name = "openssl",
	.prio = 100,
	.init = ossl_init,
	.try = ossl_try,
	.encrypt = ossl_encrypt,
	.decrypt = ossl_decrypt,
	.free = ossl_free,
};
