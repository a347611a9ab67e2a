/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Every bad struct tls_enable is refused with EINVAL (EFAULT for a NULL
 * optval) and leaves the socket exactly as it was: not enabled, no session
 * counted, bytes written on it go out plain.  (Common parts:
 * enable_common.h.)
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "enable_common.h"

enum mut {
	M_KEYLEN, M_IVLEN, M_CIPHER, M_AUTH, M_AUTHLEN, M_AUTHKEY,
	M_NOAUTHKEY, M_VMAJOR, M_VMINOR, M_FLAGS, M_NOKEY, M_NOIV, M_OPTLEN,
};

static const struct bad {
	const char	*why;
	const char	*suite;		/* a good suite, changed in one field */
	enum mut	m;
	int		v;
} bads[] = {
	/* Key length for the cipher. */
	{ "AES-GCM key of 24 bytes", GCM12, M_KEYLEN, 24 },
	{ "AES-GCM key of 24 bytes", GCM13, M_KEYLEN, 24 },
	{ "AES-GCM key of 0 bytes", GCM12B, M_KEYLEN, 0 },
	{ "AES-GCM key of -16 bytes", GCM12, M_KEYLEN, -16 },
	{ "ChaCha20 key of 16 bytes", CHACHA12, M_KEYLEN, 16 },
	{ "ChaCha20 key of 16 bytes", CHACHA13, M_KEYLEN, 16 },
	{ "AES-CBC key of 20 bytes", CBC12, M_KEYLEN, 20 },
	{ "AES-CBC key of 24 bytes", CBC10, M_KEYLEN, 24 },
	/* iv_len for the suite kind. */
	{ "TLS 1.2 AES-GCM iv_len 8", GCM12, M_IVLEN, 8 },
	{ "TLS 1.2 AES-GCM iv_len 0", GCM12B, M_IVLEN, 0 },
	{ "TLS 1.2 AES-GCM iv_len 8", GCM12, M_IVLEN, 8 },
	{ "TLS 1.3 AES-GCM iv_len 4", GCM13, M_IVLEN, 4 },
	{ "TLS 1.3 AES-GCM iv_len 16", GCM13B, M_IVLEN, 16 },
	{ "TLS 1.2 ChaCha20 iv_len 4", CHACHA12, M_IVLEN, 4 },
	{ "TLS 1.3 ChaCha20 iv_len 16", CHACHA13, M_IVLEN, 16 },
	{ "AES-CBC iv_len 12", CBC12_256, M_IVLEN, 12 },
	{ "AES-CBC iv_len 0", CBC10, M_IVLEN, 0 },
	{ "AES-CBC iv_len 4", CBC11, M_IVLEN, 4 },
	/* Unknown algorithms. */
	{ "cipher_algorithm 0", GCM12, M_CIPHER, 0 },
	{ "cipher_algorithm 999", GCM13, M_CIPHER, 999 },
	{ "cipher_algorithm CRYPTO_SHA1_HMAC", CBC12, M_CIPHER,
	    CRYPTO_SHA1_HMAC },
	{ "CBC auth_algorithm 999", CBC12, M_AUTH, 999 },
	{ "CBC auth_algorithm CRYPTO_AES_CBC", CBC12_256, M_AUTH,
	    CRYPTO_AES_CBC },
	{ "CBC auth_algorithm 0", CBC10, M_AUTH, 0 },
	/* Version and cipher that do not go together. */
	{ "AES-GCM with TLS 1.0", GCM12, M_VMINOR, TLS_MINOR_VER_ZERO },
	{ "AES-GCM with TLS 1.1", GCM12B, M_VMINOR, TLS_MINOR_VER_ONE },
	{ "ChaCha20 with TLS 1.1", CHACHA12, M_VMINOR, TLS_MINOR_VER_ONE },
	{ "ChaCha20 with TLS 1.0", CHACHA12, M_VMINOR, TLS_MINOR_VER_ZERO },
	{ "AES-CBC with TLS 1.3", CBC12, M_VMINOR, TLS_MINOR_VER_THREE },
	{ "AES-CBC-SHA256 with TLS 1.0", CBC12_256, M_VMINOR,
	    TLS_MINOR_VER_ZERO },
	{ "AES-CBC-SHA256 with TLS 1.1", CBC12_256, M_VMINOR,
	    TLS_MINOR_VER_ONE },
	{ "AES-CBC-SHA384 with TLS 1.0", CBC12_384, M_VMINOR,
	    TLS_MINOR_VER_ZERO },
	{ "AES-CBC-SHA384 with TLS 1.1", CBC12_384, M_VMINOR,
	    TLS_MINOR_VER_ONE },
	/* Versions that are not TLS 1.0 to 1.3. */
	{ "tls_vmajor 2", GCM12, M_VMAJOR, 2 },
	{ "tls_vmajor 4", GCM13, M_VMAJOR, 4 },
	{ "tls_vmajor 0", CBC10, M_VMAJOR, 0 },
	{ "tls_vminor 0 (SSL 3.0)", CBC10, M_VMINOR, 0 },
	{ "tls_vminor 5", GCM13, M_VMINOR, 5 },
	{ "tls_vminor 5", CHACHA13, M_VMINOR, 5 },
	/* flags is reserved. */
	{ "flags 1", GCM12, M_FLAGS, 1 },
	{ "flags INT_MIN", CBC12, M_FLAGS, INT_MIN },
	/* An AEAD suite has no MAC key. */
	{ "AES-GCM with auth_algorithm SHA256", GCM12, M_AUTH,
	    CRYPTO_SHA2_256_HMAC },
	{ "AES-GCM with auth_key_len 32", GCM13, M_AUTHLEN, 32 },
	{ "AES-GCM with auth_key non-NULL", GCM12, M_AUTHKEY, 0 },
	{ "ChaCha20 with auth_algorithm SHA1", CHACHA13, M_AUTH,
	    CRYPTO_SHA1_HMAC },
	{ "ChaCha20 with auth_key_len 20", CHACHA12, M_AUTHLEN, 20 },
	{ "ChaCha20 with auth_key non-NULL", CHACHA13, M_AUTHKEY, 0 },
	/* A CBC suite needs its MAC key, of the MAC's length. */
	{ "AES-CBC with auth_key NULL", CBC12, M_NOAUTHKEY, 0 },
	{ "AES-CBC with auth_key NULL", CBC10, M_NOAUTHKEY, 0 },
	{ "AES-CBC-SHA1 auth_key_len 0", CBC11, M_AUTHLEN, 0 },
	{ "AES-CBC-SHA1 auth_key_len 32", CBC12, M_AUTHLEN, 32 },
	{ "AES-CBC-SHA256 auth_key_len 20", CBC12_256, M_AUTHLEN, 20 },
	{ "AES-CBC-SHA256 auth_key_len 48", CBC12_256, M_AUTHLEN, 48 },
	{ "AES-CBC-SHA384 auth_key_len 32", CBC12_384, M_AUTHLEN, 32 },
	/* Missing key material. */
	{ "cipher_key NULL", GCM12, M_NOKEY, 0 },
	{ "cipher_key NULL", CBC12_384, M_NOKEY, 0 },
	{ "iv NULL", GCM13, M_NOIV, 0 },
	{ "iv NULL", CBC10, M_NOIV, 0 },
	/* optlen not the size of the struct. */
	{ "optlen sizeof - 1", GCM12, M_OPTLEN, -1 },
	{ "optlen sizeof + 1", GCM12, M_OPTLEN, 1 },
	{ "optlen 0", CHACHA13, M_OPTLEN, -(int)sizeof(struct tls_enable) },
};

