/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Enabling ktls on a socket, and everything around it, over real loopback
 * TCP connections (127.0.0.1 and ::1):
 *
 *  1. kern.ipc.tls.enable is off by default (EOPNOTSUPP) and KTLS_ENABLE=1
 *     in the environment, or the sysctl, turns it on;
 *  2. every bad struct tls_enable is refused with EINVAL (EFAULT for a
 *     NULL optval) and leaves the socket exactly as it was: not enabled,
 *     no session counted, bytes written on it go out plain;
 *  3. the socket checks: ENOTSOCK, EINVAL, ENOTCONN, EALREADY;
 *  4. the kern.ipc.tls.stats.* and sw.* counters an enable moves;
 *  5. the sysctl interface itself, and kern.ipc.tls.maxlen on the wire;
 *  6. TCP_TXTLS_MODE and TCP_RXTLS_ENABLE;
 *  7. the option numbers are unknown to Linux's own IPPROTO_TCP level;
 *  8. on an fd ktls does not manage every call is libc's (invariant 6).
 *
 * Records are checked with the fixture's receiver, which decrypts with
 * tlsdec (no code shared with the engine).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"

extern char **environ;

#define GCM12	"TLS1.2-AES-128-GCM"
#define GCM12B	"TLS1.2-AES-256-GCM"
#define CHACHA12 "TLS1.2-CHACHA20-POLY1305"
#define GCM13	"TLS1.3-AES-128-GCM"
#define GCM13B	"TLS1.3-AES-256-GCM"
#define CHACHA13 "TLS1.3-CHACHA20-POLY1305"
#define CBC10	"TLS1.0-AES-128-CBC-SHA1"
#define CBC11	"TLS1.1-AES-256-CBC-SHA1"
#define CBC12	"TLS1.2-AES-128-CBC-SHA1"
#define CBC12_256 "TLS1.2-AES-128-CBC-SHA256"
#define CBC12_384 "TLS1.2-AES-256-CBC-SHA384"

#define ACTIVE	"kern.ipc.tls.stats.active"
#define CALLS	"kern.ipc.tls.stats.enable_calls"
#define OFFLOAD	"kern.ipc.tls.stats.offload_total"

#define CHILD_ARG	"--child-report-enable"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const char *const families_name[] = { "IPv4", "IPv6" };
static const int families[] = { AF_INET, AF_INET6 };

static const struct fx_suite *
suite(const char *name)
{
	for (int i = 0; i < fx_nsuites; i++)
		if (strcmp(fx_suites[i].name, name) == 0)
			return (&fx_suites[i]);
	fprintf(stderr, "test_enable: no suite %s in the fixture\n", name);
	abort();
}

/* A counter, or UINT64_MAX when it cannot be read (fails any check). */
static uint64_t
ctr(const char *name)
{
	uint64_t v;
	size_t len = sizeof(v);

	if (ktls_sysctl_get(name, &v, &len) != 0 || len != sizeof(v))
		return (UINT64_MAX);
	return (v);
}

/* An int tunable, or INT_MIN when it cannot be read. */
static int
tunable(const char *name)
{
	int v;
	size_t len = sizeof(v);

	if (ktls_sysctl_get(name, &v, &len) != 0 || len != sizeof(v))
		return (INT_MIN);
	return (v);
}

static int
set_tunable(const char *name, int v)
{
	return (ktls_sysctl_set(name, &v, sizeof(v)));
}

/*
 * Poll a counter until it reads want, for at most about ms milliseconds:
 * sessions are freed by whichever thread drops the last reference, so the
 * gauges settle a little after the call that started it.
 */
static uint64_t
ctr_wait(const char *name, uint64_t want, unsigned int ms)
{
	uint64_t v;

	for (unsigned int i = 0;; i++) {
		v = ctr(name);
		if (v == want || i >= ms)
			return (v);
		usleep(1000);
	}
}

/*
 * Every case starts with no session left over from the one before.  If one
 * leaked (a case failed), say so once and stop waiting for it.
 */
static uint64_t
settle(void)
{
	static bool leaked;
	uint64_t v = ctr_wait(ACTIVE, 0, leaked ? 0 : 5000);

	if (v != 0 && !leaked) {
		tap_diag("%llu session(s) left over: not waiting any more",
		    (unsigned long long)v);
		leaked = true;
	}
	return (v);
}

/* ktls_setsockopt(TCP_TXTLS_ENABLE): 0, or the errno it failed with. */
static int
enable_err(int fd, const void *en, socklen_t len)
{
	int r;

	errno = 0;
	r = ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_ENABLE, en, len);
	if (r == 0)
		return (0);
	if (r != -1 || errno == 0)
		return (-1000);		/* not a system-call style failure */
	return (errno);
}

/* ktls_setsockopt(TCP_TXTLS_MODE, v): 0, or the errno. */
static int
set_mode_err(int fd, int v)
{
	errno = 0;
	if (ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &v,
	    sizeof(v)) == 0)
		return (0);
	return (errno != 0 ? errno : -1000);
}

/* TCP_TXTLS_MODE of fd, -1 if the call fails or returns a bad length. */
static int
mode_of(int fd)
{
	int mode = -1;
	socklen_t len = sizeof(mode);

	if (ktls_getsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &mode,
	    &len) != 0 || len != sizeof(mode))
		return (-1);
	return (mode);
}

/* Read exactly len bytes, waiting at most ms for each piece. */
static int
read_exact(int fd, void *buf, size_t len, int ms)
{
	size_t off = 0;

	while (off < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, ms) != 1)
			return (-1);
		n = read(fd, (uint8_t *)buf + off, len - off);
		if (n <= 0)
			return (-1);
		off += (size_t)n;
	}
	return (0);
}

/* Nothing more arrives within ms (a TLS header or trailer would). */
static bool
peer_quiet(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return (poll(&p, 1, ms) == 0);
}

/* Read until EOF (bounded wait); the byte count, or -1. */
static ssize_t
read_to_eof(int fd, uint8_t *buf, size_t cap, int ms)
{
	size_t off = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, ms) != 1)
			return (-1);
		n = read(fd, buf + off, cap - off);
		if (n < 0)
			return (-1);
		if (n == 0)
			return ((ssize_t)off);
		off += (size_t)n;
		if (off == cap)
			return ((ssize_t)off);
	}
}

/*
 * wfd carries plain bytes: what ktls_write takes goes out as it is and rfd
 * reads exactly those bytes, nothing more (a record would add a header and
 * a tag, and its body would not match).
 */
static void
check_plain(int wfd, int rfd, uint32_t seed)
{
	uint8_t out[300], in[300];

	fx_pattern(out, sizeof(out), seed);
	CHECK(ktls_write(wfd, out, sizeof(out)) == (ssize_t)sizeof(out));
	CHECK(read_exact(rfd, in, sizeof(in), 5000) == 0 &&
	    memcmp(in, out, sizeof(out)) == 0);
	CHECK(peer_quiet(rfd, 50));
}

static uint64_t
rec_seq_of(const struct tls_enable *en)
{
	uint64_t seq = 0;

	for (int i = 0; i < 8; i++)
		seq = seq << 8 | en->rec_seq[i];
	return (seq);
}

