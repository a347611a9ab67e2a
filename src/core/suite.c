/* SPDX-License-Identifier: BSD-2-Clause */
#include "suite.h"

#include "ktls.h"
#include "../proto/linux_tls.h"

#define SW(c)		.sw_counter = KC_SW_##c
#define IFNET(c)	.ifnet_counter = KC_IFNET_##c

#define AEAD12_GCM(kl) {						\
	.name = "TLS1.2-AES-" #kl "-GCM", .vminor = TLS_MINOR_VER_TWO,	\
	.cipher_alg = CRYPTO_AES_NIST_GCM_16, .kind = KTLS_AEAD_EXPLICIT, \
	.cipher_name = "AES-" #kl "-GCM", .linux_layout = KTLS_LINUX_GCM##kl, \
	SW(GCM), IFNET(GCM), .key_len = (kl) / 8, .iv_len = 4,		\
	.tag_len = 16, .explicit_iv_len = 8, .prefix_len = 13 }
#define AEAD13(nm, alg, cn, kl, ly, c) {				\
	.name = "TLS1.3-" nm, .vminor = TLS_MINOR_VER_THREE,		\
	.cipher_alg = (alg), .kind = KTLS_AEAD_XOR, .cipher_name = (cn), \
	.linux_layout = (ly), SW(c), IFNET(c), .key_len = (kl),		\
	.iv_len = 12, .tag_len = 16, .prefix_len = 5 }
#define CBC(vn, vm, kl, an, alg, ml) {					\
	.name = "TLS1." #vn "-AES-" #kl "-CBC-" an, .vminor = (vm),	\
	.cipher_alg = CRYPTO_AES_CBC, .auth_alg = (alg), .kind = KTLS_CBC, \
	.cipher_name = "AES-" #kl "-CBC", .mac_name = an,		\
	.linux_layout = -1, SW(CBC), .key_len = (kl) / 8, .iv_len = 16,	\
	.mac_len = (ml), .explicit_iv_len = (vm) == TLS_MINOR_VER_ZERO ? 0 : 16, \
	.prefix_len = (vm) == TLS_MINOR_VER_ZERO ? 5 : 21 }

/* Every suite FreeBSD's KTLS transmits. */
static const struct ktls_suite suites[] = {
	AEAD12_GCM(128),
	AEAD12_GCM(256),
	{ .name = "TLS1.2-CHACHA20-POLY1305", .vminor = TLS_MINOR_VER_TWO,
	  .cipher_alg = CRYPTO_CHACHA20_POLY1305, .kind = KTLS_AEAD_XOR,
	  .cipher_name = "ChaCha20-Poly1305",
	  .linux_layout = KTLS_LINUX_CHACHA20, SW(CHACHA20), IFNET(CHACHA20),
	  .key_len = 32, .iv_len = 12, .tag_len = 16, .prefix_len = 5 },
	AEAD13("AES-128-GCM", CRYPTO_AES_NIST_GCM_16, "AES-128-GCM", 16,
	    KTLS_LINUX_GCM128, GCM),
	AEAD13("AES-256-GCM", CRYPTO_AES_NIST_GCM_16, "AES-256-GCM", 32,
	    KTLS_LINUX_GCM256, GCM),
	AEAD13("CHACHA20-POLY1305", CRYPTO_CHACHA20_POLY1305,
	    "ChaCha20-Poly1305", 32, KTLS_LINUX_CHACHA20, CHACHA20),
	CBC(0, TLS_MINOR_VER_ZERO, 128, "SHA1", CRYPTO_SHA1_HMAC, 20),
	CBC(0, TLS_MINOR_VER_ZERO, 256, "SHA1", CRYPTO_SHA1_HMAC, 20),
	CBC(1, TLS_MINOR_VER_ONE, 128, "SHA1", CRYPTO_SHA1_HMAC, 20),
	CBC(1, TLS_MINOR_VER_ONE, 256, "SHA1", CRYPTO_SHA1_HMAC, 20),
	CBC(2, TLS_MINOR_VER_TWO, 128, "SHA1", CRYPTO_SHA1_HMAC, 20),
	CBC(2, TLS_MINOR_VER_TWO, 256, "SHA1", CRYPTO_SHA1_HMAC, 20),
	CBC(2, TLS_MINOR_VER_TWO, 128, "SHA256", CRYPTO_SHA2_256_HMAC, 32),
	CBC(2, TLS_MINOR_VER_TWO, 256, "SHA256", CRYPTO_SHA2_256_HMAC, 32),
	CBC(2, TLS_MINOR_VER_TWO, 128, "SHA384", CRYPTO_SHA2_384_HMAC, 48),
	CBC(2, TLS_MINOR_VER_TWO, 256, "SHA384", CRYPTO_SHA2_384_HMAC, 48),
};

const struct ktls_suite *
ktls_suite_lookup(uint8_t vminor, int cipher_alg, int key_len, int auth_alg)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		const struct ktls_suite *s = &suites[i];

		if (s->vminor == vminor && s->cipher_alg == cipher_alg &&
		    s->key_len == key_len && s->auth_alg == auth_alg)
			return (s);
	}
	return (NULL);
}

const struct ktls_suite *
ktls_suite_get(unsigned int idx)
{
	return (idx < sizeof(suites) / sizeof(suites[0]) ? &suites[idx] : NULL);
}
