/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The sysctl interface itself (ktls_sysctl_get/set/name/descr), and
 * kern.ipc.tls.maxlen on the wire.  (Common parts: enable_common.h.)
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>

#include "enable_common.h"

static const char *const known_tunables[] = {
	"kern.ipc.tls.enable", "kern.ipc.tls.maxlen",
};
static const char *const known_counters[] = {
	"kern.ipc.tls.stats.threads", "kern.ipc.tls.stats.active",
	"kern.ipc.tls.stats.enable_calls", "kern.ipc.tls.stats.offload_total",
	"kern.ipc.tls.sw.gcm", "kern.ipc.tls.sw.cbc",
	"kern.ipc.tls.sw.chacha20",
};

CASE(case_sysctl_enoent, "sysctl: unknown names give ENOENT, no description")
{
	static const char *const names[] = {
		"kern.ipc.tls.nope", "kern.ipc.tls", "kern.ipc.tls.",
		"kern.ipc.tls.stats", "kern.ipc.tls.enable.x",
		"kern.ipc.tls.enabl", "KERN.IPC.TLS.ENABLE", "", "enable",
	};
	uint64_t v;
	int one = 1;
	size_t len;

	for (size_t i = 0; i < NELEM(names); i++) {
		len = sizeof(v);
		errno = 0;
		CHECK(ktls_sysctl_get(names[i], &v, &len) == -1 &&
		    errno == ENOENT);
		len = 0;
		errno = 0;
		CHECK(ktls_sysctl_get(names[i], NULL, &len) == -1 &&
		    errno == ENOENT);
		errno = 0;
		CHECK(ktls_sysctl_set(names[i], &one, sizeof(one)) == -1 &&
		    errno == ENOENT);
		CHECK(ktls_sysctl_descr(names[i]) == NULL);
	}
}

/* oldp NULL: the size (int tunables, uint64_t counters). */
CASE(case_sysctl_sizes,
    "sysctl: oldp NULL gives the size (4 tunables, 8 counters)")
{
	size_t len;

	for (size_t i = 0; i < NELEM(known_tunables); i++) {
		len = 12345;
		CHECK(ktls_sysctl_get(known_tunables[i], NULL, &len) == 0);
		CHECK(len == 4);
	}
	for (size_t i = 0; i < NELEM(known_counters); i++) {
		len = 12345;
		CHECK(ktls_sysctl_get(known_counters[i], NULL, &len) == 0);
		CHECK(len == 8);
	}
}

/* Too small: ENOMEM; bigger than needed: fine, *oldlenp the real size. */
CASE(case_sysctl_enomem, "sysctl: too small a buffer gives ENOMEM")
{
	uint8_t buf[16];
	size_t len;

	for (size_t i = 0; i < NELEM(known_tunables); i++) {
		for (size_t l = 0; l < 4; l++) {
			len = l;
			memset(buf, 0xa5, sizeof(buf));
			errno = 0;
			CHECK(ktls_sysctl_get(known_tunables[i], buf, &len) ==
			    -1 && errno == ENOMEM);
			/* Nothing written on failure. */
			CHECK(buf[0] == 0xa5);
		}
		len = sizeof(buf);
		CHECK(ktls_sysctl_get(known_tunables[i], buf, &len) == 0);
		CHECK(len == 4);
	}
	for (size_t i = 0; i < NELEM(known_counters); i++) {
		size_t bad[] = { 0, 4, 7 };

		for (size_t j = 0; j < NELEM(bad); j++) {
			len = bad[j];
			errno = 0;
			CHECK(ktls_sysctl_get(known_counters[i], buf, &len) ==
			    -1 && errno == ENOMEM);
		}
		len = sizeof(buf);
		CHECK(ktls_sysctl_get(known_counters[i], buf, &len) == 0);
		CHECK(len == 8);
	}
}

/* The counters are read-only: EPERM, and their value stays. */
CASE(case_sysctl_eperm, "sysctl: setting a counter gives EPERM")
{
	uint64_t big = 12345;
	int small = 0;

	settle();
	for (size_t i = 0; i < NELEM(known_counters); i++) {
		const char *n = known_counters[i];
		uint64_t before = fx_sysctl_u64(n);

		errno = 0;
		CHECK(ktls_sysctl_set(n, &big, sizeof(big)) == -1 &&
		    errno == EPERM);
		errno = 0;
		CHECK(ktls_sysctl_set(n, &small, sizeof(small)) == -1 &&
		    errno == EPERM);
		CHECK(fx_sysctl_u64(n) == before);
	}
}