/*
 * On an enabled fds[0] (keys en): the receiver decrypts while the writes go
 * out, then ktls_close; the records must have exactly the payload lengths
 * want[], consecutive sequence numbers from en's, and carry the bytes
 * written, in order.  Closes both fds.
 */
static void
send_verify(int fds[2], const struct tls_enable *en, const size_t *writes,
    int nw, const size_t *want, int nwant, uint32_t seed)
{
	struct fx_rx rx = { 0 };
	size_t total = 0, off = 0, got_len = 0;
	uint64_t seq0 = rec_seq_of(en);
	uint8_t *buf, *got;
	int rs;

	for (int i = 0; i < nw; i++)
		total += writes[i];
	buf = malloc(total + 1);
	REQUIRE(buf != NULL, );
	fx_pattern(buf, total, seed);
	rs = fx_rx_start(&rx, fds[1], en, true);
	CHECK(rs == 0);
	if (rs != 0) {
		free(buf);
		return;
	}
	for (int i = 0; i < nw; i++) {
		ssize_t n = ktls_write(fds[0], buf + off, writes[i]);

		CHECK(n == (ssize_t)writes[i]);
		off += writes[i];
	}
	CHECK(ktls_close(fds[0]) == 0);
	fx_rx_join(&rx);
	if (rx.dec_failed)
		tap_diag("decrypt failed: %s", rx.dec_error);
	CHECK(!rx.dec_failed);
	CHECK(rx.read_errno == 0);
	CHECK(rx.nrecs == (size_t)nwant);
	for (size_t i = 0; i < rx.nrecs; i++) {
		bool good = i < (size_t)nwant && rx.recs[i].len == want[i] &&
		    rx.recs[i].type == TLS_RLTYPE_APP &&
		    rx.recs[i].seq == seq0 + i;

		if (!good)
			tap_diag("record %zu: type %u len %zu seq %llu", i,
			    rx.recs[i].type, rx.recs[i].len,
			    (unsigned long long)rx.recs[i].seq);
		CHECK(good);
	}
	got = fx_rx_appdata(&rx, &got_len);
	CHECK(got_len == total && memcmp(got, buf, total) == 0);
	close(fds[1]);
	free(got);
	fx_rx_free(&rx);
	free(buf);
}

/* ---- 1. kern.ipc.tls.enable ------------------------------------------ */

/* The tests run with KTLS_ENABLE=0: off, as FreeBSD boots. */
static void
case_off_by_default(void)
{
	struct fx_keys k;
	int v = -1, fds[2];
	size_t len = sizeof(v);

	CHECK(ktls_sysctl_get("kern.ipc.tls.enable", &v, &len) == 0);
	CHECK(len == sizeof(int));
	CHECK(v == 0);
	for (size_t f = 0; f < NELEM(families); f++) {
		fx_keys_init(&k, suite(f ? GCM13 : GCM12), 0);
		REQUIRE(fx_tcp_pair(families[f], fds) == 0, );
		CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EOPNOTSUPP);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
		CHECK(ctr(ACTIVE) == 0);
		CHECK(ctr(OFFLOAD) == 0);
		/* Refused, so the socket is an ordinary one. */
		check_plain(fds[0], fds[1], 11 + (uint32_t)f);
		close(fds[0]);
		close(fds[1]);
	}
}

/* Setting it to 1 lets the same call through; the records decrypt. */
static void
case_sysctl_turns_on(void)
{
	static const size_t w[] = { 100 }, want[] = { 100 };
	struct fx_keys k;
	int fds[2];

	CHECK(set_tunable("kern.ipc.tls.enable", 1) == 0);
	CHECK(tunable("kern.ipc.tls.enable") == 1);
	for (size_t f = 0; f < NELEM(families); f++) {
		fx_keys_init(&k, suite(f ? GCM13 : GCM12), 5);
		REQUIRE(fx_tcp_pair(families[f], fds) == 0, );
		CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
		send_verify(fds, &k.en, w, 1, want, 1, 21);
	}
}

/* And back to 0: new enables are refused again; then on for the rest. */
static void
case_sysctl_turns_off(void)
{
	struct fx_keys k;
	int fds[2];

	settle();
	CHECK(set_tunable("kern.ipc.tls.enable", 0) == 0);
	CHECK(tunable("kern.ipc.tls.enable") == 0);
	fx_keys_init(&k, suite(CHACHA13), 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EOPNOTSUPP);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
	CHECK(ctr(ACTIVE) == 0);
	check_plain(fds[0], fds[1], 31);
	CHECK(set_tunable("kern.ipc.tls.enable", 1) == 0);
	CHECK(tunable("kern.ipc.tls.enable") == 1);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

/*
 * The child's side of the re-exec: report kern.ipc.tls.enable, and whether
 * enabling a loopback socket works, through the exit status:
 * 40 + 2 * value + (enable succeeded).  Anything else is an error.
 */
static int
child_report_enable(void)
{
	struct fx_keys k;
	int v = -1, fds[2], e;
	size_t len = sizeof(v);

	fx_watchdog(30);
	if (ktls_sysctl_get("kern.ipc.tls.enable", &v, &len) != 0 ||
	    len != sizeof(int) || (v != 0 && v != 1))
		return (2);
	fx_keys_init(&k, suite(GCM12), 0);
	if (fx_tcp_pair(AF_INET, fds) != 0)
		return (3);
	e = enable_err(fds[0], &k.en, sizeof(k.en));
	if (e != 0 && e != EOPNOTSUPP)
		return (4);
	/* The setting and the behaviour must agree. */
	if ((e == 0) != (v == 1))
		return (5);
	return (40 + 2 * v + (e == 0));
}

/*
 * Run this very binary again with KTLS_ENABLE set to value (NULL: unset),
 * everything else in the environment as it is; its exit status, or -1.
 */
static int
spawn_child(const char *value)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)"test_enable", (char *)CHILD_ARG, NULL };
	char var[64], **envp;
	size_t n = 0, m = 0;
	pid_t pid;
	int st, r;

	while (environ[n] != NULL)
		n++;
	if ((envp = calloc(n + 2, sizeof(*envp))) == NULL)
		return (-1);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "KTLS_ENABLE=", 12) != 0)
			envp[m++] = environ[i];
	if (value != NULL) {
		snprintf(var, sizeof(var), "KTLS_ENABLE=%s", value);
		envp[m++] = var;
	}
	envp[m] = NULL;
	/* Its watchdog message, if any, must not mix with our TAP stream. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	r = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	if (r != 0)
		return (-1);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return (-1);
	return (WEXITSTATUS(st));
}

static void
case_env(const char *value, int want)
{
	int st = spawn_child(value);

	if (st != want)
		tap_diag("child with KTLS_ENABLE=%s exited %d, want %d",
		    value != NULL ? value : "(unset)", st, want);
	CHECK(st == want);
}

/* ---- 7. option numbers ------------------------------------------------ */

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
static void
case_opt_numbers(void)
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
static void
case_raw_kernel(int family)
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

/* ---- 2. bad struct tls_enable ----------------------------------------- */

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
 * After a refused enable the socket is exactly as before: mode NONE, no
 * session counted, bytes go out plain.
 */
