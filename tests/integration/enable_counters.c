/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The kern.ipc.tls.stats.* and sw.* counters an enable moves.  (Common
 * parts: enable_common.h.)
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "enable_common.h"

/*
 * enable_calls counts every TCP_TXTLS_ENABLE call, refused or not;
 * offload_total only the sessions set up.  Other options are not enable
 * calls.  (Calls while kern.ipc.tls.enable is 0 are left out: FreeBSD
 * returns before counting them.)
 */
CASE(case_enable_calls,
    "enable_calls +1 per call (refused too), offload_total +1 per "
    "success")
{
	struct fx_keys k, bad;
	uint64_t c0, o0;
	int fds[2], tcp, p[2];

	settle();
	fx_keys_init(&k, suite(GCM12), 0);
	fx_keys_init(&bad, suite(GCM12), 0);
	bad.en.iv_len = 8;
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	REQUIRE(pipe(p) == 0, );
	tcp = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(tcp >= 0, );
	c0 = fx_sysctl_u64(CALLS);
	o0 = fx_sysctl_u64(OFFLOAD);

	CHECK(enable_err(fds[0], &bad.en, sizeof(bad.en)) == EINVAL);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 1 && fx_sysctl_u64(OFFLOAD) == o0);
	CHECK(enable_err(fds[0], NULL, sizeof(k.en)) == EFAULT);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 2 && fx_sysctl_u64(OFFLOAD) == o0);
	CHECK(enable_err(tcp, &k.en, sizeof(k.en)) == ENOTCONN);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 3 && fx_sysctl_u64(OFFLOAD) == o0);
	CHECK(enable_err(p[1], &k.en, sizeof(k.en)) == ENOTSOCK);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 4 && fx_sysctl_u64(OFFLOAD) == o0);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en) - 1) == EINVAL);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 5 && fx_sysctl_u64(OFFLOAD) == o0);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 6 && fx_sysctl_u64(OFFLOAD) == o0 + 1);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EALREADY);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 7 && fx_sysctl_u64(OFFLOAD) == o0 + 1);
	/* Not enable calls. */
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(set_mode_err(fds[0], TCP_TLS_MODE_SW) == 0);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 7 && fx_sysctl_u64(OFFLOAD) == o0 + 1);
	CHECK(ktls_close(fds[0]) == 0);
	/* Closing does not undo the totals. */
	CHECK(ctr_wait(ACTIVE, 0, 5000) == 0);
	CHECK(fx_sysctl_u64(CALLS) == c0 + 7 && fx_sysctl_u64(OFFLOAD) == o0 + 1);
	close(fds[1]);
	close(tcp);
	close(p[0]);
	close(p[1]);
}

/*
 * active: +1 on enable; ktls_close does not end the session while its
 * records are queued (FreeBSD frees it with the last mbuf); -1 once the
 * peer has read them all.
 */
FAMILY_CASE(case_active_drain, family,
    "%s: active +1 on enable, kept while records are queued after "
    "close, -1 once drained")
{
	enum { CHUNK = 65536, MAXCHUNKS = 400 };
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t *buf;
	uint64_t active0, o0;
	size_t accepted = 0;
	int fds[2], small = 4096, i, fl, rs;
	ssize_t n = 0;

	active0 = settle();
	o0 = fx_sysctl_u64(OFFLOAD);
	buf = malloc(CHUNK);
	REQUIRE(buf != NULL, );
	fx_keys_init(&k, suite(GCM13), 0);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(fx_sysctl_u64(ACTIVE) == active0 + 1);
	CHECK(fx_sysctl_u64(OFFLOAD) == o0 + 1);
	/*
	 * Nobody reads: fill the kernel socket and ktls's queue until a
	 * non-blocking write says EAGAIN, so records are surely queued.
	 */
	fl = fcntl(fds[0], F_GETFL);
	CHECK(fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) == 0);
	for (i = 0; i < MAXCHUNKS; i++) {
		fx_pattern(buf, CHUNK, (uint32_t)i);
		n = ktls_write(fds[0], buf, CHUNK);
		if (n <= 0)
			break;
		accepted += (size_t)n;
	}
	CHECK(n == -1 && errno == EAGAIN);
	CHECK(accepted > 0);
	CHECK(ktls_close(fds[0]) == 0);
	usleep(200 * 1000);
	CHECK(fx_sysctl_u64(ACTIVE) == active0 + 1);
	/* Now let it drain. */
	rs = fx_rx_start(&rx, fds[1], &k.en, false);
	CHECK(rs == 0);
	if (rs != 0) {
		free(buf);
		return;
	}
	CHECK(ctr_wait(ACTIVE, active0, 20000) == active0);
	fx_rx_join(&rx);
	CHECK(!rx.dec_failed);
	CHECK(rx.read_errno == 0);
	CHECK(rx.bytes == accepted);
	CHECK(fx_sysctl_u64(ACTIVE) == active0);
	close(fds[1]);
	fx_rx_free(&rx);
	free(buf);
}

