/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * AES-GCM with VAES and VPCLMULQDQ on 256-bit vectors (AVX2 register
 * file, no AVX-512): see gcm_vaes.h.
 *
 * Why it exists: on an AMD Zen 3 (AVX2, VAES, no AVX-512) the fastest
 * AES-GCM in Debian 12 was ipsec-mb's AVX path, one block per AES
 * instruction; the CPU's AES units take two blocks per VAES instruction.
 * The backend in vaes.c uses this code only where the registry's timing
 * finds it faster than the backend that would take the session otherwise.
 *
 * How: counter blocks two per ymm register, eight registers (sixteen
 * blocks, 256 bytes) per loop round, every round key applied to all eight
 * before the next; GHASH of those sixteen blocks with the key powers
 * H^16..H^1, carry-less products summed unreduced and reduced once, the
 * middle term by Karatsuba (three multiplies a block instead of four:
 * +5-10% at 16 KiB on an AMD Zen 3).  Measured and not kept: round keys
 * stored once and broadcast at each use (12% slower at 16 KiB), and
 * hashing the round before's ciphertext inside the AES rounds (no gain:
 * the CPU already overlaps them).
 *
 * GHASH arithmetic: a block is byte-reflected (its first byte becomes the
 * integer's most significant), which turns GCM's bit-reflected field
 * GF(2^128) mod x^128 + x^7 + x^2 + x + 1 into the natural
 * interpretation mod G = x^128 + x^127 + x^126 + x^121 + 1.  The
 * multiplier is Montgomery's: mul(a, b) = a * b * x^-128 mod G, the
 * 256-bit product HI x^128 + MI x^64 + LO folded twice by
 * x^-64 = x^64 + x^63 + x^62 + x^57 (mod G): the constant 0xc2 << 56
 * holds x^63 + x^62 + x^57.  The hash key is stored pre-multiplied by x
 * (a one-bit left shift, reduced), which makes mul() of the reflected
 * block and the stored key GCM's product.  This is the representation of
 * Linux's x86 AES-GCM code (arch/x86/crypto/aes-gcm-*.S); the code here
 * is written for this engine from the mathematics above.
 *
 * Secrets: round keys and key powers live in the caller's key memory;
 * what one call derives on the stack (the last partial blocks, E(K, J0))
 * is wiped before it returns.
 */
#include <cpuid.h>
#include <errno.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "gcm_vaes.h"

#define TGT	__attribute__((target("avx2,aes,pclmul,vaes,vpclmulqdq")))
#define CHUNK	256		/* bytes per loop round: 16 blocks */

/* CPUID and XCR0: the instructions, and the OS saving ymm registers. */
static bool
cpu_has_vaes_avx2(void)
{
	unsigned int a, b, c, d;
	uint32_t xlo, xhi;

	if (!__get_cpuid(1, &a, &b, &c, &d) ||
	    !(c & bit_AES) || !(c & bit_PCLMUL) || !(c & bit_OSXSAVE) ||
	    !(c & bit_AVX))
		return (false);
	__asm__ volatile ("xgetbv" : "=a" (xlo), "=d" (xhi) : "c" (0));
	if ((xlo & 6) != 6)		/* XMM and YMM state */
		return (false);
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return (false);
	return ((b & bit_AVX2) && (c & (1u << 9)) /* VAES */ &&
	    (c & (1u << 10)) /* VPCLMULQDQ */);
}

bool
ktls_gcm_vaes_usable(void)
{
	static _Atomic int usable = -1;
	int u = atomic_load_explicit(&usable, memory_order_relaxed);

	if (u < 0) {
		u = cpu_has_vaes_avx2();
		atomic_store_explicit(&usable, u, memory_order_relaxed);
	}
	return (u != 0);
}

static inline TGT __m128i
bswap_mask128(void)
{
	return (_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	    15));
}

static inline TGT __m256i
bswap_mask256(void)
{
	return (_mm256_broadcastsi128_si256(bswap_mask128()));
}

static inline TGT __m128i
rk128(const struct ktls_gcm_key *k, unsigned int r)
{
	return (_mm_loadu_si128((const __m128i *)(const void *)k->rk[r]));
}

static inline TGT __m256i
rk256(const struct ktls_gcm_key *k, unsigned int r)
{
	return (_mm256_loadu_si256((const __m256i *)(const void *)k->rk[r]));
}

/* ------------------------------------------------------------- GHASH */