static void
check_untouched(int fds[2], uint64_t active0, uint64_t offload0,
    uint32_t seed)
{
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
	CHECK(ctr(ACTIVE) == active0);
	CHECK(ctr(OFFLOAD) == offload0);
	check_plain(fds[0], fds[1], seed);
}

/*
 * One bad field: EINVAL, nothing changed; then the same struct with that
 * field put back is accepted on the same socket, so it was that field the
 * engine refused (and a refusal does not poison the socket).
 */
static void
case_bad(const struct bad *b, int family, uint32_t seed)
{
	struct fx_keys k;
	struct en_buf eb;
	socklen_t len;
	uint64_t active0, offload0;
	int fds[2], e;

	active0 = settle();
	offload0 = ctr(OFFLOAD);
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
	CHECK(ctr(ACTIVE) == active0 + 1);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

/* optval NULL: EFAULT, as the kernel's copyin, and nothing changed. */
static void
case_efault(int family)
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], NULL, sizeof(struct tls_enable)) == EFAULT);
	check_untouched(fds, active0, offload0, 81);
	fx_keys_init(&k, suite(GCM12), 0);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

/* ---- 3. socket checks ------------------------------------------------- */

static void
case_not_socket(void)
{
	struct fx_keys k;
	uint8_t out[100], in[100];
	uint64_t active0, offload0;
	int p[2], ffd;

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	fx_keys_init(&k, suite(GCM12), 0);
	REQUIRE(pipe(p) == 0, );
	CHECK(enable_err(p[1], &k.en, sizeof(k.en)) == ENOTSOCK);
	CHECK(enable_err(p[0], &k.en, sizeof(k.en)) == ENOTSOCK);
	/* Still libc's pipe. */
	check_plain(p[1], p[0], 91);
	close(p[0]);
	close(p[1]);

	ffd = fx_tmpfile(0, 0);
	REQUIRE(ffd >= 0, );
	CHECK(enable_err(ffd, &k.en, sizeof(k.en)) == ENOTSOCK);
	fx_pattern(out, sizeof(out), 92);
	CHECK(ktls_write(ffd, out, sizeof(out)) == (ssize_t)sizeof(out));
	CHECK(pread(ffd, in, sizeof(in), 0) == (ssize_t)sizeof(in) &&
	    memcmp(in, out, sizeof(out)) == 0);
	close(ffd);
	CHECK(ctr(ACTIVE) == active0);
	CHECK(ctr(OFFLOAD) == offload0);
}

/* A number with nothing open behind it. */
static int
closed_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	close(fd);
	return (fd);
}

static void
case_bad_fd(void)
{
	struct fx_keys k;

	fx_keys_init(&k, suite(GCM12), 0);
	CHECK(enable_err(closed_fd(), &k.en, sizeof(k.en)) == EBADF);
	CHECK(enable_err(-1, &k.en, sizeof(k.en)) == EBADF);
}

/* A connected UDP pair: a socket, connected, but not TCP. */
static int
udp_pair(int family, int fds[2])
{
	struct sockaddr_storage ss[2];
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);

	for (int i = 0; i < 2; i++) {
		memset(&ss[i], 0, sizeof(ss[i]));
		if (family == AF_INET6) {
			struct sockaddr_in6 *s6 = (void *)&ss[i];

			s6->sin6_family = AF_INET6;
			s6->sin6_addr = in6addr_loopback;
		} else {
			struct sockaddr_in *s4 = (void *)&ss[i];

			s4->sin_family = AF_INET;
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		}
		fds[i] = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], (void *)&ss[i], len) != 0 ||
		    getsockname(fds[i], (void *)&ss[i], &len) != 0)
			return (-1);
	}
	if (connect(fds[0], (void *)&ss[1], len) != 0 ||
	    connect(fds[1], (void *)&ss[0], len) != 0)
		return (-1);
	return (0);
}

static void
case_udp(int family)
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	fx_keys_init(&k, suite(GCM13), 0);
	REQUIRE(udp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EINVAL);
	check_untouched(fds, active0, offload0, 101);
	close(fds[0]);
	close(fds[1]);
}

static void
case_unix(void)
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	fx_keys_init(&k, suite(GCM12), 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EINVAL);
	check_untouched(fds, active0, offload0, 111);
	close(fds[0]);
	close(fds[1]);
}

/* A TCP socket bound to loopback, listening or not. */
static int
tcp_bound(int family, bool listening)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	if (bind(fd, (void *)&ss, len) != 0 ||
	    (listening && listen(fd, 4) != 0)) {
		close(fd);
		return (-1);
	}
	return (fd);
}

static void
case_unconnected(int family)
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fd, fresh;

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	fx_keys_init(&k, suite(CHACHA12), 0);
	/* Fresh from socket(2), and bound but not connected. */
	fresh = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(fresh >= 0, );
	CHECK(enable_err(fresh, &k.en, sizeof(k.en)) == ENOTCONN);
	CHECK(mode_of(fresh) == TCP_TLS_MODE_NONE);
	close(fresh);
	fd = tcp_bound(family, false);
	REQUIRE(fd >= 0, );
	CHECK(enable_err(fd, &k.en, sizeof(k.en)) == ENOTCONN);
	CHECK(mode_of(fd) == TCP_TLS_MODE_NONE);
	close(fd);
	CHECK(ctr(ACTIVE) == active0);
	CHECK(ctr(OFFLOAD) == offload0);
}

static void
case_listening(int family)
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fd;

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	fx_keys_init(&k, suite(GCM13), 0);
	fd = tcp_bound(family, true);
	REQUIRE(fd >= 0, );
	CHECK(enable_err(fd, &k.en, sizeof(k.en)) == ENOTCONN);
	CHECK(mode_of(fd) == TCP_TLS_MODE_NONE);
	CHECK(ctr(ACTIVE) == active0);
	CHECK(ctr(OFFLOAD) == offload0);
	close(fd);
}

/*
 * Enabling twice: EALREADY, whatever the second struct says, and the
 * first session goes on untouched: what is written afterwards decrypts
 * with the first keys, from the first sequence number.
 */
static void
case_twice(const char *first, const char *second, int family)
{
	static const size_t w[] = { 5000, 20000 }, want[] = { 5000, 16384,
	    3616 };
	struct fx_keys k1, k2;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	fx_keys_init(&k1, suite(first), 0x1000);
	fx_keys_init(&k2, suite(second), 0x2000);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k1.en, sizeof(k1.en)) == 0);
	CHECK(enable_err(fds[0], &k2.en, sizeof(k2.en)) == EALREADY);
	CHECK(enable_err(fds[0], &k1.en, sizeof(k1.en)) == EALREADY);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(ctr(ACTIVE) == active0 + 1);
	CHECK(ctr(OFFLOAD) == offload0 + 1);
	send_verify(fds, &k1.en, w, 2, want, 3, 121);
}

/*
 * Enabling twice through another descriptor of the same socket (dup(2)):
 * the session belongs to the socket, not to the number (FreeBSD keeps it
 * in so_snd), so this is enabling twice too.  A second session would put
 * records with other keys and their own sequence numbers on the same
 * stream.
 */