/* autocork_us takes 0..100000 (microseconds); refused values change nothing. */
CASE(case_sysctl_autocork_range,
    "sysctl: autocork_us takes 0..100000, refuses -1, 100001 "
    "(EINVAL)")
{
	static const int good[] = { 0, 1, 2000, 100000, 0 };
	static const int badv[] = { -1, 100001, INT_MIN, INT_MAX };

	for (size_t i = 0; i < NELEM(good); i++) {
		CHECK(fx_sysctl_set_int("kern.ipc.tls.autocork_us", good[i]) == 0);
		CHECK(fx_sysctl_int("kern.ipc.tls.autocork_us") == good[i]);
	}
	for (size_t i = 0; i < NELEM(badv); i++) {
		errno = 0;
		CHECK(fx_sysctl_set_int("kern.ipc.tls.autocork_us", badv[i]) == -1 &&
		    errno == EINVAL);
		CHECK(fx_sysctl_int("kern.ipc.tls.autocork_us") == 0);
	}
}

/* kern.ipc.tls.maxlen: 1 .. 16384; refused values change nothing. */
CASE(case_sysctl_maxlen_range,
    "sysctl: maxlen takes 1..16384, refuses 0, 16385, -1 (EINVAL)")
{
	static const int good[] = { 1, 16384, 1000, 2, 16383 };
	static const int badv[] = { 0, 16385, -1, INT_MIN, INT_MAX, 32768 };

	for (size_t i = 0; i < NELEM(good); i++) {
		CHECK(fx_sysctl_set_int("kern.ipc.tls.maxlen", good[i]) == 0);
		CHECK(fx_sysctl_int("kern.ipc.tls.maxlen") == good[i]);
	}
	for (size_t i = 0; i < NELEM(badv); i++) {
		errno = 0;
		CHECK(fx_sysctl_set_int("kern.ipc.tls.maxlen", badv[i]) == -1 &&
		    errno == EINVAL);
		/* Refused: the last good value stays. */
		CHECK(fx_sysctl_int("kern.ipc.tls.maxlen") == 16383);
	}
	CHECK(fx_sysctl_set_int("kern.ipc.tls.maxlen", 16384) == 0);
	CHECK(fx_sysctl_int("kern.ipc.tls.maxlen") == 16384);
}

/* A new value of the wrong size: EINVAL, the value stays. */
CASE(case_sysctl_newlen, "sysctl: a new value of the wrong size gives EINVAL")
{
	static const size_t lens[] = { 0, 1, 3, 5, 8 };
	int64_t v8 = 1000;

	for (size_t i = 0; i < NELEM(known_tunables); i++) {
		int before = fx_sysctl_int(known_tunables[i]);

		for (size_t j = 0; j < NELEM(lens); j++) {
			errno = 0;
			CHECK(ktls_sysctl_set(known_tunables[i], &v8,
			    lens[j]) == -1 && errno == EINVAL);
			CHECK(fx_sysctl_int(known_tunables[i]) == before);
		}
	}
}

