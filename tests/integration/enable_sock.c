/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The socket checks of TCP_TXTLS_ENABLE: ENOTSOCK, EBADF, EINVAL (not
 * TCP), ENOTCONN, EALREADY.  (Common parts: enable_common.h.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "enable_common.h"

CASE(case_not_socket, "pipe and regular file: ENOTSOCK, writes pass through")
{
	struct fx_keys k;
	uint8_t out[100], in[100];
	uint64_t active0, offload0;
	int p[2], ffd;

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
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
	CHECK(fx_sysctl_u64(ACTIVE) == active0);
	CHECK(fx_sysctl_u64(OFFLOAD) == offload0);
}

CASE(case_bad_fd, "closed fd and -1: EBADF")
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

FAMILY_CASE(case_udp, family, "%s connected UDP socket: EINVAL, untouched")
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
	fx_keys_init(&k, suite(GCM13), 0);
	REQUIRE(udp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EINVAL);
	check_untouched(fds, active0, offload0, 101);
	close(fds[0]);
	close(fds[1]);
}

CASE(case_unix, "AF_UNIX stream socket: EINVAL, untouched")
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
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

FAMILY_CASE(case_unconnected, family, "%s unconnected TCP socket: ENOTCONN")
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fd, fresh;

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
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
	CHECK(fx_sysctl_u64(ACTIVE) == active0);
	CHECK(fx_sysctl_u64(OFFLOAD) == offload0);
}

FAMILY_CASE(case_listening, family, "%s listening TCP socket: ENOTCONN")
{
	struct fx_keys k;
	uint64_t active0, offload0;
	int fd;

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
	fx_keys_init(&k, suite(GCM13), 0);
	fd = tcp_bound(family, true);
	REQUIRE(fd >= 0, );
	CHECK(enable_err(fd, &k.en, sizeof(k.en)) == ENOTCONN);
	CHECK(mode_of(fd) == TCP_TLS_MODE_NONE);
	CHECK(fx_sysctl_u64(ACTIVE) == active0);
	CHECK(fx_sysctl_u64(OFFLOAD) == offload0);
	close(fd);
}

/*
 * Enabling twice: EALREADY, whatever the second struct says, and the
 * first session goes on untouched: what is written afterwards decrypts
 * with the first keys, from the first sequence number.
 */
static void
twice(const char *first, const char *second, int family)
{
	static const size_t w[] = { 5000, 20000 }, want[] = { 5000, 16384,
	    3616 };
	struct fx_keys k1, k2;
	uint64_t active0, offload0;
	int fds[2];

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
	fx_keys_init(&k1, suite(first), 0x1000);
	fx_keys_init(&k2, suite(second), 0x2000);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(enable_err(fds[0], &k1.en, sizeof(k1.en)) == 0);
	CHECK(enable_err(fds[0], &k2.en, sizeof(k2.en)) == EALREADY);
	CHECK(enable_err(fds[0], &k1.en, sizeof(k1.en)) == EALREADY);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(fx_sysctl_u64(ACTIVE) == active0 + 1);
	CHECK(fx_sysctl_u64(OFFLOAD) == offload0 + 1);
	send_verify(fds, &k1.en, w, 2, want, 3, 121);
}

/* Which suites, on which family, and the case's name. */
static const struct {
	const char	*first;
	const char	*second;
	int		family;
	const char	*name;
} twice_cases[] = {
	{ GCM12, GCM12B, AF_INET, "enable twice: EALREADY, first session's "
	    "keys still used (IPv4, GCM then GCM)" },
	{ CBC10, CHACHA13, AF_INET6, "enable twice: EALREADY, first "
	    "session's keys still used (IPv6, CBC then ChaCha20)" },
};

static void
case_twice(void)
{
	for (size_t i = 0; i < NELEM(twice_cases); i++) {
		twice(twice_cases[i].first, twice_cases[i].second,
		    twice_cases[i].family);
		tap_result("%s", twice_cases[i].name);
	}
}

/*
 * Enabling twice through another descriptor of the same socket (dup(2)):
 * the session belongs to the socket, not to the number (FreeBSD keeps it
 * in so_snd), so this is enabling twice too.  A second session would put
 * records with other keys and their own sequence numbers on the same
 * stream.
 */
FAMILY_CASE(case_twice_dup, family,
    "%s: enable through dup() of an enabled socket: EALREADY, one "
    "session")
{
	static const size_t w[] = { 4000 }, want[] = { 4000 };
	struct fx_keys k1, k2;
	uint64_t active0, offload0;
	int fds[2], d, e;

	active0 = settle();
	offload0 = fx_sysctl_u64(OFFLOAD);
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
	CHECK(fx_sysctl_u64(ACTIVE) == active0 + 1);
	CHECK(fx_sysctl_u64(OFFLOAD) == offload0 + 1);
	/* ktls_close: the dup's session too, if the engine made one. */
	CHECK(ktls_close(d) == 0);
	send_verify(fds, &k1.en, w, 1, want, 1, 125);
}

int
main(void)
{
	enable_begin(true);
	case_not_socket();
	case_bad_fd();
	for (size_t f = 0; f < NELEM(families); f++)
		case_udp(families[f]);
	case_unix();
	for (size_t f = 0; f < NELEM(families); f++) {
		case_unconnected(families[f]);
		case_listening(families[f]);
	}
	case_twice();
	for (size_t f = 0; f < NELEM(families); f++)
		case_twice_dup(families[f]);
	return (tap_done());
}