static void
case_twice_dup(int family)
{
	static const size_t w[] = { 4000 }, want[] = { 4000 };
	struct fx_keys k1, k2;
	uint64_t active0, offload0;
	int fds[2], d, e;

	active0 = settle();
	offload0 = ctr(OFFLOAD);
	fx_keys_init(&k1, suite(GCM13), 0x10);
	fx_keys_init(&k2, suite(GCM13), 0x20);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k1.en, sizeof(k1.en)) == 0);
	d = dup(fds[0]);
	REQUIRE(d >= 0, );
	e = enable_err(d, &k2.en, sizeof(k2.en));
	if (e != EALREADY)
		tap_diag("enable on dup(fd) gave %d, want EALREADY", e);
	CHECK(e == EALREADY);
	CHECK(ctr(ACTIVE) == active0 + 1);
	CHECK(ctr(OFFLOAD) == offload0 + 1);
	/* ktls_close: the dup's session too, if the engine made one. */
	CHECK(ktls_close(d) == 0);
	send_verify(fds, &k1.en, w, 1, want, 1, 125);
}

/* ---- 4. counters ------------------------------------------------------ */

/*
 * enable_calls counts every TCP_TXTLS_ENABLE call, refused or not;
 * offload_total only the sessions set up.  Other options are not enable
 * calls.  (Calls while kern.ipc.tls.enable is 0 are left out: FreeBSD
 * returns before counting them.)
 */
static void
case_enable_calls(void)
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
	c0 = ctr(CALLS);
	o0 = ctr(OFFLOAD);

	CHECK(enable_err(fds[0], &bad.en, sizeof(bad.en)) == EINVAL);
	CHECK(ctr(CALLS) == c0 + 1 && ctr(OFFLOAD) == o0);
	CHECK(enable_err(fds[0], NULL, sizeof(k.en)) == EFAULT);
	CHECK(ctr(CALLS) == c0 + 2 && ctr(OFFLOAD) == o0);
	CHECK(enable_err(tcp, &k.en, sizeof(k.en)) == ENOTCONN);
	CHECK(ctr(CALLS) == c0 + 3 && ctr(OFFLOAD) == o0);
	CHECK(enable_err(p[1], &k.en, sizeof(k.en)) == ENOTSOCK);
	CHECK(ctr(CALLS) == c0 + 4 && ctr(OFFLOAD) == o0);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en) - 1) == EINVAL);
	CHECK(ctr(CALLS) == c0 + 5 && ctr(OFFLOAD) == o0);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(ctr(CALLS) == c0 + 6 && ctr(OFFLOAD) == o0 + 1);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EALREADY);
	CHECK(ctr(CALLS) == c0 + 7 && ctr(OFFLOAD) == o0 + 1);
	/* Not enable calls. */
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(set_mode_err(fds[0], TCP_TLS_MODE_SW) == 0);
	CHECK(ctr(CALLS) == c0 + 7 && ctr(OFFLOAD) == o0 + 1);
	CHECK(ktls_close(fds[0]) == 0);
	/* Closing does not undo the totals. */
	CHECK(ctr_wait(ACTIVE, 0, 5000) == 0);
	CHECK(ctr(CALLS) == c0 + 7 && ctr(OFFLOAD) == o0 + 1);
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
static void
case_active_drain(int family)
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
	o0 = ctr(OFFLOAD);
	buf = malloc(CHUNK);
	REQUIRE(buf != NULL, );
	fx_keys_init(&k, suite(GCM13), 0);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(ctr(ACTIVE) == active0 + 1);
	CHECK(ctr(OFFLOAD) == o0 + 1);
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
	CHECK(ctr(ACTIVE) == active0 + 1);
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
	CHECK(ctr(ACTIVE) == active0);
	close(fds[1]);
	fx_rx_free(&rx);
	free(buf);
}