/* Every name, each readable with its size, each described. */
CASE(case_sysctl_names,
    "sysctl: every name enumerated, under kern.ipc.tls., readable, "
    "described")
{
	const char *seen[256];
	unsigned int n;
	const char *name;

	for (n = 0; (name = ktls_sysctl_name(n)) != NULL && n < 256; n++) {
		const char *d = ktls_sysctl_descr(name);
		uint8_t buf[8];
		size_t len = 0, len2;
		bool tun;

		seen[n] = name;
		CHECK(strncmp(name, "kern.ipc.tls.", 13) == 0);
		CHECK(strlen(name) > 13);
		CHECK(d != NULL && d[0] != '\0');
		for (unsigned int j = 0; j < n; j++)
			CHECK(strcmp(seen[j], name) != 0);
		tun = strcmp(name, "kern.ipc.tls.enable") == 0 ||
		    strcmp(name, "kern.ipc.tls.maxlen") == 0 ||
		    strcmp(name, "kern.ipc.tls.autocork_us") == 0 ||
		    strcmp(name, "kern.ipc.tls.ifnet.permitted") == 0;
		CHECK(ktls_sysctl_get(name, NULL, &len) == 0);
		CHECK(len == (tun ? 4u : 8u));
		len2 = sizeof(buf);
		CHECK(ktls_sysctl_get(name, buf, &len2) == 0 && len2 == len);
	}
	CHECK(n > 0 && n < 256);
	CHECK(ktls_sysctl_name(n) == NULL);
	CHECK(ktls_sysctl_name(n + 1) == NULL);
	CHECK(ktls_sysctl_name(UINT_MAX) == NULL);
	/* The ones FreeBSD has and this program relies on are all there. */
	for (size_t i = 0; i < NELEM(known_tunables) + NELEM(known_counters);
	    i++) {
		const char *want = i < NELEM(known_tunables) ?
		    known_tunables[i] :
		    known_counters[i - NELEM(known_tunables)];
		bool found = false;

		for (unsigned int j = 0; j < n; j++)
			found |= strcmp(seen[j], want) == 0;
		if (!found)
			tap_diag("%s not enumerated", want);
		CHECK(found);
	}
}

/* maxlen cuts records on the wire: 2500 bytes at 1000 are 1000+1000+500. */
static void
maxlen_wire(const char *sname, int family, int maxlen,
    const size_t *w, int nw, const size_t *want, int nwant)
{
	struct fx_keys k;
	int fds[2];

	settle();
	CHECK(fx_sysctl_set_int("kern.ipc.tls.maxlen", maxlen) == 0);
	CHECK(fx_sysctl_int("kern.ipc.tls.maxlen") == maxlen);
	fx_keys_init(&k, suite(sname), 77);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	send_verify(fds, &k.en, w, nw, want, nwant, (uint32_t)maxlen);
	/* Back to the default whatever happened. */
	fx_sysctl_set_int("kern.ipc.tls.maxlen", TLS_MAX_MSG_SIZE_V10_2);
}

/* The writes, the records they must leave as, and the case's name. */
static const size_t w2500[] = { 2500 }, r2500[] = { 1000, 1000, 500 };
static const size_t w3[] = { 3 }, r3[] = { 1, 1, 1 };
static const size_t w16385[] = { 16385 }, r16385[] = { 16384, 1 };
static const struct {
	const char	*suite;
	int		family;
	int		maxlen;
	const size_t	*w, *want;
	int		nw, nwant;
	const char	*name;
} maxlen_cases[] = {
	{ GCM12, AF_INET, 1000, w2500, r2500, 1, 3, "maxlen 1000: 2500 "
	    "bytes leave as 1000, 1000, 500 (TLS 1.2 GCM, IPv4)" },
	{ CBC10, AF_INET6, 1000, w2500, r2500, 1, 3, "maxlen 1000: 2500 "
	    "bytes leave as 1000, 1000, 500 (TLS 1.0 CBC, IPv6)" },
	{ CHACHA13, AF_INET, 1, w3, r3, 1, 3, "maxlen 1: 3 bytes leave as "
	    "three records" },
	{ GCM13, AF_INET6, 16384, w16385, r16385, 1, 2, "maxlen restored to "
	    "16384: 16385 bytes leave as 16384, 1" },
};

static void
case_maxlen(void)
{
	for (size_t i = 0; i < NELEM(maxlen_cases); i++) {
		maxlen_wire(maxlen_cases[i].suite, maxlen_cases[i].family,
		    maxlen_cases[i].maxlen, maxlen_cases[i].w,
		    maxlen_cases[i].nw, maxlen_cases[i].want,
		    maxlen_cases[i].nwant);
		tap_result("%s", maxlen_cases[i].name);
	}
	fx_sysctl_set_int("kern.ipc.tls.maxlen", TLS_MAX_MSG_SIZE_V10_2);
}

int
main(void)
{
	enable_begin(true);
	case_sysctl_enoent();
	case_sysctl_sizes();
	case_sysctl_enomem();
	case_sysctl_eperm();
	case_sysctl_maxlen_range();
	case_sysctl_autocork_range();
	case_sysctl_newlen();
	case_sysctl_names();
	case_maxlen();
	return (tap_done());
}
