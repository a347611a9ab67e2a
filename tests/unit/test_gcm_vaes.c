/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * src/crypto/gcm_vaes.c against OpenSSL's EVP AES-GCM, which ktls did not
 * write: the NIST known-answer vectors, then random keys (128 and 256),
 * IVs and AAD (0..80 bytes) for every length 0..64 KiB + 1, in place and
 * out of place, at unaligned addresses, with and without a TLS 1.3 tail
 * byte.  Each length's ciphertext and tag must equal OpenSSL's; opening
 * must give the plaintext back, OpenSSL's ciphertext must open, and a
 * flipped bit in ciphertext, AAD or tag must fail with everything of the
 * output zeroed.  Bytes next to the output are checked untouched.
 *
 * Inputs are random; KTLS_TEST_SEED=N repeats a run.  On a CPU without
 * AVX2, VAES and VPCLMULQDQ every case is skipped (and says so).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "gcm_vaes.h"
#include "rng.h"
#include "tap.h"

#define MAXLEN	(65536 + 1)
#define PAD	64		/* guard bytes each side of an output */


/* OpenSSL's seal of pt[0..n) (tail already appended by the caller). */
static int
ossl_seal(const uint8_t *key, size_t klen, const uint8_t iv[12],
    const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t n,
    uint8_t *ct, uint8_t tag[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l, ok;

	ok = c != NULL && EVP_EncryptInit_ex(c, klen == 16 ?
	    EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
	    (aadlen == 0 || EVP_EncryptUpdate(c, NULL, &l, aad,
	    (int)aadlen) == 1) &&
	    (n == 0 || EVP_EncryptUpdate(c, ct, &l, pt, (int)n) == 1) &&
	    EVP_EncryptFinal_ex(c, ct + n, &l) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return (ok ? 0 : -1);
}

static int
unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return (-1);
		out[i] = (uint8_t)v;
	}
	return ((int)n);
}

/*
 * The GCM specification's test cases 13-16 (AES-256, 96-bit IV) and 2-4
 * (AES-128), from McGrew and Viega, "The Galois/Counter Mode of
 * Operation", appendix B.
 */
static const struct kat {
	const char *key, *iv, *pt, *aad, *ct, *tag;
} kats[] = {
	{ "00000000000000000000000000000000", "000000000000000000000000",
	  "00000000000000000000000000000000", "",
	  "0388dace60b6a392f328c2b971b2fe78",
	  "ab6e47d42cec13bdf53a67b21257bddf" },
	{ "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
	  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	  "",
	  "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	  "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
	  "4d5c2af327cd64a62cf35abd2ba6fab4" },
	{ "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
	  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	  "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	  "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	  "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
	  "5bc94fbc3221a5db94fae95ae7121a47" },
	{ "00000000000000000000000000000000"
	  "00000000000000000000000000000000", "000000000000000000000000",
	  "", "", "", "530f8afbc74536b9a963b4f1c4cb738b" },
	{ "feffe9928665731c6d6a8f9467308308"
	  "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
	  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	  "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	  "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	  "76fc6ece0f4e1768cddf8853bb2d551b" },
};

static void
test_kats(void)
{
	for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
		const struct kat *v = &kats[i];
		uint8_t key[32], iv[12], pt[64], aad[20], ct[64], tag[16],
		    out[64], otag[16];
		int kl = unhex(v->key, key), pl = unhex(v->pt, pt),
		    al = unhex(v->aad, aad);
		struct ktls_gcm_key *k = malloc(sizeof(*k));

		unhex(v->iv, iv);
		unhex(v->ct, ct);
		unhex(v->tag, tag);
		ktls_gcm_vaes_setkey(k, key, (size_t)kl);
		ktls_gcm_vaes_seal(k, iv, aad, (size_t)al, pt, (size_t)pl,
		    NULL, out, otag);
		CHECK(memcmp(out, ct, (size_t)pl) == 0);
		CHECK(memcmp(otag, tag, 16) == 0);
		CHECK(ktls_gcm_vaes_open(k, iv, aad, (size_t)al, ct,
		    (size_t)pl, out, tag) == 0);
		CHECK(memcmp(out, pt, (size_t)pl) == 0);
		tap_result("known answer %zu (AES-%d, %d bytes, %d of AAD)",
		    i + 1, kl * 8, pl, al);
		free(k);
	}
}

struct bufs {
	uint8_t *pt, *ref, *a, *b;	/* each MAXLEN + 1 + 2 PAD + 64 */
};

static int
guard_ok(const uint8_t *p, size_t off, size_t n)
{
	for (size_t i = 0; i < PAD; i++)
		if (p[off - 1 - i] != 0xa5 || p[off + n + i] != 0xa5)
			return (0);
	return (1);
}

/*
 * One length: key size, placement, tail and AAD chosen from the length
 * and the random stream.  0 when everything matched.
 */