/* sw.gcm, sw.cbc, sw.chacha20: live sessions of each cipher class. */
static void
case_sw_gauges(void)
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
		want[c] = g0[c] = ctr(gauge[c]);
	/* No session open, so every class reads 0. */
	CHECK(g0[0] == 0 && g0[1] == 0 && g0[2] == 0);
	for (size_t i = 0; i < NELEM(ss); i++) {
		fx_keys_init(&k, suite(ss[i].suite), 0);
		REQUIRE(fx_tcp_pair(families[i % 2], fds[i]) == 0, );
		CHECK(enable_err(fds[i][0], &k.en, sizeof(k.en)) == 0);
		want[ss[i].cls]++;
		for (int c = 0; c < 3; c++)
			CHECK(ctr(gauge[c]) == want[c]);
		CHECK(ctr(ACTIVE) == active0 + i + 1);
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
static void
case_threads(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct fx_keys k;
	int fds[3][2];

	CHECK(ncpu > 0);
	/* Sessions were enabled before this case: the pool is up. */
	CHECK(ctr("kern.ipc.tls.stats.threads") == (uint64_t)ncpu);
	for (int i = 0; i < 3; i++) {
		fx_keys_init(&k, suite(GCM12), 0);
		REQUIRE(fx_tcp_pair(AF_INET, fds[i]) == 0, );
		CHECK(enable_err(fds[i][0], &k.en, sizeof(k.en)) == 0);
	}
	CHECK(ctr("kern.ipc.tls.stats.threads") == (uint64_t)ncpu);
	for (int i = 0; i < 3; i++) {
		CHECK(ktls_close(fds[i][0]) == 0);
		close(fds[i][1]);
	}
	/* The pool outlives its sessions. */
	CHECK(ctr_wait(ACTIVE, 0, 5000) == 0);
	CHECK(ctr("kern.ipc.tls.stats.threads") == (uint64_t)ncpu);
}

/* ---- 5. the sysctl interface ------------------------------------------ */

static const char *const known_tunables[] = {
	"kern.ipc.tls.enable", "kern.ipc.tls.maxlen",
};
static const char *const known_counters[] = {
	"kern.ipc.tls.stats.threads", "kern.ipc.tls.stats.active",
	"kern.ipc.tls.stats.enable_calls", "kern.ipc.tls.stats.offload_total",
	"kern.ipc.tls.sw.gcm", "kern.ipc.tls.sw.cbc",
	"kern.ipc.tls.sw.chacha20",
};

static void
case_sysctl_enoent(void)
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
static void
case_sysctl_sizes(void)
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
static void
case_sysctl_enomem(void)
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
static void
case_sysctl_eperm(void)
{
	uint64_t big = 12345;
	int small = 0;

	settle();
	for (size_t i = 0; i < NELEM(known_counters); i++) {
		const char *n = known_counters[i];
		uint64_t before = ctr(n);

		errno = 0;
		CHECK(ktls_sysctl_set(n, &big, sizeof(big)) == -1 &&
		    errno == EPERM);
		errno = 0;
		CHECK(ktls_sysctl_set(n, &small, sizeof(small)) == -1 &&
		    errno == EPERM);
		CHECK(ctr(n) == before);
	}
}

/* kern.ipc.tls.maxlen: 1 .. 16384. */
/* autocork_us takes 0..100000 (microseconds); refused values change nothing. */
static void
case_sysctl_autocork_range(void)
{
	static const int good[] = { 0, 1, 2000, 100000, 0 };
	static const int badv[] = { -1, 100001, INT_MIN, INT_MAX };

	for (size_t i = 0; i < NELEM(good); i++) {
		CHECK(set_tunable("kern.ipc.tls.autocork_us", good[i]) == 0);
		CHECK(tunable("kern.ipc.tls.autocork_us") == good[i]);
	}
	for (size_t i = 0; i < NELEM(badv); i++) {
		errno = 0;
		CHECK(set_tunable("kern.ipc.tls.autocork_us", badv[i]) == -1 &&
		    errno == EINVAL);
		CHECK(tunable("kern.ipc.tls.autocork_us") == 0);
	}
}

static void
case_sysctl_maxlen_range(void)
{
	static const int good[] = { 1, 16384, 1000, 2, 16383 };
	static const int badv[] = { 0, 16385, -1, INT_MIN, INT_MAX, 32768 };

	for (size_t i = 0; i < NELEM(good); i++) {
		CHECK(set_tunable("kern.ipc.tls.maxlen", good[i]) == 0);
		CHECK(tunable("kern.ipc.tls.maxlen") == good[i]);
	}
	for (size_t i = 0; i < NELEM(badv); i++) {
		errno = 0;
		CHECK(set_tunable("kern.ipc.tls.maxlen", badv[i]) == -1 &&
		    errno == EINVAL);
		/* Refused: the last good value stays. */
		CHECK(tunable("kern.ipc.tls.maxlen") == 16383);
	}
	CHECK(set_tunable("kern.ipc.tls.maxlen", 16384) == 0);
	CHECK(tunable("kern.ipc.tls.maxlen") == 16384);
}

/* A new value of the wrong size: EINVAL, the value stays. */
static void
case_sysctl_newlen(void)
{
	static const size_t lens[] = { 0, 1, 3, 5, 8 };
	int64_t v8 = 1000;

	for (size_t i = 0; i < NELEM(known_tunables); i++) {
		int before = tunable(known_tunables[i]);

		for (size_t j = 0; j < NELEM(lens); j++) {
			errno = 0;
			CHECK(ktls_sysctl_set(known_tunables[i], &v8,
			    lens[j]) == -1 && errno == EINVAL);
			CHECK(tunable(known_tunables[i]) == before);
		}
	}
}

/* Every name, each readable with its size, each described. */
static void
case_sysctl_names(void)
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
case_maxlen_wire(const char *sname, int family, int maxlen,
    const size_t *w, int nw, const size_t *want, int nwant)
{
	struct fx_keys k;
	int fds[2];

	settle();
	CHECK(set_tunable("kern.ipc.tls.maxlen", maxlen) == 0);
	CHECK(tunable("kern.ipc.tls.maxlen") == maxlen);
	fx_keys_init(&k, suite(sname), 77);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	send_verify(fds, &k.en, w, nw, want, nwant, (uint32_t)maxlen);
	/* Back to the default whatever happened. */
	set_tunable("kern.ipc.tls.maxlen", TLS_MAX_MSG_SIZE_V10_2);
}

/* ---- 6. TCP_TXTLS_MODE ------------------------------------------------ */

static void
case_mode_get(int family)
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

static void
case_mode_get_short(void)
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
static void
case_mode_set(int family)
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
static void
case_kmode_refused(int family)
{
	static const size_t w[] = { 100, 20000 }, want[] = { 100, 16384, 3616 };
	const struct fx_suite *suites[] = { suite(GCM13), suite(GCM12),
	    suite(CHACHA13) };

	for (size_t i = 0; i < NELEM(suites); i++) {
		uint64_t failed = ctr("kern.ipc.tls.stats.switch_failed");
		uint64_t to_ifnet = ctr("kern.ipc.tls.stats.switch_to_ifnet");
		struct fx_keys k;
		int fds[2];

		CHECK(set_tunable("kern.ipc.tls.ifnet.permitted", 1) == 0);
		fx_keys_init(&k, suites[i], 5);
		REQUIRE(fx_tcp_pair(family, fds) == 0, );
		CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
		CHECK(ctr("kern.ipc.tls.ifnet.gcm") == 0);
		CHECK(ctr("kern.ipc.tls.ifnet.chacha20") == 0);
		CHECK(set_mode_err(fds[0], TCP_TLS_MODE_IFNET) == EOPNOTSUPP);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
		CHECK(ctr("kern.ipc.tls.stats.switch_failed") == failed + 1);
		CHECK(ctr("kern.ipc.tls.stats.switch_to_ifnet") ==
		    to_ifnet);
		CHECK(set_tunable("kern.ipc.tls.ifnet.permitted", 0) == 0);
		send_verify(fds, &k.en, w, NELEM(w), want, NELEM(want), 151);
	}
}

/* TCP_TXTLS_MODE on a socket with no session: nothing to set (EINVAL). */
static void
case_mode_set_plain(int family)
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
static void
case_rxtls(void)
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

/* ---- 8. passthrough --------------------------------------------------- */

/* r1/e1 from libc, r2/e2 from ktls: the same, and the errno wanted. */
static void
same(const char *what, ssize_t r1, int e1, ssize_t r2, int e2, int want)
{
	bool ok = r1 == -1 && e1 == want && r2 == r1 && e2 == e1;

	if (!ok)
		tap_diag("%s: libc %zd/%d, ktls %zd/%d, want -1/%d", what, r1,
		    e1, r2, e2, want);
	CHECK(ok);
}

#define SAME(what, libc_call, ktls_call, want) do {			\
	ssize_t r1_, r2_;						\
	int e1_, e2_;							\
									\
	errno = 0;							\
	r1_ = (ssize_t)(libc_call);					\
	e1_ = errno;							\
	errno = 0;							\
	r2_ = (ssize_t)(ktls_call);					\
	e2_ = errno;							\
	same(what, r1_, e1_, r2_, e2_, want);				\
} while (0)