/* Both ends, big enough for an optlen of sizeof + 1 to read in bounds. */
struct en_buf {
	struct tls_enable	en;
	uint8_t			pad[8];
};

static void
apply(struct fx_keys *k, const struct bad *b, socklen_t *len)
{
	struct tls_enable *en = &k->en;

	*len = sizeof(*en);
	switch (b->m) {
	case M_KEYLEN:
		en->cipher_key_len = b->v;
		break;
	case M_IVLEN:
		en->iv_len = b->v;
		break;
	case M_CIPHER:
		en->cipher_algorithm = b->v;
		break;
	case M_AUTH:
		en->auth_algorithm = b->v;
		break;
	case M_AUTHLEN:
		en->auth_key_len = b->v;
		break;
	case M_AUTHKEY:
		en->auth_key = k->auth;
		break;
	case M_NOAUTHKEY:
		en->auth_key = NULL;
		break;
	case M_VMAJOR:
		en->tls_vmajor = (uint8_t)b->v;
		break;
	case M_VMINOR:
		en->tls_vminor = (uint8_t)b->v;
		break;
	case M_FLAGS:
		en->flags = b->v;
		break;
	case M_NOKEY:
		en->cipher_key = NULL;
		break;
	case M_NOIV:
		en->iv = NULL;
		break;
	case M_OPTLEN:
		*len = (socklen_t)((int)sizeof(*en) + b->v);
		break;
	}
}

/*
 * One bad field: EINVAL, nothing changed; then the same struct with that
 * field put back is accepted on the same socket, so it was that field the
 * engine refused (and a refusal does not poison the socket).
 */
static void
bad_one(const struct bad *b, int family, uint32_t seed)
{
	struct fx_keys k;
	struct en_buf eb;
	socklen_t len;
	uint64_t active0, offload0;
	int fds[2], e;

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
	fx_keys_init(&k, suite(b->suite), 1);
	memset(&eb, 0, sizeof(eb));
	apply(&k, b, &len);
	eb.en = k.en;
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	e = enable_err(fds[0], &eb, len);
	if (e != EINVAL)
		tap_diag("enable gave %d (%s), want EINVAL", e,
		    e > 0 ? strerror(e) : "?");
	CHECK(e == EINVAL);
	check_untouched(fds, active0, offload0, seed);

	fx_keys_init(&k, suite(b->suite), 1);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(fx_sysctl_u64(ACTIVE) == active0 + 1);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

/* Every row of bads[], on IPv4 and IPv6 in turn. */
static void
case_bads(void)
{
	for (size_t i = 0; i < NELEM(bads); i++) {
		bad_one(&bads[i], families[i % 2], (uint32_t)(1000 + i));
		tap_result("EINVAL: %s (%s, %s); socket untouched, then the "
		    "right value works", bads[i].why, bads[i].suite,
		    families_name[i % 2]);
	}
}

/* optval NULL: EFAULT, as the kernel's copyin, and nothing changed. */
FAMILY_CASE(case_efault, family,
    "%s: optval NULL gives EFAULT; socket untouched")
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], NULL, sizeof(struct tls_enable)) == EFAULT);
	check_untouched(fds, active0, offload0, 81);
	fx_keys_init(&k, suite(GCM12), 0);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

int
main(void)
{
	enable_begin(true);
	case_bads();
	for (size_t f = 0; f < NELEM(families); f++)
		case_efault(families[f]);
	return (tap_done());
}
