/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Linux's kTLS crypto_info layouts (<linux/tls.h>), described once for
 * every place that reads or writes one: the interposer (setsockopt and
 * getsockopt of SOL_TLS/TLS_TX), kernel mode (handing a session to Linux
 * kTLS) and the tests.  Header-only: the interposer uses no engine code.
 *
 * The engine's 12-byte IV is a layout's salt followed by its iv field
 * (TLS 1.2 AES-GCM: salt || first explicit nonce; TLS 1.3 and ChaCha20:
 * the static IV).
 */
#ifndef KTLS_LINUX_TLS_H
#define KTLS_LINUX_TLS_H

#include <linux/tls.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ktls.h"		/* CRYPTO_* */

#ifndef SOL_TLS
#define SOL_TLS		282
#endif
#ifndef TCP_ULP
#define TCP_ULP		31
#endif

struct ktls_linux_layout {
	uint16_t	cipher_type;	/* TLS_CIPHER_* */
	uint16_t	size;		/* sizeof the struct: Linux wants it exact */
	int		algorithm;	/* CRYPTO_* of <ktls.h> */
	uint8_t		key_len, salt_len, iv_len;
	uint16_t	key, salt, iv, rec_seq;	/* offsets */
};

#define KTLS_LINUX_LAYOUT(type, st, alg, kl, sl, il) {			\
	.cipher_type = (type), .size = sizeof(struct st),		\
	.algorithm = (alg), .key_len = (kl), .salt_len = (sl),		\
	.iv_len = (il), .key = offsetof(struct st, key),		\
	.salt = offsetof(struct st, salt), .iv = offsetof(struct st, iv), \
	.rec_seq = offsetof(struct st, rec_seq) }

enum { KTLS_LINUX_GCM128, KTLS_LINUX_GCM256, KTLS_LINUX_CHACHA20,
	KTLS_LINUX__COUNT };

/* Every layout the engine serves, by the enum above. */
static const struct ktls_linux_layout ktls_linux_layouts[KTLS_LINUX__COUNT] = {
	[KTLS_LINUX_GCM128] = KTLS_LINUX_LAYOUT(TLS_CIPHER_AES_GCM_128,
	    tls12_crypto_info_aes_gcm_128, CRYPTO_AES_NIST_GCM_16,
	    16, 4, 8),
	[KTLS_LINUX_GCM256] = KTLS_LINUX_LAYOUT(TLS_CIPHER_AES_GCM_256,
	    tls12_crypto_info_aes_gcm_256, CRYPTO_AES_NIST_GCM_16,
	    32, 4, 8),
	[KTLS_LINUX_CHACHA20] = KTLS_LINUX_LAYOUT(TLS_CIPHER_CHACHA20_POLY1305,
	    tls12_crypto_info_chacha20_poly1305,
	    CRYPTO_CHACHA20_POLY1305, 32, 0, 12),
};

/* Big enough, and aligned, for every layout. */
union ktls_linux_crypto_info {
	struct tls_crypto_info			info;
	struct tls12_crypto_info_aes_gcm_128	g128;
	struct tls12_crypto_info_aes_gcm_256	g256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* By Linux's cipher type, or by the engine's algorithm and key length. */
static inline const struct ktls_linux_layout *
ktls_linux_layout_find(int cipher_type, int algorithm, int key_len)
{
	for (size_t i = 0; i < KTLS_LINUX__COUNT; i++) {
		const struct ktls_linux_layout *l = &ktls_linux_layouts[i];

		if (cipher_type != 0 ? l->cipher_type == cipher_type :
		    l->algorithm == algorithm && l->key_len == key_len)
			return (l);
	}
	return (NULL);
}

/*
 * Fill ci for layout l: version (TLS_1_2_VERSION or TLS_1_3_VERSION), the
 * key, the engine's 12-byte IV split into salt and iv, the 8-byte record
 * sequence.  Returns the layout's size.  ci holds the key: wipe it.
 */
static inline size_t
ktls_linux_info_fill(const struct ktls_linux_layout *l,
    union ktls_linux_crypto_info *ci, uint16_t version, const uint8_t *key,
    const uint8_t iv[12], const uint8_t rec_seq[8])
{
	uint8_t *b = (uint8_t *)ci;

	memset(ci, 0, sizeof(*ci));
	ci->info.version = version;
	ci->info.cipher_type = l->cipher_type;
	memcpy(b + l->key, key, l->key_len);
	memcpy(b + l->salt, iv, l->salt_len);
	memcpy(b + l->iv, iv + l->salt_len, l->iv_len);
	memcpy(b + l->rec_seq, rec_seq, 8);
	return (l->size);
}

/* The engine's 12-byte IV and the record sequence of a filled ci. */
static inline void
ktls_linux_info_parse(const struct ktls_linux_layout *l,
    const union ktls_linux_crypto_info *ci, uint8_t iv[12],
    uint8_t rec_seq[8])
{
	const uint8_t *b = (const uint8_t *)ci;

	memcpy(iv, b + l->salt, l->salt_len);
	memcpy(iv + l->salt_len, b + l->iv, l->iv_len);
	memcpy(rec_seq, b + l->rec_seq, 8);
}

/* The key inside a filled ci. */
static inline const uint8_t *
ktls_linux_info_key(const struct ktls_linux_layout *l,
    const union ktls_linux_crypto_info *ci)
{
	return ((const uint8_t *)ci + l->key);
}

#endif /* KTLS_LINUX_TLS_H */