/* Data calls on a plain TCP socket: libc's results, bytes as written. */
static void
case_pass_data(int family)
{
	enum { N = 1000 };
	uint8_t out[10 * N], in[10 * N + 16];
	struct iovec iov[3];
	struct msghdr msg;
	union {
		struct cmsghdr	hdr;
		uint8_t		buf[CMSG_SPACE(1)];
	} cm;
	size_t off = 0;
	ssize_t r1, r2, got;
	int fds[2], e1, e2;

	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	fx_pattern(out, sizeof(out), 151);
	/* write, each by libc then by ktls. */
	CHECK(write(fds[0], out + off, N) == N);
	off += N;
	CHECK(ktls_write(fds[0], out + off, N) == N);
	off += N;
	/* writev */
	iov[0] = (struct iovec){ out + off, 10 };
	iov[1] = (struct iovec){ out + off + 10, 0 };
	iov[2] = (struct iovec){ out + off + 10, N - 10 };
	CHECK(writev(fds[0], iov, 3) == N);
	off += N;
	iov[0] = (struct iovec){ out + off, 10 };
	iov[1] = (struct iovec){ out + off + 10, 0 };
	iov[2] = (struct iovec){ out + off + 10, N - 10 };
	CHECK(ktls_writev(fds[0], iov, 3) == N);
	off += N;
	/* send */
	CHECK(send(fds[0], out + off, N, MSG_NOSIGNAL) == N);
	off += N;
	CHECK(ktls_send(fds[0], out + off, N, MSG_NOSIGNAL) == N);
	off += N;
	/*
	 * sendmsg, with the TLS record type control message: on a plain
	 * socket ktls must not act on it, only hand it to the kernel, so
	 * whatever the kernel does with it, both calls do the same.
	 */
	memset(&cm, 0, sizeof(cm));
	cm.hdr.cmsg_level = IPPROTO_TCP;
	cm.hdr.cmsg_type = TLS_SET_RECORD_TYPE;
	cm.hdr.cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(&cm.hdr) = TLS_RLTYPE_HANDSHAKE;
	iov[0] = (struct iovec){ out + off, N };
	msg = (struct msghdr){ .msg_iov = iov, .msg_iovlen = 1,
	    .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	errno = 0;
	r1 = sendmsg(fds[0], &msg, 0);
	e1 = errno;
	if (r1 > 0)
		off += (size_t)r1;
	iov[0] = (struct iovec){ out + off, N };
	errno = 0;
	r2 = ktls_sendmsg(fds[0], &msg, 0);
	e2 = errno;
	if (r2 > 0)
		off += (size_t)r2;
	if (r1 != r2 || (r1 < 0 && e1 != e2))
		tap_diag("sendmsg with a cmsg: libc %zd/%d, ktls %zd/%d", r1,
		    e1, r2, e2);
	CHECK(r1 == r2 && (r1 >= 0 || e1 == e2));
	CHECK(off + N <= sizeof(out));
	iov[0] = (struct iovec){ out + off, N };
	msg.msg_control = NULL;
	msg.msg_controllen = 0;
	CHECK(ktls_sendmsg(fds[0], &msg, 0) == N);
	off += N;
	/* The peer gets exactly the bytes, in order, then EOF. */
	CHECK(ktls_shutdown(fds[0], SHUT_WR) == 0);
	got = read_to_eof(fds[1], in, sizeof(in), 5000);
	CHECK(got == (ssize_t)off);
	CHECK(got > 0 && memcmp(in, out, off) == 0);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

/* sendfile, with an offset pointer and with the file offset. */
static void
case_pass_sendfile(int family)
{
	enum { FLEN = 20000 };
	uint8_t fbuf[FLEN], in[FLEN + 16];
	int fds[2], ffd;
	off_t o;
	ssize_t got;

	fx_pattern(fbuf, FLEN, 161);
	ffd = fx_tmpfile(FLEN, 161);
	REQUIRE(ffd >= 0, );
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	o = 100;
	CHECK(sendfile(fds[0], ffd, &o, 4000) == 4000);
	CHECK(o == 4100);
	CHECK(ktls_sendfile(fds[0], ffd, &o, 4000) == 4000);
	CHECK(o == 8100);
	/* The file offset was not used... */
	CHECK(lseek(ffd, 0, SEEK_CUR) == 0);
	CHECK(lseek(ffd, 8100, SEEK_SET) == 8100);
	/* ...and now is, and advances. */
	CHECK(sendfile(fds[0], ffd, NULL, 5000) == 5000);
	CHECK(lseek(ffd, 0, SEEK_CUR) == 13100);
	/* Asking past the end: what the file has. */
	CHECK(ktls_sendfile(fds[0], ffd, NULL, 10000) == FLEN - 13100);
	CHECK(lseek(ffd, 0, SEEK_CUR) == FLEN);
	CHECK(ktls_sendfile(fds[0], ffd, NULL, 10000) == 0);
	CHECK(ktls_shutdown(fds[0], SHUT_WR) == 0);
	got = read_to_eof(fds[1], in, sizeof(in), 5000);
	CHECK(got == FLEN - 100);
	CHECK(got > 0 && memcmp(in, fbuf + 100, FLEN - 100) == 0);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
	close(ffd);
}

/* setsockopt/getsockopt of ordinary options: the kernel's answers. */
static void
case_pass_sockopt(int family)
{
	int fds[2], v, w, sz = 32768;
	socklen_t l1, l2;

	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(ktls_setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)) == 0);
	l1 = l2 = sizeof(v);
	CHECK(getsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &v, &l1) == 0);
	CHECK(ktls_getsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &w, &l2) == 0);
	/* Linux doubles it for bookkeeping: the kernel really got it. */
	CHECK(v == 2 * sz && w == v && l1 == l2 && l2 == sizeof(int));
	/* An IPPROTO_TCP option of Linux's goes to Linux too. */
	v = 1;
	CHECK(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_CORK, &v,
	    sizeof(v)) == 0);
	l2 = sizeof(w);
	CHECK(ktls_getsockopt(fds[0], IPPROTO_TCP, TCP_CORK, &w, &l2) == 0);
	CHECK(w == 1);
	v = 0;
	CHECK(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_CORK, &v,
	    sizeof(v)) == 0);
	/* Kernel errors come through unchanged. */
	l1 = l2 = sizeof(v);
	SAME("setsockopt(SO_SNDBUF, optlen 1)",
	    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sz, 1),
	    ktls_setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sz, 1), EINVAL);
	SAME("getsockopt(IPPROTO_TCP, 0x7777)",
	    getsockopt(fds[0], IPPROTO_TCP, 0x7777, &v, &l1),
	    ktls_getsockopt(fds[0], IPPROTO_TCP, 0x7777, &w, &l2),
	    ENOPROTOOPT);
	check_plain(fds[0], fds[1], 171);
	close(fds[0]);
	close(fds[1]);
}

/* Every call on a bad fd: what libc says, EBADF. */
static void
case_pass_badfd(void)
{
	uint8_t b[16] = { 0 };
	struct iovec iov = { b, sizeof(b) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int v = 4096, ffd = fx_tmpfile(100, 1);
	socklen_t l1, l2;
	off_t o1 = 0, o2 = 0;
	/* After ffd is open, so that it cannot take the closed number. */
	const int bad[] = { -1, closed_fd(), 1 << 20 };

	REQUIRE(ffd >= 0, );
	for (size_t i = 0; i < NELEM(bad); i++) {
		int fd = bad[i];

		SAME("write", write(fd, b, sizeof(b)),
		    ktls_write(fd, b, sizeof(b)), EBADF);
		SAME("writev", writev(fd, &iov, 1),
		    ktls_writev(fd, &iov, 1), EBADF);
		SAME("send", send(fd, b, sizeof(b), MSG_NOSIGNAL),
		    ktls_send(fd, b, sizeof(b), MSG_NOSIGNAL), EBADF);
		SAME("sendmsg", sendmsg(fd, &msg, MSG_NOSIGNAL),
		    ktls_sendmsg(fd, &msg, MSG_NOSIGNAL), EBADF);
		SAME("sendfile", sendfile(fd, ffd, &o1, 10),
		    ktls_sendfile(fd, ffd, &o2, 10), EBADF);
		CHECK(o1 == 0 && o2 == 0);
		SAME("shutdown", shutdown(fd, SHUT_WR),
		    ktls_shutdown(fd, SHUT_WR), EBADF);
		SAME("setsockopt(SO_SNDBUF)",
		    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)),
		    ktls_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)),
		    EBADF);
		l1 = l2 = sizeof(v);
		SAME("getsockopt(SO_SNDBUF)",
		    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l1),
		    ktls_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l2),
		    EBADF);
		/* Even ktls's own option: the kernel would say EBADF first. */
		l1 = l2 = sizeof(v);
		SAME("getsockopt(TCP_TXTLS_MODE)",
		    getsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &v, &l1),
		    ktls_getsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &v, &l2),
		    EBADF);
		SAME("close", close(fd), ktls_close(fd), EBADF);
	}
	close(ffd);
}