/* (HI x^128 + MI x^64 + LO) * x^-128 mod G. */
static inline TGT __m128i
gf_reduce(__m128i lo, __m128i mi, __m128i hi)
{
	const __m128i poly = _mm_set_epi64x((long long)0xc200000000000000ULL,
	    1);
	__m128i t;

	t = _mm_clmulepi64_si128(lo, poly, 0x10);	/* LO_lo * x^-64 part */
	lo = _mm_shuffle_epi32(lo, 0x4e);		/* LO_hi <-> LO_lo */
	mi = _mm_xor_si128(mi, _mm_xor_si128(lo, t));
	t = _mm_clmulepi64_si128(mi, poly, 0x10);
	mi = _mm_shuffle_epi32(mi, 0x4e);
	return (_mm_xor_si128(hi, _mm_xor_si128(mi, t)));
}

static inline TGT __m128i
gf_mul(__m128i a, __m128i b)
{
	__m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
	__m128i mi = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01),
	    _mm_clmulepi64_si128(a, b, 0x10));
	__m128i hi = _mm_clmulepi64_si128(a, b, 0x11);

	return (gf_reduce(lo, mi, hi));
}

/*
 * acc folded with nb (1..16) blocks at p: block i is multiplied by
 * H^(nb - i), the products summed unreduced and reduced once.
 */
static inline TGT __m128i
gh_chunk(const struct ktls_gcm_key *k, __m128i acc, const uint8_t *p,
    size_t nb)
{
	const __m256i bs = bswap_mask256();
	const uint8_t *hp = k->hpow[16 - nb], *kp = k->hkar[16 - nb];
	__m256i lo = _mm256_setzero_si256(), mi = lo, hi = lo, x, h;
	__m128i lo1, mi1, hi1;
	size_t i = 0;

	_Pragma("GCC unroll 8")
	for (; i + 2 <= nb; i += 2) {
		x = _mm256_shuffle_epi8(_mm256_loadu_si256(
		    (const __m256i *)(const void *)(p + 16 * i)), bs);
		if (i == 0)
			x = _mm256_xor_si256(x, _mm256_inserti128_si256(
			    _mm256_setzero_si256(), acc, 0));
		h = _mm256_loadu_si256((const __m256i *)(const void *)
		    (hp + 16 * i));
		/* Karatsuba: MI = (x_lo ^ x_hi)(h_lo ^ h_hi) ^ LO ^ HI. */
		lo = _mm256_xor_si256(lo, _mm256_clmulepi64_epi128(x, h, 0x00));
		hi = _mm256_xor_si256(hi, _mm256_clmulepi64_epi128(x, h, 0x11));
		x = _mm256_xor_si256(x, _mm256_shuffle_epi32(x, 0x4e));
		h = _mm256_loadu_si256((const __m256i *)(const void *)
		    (kp + 16 * i));
		mi = _mm256_xor_si256(mi, _mm256_clmulepi64_epi128(x, h, 0x00));
	}
	mi = _mm256_xor_si256(mi, _mm256_xor_si256(lo, hi));
	lo1 = _mm_xor_si128(_mm256_castsi256_si128(lo),
	    _mm256_extracti128_si256(lo, 1));
	mi1 = _mm_xor_si128(_mm256_castsi256_si128(mi),
	    _mm256_extracti128_si256(mi, 1));
	hi1 = _mm_xor_si128(_mm256_castsi256_si128(hi),
	    _mm256_extracti128_si256(hi, 1));
	if (i < nb) {			/* an odd last block */
		__m128i x1 = _mm_shuffle_epi8(_mm_loadu_si128(
		    (const __m128i *)(const void *)(p + 16 * i)),
		    bswap_mask128());
		__m128i h1 = _mm_loadu_si128((const __m128i *)(const void *)
		    (hp + 16 * i));

		if (i == 0)
			x1 = _mm_xor_si128(x1, acc);
		lo1 = _mm_xor_si128(lo1, _mm_clmulepi64_si128(x1, h1, 0x00));
		mi1 = _mm_xor_si128(mi1, _mm_xor_si128(
		    _mm_clmulepi64_si128(x1, h1, 0x01),
		    _mm_clmulepi64_si128(x1, h1, 0x10)));
		hi1 = _mm_xor_si128(hi1, _mm_clmulepi64_si128(x1, h1, 0x11));
	}
	return (gf_reduce(lo1, mi1, hi1));
}