static int
one_len(struct bufs *B, size_t len, int variant, struct ktls_gcm_key *k)
{
	uint8_t key[32], iv[12], aad[80], tag[16], rtag[16];
	size_t klen = (variant & 1) ? 32 : 16;
	int inplace = (variant >> 1) & 1, with_tail = (variant >> 2) & 1;
	size_t aadlen = (variant & 8) ? 13 : (size_t)(rng() % 81);
	size_t off = PAD + (size_t)(rng() % 32);	/* unaligned output */
	size_t n = len + (size_t)with_tail, bad = 0;
	uint8_t type = (uint8_t)rng(), *pt = B->pt + PAD + 3;
	uint8_t *out = B->a + off;

	rng_fill(key, sizeof(key));
	rng_fill(iv, sizeof(iv));
	rng_fill(aad, aadlen);
	rng_fill(pt, len);
	pt[len] = type;			/* OpenSSL's plaintext: pt || tail */
	if (ossl_seal(key, klen, iv, aad, aadlen, pt, n, B->ref, rtag) != 0)
		return (-1);
	ktls_gcm_vaes_setkey(k, key, klen);

	memset(B->a, 0xa5, MAXLEN + 1 + 2 * PAD + 64);
	if (inplace)
		memcpy(out, pt, len);
	ktls_gcm_vaes_seal(k, iv, aad, aadlen, inplace ? out : pt, len,
	    with_tail ? &type : NULL, out, tag);
	bad |= memcmp(out, B->ref, n) != 0;
	bad |= memcmp(tag, rtag, 16) != 0;
	bad |= !guard_ok(B->a, off, n);

	/* Open ours in place, and OpenSSL's out of place. */
	bad |= ktls_gcm_vaes_open(k, iv, aad, aadlen, out, n, out, tag) != 0;
	bad |= memcmp(out, pt, n) != 0 || !guard_ok(B->a, off, n);
	memset(B->b, 0xa5, MAXLEN + 1 + 2 * PAD + 64);
	bad |= ktls_gcm_vaes_open(k, iv, aad, aadlen, B->ref, n,
	    B->b + off, rtag) != 0;
	bad |= memcmp(B->b + off, pt, n) != 0 || !guard_ok(B->b, off, n);

	/* A flipped bit anywhere: refused, and the output zeroed. */
	if (len % 7 == 0 || len < 300) {
		uint8_t t2[16];
		size_t where = (size_t)(rng() % (n + aadlen + 16));

		memcpy(t2, rtag, 16);
		if (where < n)
			B->ref[where] ^= 1;
		else if (where < n + aadlen)
			aad[where - n] ^= 0x80;
		else
			t2[where - n - aadlen] ^= 2;
		bad |= ktls_gcm_vaes_open(k, iv, aad, aadlen, B->ref, n,
		    B->b + off, t2) != -EBADMSG;
		for (size_t i = 0; i < n; i++)
			bad |= B->b[off + i] != 0;
		bad |= !guard_ok(B->b, off, n);
	}
	return (bad ? 1 : 0);
}

int
main(void)
{
	struct ktls_gcm_key *k;
	struct bufs B;
	size_t sz = MAXLEN + 1 + 2 * PAD + 64;
	unsigned int fails[16] = { 0 }, firstbad = 0;
	int variants = 16;

	rng_seed();
	if (!ktls_gcm_vaes_usable()) {
		tap_skip("this CPU lacks AVX2, VAES or VPCLMULQDQ",
		    "gcm_vaes: known answers and OpenSSL differential");
		return (tap_done());
	}
	test_kats();

	k = malloc(sizeof(*k));
	B.pt = malloc(sz);
	B.ref = malloc(sz);
	B.a = malloc(sz);
	B.b = malloc(sz);
	if (k == NULL || !B.pt || !B.ref || !B.a || !B.b)
		return (1);
	/*
	 * Every length 0..64 KiB + 1, variants in rotation; up to 1100 bytes
	 * (the tail handling, a few loop rounds) every variant.
	 */
	for (size_t len = 0; len <= MAXLEN; len++) {
		int from = len <= 1100 ? 0 :
		    (int)((len + len / 16) % (size_t)variants);
		int to = len <= 1100 ? variants : from + 1;

		for (int v = from; v < to; v++) {
			int r = one_len(&B, len, v, k);

			if (r != 0 && fails[v]++ == 0) {
				tap_diag("variant %d (AES-%d, %s, %s tail, "
				    "%s AAD) first fails at length %zu", v,
				    v & 1 ? 256 : 128,
				    v & 2 ? "in place" : "out of place",
				    v & 4 ? "with" : "no",
				    v & 8 ? "13-byte" : "random", len);
				if (firstbad == 0)
					firstbad = 1;
			}
		}
	}
	for (int v = 0; v < variants; v++) {
		CHECK(fails[v] == 0);
		tap_result("AES-%d %s, %s tail, %s AAD: every length equals "
		    "OpenSSL, opens, refuses a flipped bit (%u bad)",
		    v & 1 ? 256 : 128, v & 2 ? "in place" : "out of place",
		    v & 4 ? "with" : "no", v & 8 ? "13-byte" : "random", fails[v]);
	}
	explicit_bzero(k, sizeof(*k));
	free(k);
	free(B.pt);
	free(B.ref);
	free(B.a);
	free(B.b);
	return (tap_done());
}
