/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The interposer, as a program that knows nothing of ktls sees it: it is
 * run with LD_PRELOAD=libktls-preload.so and calls libc's names only
 * (setsockopt, write, sendmsg, sendfile, dup, close...).  Linux's kTLS
 * socket API must work as on a kernel with kTLS, every byte on the wire
 * must be records that tlsdec (OpenSSL EVP, no engine code) decrypts, the
 * errors must be Linux's, and plain sockets must be untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "fixture.h"
#include "linux_info.h"
#include "tap.h"

/* OpenSSL's control messages: a record type at level SOL_TLS. */
static ssize_t
send_typed_flags(int fd, const void *buf, size_t len, uint8_t type, int flags)
{
	union {
		struct cmsghdr	h;
		uint8_t		b[CMSG_SPACE(1)];
	} cm;
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };

	memset(&cm, 0, sizeof(cm));
	cm.h.cmsg_level = SOL_TLS;
	cm.h.cmsg_type = TLS_SET_RECORD_TYPE;
	cm.h.cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(&cm.h) = type;
	return (sendmsg(fd, &msg, flags));
}

static ssize_t
send_typed(int fd, const void *buf, size_t len, uint8_t type)
{
	return (send_typed_flags(fd, buf, len, type, 0));
}

static int
ulp(int fd)
{
	return (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")));
}

static int
err_of(int r)
{
	return (r == 0 ? 0 : errno);
}

/* Every way of writing, through libc's names, on one Linux kTLS socket. */
static void
case_suite(const struct fx_lsuite *ls, int family)
{
	union ktls_linux_crypto_info ci, back;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t buf[70000], *got, fbuf[20000];
	size_t glen, off = 0;
	socklen_t blen;
	int fds[2], ffd, d;
	uint8_t types[16];
	int ntypes = 0;

	fx_pattern(buf, sizeof(buf), 3);
	fx_lsuite_keys(ls, 1000, &ci, &k);
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	CHECK(ulp(fds[0]) == 0);
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, ls->l->size) == 0);
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );

	CHECK(write(fds[0], buf, 16385) == 16385);	/* 2 records */
	off += 16385;
	CHECK(send(fds[0], buf + off, 100, 0) == 100);
	off += 100;
	struct iovec iov[2] = { { buf + off, 10 }, { buf + off + 10, 20 } };
	CHECK(writev(fds[0], iov, 2) == 30);
	off += 30;
	CHECK(send_typed(fds[0], buf + off, 50, TLS_RLTYPE_ALERT) == 50);
	off += 50;
	fx_pattern(fbuf, sizeof(fbuf), 4);
	ffd = fx_tmpfile(sizeof(fbuf), 4);
	off_t foff = 0;
	CHECK(sendfile(fds[0], ffd, &foff, sizeof(fbuf)) == (ssize_t)sizeof(fbuf));
	close(ffd);
	/* A descriptor made by dup() writes into the same session. */
	d = dup(fds[0]);
	CHECK(d >= 0 && write(d, buf + off, 7) == 7);
	off += 7;

	/* Read back: the sequence advanced by the 6 records sent so far... */
	memset(&back, 0, sizeof(back));
	blen = ls->l->size;
	CHECK(getsockopt(fds[0], SOL_TLS, TLS_TX, &back, &blen) == 0);
	CHECK(blen == ls->l->size);
	CHECK(back.info.version == ls->version &&
	    back.info.cipher_type == ls->l->cipher_type);
	uint8_t *rs = ls->l->cipher_type == TLS_CIPHER_CHACHA20_POLY1305 ?
	    back.chacha.rec_seq : ls->l->cipher_type == TLS_CIPHER_AES_GCM_256 ?
	    back.g256.rec_seq : back.g128.rec_seq;
	uint64_t seq = 0;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | rs[i];
	/* 2 + 1 + 1 + 1 + 2 (sendfile 20000) + 1 (dup) = 8 records */
	CHECK(seq == 1000 + 8);
	/* ...and the key is the one given. */
	CHECK(memcmp(back.g128.key, ci.g128.key, 16) == 0);
	/* Only the common header when asked for just that. */
	blen = sizeof(struct tls_crypto_info);
	CHECK(getsockopt(fds[0], SOL_TLS, TLS_TX, &back, &blen) == 0 &&
	    blen == sizeof(struct tls_crypto_info));
	blen = ls->l->size - 1;
	CHECK(getsockopt(fds[0], SOL_TLS, TLS_TX, &back, &blen) == -1 &&
	    errno == EINVAL);
	/* Keys once: Linux says EBUSY. */
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, ls->l->size) == -1 &&
	    errno == EBUSY);

	CHECK(close(fds[0]) == 0);	/* the dup keeps the session */
	CHECK(write(d, buf + off, 3) == 3);
	CHECK(close(d) == 0);
	fx_rx_join(&rx);
	if (rx.dec_failed)
		tap_diag("decrypt: %s", rx.dec_error);
	CHECK(!rx.dec_failed && rx.read_errno == 0);
	CHECK(rx.nrecs == 9);
	for (size_t i = 0; i < rx.nrecs && ntypes < 16; i++)
		types[ntypes++] = rx.recs[i].type;
	CHECK(ntypes == 9 && types[4] == TLS_RLTYPE_ALERT &&
	    types[0] == TLS_RLTYPE_APP);
	got = fx_rx_appdata(&rx, &glen);
	/* App data: buf[0..16515), fbuf, buf[16565..16575). */
	CHECK(glen == 16515 + sizeof(fbuf) + 10);
	if (glen == 16515 + sizeof(fbuf) + 10) {
		CHECK(memcmp(got, buf, 16515) == 0);
		CHECK(memcmp(got + 16515, fbuf, sizeof(fbuf)) == 0);
		CHECK(memcmp(got + 16515 + sizeof(fbuf), buf + 16565, 10) == 0);
	}
	free(got);
	fx_rx_free(&rx);
	close(fds[1]);
}

