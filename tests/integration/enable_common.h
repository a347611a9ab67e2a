/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the enable_*.c programs share.  They test enabling ktls on a
 * socket, and everything around it, over real loopback TCP connections
 * (127.0.0.1 and ::1), one topic each:
 *
 *  enable_onoff.c	kern.ipc.tls.enable is off by default (EOPNOTSUPP)
 *			and KTLS_ENABLE=1 in the environment, or the
 *			sysctl, turns it on;
 *  enable_args.c	every bad struct tls_enable is refused with EINVAL
 *			(EFAULT for a NULL optval) and leaves the socket
 *			exactly as it was;
 *  enable_sock.c	the socket checks: ENOTSOCK, EINVAL, ENOTCONN,
 *			EALREADY;
 *  enable_counters.c	the kern.ipc.tls.stats.* and sw.* counters an
 *			enable moves;
 *  enable_sysctl.c	the sysctl interface itself, and kern.ipc.tls.maxlen
 *			on the wire;
 *  enable_mode.c	TCP_TXTLS_MODE and TCP_RXTLS_ENABLE;
 *  enable_opts.c	the option numbers are unknown to Linux's own
 *			IPPROTO_TCP level;
 *  enable_passthrough.c on an fd ktls does not manage every call is
 *			libc's (invariant 6).
 *
 * Records are checked with the fixture's receiver, which decrypts with
 * tlsdec (no code shared with the engine).
 *
 * tap.h keeps its state in each program file, so a CHECK in another
 * object would fail no case: the helpers that CHECK (check_plain,
 * check_untouched, send_verify) are static inline here, the others are in
 * enable_common.c.
 */
#ifndef KTLS_ENABLE_COMMON_H
#define KTLS_ENABLE_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"

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

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* AF_INET and AF_INET6, and their names in the cases' names. */
extern const int families[2];
extern const char *const families_name[2];

/*
 * A case and its name together: CASE(case_x, "name") { body } defines
 * case_x(void), which runs the body and then reports it as "name" (also
 * when a REQUIRE returns from the body early).  FAMILY_CASE(case_x,
 * family, "%s: name") { body } does the same for case_x(int family), the
 * family's name ("IPv4", "IPv6") in the place of the %s.
 */
#define CASE(fn, name)							\
static void fn##_body(void);						\
static void								\
fn(void)								\
{									\
	fn##_body();							\
	tap_result("%s", (name));					\
}									\
static void								\
fn##_body(void)

#define FAMILY_CASE(fn, family, fmt)					\
static void fn##_body(int);						\
static void								\
fn(int family)								\
{									\
	fn##_body(family);						\
	tap_result((fmt), family_name(family));				\
}									\
static void								\
fn##_body(int family)

/* Every program: a watchdog, SIGPIPE ignored; on: kern.ipc.tls.enable 1. */
void	enable_begin(bool on);

const char *family_name(int family);
const struct fx_suite *suite(const char *name);

/* Counters and tunables: fx_sysctl_u64, fx_sysctl_int, fx_sysctl_set_int. */
/* Poll a counter until it reads want, for at most about ms milliseconds. */
uint64_t ctr_wait(const char *name, uint64_t want, unsigned int ms);
/* No session left over from the case before (its count, 0 if none). */
uint64_t settle(void);

/* ktls_setsockopt(TCP_TXTLS_ENABLE): 0, or the errno it failed with. */
int	enable_err(int fd, const void *en, socklen_t len);
/* ktls_setsockopt(TCP_TXTLS_MODE, v): 0, or the errno. */
int	set_mode_err(int fd, int v);
/* TCP_TXTLS_MODE of fd, -1 if the call fails or returns a bad length. */
int	mode_of(int fd);

/* A number with nothing open behind it. */
int	closed_fd(void);
/* Read exactly len bytes, waiting at most ms for each piece. */
int	read_exact(int fd, void *buf, size_t len, int ms);
/* Nothing more arrives within ms (a TLS header or trailer would). */
bool	peer_quiet(int fd, int ms);
/* The sequence number of en's first record. */
uint64_t rec_seq_of(const struct tls_enable *en);

/*
 * wfd carries plain bytes: what ktls_write takes goes out as it is and rfd
 * reads exactly those bytes, nothing more (a record would add a header and
 * a tag, and its body would not match).
 */
static inline void
check_plain(int wfd, int rfd, uint32_t seed)
{
	uint8_t out[300], in[300];

	fx_pattern(out, sizeof(out), seed);
	CHECK(ktls_write(wfd, out, sizeof(out)) == (ssize_t)sizeof(out));
	CHECK(read_exact(rfd, in, sizeof(in), 5000) == 0 &&
	    memcmp(in, out, sizeof(out)) == 0);
	CHECK(peer_quiet(rfd, 50));
}

/*
 * After a refused enable the socket is exactly as before: mode NONE, no
 * session counted, bytes go out plain.
 */
static inline void
check_untouched(int fds[2], uint64_t active0, uint64_t offload0,
    uint32_t seed)
{
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
	CHECK(fx_sysctl_u64(ACTIVE) == active0);
	CHECK(fx_sysctl_u64(OFFLOAD) == offload0);
	check_plain(fds[0], fds[1], seed);
}

/*
 * On an enabled fds[0] (keys en): the receiver decrypts while the writes go
 * out, then ktls_close; the records must have exactly the payload lengths
 * want[], consecutive sequence numbers from en's, and carry the bytes
 * written, in order.  Closes both fds.
 */
static inline void
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

#endif /* KTLS_ENABLE_COMMON_H */
