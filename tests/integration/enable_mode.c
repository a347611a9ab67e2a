/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * TCP_TXTLS_MODE (get and set, the kernel mode refused on this host) and
 * TCP_RXTLS_ENABLE.  (Common parts: enable_common.h.)
 */
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

#include "enable_common.h"

FAMILY_CASE(case_mode_get, family,
    "%s: TCP_TXTLS_MODE reads NONE, then SW once enabled; optlen "
    "sizeof(int)")
{
	struct fx_keys k;
	int buf[2], fds[2];
	socklen_t len;

	fx_keys_init(&k, suite(GCM12B), 0);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	/* A larger buffer: optlen comes back as sizeof(int). */
	buf[0] = buf[1] = 0x5a5a5a5a;
	len = sizeof(buf);
	CHECK(ktls_getsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_MODE, buf,
	    &len) == 0);
	CHECK(len == sizeof(int));
	CHECK(buf[0] == TCP_TLS_MODE_NONE);
	CHECK(buf[1] == 0x5a5a5a5a);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	buf[0] = buf[1] = 0x5a5a5a5a;
	len = sizeof(buf);
	CHECK(ktls_getsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_MODE, buf,
	    &len) == 0);
	CHECK(len == sizeof(int));
	CHECK(buf[0] == TCP_TLS_MODE_SW);
	CHECK(buf[1] == 0x5a5a5a5a);
	/* The peer end was never enabled. */
	CHECK(mode_of(fds[1]) == TCP_TLS_MODE_NONE);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

CASE(case_mode_get_short,
    "getsockopt TCP_TXTLS_MODE with optlen < sizeof(int): EINVAL")
{
	struct fx_keys k;
	int v, fds[2];
	socklen_t len;

	fx_keys_init(&k, suite(GCM12), 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	for (int enabled = 0; enabled < 2; enabled++) {
		if (enabled)
			CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
		for (socklen_t l = 0; l < sizeof(int); l++) {
			len = l;
			errno = 0;
			CHECK(ktls_getsockopt(fds[0], IPPROTO_TCP,
			    TCP_TXTLS_MODE, &v, &len) == -1 &&
			    errno == EINVAL);
		}
	}
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

/*
 * Setting the mode of an enabled socket: SW is what it already is; a CBC
 * session cannot go to the kernel (EOPNOTSUPP), whatever the kernel; other
 * values, TOE among them, are not modes here (EINVAL, as FreeBSD's
 * ktls_set_tx_mode()).  None of it disturbs the session.
 */
FAMILY_CASE(case_mode_set, family,
    "%s: set MODE SW 0, IFNET (CBC) EOPNOTSUPP, TOE, 7 and -1 "
    "EINVAL; session unharmed")
{
	static const size_t w[] = { 3000 }, want[] = { 3000 };
	struct fx_keys k;
	int fds[2];

	fx_keys_init(&k, suite(CBC12_256), 9);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(set_mode_err(fds[0], TCP_TLS_MODE_SW) == 0);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(set_mode_err(fds[0], TCP_TLS_MODE_IFNET) == EOPNOTSUPP);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(set_mode_err(fds[0], TCP_TLS_MODE_TOE) == EINVAL);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(set_mode_err(fds[0], 7) == EINVAL);
	CHECK(set_mode_err(fds[0], -1) == EINVAL);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	send_verify(fds, &k.en, w, 1, want, 1, 131);
}

/*
 * Kernel mode on this host, whose kernel has no kTLS (TCP_ULP "tls" is
 * ENOENT): with kern.ipc.tls.ifnet.permitted 1 a new AEAD session still
 * starts in software; TCP_TXTLS_MODE IFNET answers EOPNOTSUPP and counts
 * a failed switch; no gauge of kernel sessions moves; the session goes on
 * in software, every record valid.
 */
FAMILY_CASE(case_kmode_refused, family,
    "%s: no kTLS in this kernel: ifnet.permitted=1 sessions start "
    "in SW; IFNET EOPNOTSUPP, switch_failed counted; records valid")
{
	static const size_t w[] = { 100, 20000 }, want[] = { 100, 16384, 3616 };
	const struct fx_suite *suites[] = { suite(GCM13), suite(GCM12),
	    suite(CHACHA13) };

	for (size_t i = 0; i < NELEM(suites); i++) {
		uint64_t failed = fx_sysctl_u64("kern.ipc.tls.stats.switch_failed");
		uint64_t to_ifnet = fx_sysctl_u64("kern.ipc.tls.stats.switch_to_ifnet");
		struct fx_keys k;
		int fds[2];

		CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 1) == 0);
		fx_keys_init(&k, suites[i], 5);
		REQUIRE(fx_tcp_pair(family, fds) == 0, );
		CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
		CHECK(fx_sysctl_u64("kern.ipc.tls.ifnet.gcm") == 0);
		CHECK(fx_sysctl_u64("kern.ipc.tls.ifnet.chacha20") == 0);
		CHECK(set_mode_err(fds[0], TCP_TLS_MODE_IFNET) == EOPNOTSUPP);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
		CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_failed") == failed + 1);
		CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_to_ifnet") ==
		    to_ifnet);
		CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 0) == 0);
		send_verify(fds, &k.en, w, NELEM(w), want, NELEM(want), 151);
	}
}

/* TCP_TXTLS_MODE on a socket with no session: nothing to set (EINVAL). */
FAMILY_CASE(case_mode_set_plain, family,
    "%s: set MODE on a socket without session: EINVAL")
{
	int fds[2];

	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(set_mode_err(fds[0], TCP_TLS_MODE_SW) == EINVAL);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
	check_plain(fds[0], fds[1], 141);
	close(fds[0]);
	close(fds[1]);
}

/* No receive offload, as FreeBSD before D21277: ENOPROTOOPT. */
CASE(case_rxtls, "TCP_RXTLS_ENABLE: ENOPROTOOPT")
{
	struct fx_keys k;
	int fds[2];

	fx_keys_init(&k, suite(GCM13), 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	for (int enabled = 0; enabled < 2; enabled++) {
		int r;

		if (enabled)
			CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
		errno = 0;
		r = ktls_setsockopt(fds[1], IPPROTO_TCP, TCP_RXTLS_ENABLE,
		    &k.en, sizeof(k.en));
		CHECK(r == -1 && errno == ENOPROTOOPT);
		errno = 0;
		r = ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_RXTLS_ENABLE,
		    &k.en, sizeof(k.en));
		CHECK(r == -1 && errno == ENOPROTOOPT);
	}
	CHECK(mode_of(fds[1]) == TCP_TLS_MODE_NONE);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

int
main(void)
{
	enable_begin(true);
	for (size_t f = 0; f < NELEM(families); f++)
		case_mode_get(families[f]);
	case_mode_get_short();
	for (size_t f = 0; f < NELEM(families); f++) {
		case_mode_set(families[f]);
		case_kmode_refused(families[f]);
		case_mode_set_plain(families[f]);
	}
	case_rxtls();
	return (tap_done());
}
