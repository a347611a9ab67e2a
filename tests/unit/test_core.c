/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Core pieces on their own: the suite table's sizes, key memory (locked,
 * out of core dumps, gone after free), and per-thread counters summed on
 * read, including threads that have exited.
 */
#include <stdio.h>
#include <string.h>

#include "ktls.h"
#include "ktls_int.h"
#include "tap.h"

static void
test_suite_sizes(void)
{
	const struct ktls_suite *s;
	int n = 0;

	for (unsigned int i = 0; (s = ktls_suite_get(i)) != NULL; i++, n++) {
		CHECK(ktls_suite_lookup(s->vminor, s->cipher_alg, s->key_len,
		    s->auth_alg) == s);
		CHECK(s->prefix_len == KTLS_HDR_LEN + s->explicit_iv_len);
		for (size_t len = 0; len <= 16384; len += (len < 64 ? 1 : 997)) {
			size_t t = ktls_suite_trailer_len(s, len);

			CHECK(t <= KTLS_MAX_TRAILER);
			if (s->kind == KTLS_CBC) {
				/* RFC 5246 6.2.3.2: minimal padding to the block. */
				CHECK((len + t) % 16 == 0);
				CHECK(t - s->mac_len - 1 < 16);
			} else {
				CHECK(t == s->tag_len +
				    (ktls_suite_is_tls13(s) ? 1u : 0u));
			}
			CHECK(ktls_suite_record_len(s, len) ==
			    s->prefix_len + len + t);
		}
	}
	CHECK(n == 16);
	/* Mismatches the table must refuse. */
	CHECK(ktls_suite_lookup(TLS_MINOR_VER_ONE, CRYPTO_AES_NIST_GCM_16, 16,
	    0) == NULL);
	CHECK(ktls_suite_lookup(TLS_MINOR_VER_THREE, CRYPTO_AES_CBC, 16,
	    CRYPTO_SHA1_HMAC) == NULL);
	CHECK(ktls_suite_lookup(TLS_MINOR_VER_ZERO, CRYPTO_AES_CBC, 16,
	    CRYPTO_SHA2_256_HMAC) == NULL);
	CHECK(ktls_suite_lookup(TLS_MINOR_VER_TWO, CRYPTO_AES_NIST_GCM_16, 24,
	    0) == NULL);
	tap_result("suite table: 16 suites, CBC padding minimal and aligned, "
	    "mismatches refused");
}

/* The VmFlags of the mapping that holds p, from /proc/self/smaps. */
static int
vmflags(const void *p, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	unsigned long lo, hi, a = (unsigned long)p;
	int in = 0, found = 0;

	if (f == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = a >= lo && a < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, outlen, "%s", line + 8);
			found = 1;
			break;
		}
	}
	fclose(f);
	return (found ? 0 : -1);
}

static bool
has_flag(const char *flags, const char *f)
{
	char pad[8];

	snprintf(pad, sizeof(pad), " %s", f);
	return (strstr(flags, pad) != NULL);
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0)
			return (false);
	return (true);
}

static void
test_keymem(void)
{
	char flags[512];
	uint8_t *k = ktls_keymem_alloc(100), *k2, *big;

	REQUIRE(k != NULL, );
	memset(k, 0xa5, 100);
	CHECK(vmflags(k, flags, sizeof(flags)) == 0);
	CHECK(has_flag(flags, "dd"));	/* MADV_DONTDUMP */
	CHECK(has_flag(flags, "wf"));	/* MADV_WIPEONFORK */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* (The sanitizers make mlock() a no-op.) */
	CHECK(has_flag(flags, "lo"));	/* mlock()ed */
#endif
	/* Small pieces share slab pages: wiped at free, then reused. */
	ktls_keymem_free(k, 100);
	CHECK(all_zero(k + sizeof(void *), 128 - sizeof(void *)));	/* but the free-list link */
	k2 = ktls_keymem_alloc(100);
	CHECK(k2 == k);
	CHECK(((uintptr_t)k2 & 63) == 0);	/* aligned for AVX-512 */
	ktls_keymem_free(k2, 100);
	/* A large piece has pages of its own, gone after free. */
	big = ktls_keymem_alloc(10000);
	REQUIRE(big != NULL, );
	memset(big, 0x5a, 10000);
	CHECK(vmflags(big, flags, sizeof(flags)) == 0 && has_flag(flags, "dd"));
	ktls_keymem_free(big, 10000);
	CHECK(vmflags(big, flags, sizeof(flags)) != 0);	/* unmapped */
	tap_result("key memory: not dumped, locked, wiped on fork, wiped at "
	    "free, slab pieces aligned");
}

static void *
count_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		ktls_counter_add(KC_FAILED_CRYPTO, 1);
	return (NULL);
}

static void
test_counters(void)
{
	pthread_t t[4];
	uint64_t before = ktls_counter_read(KC_FAILED_CRYPTO), v;
	size_t len = sizeof(v);

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, count_thread, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	/* The threads are gone: their slots were folded, not lost. */
	CHECK(ktls_counter_read(KC_FAILED_CRYPTO) == before + 4000);
	CHECK(ktls_sysctl_get("kern.ipc.tls.stats.failed_crypto", &v,
	    &len) == 0 && v == before + 4000 && len == sizeof(v));
	tap_result("counters: per-thread slots summed, exited threads kept");
}

int
main(void)
{
	ktls_init();
	test_suite_sizes();
	test_keymem();
	test_counters();
	return (tap_done());
}
