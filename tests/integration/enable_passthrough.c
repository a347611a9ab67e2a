/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Pass-through: on an fd ktls does not manage every call is libc's
 * (invariant 6), results, errno and bytes.  (Common parts:
 * enable_common.h.)
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include "enable_common.h"

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
FAMILY_CASE(case_pass_data, family,
    "%s plain socket: write, writev, send, sendmsg, shutdown as libc, "
    "bytes unchanged")
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
FAMILY_CASE(case_pass_sendfile, family,
    "%s plain socket: sendfile as libc (offsets, bytes)")
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
FAMILY_CASE(case_pass_sockopt, family,
    "%s plain socket: setsockopt/getsockopt as libc")
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
CASE(case_pass_badfd, "bad fds: every call -1/EBADF, as libc")
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
CASE(case_pass_notsock, "pipes and bad arguments: the same errors as libc")
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
FAMILY_CASE(case_pass_close, family,
    "%s plain socket: ktls_close closes, peer sees EOF")
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
CASE(case_pass_reuse,
    "a new socket on the number of a closed enabled one is plain")
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
main(void)
{
	enable_begin(true);
	for (size_t f = 0; f < NELEM(families); f++) {
		case_pass_data(families[f]);
		case_pass_sendfile(families[f]);
		case_pass_sockopt(families[f]);
		case_pass_close(families[f]);
	}
	case_pass_badfd();
	case_pass_notsock();
	case_pass_reuse();
	return (tap_done());
}
