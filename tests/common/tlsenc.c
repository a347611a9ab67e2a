/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tlsenc: see tlsenc.h.  Nonces: AES-GCM in TLS 1.2 (RFC 5288) is the
 * 4-byte salt then an explicit 8-byte nonce, sent in the record; here the
 * explicit nonce is the sequence number, as every implementation does.
 * ChaCha20-Poly1305 (RFC 7905) and TLS 1.3 (RFC 8446 5.3) XOR the
 * sequence number into the last 8 bytes of the 12-byte IV.  AAD: TLS 1.2
 * seq || type || version || plaintext length; TLS 1.3 the record header.
 */
#include <string.h>

#include <openssl/evp.h>

#include "tlsenc.h"

static const EVP_CIPHER *
cipher(const struct tls_enable *en)
{
	if (en->cipher_algorithm == CRYPTO_AES_NIST_GCM_16)
		return (en->cipher_key_len == 16 ? EVP_aes_128_gcm() :
		    en->cipher_key_len == 32 ? EVP_aes_256_gcm() : NULL);
	if (en->cipher_algorithm == CRYPTO_CHACHA20_POLY1305 &&
	    en->cipher_key_len == 32)
		return (EVP_chacha20_poly1305());
	return (NULL);
}

static size_t
explicit_len(const struct tls_enable *en)
{
	return (en->cipher_algorithm == CRYPTO_AES_NIST_GCM_16 &&
	    en->tls_vminor == TLS_MINOR_VER_TWO ? 8 : 0);
}

size_t
tlsenc_wire_len(const struct tls_enable *en, size_t len)
{
	return (5 + explicit_len(en) + len +
	    (en->tls_vminor == TLS_MINOR_VER_THREE ? 1 : 0) + 16);
}

size_t
tlsenc_seal(const struct tls_enable *en, uint64_t seq, uint8_t type,
    const void *pt, size_t len, size_t pad, uint8_t *out)
{
	const EVP_CIPHER *c = cipher(en);
	int tls13 = en->tls_vminor == TLS_MINOR_VER_THREE;
	size_t xl = explicit_len(en);
	size_t inner = len + (tls13 ? 1 + pad : 0);
	size_t body_len = xl + inner + 16;
	uint8_t nonce[12], aad[13], *body = out + 5 + xl;
	EVP_CIPHER_CTX *ctx;
	int outl, aadlen, ok;

	if (c == NULL || (!tls13 && pad != 0) ||
	    (xl == 8 ? en->iv_len < 4 : en->iv_len < 12))
		return (0);
	out[0] = tls13 ? TLS_RLTYPE_APP : type;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(body_len >> 8);
	out[4] = (uint8_t)body_len;
	memset(nonce, 0, sizeof(nonce));
	memcpy(nonce, en->iv, xl == 8 ? 4 : 12);
	for (int i = 0; i < 8; i++) {
		uint8_t b = (uint8_t)(seq >> (56 - 8 * i));

		if (xl == 8)
			nonce[4 + i] = out[5 + i] = b;
		else
			nonce[4 + i] ^= b;
	}
	if (tls13) {
		memcpy(aad, out, 5);
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
	memmove(body, pt, len);
	if (tls13) {
		body[len] = type;
		memset(body + len + 1, 0, pad);
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return (0);
	ok = EVP_EncryptInit_ex(ctx, c, NULL, en->cipher_key, nonce) == 1 &&
	    EVP_EncryptUpdate(ctx, NULL, &outl, aad, aadlen) == 1 &&
	    EVP_EncryptUpdate(ctx, body, &outl, body, (int)inner) == 1 &&
	    EVP_EncryptFinal_ex(ctx, body + inner, &outl) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16,
	    body + inner) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return (ok ? 5 + body_len : 0);
}
