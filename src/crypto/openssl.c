/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The OpenSSL libcrypto backend: every suite, through EVP (whose providers
 * use AES-NI, VAES and the like where the CPU has them).  The role of
 * FreeBSD's ktls_ocf.
 */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ktls.h"
#include "backend.h"

struct ktls_cctx {
	const struct ktls_suite	*suite;
	EVP_CIPHER_CTX		*cipher;
	EVP_MAC_CTX		*mac;		/* CBC suites */
	uint8_t			iv[12];		/* AEAD static IV or salt */
	uint64_t		nonce_off;	/* see ktls_crypto_params */
	uint8_t			chain[16];	/* TLS 1.0: the next record's IV */
};

static EVP_CIPHER *
ossl_cipher(const struct ktls_suite *s)
{
	const char *name;

	switch (s->cipher_alg) {
	case CRYPTO_AES_NIST_GCM_16:
		name = s->key_len == 16 ? "AES-128-GCM" : "AES-256-GCM";
		break;
	case CRYPTO_CHACHA20_POLY1305:
		name = "ChaCha20-Poly1305";
		break;
	default:
		name = s->key_len == 16 ? "AES-128-CBC" : "AES-256-CBC";
		break;
	}
	return (EVP_CIPHER_fetch(NULL, name, NULL));
}

static const char *
ossl_digest(int auth_alg)
{
	switch (auth_alg) {
	case CRYPTO_SHA1_HMAC:
		return ("SHA1");
	case CRYPTO_SHA2_256_HMAC:
		return ("SHA256");
	default:
		return ("SHA384");
	}
}

static void
ossl_free(struct ktls_cctx *c)
{
	if (c == NULL)
		return;
	/* Both _free calls cleanse the key schedules they hold. */
	EVP_CIPHER_CTX_free(c->cipher);
	EVP_MAC_CTX_free(c->mac);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static int
ossl_try(const struct ktls_crypto_params *p, struct ktls_cctx **ctxp)
{
	const struct ktls_suite *s = p->suite;
	struct ktls_cctx *c;
	EVP_CIPHER *cipher;
	EVP_MAC *mac;
	OSSL_PARAM params[2];
	int ok;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (-ENOMEM);
	c->suite = s;
	if ((cipher = ossl_cipher(s)) == NULL)
		goto decline;
	c->cipher = EVP_CIPHER_CTX_new();
	ok = c->cipher != NULL &&
	    EVP_EncryptInit_ex2(c->cipher, cipher, p->cipher_key, NULL, NULL);
	EVP_CIPHER_free(cipher);
	if (!ok)
		goto decline;
	if (s->kind == KTLS_CBC) {
		EVP_CIPHER_CTX_set_padding(c->cipher, 0);
		memcpy(c->chain, p->iv, 16);
		if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
			goto decline;
		c->mac = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);
		params[0] = OSSL_PARAM_construct_utf8_string(
		    OSSL_MAC_PARAM_DIGEST, (char *)ossl_digest(s->auth_alg), 0);
		params[1] = OSSL_PARAM_construct_end();
		if (c->mac == NULL || !EVP_MAC_init(c->mac, p->auth_key,
		    s->mac_len, params))
			goto decline;
	} else {
		memcpy(c->iv, p->iv, s->iv_len);
		c->nonce_off = p->nonce_off;
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
	size_t aadlen;
	int n;

	ktls_aead_nonce(s, c->iv, op->seq + c->nonce_off, nonce);
	if (s->explicit_iv_len != 0)
		memcpy(op->rec + KTLS_HDR_LEN, nonce + 4, 8);
	aadlen = ktls_aead_aad(s, op, aad);
	if (!EVP_EncryptInit_ex2(c->cipher, NULL, NULL, nonce, NULL) ||
	    !EVP_EncryptUpdate(c->cipher, NULL, &n, aad, (int)aadlen) ||
	    !EVP_EncryptUpdate(c->cipher, dst, &n, op->src, (int)op->len))
		return (-EIO);
	if (ktls_suite_is_tls13(s)) {
		/* RFC 8446 section 5.2: the real type ends the plaintext. */
		if (!EVP_EncryptUpdate(c->cipher, trailer, &n, &op->type, 1))
			return (-EIO);
		trailer++;
	}
	if (!EVP_EncryptFinal_ex(c->cipher, trailer, &n) ||
	    !EVP_CIPHER_CTX_ctrl(c->cipher, EVP_CTRL_AEAD_GET_TAG, s->tag_len,
	    trailer))
		return (-EIO);
	return (0);
}

static int
ossl_cbc(struct ktls_cctx *c, const struct ktls_crypt_op *op)
{
	const struct ktls_suite *s = c->suite;
	uint8_t mhdr[13], *dst = op->rec + s->prefix_len, *iv, *p;
	size_t maclen, tlen = ktls_suite_trailer_len(s, op->len);
	size_t padlen = tlen - s->mac_len - 1, total = op->len + tlen;
	int n;

	/* RFC 5246 section 6.2.3.2: MAC, then pad, then encrypt. */
	ktls_cbc_mac_header(s, op, mhdr);
	if (!EVP_MAC_init(c->mac, NULL, 0, NULL) ||
	    !EVP_MAC_update(c->mac, mhdr, sizeof(mhdr)) ||
	    !EVP_MAC_update(c->mac, op->src, op->len) ||
	    !EVP_MAC_final(c->mac, dst + op->len, &maclen, s->mac_len))
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
	if (!EVP_EncryptInit_ex2(c->cipher, NULL, NULL, iv, NULL) ||
	    !EVP_EncryptUpdate(c->cipher, dst, &n, dst, (int)total) ||
	    (size_t)n != total)
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
	return (c->suite->kind == KTLS_CBC ? ossl_cbc(c, op) :
	    ossl_aead(c, op));
}

const struct ktls_backend ktls_backend_openssl = {
	.name = "openssl",
	.prio = 100,
	.init = ossl_init,
	.try = ossl_try,
	.encrypt = ossl_encrypt,
	.free = ossl_free,
};