/* sw.gcm, sw.cbc, sw.chacha20: live sessions of each cipher class. */
CASE(case_sw_gauges,
    "sw.gcm, sw.cbc, sw.chacha20 count live sessions per cipher "
    "class")
{
	static const struct {
		const char	*suite;
		int		cls;	/* 0 gcm, 1 cbc, 2 chacha20 */
	} ss[] = {
		{ GCM12, 0 }, { GCM13B, 0 }, { CHACHA12, 2 }, { CHACHA13, 2 },
		{ CBC10, 1 }, { CBC12_384, 1 }, { CBC11, 1 },
	};
	static const char *const gauge[3] = { "kern.ipc.tls.sw.gcm",
	    "kern.ipc.tls.sw.cbc", "kern.ipc.tls.sw.chacha20" };
	struct fx_keys k;
	uint64_t g0[3], want[3], active0;
	int fds[NELEM(ss)][2];

	active0 = settle();
	for (int c = 0; c < 3; c++)
		want[c] = g0[c] = fx_sysctl_u64(gauge[c]);
	/* No session open, so every class reads 0. */
	CHECK(g0[0] == 0 && g0[1] == 0 && g0[2] == 0);
	for (size_t i = 0; i < NELEM(ss); i++) {
		fx_keys_init(&k, suite(ss[i].suite), 0);
		REQUIRE(fx_tcp_pair(families[i % 2], fds[i]) == 0, );
		CHECK(enable_err(fds[i][0], &k.en, sizeof(k.en)) == 0);
		want[ss[i].cls]++;
		for (int c = 0; c < 3; c++)
			CHECK(fx_sysctl_u64(gauge[c]) == want[c]);
		CHECK(fx_sysctl_u64(ACTIVE) == active0 + i + 1);
	}
	for (size_t i = 0; i < NELEM(ss); i++) {
		CHECK(ktls_close(fds[i][0]) == 0);
		want[ss[i].cls]--;
		for (int c = 0; c < 3; c++)
			CHECK(ctr_wait(gauge[c], want[c], 5000) == want[c]);
		CHECK(ctr_wait(ACTIVE, active0 + NELEM(ss) - i - 1, 5000) ==
		    active0 + NELEM(ss) - i - 1);
		close(fds[i][1]);
	}
}

/* One worker thread per online CPU, however many sessions there are. */
CASE(case_threads, "stats.threads is the number of online CPUs")
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct fx_keys k;
	int fds[3][2];

	CHECK(ncpu > 0);
	/* Sessions were enabled before this case: the pool is up. */
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.threads") == (uint64_t)ncpu);
	for (int i = 0; i < 3; i++) {
		fx_keys_init(&k, suite(GCM12), 0);
		REQUIRE(fx_tcp_pair(AF_INET, fds[i]) == 0, );
		CHECK(enable_err(fds[i][0], &k.en, sizeof(k.en)) == 0);
	}
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.threads") == (uint64_t)ncpu);
	for (int i = 0; i < 3; i++) {
		CHECK(ktls_close(fds[i][0]) == 0);
		close(fds[i][1]);
	}
	/* The pool outlives its sessions. */
	CHECK(ctr_wait(ACTIVE, 0, 5000) == 0);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.threads") == (uint64_t)ncpu);
}

int
main(void)
{
	enable_begin(true);
	case_enable_calls();
	for (size_t f = 0; f < NELEM(families); f++)
		case_active_drain(families[f]);
	case_sw_gauges();
	/* After the others: sessions were enabled, the pool is up. */
	case_threads();
	return (tap_done());
}