/* Linux's errors, as net/tls/tls_main.c gives them. */
static void
case_errors(void)
{
	const struct fx_lsuite ls = fx_lsuite_by_name("TLS1.2-AES-128-GCM");
	union ktls_linux_crypto_info ci;
	struct fx_keys k;
	int fds[2], u, t, v;
	socklen_t len;

	fx_lsuite_keys(&ls, 0, &ci, &k);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	/* SOL_TLS before the ULP: the kernel does not know the level. */
	CHECK(err_of(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci,
	    ls.l->size)) == ENOPROTOOPT);
	/* An unconnected TCP socket takes no ULP. */
	t = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(err_of(ulp(t)) == ENOTCONN);
	close(t);
	/* Not TCP: the kernel's own answer. */
	u = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(err_of(ulp(u)) == ENOPROTOOPT);
	close(u);
	CHECK(ulp(fds[0]) == 0);
	CHECK(err_of(ulp(fds[0])) == EEXIST);
	/* getsockopt(TCP_ULP) names it. */
	char name[16] = { 0 };
	len = sizeof(name);
	CHECK(getsockopt(fds[0], SOL_TCP, TCP_ULP, name, &len) == 0 &&
	    strcmp(name, "tls") == 0);
	/* Before TLS_TX: nothing to read back. */
	len = ls.l->size;
	CHECK(err_of(getsockopt(fds[0], SOL_TLS, TLS_TX, &ci, &len)) == EBUSY);
	/* Bad version, cipher (CCM is not served), length. */
	ci.info.version = 0x0302;
	CHECK(err_of(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci,
	    ls.l->size)) == EINVAL);
	ci.info.version = TLS_1_2_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_CCM_128;
	CHECK(err_of(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci,
	    sizeof(struct tls12_crypto_info_aes_ccm_128))) == EINVAL);
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	CHECK(err_of(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci,
	    ls.l->size - 1)) == EINVAL);
	CHECK(err_of(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, 2)) == EINVAL);
	/* Receive offload is not there: OpenSSL keeps receiving itself. */
	CHECK(err_of(setsockopt(fds[0], SOL_TLS, TLS_RX, &ci,
	    ls.l->size)) == ENOPROTOOPT);
	v = 1;
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX_ZEROCOPY_RO, &v,
	    sizeof(v)) == 0);
	/* Nothing half-done: the socket still takes its keys. */
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, ls.l->size) == 0);
	close(fds[0]);
	close(fds[1]);
	tap_result("Linux errors: ENOPROTOOPT without ULP or for TLS_RX, "
	    "ENOTCONN, EEXIST, EBUSY before keys, EINVAL for version, cipher "
	    "and length");
}

