/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * AES-GCM (NIST SP 800-38D) with VAES and VPCLMULQDQ on 256-bit vectors
 * and AVX2, no AVX-512: two blocks per instruction, sixteen per loop
 * round, for CPUs such as AMD Zen 3 on which no library of Debian 12 has
 * such a path (src/crypto/gcm_vaes.c).  Pure: bytes in, bytes out.
 * 12-byte IVs only (what TLS uses), 16-byte tags.
 */
#ifndef KTLS_GCM_VAES_H
#define KTLS_GCM_VAES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The expanded key: AES round keys, each repeated in both 128-bit lanes,
 * the GHASH key powers H^16..H^1 (in the bit-reflected,
 * pre-multiplied-by-x form the multiplier takes), and each power's two
 * halves XORed (Karatsuba's middle operand).  Secret: callers keep it in
 * key memory (under 1 KiB).
 */
struct ktls_gcm_key {
	uint8_t		rk[15][32];
	uint8_t		hpow[16][16];
	uint8_t		hkar[16][16];
	unsigned int	rounds;		/* 10 or 14 */
};

/* Whether this CPU (and its OS) runs the code: AVX2, VAES, VPCLMULQDQ. */
bool	ktls_gcm_vaes_usable(void);

/* key_len 16 or 32; the caller checked ktls_gcm_vaes_usable(). */
void	ktls_gcm_vaes_setkey(struct ktls_gcm_key *k, const uint8_t *key,
	    size_t key_len);

/*
 * Encrypt src[0..len), followed by the one byte *tail when tail is not
 * NULL (TLS 1.3's inner content type), into dst (len, + 1 with a tail,
 * bytes; dst may equal src), and write the 16-byte tag.
 */
void	ktls_gcm_vaes_seal(const struct ktls_gcm_key *k, const uint8_t iv[12],
	    const uint8_t *aad, size_t aadlen, const uint8_t *src, size_t len,
	    const uint8_t *tail, uint8_t *dst, uint8_t tag[16]);

/*
 * Decrypt src[0..len) into dst (may equal src) and check the tag: 0, or
 * -EBADMSG with dst[0..len) zeroed (nothing of a forged record survives).
 */
int	ktls_gcm_vaes_open(const struct ktls_gcm_key *k, const uint8_t iv[12],
	    const uint8_t *aad, size_t aadlen, const uint8_t *src, size_t len,
	    uint8_t *dst, const uint8_t tag[16]);

#endif /* KTLS_GCM_VAES_H */