/* acc folded with len bytes at p, the last block zero-padded. */
static TGT __m128i
gh_bytes(const struct ktls_gcm_key *k, __m128i acc, const uint8_t *p,
    size_t len)
{
	uint8_t last[16];

	for (; len >= CHUNK; p += CHUNK, len -= CHUNK)
		acc = gh_chunk(k, acc, p, 16);
	if (len >= 16) {
		acc = gh_chunk(k, acc, p, len / 16);
		p += len & ~(size_t)15;
		len &= 15;
	}
	if (len != 0) {
		memset(last, 0, sizeof(last));
		memcpy(last, p, len);
		acc = gh_chunk(k, acc, last, 1);
	}
	return (acc);
}

/* --------------------------------------------------------------- AES */

/*
 * n (1..8) registers of keystream, two counter blocks each, from *ctr
 * (byte-reflected counter blocks, the 32-bit counter in dword 0 of each
 * lane), which advances by 2n blocks.
 */
static inline TGT void
aes_ctr(const struct ktls_gcm_key *k, __m256i *ctr, __m256i ks[8], size_t n)
{
	const __m256i bs = bswap_mask256();
	const __m256i two = _mm256_set_epi32(0, 0, 0, 2, 0, 0, 0, 2);
	const __m256i k0 = rk256(k, 0);
	const unsigned int nr = k->rounds;
	__m256i rk;

	_Pragma("GCC unroll 8")
	for (size_t j = 0; j < n; j++) {
		ks[j] = _mm256_xor_si256(_mm256_shuffle_epi8(*ctr, bs), k0);
		*ctr = _mm256_add_epi32(*ctr, two);
	}
	for (unsigned int r = 1; r < nr; r++) {
		rk = rk256(k, r);
		_Pragma("GCC unroll 8")
		for (size_t j = 0; j < n; j++)
			ks[j] = _mm256_aesenc_epi128(ks[j], rk);
	}
	rk = rk256(k, nr);
	_Pragma("GCC unroll 8")
	for (size_t j = 0; j < n; j++)
		ks[j] = _mm256_aesenclast_epi128(ks[j], rk);
}

static inline TGT __m128i
aes_block(const struct ktls_gcm_key *k, __m128i x)
{
	x = _mm_xor_si128(x, rk128(k, 0));
	for (unsigned int r = 1; r < k->rounds; r++)
		x = _mm_aesenc_si128(x, rk128(k, r));
	return (_mm_aesenclast_si128(x, rk128(k, k->rounds)));
}

#define EXPAND128(i, rcon) do {						\
	__m128i t_ = _mm_shuffle_epi32(					\
	    _mm_aeskeygenassist_si128(r[(i) - 1], (rcon)), 0xff);	\
	r[i] = expand_step(r[(i) - 1], t_);				\
} while (0)
/* Round key i (even) of AES-256, from the two before it. */
#define EXPAND256A(i, rcon) do {					\
	__m128i t_ = _mm_shuffle_epi32(					\
	    _mm_aeskeygenassist_si128(r[(i) - 1], (rcon)), 0xff);	\
	r[i] = expand_step(r[(i) - 2], t_);				\
} while (0)
/* Round key i (odd): SubWord without RotWord or rcon. */
#define EXPAND256B(i) do {						\
	__m128i t_ = _mm_shuffle_epi32(					\
	    _mm_aeskeygenassist_si128(r[(i) - 1], 0), 0xaa);		\
	r[i] = expand_step(r[(i) - 2], t_);				\
} while (0)
#define EXPAND256(i, rcon) do {						\
	EXPAND256A(i, rcon);						\
	EXPAND256B((i) + 1);						\
} while (0)

/* FIPS 197 key expansion: w ^= w << 32 three times, then the g() word. */
static inline TGT __m128i
expand_step(__m128i w, __m128i g)
{
	w = _mm_xor_si128(w, _mm_slli_si128(w, 4));
	w = _mm_xor_si128(w, _mm_slli_si128(w, 4));
	w = _mm_xor_si128(w, _mm_slli_si128(w, 4));
	return (_mm_xor_si128(w, g));
}