/* A socket that never enables TLS: bytes and options untouched. */
static void
case_passthrough(void)
{
	uint8_t out[5000], in[5000];
	int fds[2], one = 1, v = 0;
	socklen_t len = sizeof(v);
	size_t got = 0;
	ssize_t n;

	fx_pattern(out, sizeof(out), 8);
	REQUIRE(fx_tcp_pair(AF_INET6, fds) == 0, );
	CHECK(setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == 0);
	CHECK(getsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 &&
	    v == 1);
	CHECK(write(fds[0], out, 1000) == 1000);
	CHECK(send(fds[0], out + 1000, 4000, MSG_NOSIGNAL) == 4000);
	CHECK(shutdown(fds[0], SHUT_WR) == 0);
	while (got < sizeof(in) && (n = read(fds[1], in + got,
	    sizeof(in) - got)) > 0)
		got += (size_t)n;
	CHECK(got == sizeof(out) && memcmp(in, out, got) == 0);
	CHECK(close(fds[0]) == 0 && close(fds[1]) == 0);
	CHECK(close(fds[0]) == -1 && errno == EBADF);
	tap_result("a socket that never enables TLS: bytes and options as "
	    "libc's");
}

/* dup2, dup3 and fcntl(F_DUPFD_CLOEXEC) carry the session; the last close ends it. */
static void
case_dups(void)
{
	const struct fx_lsuite ls = fx_lsuite_by_name("TLS1.3-AES-128-GCM");
	union ktls_linux_crypto_info ci;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t buf[300];
	int fds[2], a, b, c, spare, spare2;
	uint64_t act0 = fx_sysctl_u64("kern.ipc.tls.stats.active");

	fx_pattern(buf, sizeof(buf), 9);
	fx_lsuite_keys(&ls, 0, &ci, &k);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(ulp(fds[0]) == 0);
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, ls.l->size) == 0);
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
	spare = socket(AF_INET, SOCK_STREAM, 0);
	/*
	 * dup3's target is a number of ours: spare + 1 could be one the
	 * engine's threads are allocating right now (dup3 then says EBUSY).
	 */
	spare2 = socket(AF_INET, SOCK_STREAM, 0);
	a = dup2(fds[0], spare);		/* over an open fd */
	CHECK(a == spare);
	b = dup3(fds[0], spare2, O_CLOEXEC);
	CHECK(b == spare2);
	c = fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.active") == act0 + 1);
	CHECK(write(a, buf, 100) == 100);
	CHECK(write(b, buf + 100, 100) == 100);
	CHECK(write(c, buf + 200, 100) == 100);
	/* Enabling again through a copy: the socket has its session. */
	CHECK(err_of(setsockopt(c, SOL_TLS, TLS_TX, &ci, ls.l->size)) ==
	    EBUSY);
	close(fds[0]);
	close(a);
	close(b);
	/* c still holds it */
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.active") == act0 + 1);
	close(c);
	fx_rx_join(&rx);
	CHECK(!rx.dec_failed && rx.bytes == 300 && rx.nrecs == 3);
	size_t glen;
	uint8_t *got = fx_rx_appdata(&rx, &glen);
	CHECK(glen == 300 && memcmp(got, buf, 300) == 0);
	free(got);
	fx_rx_free(&rx);
	close(fds[1]);
	for (int i = 0; i < 200 &&
	    fx_sysctl_u64("kern.ipc.tls.stats.active") != act0; i++)
		usleep(10000);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.active") == act0);
	tap_result("dup2 over an open fd, dup3, F_DUPFD_CLOEXEC write into one "
	    "session; it ends with its last descriptor");
}

/*
 * MSG_MORE: the tail waits in an open record that later sends fill; a send
 * without it, a record of another type, or close() ends the record.
 */
static void
case_msg_more(void)
{
	static const size_t want[] = { 350, 16384, 3626, 5, 1, 10, 3, 16384,
	    7 };
	const struct fx_lsuite ls = fx_lsuite_by_name("TLS1.3-AES-128-GCM");
	union ktls_linux_crypto_info ci;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t buf[40000];
	int fds[2];
	size_t off = 0;

	fx_pattern(buf, sizeof(buf), 12);
	fx_lsuite_keys(&ls, 0, &ci, &k);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(ulp(fds[0]) == 0);
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, ls.l->size) == 0);
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
#define SEND(n, fl) do {						\
	CHECK(send(fds[0], buf + off, (n), (fl)) == (ssize_t)(n));	\
	off += (n);							\
} while (0)
	SEND(100, MSG_MORE);
	SEND(200, MSG_MORE);
	SEND(50, 0);			/* 350 */
	SEND(20000, MSG_MORE);		/* 16384, 3616 open */
	SEND(10, 0);			/* 3626 */
	SEND(5, MSG_MORE);		/* closed by the alert: 5 */
	CHECK(send_typed(fds[0], buf + off, 1, TLS_RLTYPE_ALERT) == 1);
	off += 1;
	/* As Linux: a record type refuses MSG_MORE; any one ends the record. */
	SEND(10, MSG_MORE);
	errno = 0;
	CHECK(send_typed_flags(fds[0], buf + off, 3, TLS_RLTYPE_APP,
	    MSG_MORE) == -1 && errno == EINVAL);
	CHECK(send_typed(fds[0], buf + off, 3, TLS_RLTYPE_APP) == 3);
	off += 3;			/* 10, 3 */
	SEND(16384 + 7, MSG_MORE);	/* 16384, 7 open until close */
