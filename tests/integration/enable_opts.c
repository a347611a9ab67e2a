/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The option numbers: TCP_TXTLS_* and TCP_RXTLS_* are unknown to Linux's
 * own IPPROTO_TCP level.  (Common parts: enable_common.h.)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "enable_common.h"

/* Linux's IPPROTO_TCP options; newer ones than the headers may know. */
#ifndef TCP_AO_ADD_KEY
#define TCP_AO_ADD_KEY		38
#endif
#ifndef TCP_AO_DEL_KEY
#define TCP_AO_DEL_KEY		39
#endif
#ifndef TCP_AO_INFO
#define TCP_AO_INFO		40
#endif
#ifndef TCP_AO_GET_KEYS
#define TCP_AO_GET_KEYS		41
#endif
#ifndef TCP_AO_REPAIR
#define TCP_AO_REPAIR		42
#endif
#ifndef TCP_IS_MPTCP
#define TCP_IS_MPTCP		43
#endif
#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS		44
#endif
#ifndef TCP_RTO_MIN_US
#define TCP_RTO_MIN_US		45
#endif
#ifndef TCP_DELACK_MAX_US
#define TCP_DELACK_MAX_US	46
#endif

static const int linux_tcp_opts[] = {
	TCP_NODELAY, TCP_MAXSEG, TCP_CORK, TCP_KEEPIDLE, TCP_KEEPINTVL,
	TCP_KEEPCNT, TCP_SYNCNT, TCP_LINGER2, TCP_DEFER_ACCEPT,
	TCP_WINDOW_CLAMP, TCP_INFO, TCP_QUICKACK, TCP_CONGESTION, TCP_MD5SIG,
	TCP_COOKIE_TRANSACTIONS, TCP_THIN_LINEAR_TIMEOUTS, TCP_THIN_DUPACK,
	TCP_USER_TIMEOUT, TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ,
	TCP_REPAIR_OPTIONS, TCP_FASTOPEN, TCP_TIMESTAMP, TCP_NOTSENT_LOWAT,
	TCP_CC_INFO, TCP_SAVE_SYN, TCP_SAVED_SYN, TCP_REPAIR_WINDOW,
	TCP_FASTOPEN_CONNECT, TCP_ULP, TCP_MD5SIG_EXT, TCP_FASTOPEN_KEY,
	TCP_FASTOPEN_NO_COOKIE, TCP_ZEROCOPY_RECEIVE, TCP_INQ, TCP_TX_DELAY,
	TCP_AO_ADD_KEY, TCP_AO_DEL_KEY, TCP_AO_INFO, TCP_AO_GET_KEYS,
	TCP_AO_REPAIR, TCP_IS_MPTCP, TCP_RTO_MAX_MS, TCP_RTO_MIN_US,
	TCP_DELACK_MAX_US,
};

static const struct {
	int		opt;
	int		freebsd;	/* FreeBSD's number: the low byte */
	const char	*name;
} ktls_opts[] = {
	{ TCP_TXTLS_ENABLE, 39, "TCP_TXTLS_ENABLE" },
	{ TCP_TXTLS_MODE, 40, "TCP_TXTLS_MODE" },
	{ TCP_RXTLS_ENABLE, 41, "TCP_RXTLS_ENABLE" },
	{ TCP_RXTLS_MODE, 42, "TCP_RXTLS_MODE" },
};

/* The numbers are outside Linux's range and distinct from each other. */
CASE(case_opt_numbers,
    "TCP_TXTLS_*/TCP_RXTLS_* are > 0xff, FreeBSD's number in the low "
    "byte, no Linux TCP option")
{
	for (size_t i = 0; i < NELEM(ktls_opts); i++) {
		int o = ktls_opts[i].opt;

		CHECK(o > 0xff);
		CHECK((o & 0xff) == ktls_opts[i].freebsd);
		for (size_t j = 0; j < NELEM(linux_tcp_opts); j++) {
			if (o == linux_tcp_opts[j])
				tap_diag("%s == Linux TCP option %d",
				    ktls_opts[i].name, linux_tcp_opts[j]);
			CHECK(o != linux_tcp_opts[j]);
		}
		for (size_t j = i + 1; j < NELEM(ktls_opts); j++)
			CHECK(o != ktls_opts[j].opt);
	}
}

/*
 * The kernel itself (libc's setsockopt/getsockopt, not ktls's) does not
 * know them: an application that forgets to call ktls_setsockopt gets
 * ENOPROTOOPT, never some TCP option of Linux's by accident.
 */
FAMILY_CASE(case_raw_kernel, family,
    "%s: the kernel's own setsockopt/getsockopt answer the ktls "
    "options with ENOPROTOOPT")
{
	struct fx_keys k;
	uint8_t buf[sizeof(k.en)];
	socklen_t len;
	int fds[2], one = TCP_TLS_MODE_SW;

	fx_keys_init(&k, suite(GCM12), 0);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	for (size_t i = 0; i < NELEM(ktls_opts); i++) {
		int o = ktls_opts[i].opt, r;
		const void *val = o == TCP_TXTLS_ENABLE ||
		    o == TCP_RXTLS_ENABLE ? (const void *)&k.en : &one;
		socklen_t vlen = val == &one ? sizeof(one) : sizeof(k.en);

		errno = 0;
		r = setsockopt(fds[0], IPPROTO_TCP, o, val, vlen);
		if (r != -1 || errno != ENOPROTOOPT)
			tap_diag("setsockopt(%s): %d errno %d",
			    ktls_opts[i].name, r, errno);
		CHECK(r == -1 && errno == ENOPROTOOPT);
		len = sizeof(buf);
		errno = 0;
		r = getsockopt(fds[0], IPPROTO_TCP, o, buf, &len);
		CHECK(r == -1 && errno == ENOPROTOOPT);
	}
	/* Going around ktls enabled nothing. */
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
	check_plain(fds[0], fds[1], 71);
	close(fds[0]);
	close(fds[1]);
}

int
main(void)
{
	enable_begin(true);
	case_opt_numbers();
	for (size_t f = 0; f < NELEM(families); f++)
		case_raw_kernel(families[f]);
	return (tap_done());
}