/* Calls on things that are not sockets, as libc. */
static void
case_pass_notsock(void)
{
	int p[2], v = 0;
	socklen_t l1, l2;

	REQUIRE(pipe(p) == 0, );
	SAME("shutdown(pipe)", shutdown(p[1], SHUT_WR),
	    ktls_shutdown(p[1], SHUT_WR), ENOTSOCK);
	SAME("send(pipe)", send(p[1], "x", 1, 0), ktls_send(p[1], "x", 1, 0),
	    ENOTSOCK);
	l1 = l2 = sizeof(v);
	SAME("getsockopt(pipe)", getsockopt(p[1], SOL_SOCKET, SO_TYPE, &v,
	    &l1), ktls_getsockopt(p[1], SOL_SOCKET, SO_TYPE, &v, &l2),
	    ENOTSOCK);
	SAME("setsockopt(pipe)", setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &v,
	    sizeof(v)), ktls_setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &v,
	    sizeof(v)), ENOTSOCK);
	/* And a shutdown "how" the kernel does not know. */
	{
		int fds[2];

		REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
		SAME("shutdown(how 7)", shutdown(fds[0], 7),
		    ktls_shutdown(fds[0], 7), EINVAL);
		check_plain(fds[0], fds[1], 181);
		close(fds[0]);
		close(fds[1]);
	}
	check_plain(p[1], p[0], 182);
	/* Bad arguments: the kernel's errors, unchanged. */
	{
		struct iovec iov = { (void *)"x", 1 };
		/* volatile: the compiler must not see the bad values. */
		volatile int neg = -1;
		void *volatile nul = NULL;
		int fds[2];

		REQUIRE(fx_tcp_pair(AF_INET6, fds) == 0, );
		SAME("writev(iovcnt -1)", writev(fds[0], &iov, neg),
		    ktls_writev(fds[0], &iov, neg), EINVAL);
		SAME("sendmsg(NULL)", sendmsg(fds[0], nul, MSG_NOSIGNAL),
		    ktls_sendmsg(fds[0], nul, MSG_NOSIGNAL), EFAULT);
		SAME("send(NULL, 10)", send(fds[0], nul, 10, MSG_NOSIGNAL),
		    ktls_send(fds[0], nul, 10, MSG_NOSIGNAL), EFAULT);
		SAME("write(NULL, 10)", write(fds[0], nul, 10),
		    ktls_write(fds[0], nul, 10), EFAULT);
		/* After SHUT_WR: EPIPE (SIGPIPE is ignored here). */
		CHECK(shutdown(fds[0], SHUT_WR) == 0);
		SAME("send after SHUT_WR", send(fds[0], "x", 1, MSG_NOSIGNAL),
		    ktls_send(fds[0], "x", 1, MSG_NOSIGNAL), EPIPE);
		SAME("write after SHUT_WR", write(fds[0], "x", 1),
		    ktls_write(fds[0], "x", 1), EPIPE);
		close(fds[0]);
		close(fds[1]);
	}
	CHECK(ktls_close(p[1]) == 0);
	CHECK(fcntl(p[1], F_GETFD) == -1 && errno == EBADF);
	close(p[0]);
}

/* ktls_close of a plain socket: closed at once, the peer sees EOF. */
static void
case_pass_close(int family)
{
	uint8_t in[400];
	int fds[2];

	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	check_plain(fds[0], fds[1], 191);
	CHECK(ktls_write(fds[0], "tail", 4) == 4);
	CHECK(ktls_close(fds[0]) == 0);
	errno = 0;
	CHECK(fcntl(fds[0], F_GETFD) == -1 && errno == EBADF);
	CHECK(read_to_eof(fds[1], in, sizeof(in), 5000) == 4 &&
	    memcmp(in, "tail", 4) == 0);
	close(fds[1]);
}

/*
 * After ktls_close of an enabled socket its number is free; a new socket
 * that gets the same number is an ordinary one.
 */