TGT void
ktls_gcm_vaes_setkey(struct ktls_gcm_key *k, const uint8_t *key,
    size_t key_len)
{
	__m128i r[15], h;
	uint64_t lo, hi, carry;

	r[0] = _mm_loadu_si128((const __m128i *)(const void *)key);
	if (key_len == 16) {
		k->rounds = 10;
		EXPAND128(1, 0x01); EXPAND128(2, 0x02); EXPAND128(3, 0x04);
		EXPAND128(4, 0x08); EXPAND128(5, 0x10); EXPAND128(6, 0x20);
		EXPAND128(7, 0x40); EXPAND128(8, 0x80); EXPAND128(9, 0x1b);
		EXPAND128(10, 0x36);
	} else {
		k->rounds = 14;
		r[1] = _mm_loadu_si128((const __m128i *)(const void *)
		    (key + 16));
		EXPAND256(2, 0x01); EXPAND256(4, 0x02); EXPAND256(6, 0x04);
		EXPAND256(8, 0x08); EXPAND256(10, 0x10); EXPAND256(12, 0x20);
		EXPAND256A(14, 0x40);
	}
	for (unsigned int i = 0; i <= k->rounds; i++)
		_mm256_storeu_si256((__m256i *)(void *)k->rk[i],
		    _mm256_broadcastsi128_si256(r[i]));

	/* H = E(K, 0^128), byte-reflected, times x. */
	h = _mm_shuffle_epi8(aes_block(k, _mm_setzero_si128()),
	    bswap_mask128());
	lo = (uint64_t)_mm_cvtsi128_si64(h);
	hi = (uint64_t)_mm_extract_epi64(h, 1);
	carry = hi >> 63;
	hi = hi << 1 | lo >> 63;
	lo <<= 1;
	hi ^= carry * 0xc200000000000000ULL;
	lo ^= carry;
	h = _mm_set_epi64x((long long)hi, (long long)lo);
	/* hpow[16 - i] = H^i. */
	_mm_storeu_si128((__m128i *)(void *)k->hpow[15], h);
	for (int i = 14; i >= 0; i--)
		_mm_storeu_si128((__m128i *)(void *)k->hpow[i], gf_mul(
		    _mm_loadu_si128((const __m128i *)(const void *)
		    k->hpow[i + 1]), h));
	for (int i = 0; i < 16; i++) {
		__m128i p = _mm_loadu_si128((const __m128i *)(const void *)
		    k->hpow[i]);

		_mm_storeu_si128((__m128i *)(void *)k->hkar[i],
		    _mm_xor_si128(p, _mm_shuffle_epi32(p, 0x4e)));
	}
	explicit_bzero(r, sizeof(r));
	h = _mm_setzero_si128();
	lo = hi = 0;
}

/* --------------------------------------------------------------- GCM */

struct gcm_call {
	__m128i		acc;		/* running GHASH, reflected */
	__m256i		ctr;		/* the next two counter blocks */
	uint8_t		j0[16];		/* IV || 1 */
};

static inline TGT void
gcm_start(const struct ktls_gcm_key *k, struct gcm_call *g,
    const uint8_t iv[12], const uint8_t *aad, size_t aadlen)
{
	__m128i j0;

	memcpy(g->j0, iv, 12);
	g->j0[12] = g->j0[13] = g->j0[14] = 0;
	g->j0[15] = 1;
	j0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)
	    g->j0), bswap_mask128());
	/* Data starts at counter 2: lanes J0 + 1, J0 + 2. */
	g->ctr = _mm256_add_epi32(_mm256_broadcastsi128_si256(j0),
	    _mm256_set_epi32(0, 0, 0, 2, 0, 0, 0, 1));
	g->acc = gh_bytes(k, _mm_setzero_si128(), aad, aadlen);
}

/* The tag: GHASH of the lengths block, byte-reflected, ^ E(K, J0). */
static inline TGT __m128i
gcm_tag(const struct ktls_gcm_key *k, struct gcm_call *g, size_t aadlen,
    size_t len)
{
	__m128i lens = _mm_set_epi64x((long long)((uint64_t)aadlen * 8),
	    (long long)((uint64_t)len * 8));
	__m128i h1 = _mm_loadu_si128((const __m128i *)(const void *)
	    k->hpow[15]);
	__m128i s = gf_mul(_mm_xor_si128(g->acc, lens), h1);

	return (_mm_xor_si128(_mm_shuffle_epi8(s, bswap_mask128()),
	    aes_block(k, _mm_loadu_si128((const __m128i *)(const void *)
	    g->j0))));
}