#undef SEND
	CHECK(close(fds[0]) == 0);
	fx_rx_join(&rx);
	CHECK(!rx.dec_failed);
	CHECK(rx.nrecs == sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < rx.nrecs && i < sizeof(want) / sizeof(want[0]);
	    i++) {
		if (rx.recs[i].len != want[i])
			tap_diag("record %zu: %zu bytes, want %zu", i,
			    rx.recs[i].len, want[i]);
		CHECK(rx.recs[i].len == want[i]);
	}
	CHECK(rx.nrecs > 4 && rx.recs[4].type == TLS_RLTYPE_ALERT);
	CHECK(rx.nrecs > 6 && rx.recs[6].type == TLS_RLTYPE_APP);
	size_t glen;
	uint8_t *all = malloc(off), *p = all;
	for (size_t i = 0; i < rx.nrecs; i++) {
		if (p + rx.recs[i].len > all + off)
			break;
		memcpy(p, rx.recs[i].data, rx.recs[i].len);
		p += rx.recs[i].len;
	}
	glen = (size_t)(p - all);
	CHECK(glen == off && memcmp(all, buf, off) == 0);
	free(all);
	fx_rx_free(&rx);
	close(fds[1]);
	tap_result("MSG_MORE: the tail waits in an open record; a send "
	    "without it, a record-type message (any type, as Linux) or "
	    "close() ends it; a record type with MSG_MORE is EINVAL");
}

/*
 * exec: the new image would have the socket but not the engine.  A child
 * execs a shell that writes plaintext to its copy (fd 9) of an enabled socket;
 * the stream must stay records only: the descriptor is closed on exec.
 */
static void
case_exec(void)
{
	const struct fx_lsuite ls = fx_lsuite_by_name("TLS1.2-AES-128-GCM");
	union ktls_linux_crypto_info ci;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t buf[3000];
	int fds[2], status;
	pid_t pid;

	fx_pattern(buf, sizeof(buf), 13);
	fx_lsuite_keys(&ls, 0, &ci, &k);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(ulp(fds[0]) == 0);
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, ls.l->size) == 0);
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
	CHECK(write(fds[0], buf, 1000) == 1000);
	if ((pid = fx_fork()) == 0) {
		close(fds[1]);
		if (dup2(fds[0], 9) != 9)
			_exit(2);
		execl("/bin/sh", "sh", "-c",
		    "printf PLAINTEXT-ON-THE-WIRE >&9 2>/dev/null; exit 0",
		    (char *)NULL);
		_exit(3);
	}
	REQUIRE(pid > 0, );
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0);
	CHECK(write(fds[0], buf + 1000, 2000) == 2000);
	CHECK(close(fds[0]) == 0);
	fx_rx_join(&rx);
	if (rx.dec_failed)
		tap_diag("decrypt: %s", rx.dec_error);
	CHECK(!rx.dec_failed && rx.bytes == sizeof(buf));
	size_t glen;
	uint8_t *got = fx_rx_appdata(&rx, &glen);
	CHECK(glen == sizeof(buf) && memcmp(got, buf, glen) == 0);
	free(got);
	fx_rx_free(&rx);
	close(fds[1]);
	tap_result("exec: an enabled socket is closed in the new image; no "
	    "plaintext reaches the stream");
}