static void
case_pass_reuse(void)
{
	struct fx_keys k;
	int a[2], b[2];

	settle();
	fx_keys_init(&k, suite(GCM12), 0);
	REQUIRE(fx_tcp_pair(AF_INET, a) == 0, );
	CHECK(enable_err(a[0], &k.en, sizeof(k.en)) == 0);
	CHECK(ktls_close(a[0]) == 0);
	REQUIRE(fx_tcp_pair(AF_INET6, b) == 0, );
	if (b[0] != a[0] && b[1] != a[0])
		tap_diag("fd %d not reused (got %d, %d)", a[0], b[0], b[1]);
	CHECK(b[0] == a[0] || b[1] == a[0]);
	CHECK(mode_of(b[0]) == TCP_TLS_MODE_NONE);
	CHECK(mode_of(b[1]) == TCP_TLS_MODE_NONE);
	/* Whichever end got the number, it carries plain bytes. */
	check_plain(b[0], b[1], 201);
	check_plain(b[1], b[0], 202);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	CHECK(ctr_wait(ACTIVE, 0, 5000) == 0);
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], CHILD_ARG) == 0)
		return (child_report_enable());

	fx_watchdog(120);
	/* Nothing the peer closes may kill us: errors are checked instead. */
	signal(SIGPIPE, SIG_IGN);

	/* 1. Off by default; on by sysctl and by KTLS_ENABLE. */
	case_off_by_default();
	tap_result("kern.ipc.tls.enable is 0 under KTLS_ENABLE=0: enable "
	    "gives EOPNOTSUPP (IPv4, IPv6), socket stays plain");
	case_sysctl_turns_on();
	tap_result("kern.ipc.tls.enable set to 1: enable works, records "
	    "decrypt (IPv4, IPv6)");
	case_sysctl_turns_off();
	tap_result("kern.ipc.tls.enable set back to 0: EOPNOTSUPP again, "
	    "then 1 again works");
	case_env("1", 43);
	tap_result("re-exec with KTLS_ENABLE=1: the child reads 1 and can "
	    "enable");
	case_env("0", 40);
	tap_result("re-exec with KTLS_ENABLE=0: the child reads 0, "
	    "EOPNOTSUPP");
	case_env(NULL, 40);
	tap_result("re-exec without KTLS_ENABLE: off by default");

	/* 7. Option numbers. */
	case_opt_numbers();
	tap_result("TCP_TXTLS_*/TCP_RXTLS_* are > 0xff, FreeBSD's number in "
	    "the low byte, no Linux TCP option");
	for (size_t f = 0; f < NELEM(families); f++) {
		case_raw_kernel(families[f]);
		tap_result("%s: the kernel's own setsockopt/getsockopt "
		    "answer the ktls options with ENOPROTOOPT",
		    families_name[f]);
	}

	/* 3. Socket checks. */
	case_not_socket();
	tap_result("pipe and regular file: ENOTSOCK, writes pass through");
	case_bad_fd();
	tap_result("closed fd and -1: EBADF");
	for (size_t f = 0; f < NELEM(families); f++) {
		case_udp(families[f]);
		tap_result("%s connected UDP socket: EINVAL, untouched",
		    families_name[f]);
	}
	case_unix();
	tap_result("AF_UNIX stream socket: EINVAL, untouched");
	for (size_t f = 0; f < NELEM(families); f++) {
		case_unconnected(families[f]);
		tap_result("%s unconnected TCP socket: ENOTCONN",
		    families_name[f]);
		case_listening(families[f]);
		tap_result("%s listening TCP socket: ENOTCONN",
		    families_name[f]);
	}
	case_twice(GCM12, GCM12B, AF_INET);
	tap_result("enable twice: EALREADY, first session's keys still used "
	    "(IPv4, GCM then GCM)");
	case_twice(CBC10, CHACHA13, AF_INET6);
	tap_result("enable twice: EALREADY, first session's keys still used "
	    "(IPv6, CBC then ChaCha20)");

	for (size_t f = 0; f < NELEM(families); f++) {
		case_twice_dup(families[f]);
		tap_result("%s: enable through dup() of an enabled socket: "
		    "EALREADY, one session", families_name[f]);
	}

	/* 2. Bad struct tls_enable. */
	for (size_t i = 0; i < NELEM(bads); i++) {
		case_bad(&bads[i], families[i % 2], (uint32_t)(1000 + i));
		tap_result("EINVAL: %s (%s, %s); socket untouched, then the "
		    "right value works", bads[i].why, bads[i].suite,
		    families_name[i % 2]);
	}
	for (size_t f = 0; f < NELEM(families); f++) {
		case_efault(families[f]);
		tap_result("%s: optval NULL gives EFAULT; socket untouched",
		    families_name[f]);
	}

	/* 6. TCP_TXTLS_MODE, TCP_RXTLS_ENABLE. */
	for (size_t f = 0; f < NELEM(families); f++) {
		case_mode_get(families[f]);
		tap_result("%s: TCP_TXTLS_MODE reads NONE, then SW once "
		    "enabled; optlen sizeof(int)", families_name[f]);
	}
	case_mode_get_short();
	tap_result("getsockopt TCP_TXTLS_MODE with optlen < sizeof(int): "
	    "EINVAL");
	for (size_t f = 0; f < NELEM(families); f++) {
		case_mode_set(families[f]);
		tap_result("%s: set MODE SW 0, IFNET (CBC) EOPNOTSUPP, TOE, 7 "
		    "and -1 EINVAL; session unharmed", families_name[f]);
		case_kmode_refused(families[f]);
		tap_result("%s: no kTLS in this kernel: ifnet.permitted=1 "
		    "sessions start in SW; IFNET EOPNOTSUPP, switch_failed "
		    "counted; records valid", families_name[f]);
		case_mode_set_plain(families[f]);
		tap_result("%s: set MODE on a socket without session: "
		    "EINVAL", families_name[f]);
	}
	case_rxtls();
	tap_result("TCP_RXTLS_ENABLE: ENOPROTOOPT");

	/* 4. Counters. */
	case_enable_calls();
	tap_result("enable_calls +1 per call (refused too), offload_total "
	    "+1 per success");
	for (size_t f = 0; f < NELEM(families); f++) {
		case_active_drain(families[f]);
		tap_result("%s: active +1 on enable, kept while records are "
		    "queued after close, -1 once drained", families_name[f]);
	}
	case_sw_gauges();
	tap_result("sw.gcm, sw.cbc, sw.chacha20 count live sessions per "
	    "cipher class");
	case_threads();
	tap_result("stats.threads is the number of online CPUs");

	/* 5. The sysctl interface. */
	case_sysctl_enoent();
	tap_result("sysctl: unknown names give ENOENT, no description");
	case_sysctl_sizes();
	tap_result("sysctl: oldp NULL gives the size (4 tunables, 8 "
	    "counters)");
	case_sysctl_enomem();
	tap_result("sysctl: too small a buffer gives ENOMEM");
	case_sysctl_eperm();
	tap_result("sysctl: setting a counter gives EPERM");
	case_sysctl_maxlen_range();
	tap_result("sysctl: maxlen takes 1..16384, refuses 0, 16385, -1 "
	    "(EINVAL)");
	case_sysctl_autocork_range();
	tap_result("sysctl: autocork_us takes 0..100000, refuses -1, 100001 "
	    "(EINVAL)");
	case_sysctl_newlen();
	tap_result("sysctl: a new value of the wrong size gives EINVAL");
	case_sysctl_names();
	tap_result("sysctl: every name enumerated, under kern.ipc.tls., "
	    "readable, described");
	{
		static const size_t w1[] = { 2500 }, r1[] = { 1000, 1000, 500 };
		static const size_t w2[] = { 3 }, r2[] = { 1, 1, 1 };
		static const size_t w3[] = { 16385 }, r3[] = { 16384, 1 };

		case_maxlen_wire(GCM12, AF_INET, 1000, w1, 1, r1, 3);
		tap_result("maxlen 1000: 2500 bytes leave as 1000, 1000, 500 "
		    "(TLS 1.2 GCM, IPv4)");
		case_maxlen_wire(CBC10, AF_INET6, 1000, w1, 1, r1, 3);
		tap_result("maxlen 1000: 2500 bytes leave as 1000, 1000, 500 "
		    "(TLS 1.0 CBC, IPv6)");
		case_maxlen_wire(CHACHA13, AF_INET, 1, w2, 1, r2, 3);
		tap_result("maxlen 1: 3 bytes leave as three records");
		case_maxlen_wire(GCM13, AF_INET6, 16384, w3, 1, r3, 2);
		tap_result("maxlen restored to 16384: 16385 bytes leave as "
		    "16384, 1");
		set_tunable("kern.ipc.tls.maxlen", TLS_MAX_MSG_SIZE_V10_2);
	}

	/* 8. Passthrough. */
	for (size_t f = 0; f < NELEM(families); f++) {
		case_pass_data(families[f]);
		tap_result("%s plain socket: write, writev, send, sendmsg, "
		    "shutdown as libc, bytes unchanged", families_name[f]);
		case_pass_sendfile(families[f]);
		tap_result("%s plain socket: sendfile as libc (offsets, "
		    "bytes)", families_name[f]);
		case_pass_sockopt(families[f]);
		tap_result("%s plain socket: setsockopt/getsockopt as libc",
		    families_name[f]);
		case_pass_close(families[f]);
		tap_result("%s plain socket: ktls_close closes, peer sees "
		    "EOF", families_name[f]);
	}
	case_pass_badfd();
	tap_result("bad fds: every call -1/EBADF, as libc");
	case_pass_notsock();
	tap_result("pipes and bad arguments: the same errors as libc");
	case_pass_reuse();
	tap_result("a new socket on the number of a closed enabled one is "
	    "plain");

	return (tap_done());
}