/* buf[0..32 * ceil(nb / 2)) ^= keystream of the next nb blocks. */
static inline TGT void
ctr_buf(const struct ktls_gcm_key *k, struct gcm_call *g, uint8_t *buf,
    size_t nb)
{
	__m256i ks[8];
	size_t ny = (nb + 1) / 2;

	aes_ctr(k, &g->ctr, ks, ny);
	for (size_t j = 0; j < ny; j++) {
		__m256i *q = (__m256i *)(void *)(buf + 32 * j);

		_mm256_storeu_si256(q, _mm256_xor_si256(ks[j],
		    _mm256_loadu_si256(q)));
	}
}

/* dst[0..256) = src[0..256) ^ the next 16 blocks of keystream. */
static inline TGT void
ctr_chunk(const struct ktls_gcm_key *k, struct gcm_call *g,
    const uint8_t *src, uint8_t *dst)
{
	__m256i ks[8];

	aes_ctr(k, &g->ctr, ks, 8);
	_Pragma("GCC unroll 8")
	for (size_t j = 0; j < 8; j++)
		_mm256_storeu_si256((__m256i *)(void *)(dst + 32 * j),
		    _mm256_xor_si256(ks[j], _mm256_loadu_si256(
		    (const __m256i *)(const void *)(src + 32 * j))));
}

TGT void
ktls_gcm_vaes_seal(const struct ktls_gcm_key *k, const uint8_t iv[12],
    const uint8_t *aad, size_t aadlen, const uint8_t *src, size_t len,
    const uint8_t *tail, uint8_t *dst, uint8_t tag[16])
{
	struct gcm_call g;
	size_t total = len + (tail != NULL), rem, nb;
	uint8_t buf[CHUNK] __attribute__((aligned(32)));

	gcm_start(k, &g, iv, aad, aadlen);
	/*
	 * A round hashes the ciphertext it has just written (hashing the
	 * round before's instead, to overlap the two, measured 2% slower).
	 */
	for (; len >= CHUNK; src += CHUNK, dst += CHUNK, len -= CHUNK) {
		ctr_chunk(k, &g, src, dst);
		g.acc = gh_chunk(k, g.acc, dst, 16);
	}
	/* The rest, with the tail byte: at most 256 bytes. */
	if ((rem = len + (tail != NULL)) != 0) {
		nb = (rem + 15) / 16;
		memcpy(buf, src, len);
		if (tail != NULL)
			buf[len] = *tail;
		ctr_buf(k, &g, buf, nb);
		memset(buf + rem, 0, 16 * nb - rem);	/* GHASH pads with 0 */
		g.acc = gh_chunk(k, g.acc, buf, nb);
		memcpy(dst, buf, rem);
		explicit_bzero(buf, sizeof(buf));
	}
	_mm_storeu_si128((__m128i *)(void *)tag, gcm_tag(k, &g, aadlen,
	    total));
	explicit_bzero(&g, sizeof(g));
}

TGT int
ktls_gcm_vaes_open(const struct ktls_gcm_key *k, const uint8_t iv[12],
    const uint8_t *aad, size_t aadlen, const uint8_t *src, size_t len,
    uint8_t *dst, const uint8_t tag[16])
{
	struct gcm_call g;
	size_t nb, done = 0;
	uint8_t buf[CHUNK] __attribute__((aligned(32))), want[16];
	unsigned int diff = 0;

	gcm_start(k, &g, iv, aad, aadlen);
	for (; len - done >= CHUNK; done += CHUNK) {
		/* Hashed before it is overwritten (in place). */
		g.acc = gh_chunk(k, g.acc, src + done, 16);
		ctr_chunk(k, &g, src + done, dst + done);
	}
	if (done < len) {
		size_t rem = len - done;

		nb = (rem + 15) / 16;
		memset(buf, 0, 16 * nb);
		memcpy(buf, src + done, rem);
		g.acc = gh_chunk(k, g.acc, buf, nb);
		ctr_buf(k, &g, buf, nb);
		memcpy(dst + done, buf, rem);
		explicit_bzero(buf, sizeof(buf));
	}
	_mm_storeu_si128((__m128i *)(void *)want, gcm_tag(k, &g, aadlen,
	    len));
	explicit_bzero(&g, sizeof(g));
	for (size_t i = 0; i < 16; i++)
		diff |= (unsigned int)(want[i] ^ tag[i]);
	explicit_bzero(want, sizeof(want));
	if (diff != 0) {
		explicit_bzero(dst, len);
		return (-EBADMSG);
	}
	return (0);
}