/* FreeBSD's option through the same interposer. */
static void
case_freebsd(void)
{
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	int fds[2];

	REQUIRE(fx_enabled_pair(AF_INET, "TLS1.2-AES-256-CBC-SHA384", 5, &k,
	    fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
	CHECK(write(fds[0], "hello", 5) == 5);
	close(fds[0]);
	fx_rx_join(&rx);
	CHECK(!rx.dec_failed && rx.bytes == 5 && rx.nrecs == 1 &&
	    rx.recs[0].seq == 5);
	fx_rx_free(&rx);
	close(fds[1]);
	tap_result("FreeBSD's TCP_TXTLS_ENABLE through setsockopt(2)");
}

/* Wire bytes waiting in a socket's receive queue. */
static int
unread(int fd)
{
	int n = -1;

	CHECK(ioctl(fd, FIONREAD, &n) == 0);
	return (n);
}

/*
 * Autocork under the interposer (the test runs with KTLS_AUTOCORK_US=
 * 100000): a small write's record is held, and each call through which
 * the writing thread may wait sends it first, so the peer can read it
 * when that call returns: poll, ppoll, select, epoll_wait, read (of
 * another file), recv, nanosleep.  Then the stream decrypts, in order.
 */
static void
case_autocork(void)
{
	static const char *const waits[] = { "poll", "ppoll", "select",
	    "epoll_wait", "read", "recv", "nanosleep" };
	const int nw = (int)(sizeof(waits) / sizeof(waits[0]));
	const struct fx_lsuite ls = fx_lsuite_by_name("TLS1.3-AES-128-GCM");
	union ktls_linux_crypto_info ci;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	struct pollfd pfd;
	struct epoll_event ev = { .events = EPOLLIN };
	struct timespec zero = { 0, 0 };
	struct timeval tv0 = { 0, 0 };
	uint8_t buf[50 * 7], c;
	fd_set rs;
	int fds[2], pfds[2], ep, have = 0, n, held = 0;

	fx_pattern(buf, sizeof(buf), 21);
	fx_lsuite_keys(&ls, 0, &ci, &k);	/* TLS 1.3: 22 bytes a record */
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	REQUIRE(pipe(pfds) == 0, );
	REQUIRE((ep = epoll_create1(0)) >= 0, );
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[1], &ev) == 0);
	CHECK(ulp(fds[0]) == 0);
	CHECK(setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, ls.l->size) == 0);
	for (int i = 0; i < nw; i++) {
		fx_sleep_ms(2);		/* a quiet spell: the write is small */
		CHECK(write(fds[0], buf + 50 * i, 50) == 50);
		if (unread(fds[1]) == have)
			held++;
		pfd = (struct pollfd){ .fd = fds[1], .events = POLLIN };
		FD_ZERO(&rs);
		FD_SET(fds[1], &rs);
		switch (i) {
		case 0:
			CHECK(poll(&pfd, 1, 0) == 1);
			break;
		case 1:
			CHECK(ppoll(&pfd, 1, &zero, NULL) == 1);
			break;
		case 2:
			CHECK(select(fds[1] + 1, &rs, NULL, NULL, &tv0) == 1);
			break;
		case 3:
			CHECK(epoll_wait(ep, &ev, 1, 0) == 1);
			break;
		case 4:
			CHECK(write(pfds[1], "x", 1) == 1);
			CHECK(read(pfds[0], &c, 1) == 1);
			break;
		case 5:
			CHECK(recv(fds[1], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1);
			break;
		case 6:
			CHECK(nanosleep(&zero, NULL) == 0);
			break;
		}
		have += 50 + 22;
		if ((n = unread(fds[1])) != have)
			tap_diag("after %s: %d bytes unread, want %d", waits[i],
			    n, have);
		CHECK(n == have);
	}
	/* Held, not sent, until the call: diagnostics only (timing). */
	tap_diag("%d of %d small writes were held until the wait", held, nw);
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
	CHECK(close(fds[0]) == 0);
	fx_rx_join(&rx);
	CHECK(!rx.dec_failed);
	CHECK(rx.nrecs == (size_t)nw);
	for (size_t i = 0; i < rx.nrecs && i < (size_t)nw; i++)
		CHECK(rx.recs[i].seq == i && rx.recs[i].len == 50 &&
		    memcmp(rx.recs[i].data, buf + 50 * i, 50) == 0);
	fx_rx_free(&rx);
	close(fds[1]);
	close(pfds[0]);
	close(pfds[1]);
	close(ep);
	tap_result("autocork: a held small record is sent before poll, ppoll, "
	    "select, epoll_wait, read, recv, nanosleep");
}

int
main(void)
{
	struct fx_lsuite ls;

	fx_watchdog(120);
	/* ktls-run's environment: the test runs with KTLS_ENABLE=1. */
	for (int i = 0; fx_lsuite_nth(&ls, i); i++) {
		case_suite(&ls, i % 2 ? AF_INET6 : AF_INET);
		tap_result("%s: TCP_ULP + TLS_TX, write/send/writev/sendmsg "
		    "(SOL_TLS record type)/sendfile/dup, read back, every "
		    "record decrypts", ls.fx->linux_name);
	}
	case_errors();
	case_passthrough();
	case_dups();
	case_msg_more();
	case_exec();
	case_freebsd();
	case_autocork();
	return (tap_done());
}
