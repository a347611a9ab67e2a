/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guard (issue 10): no plaintext on the wire whatever call the program
 * uses.  Run under the interposer (LD_PRELOAD=libktls-preload.so,
 * KTLS_ENABLE=1) as test_interpose is; Linux's kTLS API enables TX on a
 * loopback TCP pair, then each case writes a distinctive marker
 * ("KTLS-MARKER-<case>-<n>-" repeated) through one way of writing that
 * symbol interposition alone does not see: libc's internal calls (stdio,
 * dprintf, __write), syscall(2), a raw syscall instruction, a module
 * mapped after the enable, splice/vmsplice, pwritev2, a thread with every
 * signal blocked.  The peer's raw bytes must not hold the marker and must
 * decrypt with tlsdec (OpenSSL EVP, no engine code) to exactly what was
 * written.  Refused calls (pwrite ESPIPE, an enabled socket in SCM_RIGHTS
 * EPERM, io_uring ENOSYS/EPERM, Linux AIO EPERM) return -1 with that errno
 * and leave nothing of theirs in the stream.  Process-level cases: the
 * filter appears at the first enable and not before, exec'd images
 * (static busybox, a program without the interposer) still run, the
 * application's own SIGSYS handler keeps working, and a packet capture in
 * a network namespace of its own sees no marker in any frame.  Around
 * processes and descriptors: a fork()ed child's writes fail (EPIPE), a
 * vfork() child's are refused (EPERM), popen/system/posix_spawn still
 * work, an enabled socket is no posix_spawn dup2 action, raw dup/close
 * system calls neither leak nor misroute, the guard's counters
 * (kern.ipc.tls.guard.*) count exactly, and KTLS_IO_URING=allow is
 * honoured in a fresh image of this program ("--sub", run by itself).
 * From review: a dup made before the enable outlives close() of the
 * enabled descriptor, a vfork() child's close() before its exec leaves
 * the parent's session alone, a raw execve leaves the new image no
 * enabled socket, the i386 ABI's dup2/dup3/close/dup/fcntl/close_range/
 * execve are refused (-EPERM), a signal handler that makes descriptors
 * does not deadlock against exec preparation, and a socket another thread
 * enables on the number an fclose() just freed has a session of its own.
 *
 * Every case runs in a child forked from a parent that never enables
 * anything: each child is a process before its first enable (the filter
 * is inherited by fork and never removed), and a case that dies (SIGSYS,
 * a hang) fails alone, with the signal in a diagnostic.
 *
 * By hand: KTLS_TEST_GUARD_NO_ENABLE=1 runs every data-path case without
 * the TLS_TX setsockopt (the peer then sees plaintext): they must all fail
 * on the marker detector.  KTLS_GUARD=0 (the engine's measurement switch)
 * shows which cases only the guard makes pass.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/if_packet.h>
#include <linux/io_uring.h>
#include <linux/tls.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "fixture.h"
#include "linux_info.h"
#include "tap.h"

/* glibc's exported internal names (GLIBC_2.2.5 and GLIBC_PRIVATE). */
extern ssize_t __write(int, const void *, size_t);
extern ssize_t __send(int, const void *, size_t, int);
extern int __sendmmsg(int, struct mmsghdr *, unsigned int, int);

extern char **environ;

#define MARK		"KTLS-MARKER"
#define MARK_LEN	(sizeof(MARK) - 1)
/* Seconds a case's child may take; the whole program has 290. */
#define CASE_TIMEOUT_S	30
/* Milliseconds the peer waits for the sender's FIN. */
#define DRAIN_MS	8000

/* ---- Linux kTLS: the two suites every path is tried with ---- */

/* By fx_suites name, set by suites_init() (linux_info.h has the rest). */
static struct fx_lsuite suites[2];
#define NSUITES		((int)(sizeof(suites) / sizeof(suites[0])))

static void
suites_init(void)
{
	suites[0] = fx_lsuite_by_name("TLS1.2-AES-128-GCM");
	suites[1] = fx_lsuite_by_name("TLS1.3-AES-256-GCM");
}

static int
ulp(int fd)
{
	return (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")));
}

static const char *
fam_name(int family)
{
	return (family == AF_INET6 ? "IPv6 ::1" : "IPv4 127.0.0.1");
}

/* ---- checks that say what they got ---- */

/* expr must return want exactly. */
#define CHECK_RET(expr, want) do {					\
	long want_ = (long)(want), r_;					\
	errno = 0;							\
	r_ = (long)(expr);						\
	if (r_ != want_) {						\
		tap_diag("%s:%d: %s returned %ld (errno %d, %s), want %ld",\
		    __FILE__, __LINE__, #expr, r_, errno, strerror(errno),\
		    want_);						\
		tap_case_failed = 1;					\
	}								\
} while (0)

/* expr must fail: -1 with errno err. */
#define CHECK_ERR(expr, err) do {					\
	long r_;							\
	errno = 0;							\
	r_ = (long)(expr);						\
	if (r_ != -1 || errno != (err)) {				\
		tap_diag("%s:%d: %s returned %ld (errno %d, %s), want -1 "\
		    "%s", __FILE__, __LINE__, #expr, r_, errno,		\
		    strerror(errno), #err);				\
		tap_case_failed = 1;					\
	}								\
} while (0)

/* ---- one connection, what was sent on it, what its peer saw ---- */

struct conn {
	const struct fx_lsuite *ls;
	int		family;
	int		fd, peer;	/* fd: the sender (client) side */
	bool		tls;		/* the peer must see records */
	bool		closed;		/* fd already closed by the path */
	union ktls_linux_crypto_info ci;
	struct fx_keys	k;
	uint8_t		*expect;	/* plaintext the stream must carry */
	size_t		elen, ecap;
	uint8_t		*raw;		/* every byte the peer read */
	size_t		rawlen, rawcap;
	bool		eof;
	FILE		*f_before;	/* stdio: fdopen()ed before the enable */
	int		spare;		/* a descriptor made before the enable */
};

static bool no_enable;		/* KTLS_TEST_GUARD_NO_ENABLE=1 */

static void
grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	while (*cap < need)
		*cap = *cap ? *cap * 2 : 4096;
	if ((*buf = realloc(*buf, *cap)) == NULL)
		abort();
}

/* What the stream must carry next. */
static void
sent(struct conn *c, const void *buf, size_t len)
{
	grow(&c->expect, &c->ecap, c->elen + len);
	memcpy(c->expect + c->elen, buf, len);
	c->elen += len;
}

/* buf := "KTLS-MARKER-<tag>-<sub>-" repeated (NUL-terminated if room). */
static void
fill(void *buf, size_t len, const char *tag, int sub)
{
	char unit[96];
	uint8_t *p = buf;
	int n = snprintf(unit, sizeof(unit), MARK "-%s-%d-", tag, sub);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)unit[i % (size_t)n];
}

static const uint8_t *
find_marker(const void *buf, size_t len)
{
	return (memmem(buf, len, MARK, MARK_LEN));
}

/* A connected pair on loopback, nothing enabled yet. */
static int
conn_pair(struct conn *c, int family, const struct fx_lsuite *ls)
{
	int fds[2];

	memset(c, 0, sizeof(*c));
	c->ls = ls;
	c->family = family;
	c->fd = c->peer = c->spare = -1;
	if (fx_tcp_pair(family, fds) != 0) {
		tap_diag("loopback pair (%s): %s", fam_name(family),
		    strerror(errno));
		return (-1);
	}
	c->fd = fds[0];
	c->peer = fds[1];
	return (0);
}

/* TCP_ULP "tls" + SOL_TLS/TLS_TX: from here the peer must see records. */
static int
conn_enable(struct conn *c)
{
	fx_lsuite_keys(c->ls, 0, &c->ci, &c->k);
	c->tls = true;
	if (no_enable)
		return (0);
	if (ulp(c->fd) != 0 || setsockopt(c->fd, SOL_TLS, TLS_TX, &c->ci,
	    c->ls->l->size) != 0) {
		tap_diag("enable (%s): %s", c->ls->fx->linux_name,
		    strerror(errno));
		tap_case_failed = 1;
		return (-1);
	}
	return (0);
}

/* Read the peer until EOF (or DRAIN_MS without it). */
static void
conn_drain(struct conn *c, int ms)
{
	double end = fx_now_s() + ms / 1000.0;

	while (!c->eof) {
		struct pollfd pfd = { .fd = c->peer, .events = POLLIN };
		int left = (int)((end - fx_now_s()) * 1000);
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		grow(&c->raw, &c->rawcap, c->rawlen + 65536);
		n = read(c->peer, c->raw + c->rawlen, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			c->eof = true;
			if (n < 0)
				tap_diag("peer read: %s", strerror(errno));
			break;
		}
		c->rawlen += (size_t)n;
	}
}

/* The stream decrypts, app-data records only, to exactly c->expect. */
static void
verify_tls(struct conn *c)
{
	struct tlsdec *d = tlsdec_new(&c->k.en);
	uint8_t *got, *data, type;
	size_t glen = 0, len, nrec = 0, other = 0;
	uint64_t seq;
	int rc;

	REQUIRE(d != NULL, );
	if ((rc = tlsdec_feed(d, c->raw, c->rawlen)) != 0)
		tap_diag("tlsdec: %s (%zu wire bytes)", tlsdec_error(d),
		    c->rawlen);
	CHECK(rc == 0);
	CHECK(tlsdec_pending(d) == 0);
	got = malloc(c->rawlen + 1);
	while (tlsdec_next(d, &type, &seq, &data, &len) == 1) {
		nrec++;
		if (type != TLS_RLTYPE_APP)
			other++;
		else if (glen + len <= c->rawlen) {
			memcpy(got + glen, data, len);
			glen += len;
		}
		free(data);
	}
	CHECK(other == 0);
	if (glen != c->elen || memcmp(got, c->expect, glen) != 0) {
		size_t i = 0;

		while (i < glen && i < c->elen && got[i] == c->expect[i])
			i++;
		tap_diag("plaintext: %zu bytes in %zu records, want %zu; "
		    "first difference at %zu", glen, nrec, c->elen, i);
		tap_case_failed = 1;
	}
	free(got);
	tlsdec_free(d);
}

/*
 * Close the sender (unless the path did), read the peer to EOF and check
 * it: for a TLS connection no marker anywhere in the raw bytes and the
 * records decrypt to exactly what was sent; for a plain one the raw
 * bytes are exactly what was sent.
 */
static void
conn_finish(struct conn *c)
{
	const uint8_t *leak;

	if (!c->closed && c->fd >= 0)
		CHECK_RET(close(c->fd), 0);
	c->closed = true;
	conn_drain(c, DRAIN_MS);
	if (!c->eof)
		tap_diag("no EOF from the sender within %d ms (%zu bytes read)",
		    DRAIN_MS, c->rawlen);
	CHECK(c->eof);
	if (c->tls) {
		if ((leak = find_marker(c->raw, c->rawlen)) != NULL)
			tap_diag("PLAINTEXT on the wire at byte %zu of %zu: "
			    "\"%.40s\"", (size_t)(leak - c->raw), c->rawlen,
			    (const char *)leak);
		CHECK(leak == NULL);
		verify_tls(c);
	} else {
		if (c->rawlen != c->elen)
			tap_diag("plain stream: %zu bytes, want %zu", c->rawlen,
			    c->elen);
		CHECK(c->rawlen == c->elen &&
		    memcmp(c->raw, c->expect, c->elen) == 0);
	}
	if (c->peer >= 0)
		close(c->peer);
	c->peer = -1;
}

static void
conn_free(struct conn *c)
{
	free(c->expect);
	free(c->raw);
	c->expect = c->raw = NULL;
}

/* ---- raw system calls from this program's own code ---- */

static long
raw_write(int fd, const void *buf, size_t len)
{
	long r;

#if defined(__x86_64__)
	__asm__ volatile ("syscall"
	    : "=a" (r)
	    : "0" ((long)SYS_write), "D" ((long)fd), "S" (buf), "d" (len)
	    : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = SYS_write;
	register long x0 __asm__("x0") = fd;
	register long x1 __asm__("x1") = (long)buf;
	register long x2 __asm__("x2") = (long)len;

	__asm__ volatile ("svc #0" : "+r" (x0) : "r" (x8), "r" (x1), "r" (x2)
	    : "memory");
	r = x0;
#else
	(void)fd;
	(void)buf;
	(void)len;
	r = -ENOSYS;
#endif
	return (r);
}

#if defined(__x86_64__)
/* The i386 ABI from 64-bit code: int $0x80, 32-bit pointers. */
static long
raw_write_i386(int fd, const void *buf, size_t len)
{
	long r;

	__asm__ volatile ("int $0x80"
	    : "=a" (r)
	    : "0" (4L /* __NR_write, i386 */), "b" ((long)fd),
	      "c" ((long)(uintptr_t)buf), "d" ((long)len)
	    : "r8", "r9", "r10", "r11", "memory");
	return (r);
}

/* The x32 ABI: the write number with __X32_SYSCALL_BIT. */
static long
raw_write_x32(int fd, const void *buf, size_t len)
{
	long r;

	__asm__ volatile ("syscall"
	    : "=a" (r)
	    : "0" (0x40000000L | 1L), "D" ((long)fd), "S" (buf), "d" (len)
	    : "rcx", "r11", "memory");
	return (r);
}
#endif

/* ---- data paths: each writes through one way, then the peer is read ---- */

/*
 * One way of writing.  pre runs after the pair is made and before the
 * enable; run after it.  Either returns NULL, or why the case cannot run
 * here (a skip).
 */
struct path {
	const char	*tag;
	const char	*name;
	const char	*(*pre)(struct conn *);
	const char	*(*run)(struct conn *);
};

/* A plain write() first and last: the stream is never empty. */
static void
bracket(struct conn *c, int sub)
{
	uint8_t b[64];

	fill(b, sizeof(b), "bracket", sub);
	CHECK_RET(write(c->fd, b, sizeof(b)), sizeof(b));
	sent(c, b, sizeof(b));
}

/* 1. */
static const char *
run_pwritev2(struct conn *c)
{
	uint8_t a[200], b[150], d[250];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	struct iovec iov1 = { d, sizeof(d) };

	fill(a, sizeof(a), "pwritev2", 1);
	fill(b, sizeof(b), "pwritev2", 2);
	fill(d, sizeof(d), "pwritev64v2", 3);
	CHECK_RET(pwritev2(c->fd, iov, 2, -1, 0), sizeof(a) + sizeof(b));
	sent(c, a, sizeof(a));
	sent(c, b, sizeof(b));
	CHECK_RET(pwritev64v2(c->fd, &iov1, 1, -1, 0), sizeof(d));
	sent(c, d, sizeof(d));
	return (NULL);
}
static const struct path P_PWRITEV2 = { "pwritev2",
	"pwritev2(fd, iov, 2, -1, 0) and pwritev64v2(..., -1, 0): encrypted, "
	"byte counts returned", NULL, run_pwritev2 };

/* 2. */
static const char *
run_splice(struct conn *c)
{
	uint8_t a[500];
	int p[2];

	fill(a, sizeof(a), "splice", 1);
	REQUIRE(pipe(p) == 0, NULL);
	CHECK_RET(write(p[1], a, sizeof(a)), sizeof(a));
	/* Two splices out of one pipe fill: 200 then the 300 left. */
	CHECK_RET(splice(p[0], NULL, c->fd, NULL, 200, 0), 200);
	CHECK_RET(splice(p[0], NULL, c->fd, NULL, 300, 0), 300);
	sent(c, a, sizeof(a));
	close(p[0]);
	close(p[1]);
	return (NULL);
}
static const struct path P_SPLICE = { "splice",
	"splice() from a pipe into the socket (out_fd): encrypted", NULL,
	run_splice };

/* 3. */
static const char *
run_vmsplice(struct conn *c)
{
	static uint8_t a[4096] __attribute__((aligned(4096)));
	struct iovec iov = { a, 400 };
	int p[2];

	fill(a, 400, "vmsplice", 1);
	REQUIRE(pipe(p) == 0, NULL);
	CHECK_RET(vmsplice(p[1], &iov, 1, 0), 400);
	CHECK_RET(splice(p[0], NULL, c->fd, NULL, 400, 0), 400);
	sent(c, a, 400);
	close(p[0]);
	close(p[1]);
	return (NULL);
}
static const struct path P_VMSPLICE = { "vmsplice",
	"vmsplice() of user memory into a pipe, then splice() into the "
	"socket: encrypted", NULL, run_vmsplice };

/* 4. */
static const char *
pre_stdio(struct conn *c)
{
	c->f_before = fdopen(c->fd, "w");
	REQUIRE(c->f_before != NULL, NULL);
	return (NULL);
}

static const char *
run_stdio(struct conn *c)
{
	static char m1[301], m2[301], big[10001];
	FILE *f;

	REQUIRE(c->f_before != NULL, NULL);
	fill(m1, 300, "fputs", 1);
	fill(m2, 300, "fputs-before", 2);
	fill(big, 10000, "fwrite-big", 3);
	REQUIRE((f = fdopen(c->fd, "w")) != NULL, NULL);
	CHECK(fputs(m1, f) >= 0);
	CHECK_RET(fflush(f), 0);
	sent(c, m1, 300);
	/* The FILE made before TLS_TX was set, written after it. */
	CHECK(fputs(m2, c->f_before) >= 0);
	CHECK_RET(fflush(c->f_before), 0);
	sent(c, m2, 300);
	/* More than the buffer: stdio writes it straight through. */
	CHECK_RET(fwrite(big, 1, 10000, f), 10000);
	CHECK_RET(fflush(f), 0);
	sent(c, big, 10000);
	/*
	 * Both FILEs are left open on purpose (the child _exit()s without
	 * flushing them): fclose() would close the socket through libc's
	 * internal close; case "fclose" pins that on its own.
	 */
	return (NULL);
}
static const struct path P_STDIO = { "stdio",
	"stdio: fdopen(fd, \"w\") + fputs + fflush, a FILE fdopen'ed before "
	"TLS_TX written after, a 10000-byte fwrite: encrypted", pre_stdio,
	run_stdio };

/* 5. */
static int
my_vdprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vdprintf(fd, fmt, ap);
	va_end(ap);
	return (r);
}

static const char *
run_dprintf(struct conn *c)
{
	char m1[301], m2[301], want[400];
	int n;

	fill(m1, 300, "dprintf", 1);
	fill(m2, 300, "vdprintf", 2);
	m1[300] = m2[300] = '\0';
	CHECK_RET(dprintf(c->fd, "%s", m1), 300);
	sent(c, m1, 300);
	n = snprintf(want, sizeof(want), "%s|%d|%s", m2, 42, "end");
	CHECK_RET(my_vdprintf(c->fd, "%s|%d|%s", m2, 42, "end"), n);
	sent(c, want, (size_t)n);
	return (NULL);
}
static const struct path P_DPRINTF = { "dprintf",
	"dprintf and vdprintf: encrypted, byte counts returned", NULL,
	run_dprintf };

/* 6. */
static const char *
run_syscalls(struct conn *c)
{
	uint8_t a[200], b[210], m1[220], m2[230], w1[240], w2[250], p1[260],
	    p2[270];
	struct iovec mv[2] = { { m1, sizeof(m1) }, { m2, sizeof(m2) } };
	struct iovec wv[2] = { { w1, sizeof(w1) }, { w2, sizeof(w2) } };
	struct iovec pv[2] = { { p1, sizeof(p1) }, { p2, sizeof(p2) } };
	struct msghdr msg = { .msg_iov = mv, .msg_iovlen = 2 };
	off_t off = -1;

	fill(a, sizeof(a), "SYS_write", 1);
	fill(b, sizeof(b), "SYS_sendto", 2);
	fill(m1, sizeof(m1), "SYS_sendmsg", 3);
	fill(m2, sizeof(m2), "SYS_sendmsg", 4);
	fill(w1, sizeof(w1), "SYS_writev", 5);
	fill(w2, sizeof(w2), "SYS_writev", 6);
	fill(p1, sizeof(p1), "SYS_pwritev2", 7);
	fill(p2, sizeof(p2), "SYS_pwritev2", 8);
	CHECK_RET(syscall(SYS_write, c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_RET(syscall(SYS_sendto, c->fd, b, sizeof(b), 0, NULL, 0),
	    sizeof(b));
	sent(c, b, sizeof(b));
	CHECK_RET(syscall(SYS_sendmsg, c->fd, &msg, 0),
	    sizeof(m1) + sizeof(m2));
	sent(c, m1, sizeof(m1));
	sent(c, m2, sizeof(m2));
	CHECK_RET(syscall(SYS_writev, c->fd, wv, 2), sizeof(w1) + sizeof(w2));
	sent(c, w1, sizeof(w1));
	sent(c, w2, sizeof(w2));
	/* The offset as two longs, low then high (glibc's LO_HI_LONG). */
	CHECK_RET(syscall(SYS_pwritev2, c->fd, pv, 2, (long)off,
	    (long)((uint64_t)off >> 32), 0), sizeof(p1) + sizeof(p2));
	sent(c, p1, sizeof(p1));
	sent(c, p2, sizeof(p2));
	return (NULL);
}
static const struct path P_SYSCALLS = { "syscall",
	"syscall(SYS_write, SYS_sendto, SYS_sendmsg, SYS_writev, SYS_pwritev2 "
	"at -1): encrypted, byte counts returned", NULL, run_syscalls };

/* 7. */
static const char *
run_rawasm(struct conn *c)
{
	uint8_t a[300], b[310];

	if (raw_write(-1, a, 0) == -ENOSYS)
		return ("no inline-asm system call for this architecture");
	fill(a, sizeof(a), "raw-asm", 1);
	fill(b, sizeof(b), "raw-asm", 2);
	CHECK_RET(raw_write(c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_RET(raw_write(c->fd, b, sizeof(b)), sizeof(b));
	sent(c, b, sizeof(b));
	return (NULL);
}
static const struct path P_RAWASM = { "rawasm",
	"a raw syscall instruction (SYS_write) in the program's own code: "
	"encrypted", NULL, run_rawasm };

/* 8. */
static const char *
run_internal(struct conn *c)
{
	uint8_t a[250], b[260], m[4][270];
	struct iovec iv[4];
	struct mmsghdr v[4];

	fill(a, sizeof(a), "__write", 1);
	fill(b, sizeof(b), "__send", 2);
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 4; i++) {
		fill(m[i], sizeof(m[i]), i < 2 ? "__sendmmsg" : "sendmmsg", 3 + i);
		iv[i] = (struct iovec){ m[i], sizeof(m[i]) - (size_t)i };
		v[i].msg_hdr.msg_iov = &iv[i];
		v[i].msg_hdr.msg_iovlen = 1;
	}
	CHECK_RET(__write(c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_RET(__send(c->fd, b, sizeof(b), 0), sizeof(b));
	sent(c, b, sizeof(b));
	CHECK_RET(__sendmmsg(c->fd, v, 2, 0), 2);
	CHECK(v[0].msg_len == 270 && v[1].msg_len == 269);
	sent(c, m[0], 270);
	sent(c, m[1], 269);
	/* And libc's public sendmmsg, 2 messages. */
	CHECK_RET(sendmmsg(c->fd, v + 2, 2, 0), 2);
	CHECK(v[2].msg_len == 268 && v[3].msg_len == 267);
	sent(c, m[2], 268);
	sent(c, m[3], 267);
	return (NULL);
}
static const struct path P_INTERNAL = { "internal",
	"glibc's exported internal names __write, __send, __sendmmsg (2 "
	"messages) and sendmmsg (2 messages): encrypted", NULL, run_internal };

/* 9. */
static const char *
run_dlopen(struct conn *c)
{
	const char *path = getenv("KTLS_TEST_GUARD_DL");
	long (*fn)(int, const void *, size_t);
	uint8_t a[300];
	void *h;

	if (path == NULL || *path == '\0')
		return ("KTLS_TEST_GUARD_DL (the guard_dl module) not set");
	/* After the enable: the module is mapped after the filter. */
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		tap_diag("dlopen %s: %s", path, dlerror());
	REQUIRE(h != NULL, NULL);
	fn = (long (*)(int, const void *, size_t))dlsym(h, "guard_dl_write");
	REQUIRE(fn != NULL, NULL);
	if (fn(-1, a, 0) == -ENOSYS)
		return ("no inline-asm system call for this architecture");
	fill(a, sizeof(a), "dlopen-module", 1);
	CHECK_RET(fn(c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	return (NULL);
}
static const struct path P_DLOPEN = { "dlopen",
	"a module dlopen'ed after the enable making a raw write syscall: "
	"encrypted", NULL, run_dlopen };

/* 10. */
struct blocked {
	int		fd;
	const void	*buf;
	size_t		len;
	long		ret;
	int		err, mask_err;
};

static void *
blocked_main(void *arg)
{
	struct blocked *b = arg;
	sigset_t all;

	sigfillset(&all);
	b->mask_err = pthread_sigmask(SIG_SETMASK, &all, NULL);
	errno = 0;
	b->ret = syscall(SYS_write, b->fd, b->buf, b->len);
	b->err = errno;
	return (NULL);
}

static const char *
run_blocked(struct conn *c)
{
	uint8_t a[300];
	struct blocked b = { c->fd, a, sizeof(a), 0, 0, 0 };
	pthread_t t;

	fill(a, sizeof(a), "sigblocked-thread", 1);
	REQUIRE(pthread_create(&t, NULL, blocked_main, &b) == 0, NULL);
	REQUIRE(fx_join_ms(t, 10000), NULL);
	CHECK(b.mask_err == 0);
	if (b.ret != (long)sizeof(a))
		tap_diag("blocked thread: syscall(SYS_write) = %ld (%s)", b.ret,
		    strerror(b.err));
	CHECK(b.ret == (long)sizeof(a));
	sent(c, a, sizeof(a));
	return (NULL);
}
static const struct path P_BLOCKED = { "blocked",
	"a thread that blocked every signal (pthread_sigmask, sigfillset) "
	"doing syscall(SYS_write): encrypted, the process lives", NULL,
	run_blocked };

/* 11. */
static const char *
run_pwrite(struct conn *c)
{
	uint8_t a[300];
	struct iovec iov = { a, sizeof(a) };

	fill(a, sizeof(a), "pwrite", 1);
	bracket(c, 1);
	CHECK_ERR(pwrite(c->fd, a, sizeof(a), 0), ESPIPE);
	CHECK_ERR(pwrite64(c->fd, a, sizeof(a), 0), ESPIPE);
	CHECK_ERR(pwritev(c->fd, &iov, 1, 0), ESPIPE);
	CHECK_ERR(pwritev2(c->fd, &iov, 1, 0, 0), ESPIPE);
	CHECK_ERR(syscall(SYS_pwrite64, c->fd, a, sizeof(a), 0), ESPIPE);
	bracket(c, 2);
	return (NULL);
}
static const struct path P_PWRITE = { "pwrite",
	"pwrite, pwrite64, pwritev, pwritev2 and syscall(SYS_pwrite64) at "
	"offset 0: -1 ESPIPE, nothing of them in the stream", NULL, run_pwrite };

/* 12. */
static ssize_t
send_fd(int us, int fd, bool raw)
{
	char x = 'x';
	struct iovec iov = { &x, 1 };
	union {
		struct cmsghdr	h;
		uint8_t		b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };

	memset(&cm, 0, sizeof(cm));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm.h), &fd, sizeof(fd));
	return (raw ? syscall(SYS_sendmsg, us, &msg, 0) :
	    sendmsg(us, &msg, 0));
}

/* One byte and one descriptor from the unix socket (the fd, or -1). */
static int
recv_fd(int us, char *byte)
{
	struct iovec iov = { byte, 1 };
	union {
		struct cmsghdr	h;
		uint8_t		b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *h;
	int fd = -1;

	if (recvmsg(us, &msg, MSG_DONTWAIT) != 1)
		return (-1);
	for (h = CMSG_FIRSTHDR(&msg); h != NULL; h = CMSG_NXTHDR(&msg, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(h), sizeof(fd));
	return (fd);
}

static const char *
run_rights(struct conn *c)
{
	int u[2], other, got;
	char byte = 0;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u) == 0,
	    NULL);
	bracket(c, 1);
	CHECK_ERR(send_fd(u[0], c->fd, false), EPERM);
	CHECK_ERR(recv(u[1], &byte, 1, MSG_DONTWAIT), EAGAIN);
	CHECK_ERR(send_fd(u[0], c->fd, true), EPERM);
	CHECK_ERR(recv(u[1], &byte, 1, MSG_DONTWAIT), EAGAIN);
	/* Not over-refusing: a never-enabled socket passes as usual. */
	other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(other >= 0, NULL);
	CHECK_RET(send_fd(u[0], other, false), 1);
	got = recv_fd(u[1], &byte);
	CHECK(got >= 0 && byte == 'x');
	if (got >= 0)
		close(got);
	close(other);
	bracket(c, 2);
	close(u[0]);
	close(u[1]);
	return (NULL);
}
static const struct path P_RIGHTS = { "rights",
	"sendmsg and syscall(SYS_sendmsg) over AF_UNIX carrying the enabled "
	"socket in SCM_RIGHTS: -1 EPERM, the unix peer gets nothing (EAGAIN); "
	"a plain socket still passes", NULL, run_rights };

/* 13, after an enable. */
static const char *
run_uring_after(struct conn *c)
{
	struct io_uring_params p;
	long r;

	bracket(c, 1);
	memset(&p, 0, sizeof(p));
	errno = 0;
	r = syscall(__NR_io_uring_setup, 8, &p);
	if (r != -1 || errno != ENOSYS)
		tap_diag("io_uring_setup after the enable: %ld (%s), want -1 "
		    "ENOSYS", r, strerror(errno));
	CHECK(r == -1 && errno == ENOSYS);
	if (r >= 0)
		close((int)r);
	bracket(c, 2);
	return (NULL);
}
static const struct path P_URING_AFTER = { "uring",
	"io_uring_setup after an enable: -1 ENOSYS", NULL, run_uring_after };

/* 14. */
static const char *
run_aio(struct conn *c)
{
	aio_context_t ctx = 0;
	uint8_t a[300], b[300], back[300];
	struct iovec iov[2] = { { a, 150 }, { a + 150, 150 } };
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev[4];
	struct timespec zero = { 0, 0 }, five = { 5, 0 };
	int tmp;

	if (syscall(SYS_io_setup, 8, &ctx) != 0)
		return ("io_setup fails here (Linux AIO not available)");
	fill(a, sizeof(a), "aio-pwrite", 1);
	bracket(c, 1);
	memset(&cb, 0, sizeof(cb));
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_fildes = (uint32_t)c->fd;
	cb.aio_buf = (uint64_t)(uintptr_t)a;
	cb.aio_nbytes = sizeof(a);
	cb.aio_offset = 0;
	CHECK_ERR(syscall(SYS_io_submit, ctx, 1, cbs), EPERM);
	cb.aio_lio_opcode = IOCB_CMD_PWRITEV;
	cb.aio_buf = (uint64_t)(uintptr_t)iov;
	cb.aio_nbytes = 2;
	CHECK_ERR(syscall(SYS_io_submit, ctx, 1, cbs), EPERM);
	CHECK_RET(syscall(SYS_io_getevents, ctx, 0, 4, ev, &zero), 0);
	/* Not over-refusing: a write to a file goes through. */
	fill(b, sizeof(b), "aio-file", 2);
	REQUIRE((tmp = fx_tmpfile(0, 0)) >= 0, NULL);
	memset(&cb, 0, sizeof(cb));
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_fildes = (uint32_t)tmp;
	cb.aio_buf = (uint64_t)(uintptr_t)b;
	cb.aio_nbytes = sizeof(b);
	CHECK_RET(syscall(SYS_io_submit, ctx, 1, cbs), 1);
	CHECK_RET(syscall(SYS_io_getevents, ctx, 1, 1, ev, &five), 1);
	CHECK(ev[0].res == (int64_t)sizeof(b));
	CHECK(pread(tmp, back, sizeof(back), 0) == (ssize_t)sizeof(back) &&
	    memcmp(back, b, sizeof(b)) == 0);
	close(tmp);
	syscall(SYS_io_destroy, ctx);
	bracket(c, 2);
	return (NULL);
}
static const struct path P_AIO = { "aio",
	"Linux AIO: io_submit of IOCB_CMD_PWRITE and PWRITEV on the enabled "
	"socket: -1 EPERM, nothing sent; a file's PWRITE still completes",
	NULL, run_aio };

/* ---- beyond the brief: more ways of the same family ---- */

static const char *
run_more_syscalls(struct conn *c)
{
	uint8_t m[2][280], s[300];
	struct iovec iv[2];
	struct mmsghdr v[2];
	int tmp, p[2];
	off_t off = 0;

	memset(v, 0, sizeof(v));
	for (int i = 0; i < 2; i++) {
		fill(m[i], sizeof(m[i]), "SYS_sendmmsg", 1 + i);
		iv[i] = (struct iovec){ m[i], sizeof(m[i]) };
		v[i].msg_hdr.msg_iov = &iv[i];
		v[i].msg_hdr.msg_iovlen = 1;
	}
	CHECK_RET(syscall(SYS_sendmmsg, c->fd, v, 2, 0), 2);
	CHECK(v[0].msg_len == 280 && v[1].msg_len == 280);
	sent(c, m[0], 280);
	sent(c, m[1], 280);
	/* syscall(SYS_sendfile) from a file of marker bytes. */
	fill(s, sizeof(s), "SYS_sendfile", 3);
	REQUIRE((tmp = fx_tmpfile(0, 0)) >= 0, NULL);
	REQUIRE(write(tmp, s, sizeof(s)) == (ssize_t)sizeof(s), NULL);
	CHECK_RET(syscall(SYS_sendfile, c->fd, tmp, &off, sizeof(s)),
	    sizeof(s));
	sent(c, s, sizeof(s));
	close(tmp);
	/* syscall(SYS_splice) from a pipe. */
	fill(s, sizeof(s), "SYS_splice", 4);
	REQUIRE(pipe(p) == 0, NULL);
	CHECK_RET(write(p[1], s, sizeof(s)), sizeof(s));
	CHECK_RET(syscall(SYS_splice, p[0], NULL, c->fd, NULL, sizeof(s), 0),
	    sizeof(s));
	sent(c, s, sizeof(s));
	close(p[0]);
	close(p[1]);
	return (NULL);
}
static const struct path P_MORE_SYSCALLS = { "more-syscalls",
	"(beyond the brief) syscall(SYS_sendmmsg) of 2, syscall(SYS_sendfile) "
	"from a file, syscall(SYS_splice) from a pipe: encrypted", NULL,
	run_more_syscalls };

static const char *
pre_dup_before(struct conn *c)
{
	/* A second descriptor, made by libc's dup before TLS_TX. */
	c->spare = dup(c->fd);
	REQUIRE(c->spare >= 0, NULL);
	return (NULL);
}

static const char *
run_dup_before(struct conn *c)
{
	int d = c->spare;
	uint8_t a[300], b[300];

	fill(a, sizeof(a), "dup-before-write", 1);
	fill(b, sizeof(b), "dup-before-SYS_write", 2);
	/* Linux's kTLS is the socket's: every descriptor of it encrypts. */
	CHECK_RET(write(d, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_RET(syscall(SYS_write, d, b, sizeof(b)), sizeof(b));
	sent(c, b, sizeof(b));
	CHECK_RET(close(d), 0);
	return (NULL);
}
static const struct path P_DUP_BEFORE = { "dup-before",
	"(beyond the brief) a descriptor dup'ed before the enable, written "
	"after (write, syscall(SYS_write)): encrypted", pre_dup_before,
	run_dup_before };

static ssize_t
sendmmsg_fd(int us, int fd, bool raw)
{
	char x = 'x';
	struct iovec iov = { &x, 1 };
	union {
		struct cmsghdr	h;
		uint8_t		b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct mmsghdr v;

	memset(&cm, 0, sizeof(cm));
	memset(&v, 0, sizeof(v));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm.h), &fd, sizeof(fd));
	v.msg_hdr = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
	return (raw ? syscall(SYS_sendmmsg, us, &v, 1, 0) :
	    sendmmsg(us, &v, 1, 0));
}

static const char *
run_rights_more(struct conn *c)
{
	int u[2], d;
	char byte;

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u) == 0,
	    NULL);
	bracket(c, 1);
	CHECK_ERR(sendmmsg_fd(u[0], c->fd, false), EPERM);
	CHECK_ERR(sendmmsg_fd(u[0], c->fd, true), EPERM);
	/* A dup of the enabled socket is the same socket. */
	REQUIRE((d = dup(c->fd)) >= 0, NULL);
	CHECK_ERR(send_fd(u[0], d, false), EPERM);
	CHECK_ERR(send_fd(u[0], d, true), EPERM);
	CHECK_ERR(recv(u[1], &byte, 1, MSG_DONTWAIT), EAGAIN);
	close(d);
	bracket(c, 2);
	close(u[0]);
	close(u[1]);
	return (NULL);
}
static const struct path P_RIGHTS_MORE = { "rights-more",
	"(beyond the brief) SCM_RIGHTS by sendmmsg and syscall(SYS_sendmmsg), "
	"and of a dup of the enabled socket: -1 EPERM, the unix peer gets "
	"nothing", NULL, run_rights_more };

static const char *
run_other_abi(struct conn *c)
{
#if defined(__x86_64__)
	uint8_t *low;

	low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	REQUIRE(low != MAP_FAILED, NULL);
	fill(low, 300, "int80", 1);
	bracket(c, 1);
	CHECK_RET(raw_write_i386(c->fd, low, 300), -EPERM);
	CHECK_RET(raw_write_x32(c->fd, low, 300), -ENOSYS);
	bracket(c, 2);
	munmap(low, 4096);
	return (NULL);
#else
	(void)c;
	return ("x86_64 only (the i386 and x32 ABIs)");
#endif
}
static const struct path P_OTHER_ABI = { "other-abi",
	"(beyond the brief) write by int $0x80 (i386 ABI): -EPERM; by the x32 "
	"number: -ENOSYS; nothing sent", NULL, run_other_abi };

/* ---- the guard around processes, descriptors and counters ---- */

static int status_field(const char *field);

/* kern.ipc.tls.guard.<name>; a counter that cannot be read fails the case. */
static uint64_t
guard_ctr(const char *name)
{
	char full[64];
	uint64_t v;

	snprintf(full, sizeof(full), "kern.ipc.tls.guard.%s", name);
	if ((v = fx_sysctl_u64(full)) == UINT64_MAX)
		tap_case_failed = 1;
	return (v);
}

/* kern.ipc.tls.guard.<name> must read want exactly. */
#define CHECK_CTR(name, want) do {					\
	uint64_t want_ = (uint64_t)(want), got_ = guard_ctr(name);	\
	if (got_ != want_) {						\
		tap_diag("%s:%d: kern.ipc.tls.guard.%s is %llu, want %llu",\
		    __FILE__, __LINE__, (name), (unsigned long long)got_,\
		    (unsigned long long)want_);				\
		tap_case_failed = 1;					\
	}								\
} while (0)

/* All of fd until EOF into out (NUL-terminated); the byte count. */
static size_t
read_all(int fd, char *out, size_t outsz)
{
	size_t len = 0;
	ssize_t n;

	while (len < outsz - 1 &&
	    ((n = read(fd, out + len, outsz - 1 - len)) > 0 ||
	    (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	out[len] = '\0';
	return (len);
}

static int
wait_status(pid_t pid)
{
	int st = -1;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return (st);
}

/* A wait status in words, for diagnostics. */
static const char *
status_str(int st)
{
	static char s[64];

	if (WIFEXITED(st))
		snprintf(s, sizeof(s), "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(s, sizeof(s), "killed by signal %d (%s)", WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	else
		snprintf(s, sizeof(s), "wait status %#x", st);
	return (s);
}

/*
 * The engine's "ktls-control" thread, started by the first enable, waits
 * in poll(2) once its listener is made (2 s at most): from then on it
 * takes no descriptor number (it no longer waits in accept4, which would
 * hold the lowest free one).
 */
static bool
wait_control_accept(void)
{
	char path[300], buf[64];
	struct dirent *de;
	FILE *f;
	DIR *d;

	for (int ms = 0; ms < 2000; ms++) {
		if ((d = opendir("/proc/self/task")) == NULL)
			return (false);
		while ((de = readdir(d)) != NULL) {
			bool ctl = false, in = false;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			    de->d_name);
			if ((f = fopen(path, "re")) != NULL) {
				ctl = fgets(buf, sizeof(buf), f) != NULL &&
				    strcmp(buf, "ktls-control\n") == 0;
				fclose(f);
			}
			snprintf(path, sizeof(path),
			    "/proc/self/task/%s/syscall", de->d_name);
			if (ctl && (f = fopen(path, "re")) != NULL) {
				in = fgets(buf, sizeof(buf), f) != NULL &&
				    atoi(buf) == SYS_poll;
				fclose(f);
			}
			if (in) {
				closedir(d);
				return (true);
			}
		}
		closedir(d);
		fx_sleep_ms(1);
	}
	tap_diag("no ktls-control thread waiting in poll within 2 s");
	return (false);
}

/* 19. */
static const char *
run_fork(struct conn *c)
{
	uint8_t a[300], b[310], d[320];
	pid_t pid;
	int st;

	bracket(c, 1);
	fill(a, sizeof(a), "fork-child-SYS_write", 1);
	fill(b, sizeof(b), "fork-child-write", 2);
	fill(d, sizeof(d), "fork-child-rawasm", 3);
	fflush(stdout);
	if ((pid = fx_fork()) == 0) {
		/* The child's session is gone (sock.c): EPIPE, and SIGPIPE. */
		signal(SIGPIPE, SIG_IGN);
		tap_case_failed = 0;
		CHECK_ERR(syscall(SYS_write, c->fd, a, sizeof(a)), EPIPE);
		CHECK_ERR(write(c->fd, b, sizeof(b)), EPIPE);
		CHECK_RET(raw_write(c->fd, d, sizeof(d)), -EPIPE);
		/* Its copy of the descriptor goes without ending the stream. */
		CHECK_RET(close(c->fd), 0);
		fflush(stdout);
		_exit(tap_case_failed ? 1 : 0);
	}
	REQUIRE(pid > 0, NULL);
	st = wait_status(pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("fork child: %s", status_str(st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The parent's session goes on, in sequence. */
	fill(a, sizeof(a), "fork-parent-SYS_write", 4);
	CHECK_RET(syscall(SYS_write, c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	fill(b, sizeof(b), "fork-parent-write", 5);
	CHECK_RET(write(c->fd, b, sizeof(b)), sizeof(b));
	sent(c, b, sizeof(b));
	bracket(c, 2);
	return (NULL);
}
static const struct path P_FORK = { "fork",
	"fork() after the enable: in the child syscall(SYS_write), write() and "
	"a raw syscall on the inherited socket fail with EPIPE and send nothing, "
	"its close() returns 0; the parent's later writes decrypt", NULL,
	run_fork };

/* 20. */
static const char *
run_adddup2(struct conn *c)
{
	char *argv[] = { "echo", MARK "-adddup2-spawned", NULL };
	posix_spawn_file_actions_t fa;
	char out[128];
	int p[2], d, other, st;
	pid_t pid;

	bracket(c, 1);
	REQUIRE(pipe2(p, O_CLOEXEC) == 0, NULL);
	REQUIRE(posix_spawn_file_actions_init(&fa) == 0, NULL);
	CHECK_RET(posix_spawn_file_actions_adddup2(&fa, p[1], 1), 0);
	/*
	 * After the pipe's action: had one of these been added, echo's
	 * stdout would be the socket and the marker would go out in clear.
	 */
	CHECK_RET(posix_spawn_file_actions_adddup2(&fa, c->fd, 1), EPERM);
	CHECK_RET(posix_spawn_file_actions_adddup2(&fa, c->fd, 9), EPERM);
	REQUIRE((d = dup(c->fd)) >= 0, NULL);
	CHECK_RET(posix_spawn_file_actions_adddup2(&fa, d, 1), EPERM);
	close(d);
	/* Not over-refusing: a never-enabled TCP socket. */
	other = socket(c->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(other >= 0, NULL);
	CHECK_RET(posix_spawn_file_actions_adddup2(&fa, other, 9), 0);
	CHECK_RET(posix_spawn(&pid, "/bin/echo", &fa, NULL, argv, environ), 0);
	close(p[1]);
	read_all(p[0], out, sizeof(out));
	close(p[0]);
	close(other);
	if (strcmp(out, MARK "-adddup2-spawned\n") != 0)
		tap_diag("echo printed \"%s\" to the pipe", out);
	CHECK(strcmp(out, MARK "-adddup2-spawned\n") == 0);
	st = wait_status(pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("echo: %s", status_str(st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	posix_spawn_file_actions_destroy(&fa);
	bracket(c, 2);
	return (NULL);
}
static const struct path P_ADDDUP2 = { "adddup2",
	"posix_spawn_file_actions_adddup2 of the enabled socket (and of a dup) "
	"returns EPERM, of a pipe and a plain socket 0; the spawn with the "
	"actions kept prints into the pipe, nothing reaches the socket", NULL,
	run_adddup2 };

/* 21. */
static const char *
run_spawn(struct conn *c)
{
	char *argv[] = { "echo", "spawned", "exactly", NULL };
	posix_spawn_file_actions_t fa;
	uint8_t a[300];
	char out[128];
	FILE *f;
	size_t n;
	int p[2], st;
	pid_t pid;

	bracket(c, 1);
	/* popen(3): libc's own posix_spawn of /bin/sh, not the interposer's. */
	f = popen("echo hi", "r");
	REQUIRE(f != NULL, NULL);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	if (strcmp(out, "hi\n") != 0)
		tap_diag("popen(\"echo hi\") read \"%s\"", out);
	CHECK(strcmp(out, "hi\n") == 0);
	st = pclose(f);
	if (st != 0)
		tap_diag("pclose: %s", status_str(st));
	CHECK(st == 0);
	bracket(c, 2);
	/* system(3): the same, and the shell's status comes back. */
	st = system("exit 3");
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
		tap_diag("system(\"exit 3\"): %s", status_str(st));
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 3);
	bracket(c, 3);
	/* posix_spawn with file actions: the child runs them signals blocked. */
	REQUIRE(pipe(p) == 0, NULL);
	REQUIRE(posix_spawn_file_actions_init(&fa) == 0, NULL);
	CHECK_RET(posix_spawn_file_actions_adddup2(&fa, p[1], 1), 0);
	CHECK_RET(posix_spawn_file_actions_addclose(&fa, p[1]), 0);
	CHECK_RET(posix_spawn_file_actions_addclose(&fa, p[0]), 0);
	CHECK_RET(posix_spawn(&pid, "/bin/echo", &fa, NULL, argv, environ), 0);
	close(p[1]);
	read_all(p[0], out, sizeof(out));
	close(p[0]);
	if (strcmp(out, "spawned exactly\n") != 0)
		tap_diag("posix_spawn echo printed \"%s\"", out);
	CHECK(strcmp(out, "spawned exactly\n") == 0);
	st = wait_status(pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("posix_spawn echo: %s", status_str(st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	posix_spawn_file_actions_destroy(&fa);
	/* The enabled socket is still this process's, every way. */
	fill(a, sizeof(a), "after-spawn-SYS_write", 4);
	CHECK_RET(syscall(SYS_write, c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	bracket(c, 5);
	return (NULL);
}
static const struct path P_SPAWN = { "spawn",
	"after the enable, the socket open: popen(\"echo hi\") reads \"hi\\n\", "
	"pclose 0; system(\"exit 3\") exits 3; posix_spawn of /bin/echo with "
	"adddup2 of a pipe to 1 and addclose prints exactly; writes go on "
	"encrypted", NULL, run_spawn };

/* 22: a vfork() child shares this memory; what it did comes back here. */
static volatile long vf_ret[3];
static volatile int vf_err[3];

static const char *
run_vfork(struct conn *c)
{
	static uint8_t a[300], b[310];
	char back[400];
	uint64_t t0, t1;
	int p[2], st, fd = c->fd;
	pid_t pid;

	bracket(c, 1);
	fill(a, sizeof(a), "vfork-child-SYS_write", 1);
	fill(b, sizeof(b), "vfork-child-pipe", 2);
	REQUIRE(pipe2(p, O_CLOEXEC) == 0, NULL);
	for (int i = 0; i < 3; i++) {
		vf_ret[i] = 0;
		vf_err[i] = 0;
	}
	t0 = guard_ctr("trapped");
	fflush(stdout);
	if ((pid = vfork()) == 0) {
		errno = 0;
		vf_ret[0] = syscall(SYS_write, fd, a, sizeof(a));
		vf_err[0] = errno;
		vf_ret[1] = raw_write(fd, a, sizeof(a));
		errno = 0;
		vf_ret[2] = syscall(SYS_write, p[1], b, sizeof(b));
		vf_err[2] = errno;
		_exit((vf_ret[0] == -1 && vf_err[0] == EPERM ? 0 : 1) |
		    (vf_ret[1] == -EPERM ? 0 : 2) |
		    (vf_ret[2] == (long)sizeof(b) ? 0 : 4));
	}
	REQUIRE(pid > 0, NULL);
	st = wait_status(pid);
	t1 = guard_ctr("trapped");
	close(p[1]);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("vfork child: %s; syscall(SYS_write) on the socket %ld "
		    "(errno %d), raw %ld, syscall(SYS_write) on the pipe %ld "
		    "(errno %d)", status_str(st), vf_ret[0], vf_err[0],
		    vf_ret[1], vf_ret[2], vf_err[2]);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(vf_ret[0] == -1 && vf_err[0] == EPERM);
	CHECK(vf_ret[1] == -EPERM);
	CHECK(vf_ret[2] == (long)sizeof(b));
	CHECK(read_all(p[0], back, sizeof(back)) == sizeof(b) &&
	    memcmp(back, b, sizeof(b)) == 0);
	close(p[0]);
	if (t1 != t0)
		tap_diag("note: kern.ipc.tls.guard.trapped %llu -> %llu across "
		    "the vfork child's 3 trapped calls", (unsigned long long)t0,
		    (unsigned long long)t1);
	/* The parent's session goes on, in sequence. */
	fill(a, sizeof(a), "vfork-parent-SYS_write", 3);
	CHECK_RET(syscall(SYS_write, c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	bracket(c, 2);
	return (NULL);
}
static const struct path P_VFORK = { "vfork",
	"vfork() after the enable: in the child syscall(SYS_write) on the socket "
	"-1 EPERM and a raw syscall -EPERM, nothing sent; its syscall(SYS_write) "
	"to a pipe arrives; the parent's later writes decrypt", NULL, run_vfork };

/* 23. */
static const char *
run_rawdup(struct conn *c)
{
	uint8_t m[6][250];
	long d1, d2;

	bracket(c, 1);
	for (int i = 0; i < 6; i++)
		fill(m[i], sizeof(m[i]) - (size_t)i, "rawdup", i);
	/* Copies the engine was not told of. */
	d1 = syscall(SYS_dup, c->fd);
	REQUIRE(d1 >= 0, NULL);
	d2 = syscall(SYS_fcntl, c->fd, F_DUPFD, 100);
	REQUIRE(d2 >= 100, NULL);
	CHECK_RET(write((int)d1, m[0], 250), 250);
	sent(c, m[0], 250);
	CHECK_RET(syscall(SYS_write, d1, m[1], 249), 249);
	sent(c, m[1], 249);
	CHECK_RET(write(c->fd, m[2], 248), 248);
	sent(c, m[2], 248);
	CHECK_RET(syscall(SYS_write, d2, m[3], 247), 247);
	sent(c, m[3], 247);
	CHECK_RET(write((int)d2, m[4], 246), 246);
	sent(c, m[4], 246);
	CHECK_RET(raw_write((int)d1, m[5], 245), 245);
	sent(c, m[5], 245);
	CHECK_RET(close((int)d1), 0);
	CHECK_RET(close((int)d2), 0);
	bracket(c, 2);
	return (NULL);
}
static const struct path P_RAWDUP = { "rawdup",
	"syscall(SYS_dup) (and syscall(SYS_fcntl, F_DUPFD)) of the enabled "
	"socket after the enable: write, syscall(SYS_write) and a raw syscall "
	"on the copies go into the same stream, in order; the peer gets EOF "
	"after the last close", NULL, run_rawdup };

/* 24. */
static const char *
run_rawclose(struct conn *c)
{
	struct conn n;
	uint8_t a[300], b[310];
	int num = c->fd;

	bracket(c, 1);
	/*
	 * The engine's control thread, started by the enable, makes its
	 * listener: once it waits in poll, it takes no number of ours.
	 */
	REQUIRE(wait_control_accept(), NULL);
	/* The engine is not told: its entry for the number goes stale. */
	CHECK_RET(syscall(SYS_close, c->fd), 0);
	c->closed = true;
	/* A plain connection; its client socket takes the lowest number. */
	REQUIRE(conn_pair(&n, c->family, c->ls) == 0, NULL);
	if (n.fd != num)
		tap_diag("the new socket got fd %d, not %d", n.fd, num);
	REQUIRE(n.fd == num, NULL);
	fill(a, sizeof(a), "rawclose-new-write", 1);
	CHECK_RET(write(n.fd, a, sizeof(a)), sizeof(a));
	sent(&n, a, sizeof(a));
	fill(b, sizeof(b), "rawclose-new-SYS_write", 2);
	CHECK_RET(syscall(SYS_write, n.fd, b, sizeof(b)), sizeof(b));
	sent(&n, b, sizeof(b));
	conn_finish(&n);	/* plain: exactly its bytes */
	conn_free(&n);
	/* case_path: the old stream is the bracket alone, then EOF. */
	return (NULL);
}
static const struct path P_RAWCLOSE = { "rawclose",
	"syscall(SYS_close) of the enabled socket (the engine not told), then a "
	"plain connection on the same number: its write() and syscall(SYS_write) "
	"go out unchanged, none of it in the old stream, which ends with EOF",
	NULL, run_rawclose };

/* 25. */
static const char *
pre_counters(struct conn *c)
{
	(void)c;
	CHECK_CTR("filters", 0);
	CHECK_CTR("trapped", 0);
	CHECK_CTR("refused", 0);
	return (NULL);
}

static const char *
run_counters(struct conn *c)
{
	struct io_uring_params up;
	struct conn t;
	uint8_t a[300];
	uint64_t tr, rf;
	int p[2], u[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u) == 0,
	    NULL);
	REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0, NULL);
	CHECK_CTR("filters", 1);
	/* A second enable installs nothing more. */
	REQUIRE(conn_pair(&t, c->family, c->ls) == 0, NULL);
	REQUIRE(conn_enable(&t) == 0, NULL);
	CHECK_CTR("filters", 1);
	close(t.fd);
	close(t.peer);
	conn_free(&t);
	fill(a, sizeof(a), "counted", 1);
	tr = guard_ctr("trapped");
	rf = guard_ctr("refused");
	/* Three trapped calls on the socket: +3. */
	for (int i = 0; i < 3; i++) {
		CHECK_RET(syscall(SYS_write, c->fd, a, sizeof(a)), sizeof(a));
		sent(c, a, sizeof(a));
	}
	CHECK_CTR("trapped", tr + 3);
	/* The interposer's write() is not a trap. */
	CHECK_RET(write(c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_CTR("trapped", tr + 3);
	/* Trapped calls on other descriptors count too: +2. */
	CHECK_RET(syscall(SYS_write, p[1], a, 10), 10);
	CHECK_RET(syscall(SYS_write, p[1], a, 10), 10);
	CHECK_CTR("trapped", tr + 5);
	CHECK_CTR("refused", rf);
	/* io_uring_setup: refused (+1), by a trap (+1). */
	memset(&up, 0, sizeof(up));
	CHECK_ERR(syscall(__NR_io_uring_setup, 8, &up), ENOSYS);
	CHECK_CTR("refused", rf + 1);
	CHECK_CTR("trapped", tr + 6);
	/* SCM_RIGHTS by libc's sendmsg: refused (+1), no trap. */
	CHECK_ERR(send_fd(u[0], c->fd, false), EPERM);
	CHECK_CTR("refused", rf + 2);
	CHECK_CTR("trapped", tr + 6);
	/* By syscall(SYS_sendmsg): refused (+1), by a trap (+1). */
	CHECK_ERR(send_fd(u[0], c->fd, true), EPERM);
	CHECK_CTR("refused", rf + 3);
	CHECK_CTR("trapped", tr + 7);
	CHECK_CTR("filters", 1);
	close(u[0]);
	close(u[1]);
	close(p[0]);
	close(p[1]);
	return (NULL);
}
static const struct path P_COUNTERS = { "counters",
	"kern.ipc.tls.guard.*: filters 0 before the first enable, 1 after (and "
	"after a second); trapped +3 for 3 syscall(SYS_write), +0 for write(), "
	"+2 for 2 on a pipe; refused +1 for io_uring_setup, +1 per SCM_RIGHTS "
	"refusal (sendmsg, syscall(SYS_sendmsg))", pre_counters, run_counters };

/* 26. */
static const char *
run_dlopen_filter(struct conn *c)
{
	const char *path = getenv("KTLS_TEST_GUARD_DL");
	long (*fn)(int, const void *, size_t);
	uint8_t a[300];
	uint64_t tr;
	void *h, *h2;
	int sf;

	if (path == NULL || *path == '\0')
		return ("KTLS_TEST_GUARD_DL (the guard_dl module) not set");
	CHECK_CTR("filters", 1);
	sf = status_field("Seccomp_filters");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		tap_diag("dlopen %s: %s", path, dlerror());
	REQUIRE(h != NULL, NULL);
	CHECK_CTR("filters", 2);
	CHECK_RET(status_field("Seccomp_filters"), sf + 1);
	fn = (long (*)(int, const void *, size_t))dlsym(h, "guard_dl_write");
	REQUIRE(fn != NULL, NULL);
	fill(a, sizeof(a), "dlopen-filter", 1);
	tr = guard_ctr("trapped");
	CHECK_RET(fn(c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_CTR("trapped", tr + 1);
	/* The same module again: nothing new mapped, no filter. */
	h2 = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CHECK(h2 == h);
	CHECK_CTR("filters", 2);
	CHECK_RET(status_field("Seccomp_filters"), sf + 1);
	bracket(c, 1);
	return (NULL);
}
static const struct path P_DLOPEN_FILTER = { "dlopen-filter",
	"a dlopen of guard_dl after the enable adds a filter: "
	"kern.ipc.tls.guard.filters 1 -> 2, Seccomp_filters +1; its raw write "
	"is one trap and encrypted; dlopen of it again adds none", NULL,
	run_dlopen_filter };

/* 27: run in a fresh image of this program (case_exec_sub). */
static const char *
run_uring_allow(struct conn *c)
{
	const char *e = getenv("KTLS_IO_URING");
	struct io_uring_params p;
	uint64_t rf;
	long r;

	if (e == NULL || strcmp(e, "allow") != 0)
		tap_diag("KTLS_IO_URING is \"%s\", want \"allow\"",
		    e != NULL ? e : "(unset)");
	CHECK(e != NULL && strcmp(e, "allow") == 0);
	bracket(c, 1);
	rf = guard_ctr("refused");
	memset(&p, 0, sizeof(p));
	errno = 0;
	r = syscall(__NR_io_uring_setup, 8, &p);
	if (r < 0)
		tap_diag("io_uring_setup after the enable, KTLS_IO_URING=allow: "
		    "%ld (%s), want a descriptor", r, strerror(errno));
	CHECK(r >= 0);
	CHECK_CTR("refused", rf);
	if (r >= 0)
		CHECK_RET(close((int)r), 0);
	bracket(c, 2);
	return (NULL);
}
static const struct path P_URING_ALLOW = { "uring-allow",
	"KTLS_IO_URING=allow at load (a fresh exec of this program): "
	"io_uring_setup after an enable returns a descriptor, refused +0",
	NULL, run_uring_allow };

/* Beyond the brief: the variable is read at load time, not later. */
static const char *
pre_uring_late(struct conn *c)
{
	(void)c;
	REQUIRE(setenv("KTLS_IO_URING", "allow", 1) == 0, NULL);
	return (NULL);
}
static const struct path P_URING_LATE = { "uring-late",
	"(beyond the brief) KTLS_IO_URING=allow set after the library loaded: "
	"io_uring_setup after the enable still -1 ENOSYS", pre_uring_late,
	run_uring_after };

/* ---- the reviewer's reproductions: descriptors around the enable ---- */

/* r1: the dup made before the enable outlives the enabled descriptor. */
static const char *
run_dup_close(struct conn *c)
{
	uint8_t a[300], b[310], d[320];

	bracket(c, 1);
	/* The socket lives while any descriptor of it is open: the dup. */
	CHECK_RET(close(c->fd), 0);
	c->fd = c->spare;
	c->spare = -1;
	/* Whatever the engine does after a close has had time to happen. */
	fx_sleep_ms(20);
	fill(a, sizeof(a), "dup-close-write", 1);
	fill(b, sizeof(b), "dup-close-SYS_write", 2);
	fill(d, sizeof(d), "dup-close-rawasm", 3);
	CHECK_RET(write(c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_RET(syscall(SYS_write, c->fd, b, sizeof(b)), sizeof(b));
	sent(c, b, sizeof(b));
	CHECK_RET(raw_write(c->fd, d, sizeof(d)), sizeof(d));
	sent(c, d, sizeof(d));
	bracket(c, 2);
	/* conn_finish closes the dup, the last descriptor: then EOF. */
	return (NULL);
}
static const struct path P_DUP_CLOSE = { "dup-close",
	"a descriptor dup'ed before the enable, then close() of the enabled "
	"one: write, syscall(SYS_write) and a raw syscall on the dup go on "
	"encrypted in the same session, EOF after the dup's close",
	pre_dup_before, run_dup_close };

/* r4: what a vfork() child did, seen from here. */
static volatile long vc_close;
static volatile int vc_err;

static const char *
run_vfork_close(struct conn *c)
{
	char *argv[] = { "true", NULL };
	uint8_t a[300], b[310], d[320];
	int fd = c->fd, st;
	pid_t pid;

	bracket(c, 1);
	vc_close = -2;
	vc_err = 0;
	fflush(stdout);
	if ((pid = vfork()) == 0) {
		/* As a vfork child does: its copy closed, then exec. */
		errno = 0;
		vc_close = close(fd);
		vc_err = errno;
		execv("/bin/true", argv);
		_exit(127);
	}
	REQUIRE(pid > 0, NULL);
	st = wait_status(pid);
	if (vc_close != 0)
		tap_diag("vfork child: close() returned %ld (errno %d, %s), "
		    "want 0", vc_close, vc_err, strerror(vc_err));
	CHECK(vc_close == 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("vfork child (close, execv /bin/true): %s",
		    status_str(st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The parent's descriptor and session are intact, in sequence. */
	CHECK(fcntl(c->fd, F_GETFD) >= 0);
	fill(a, sizeof(a), "vfork-close-parent-write", 1);
	fill(b, sizeof(b), "vfork-close-parent-SYS_write", 2);
	fill(d, sizeof(d), "vfork-close-parent-rawasm", 3);
	CHECK_RET(write(c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_RET(syscall(SYS_write, c->fd, b, sizeof(b)), sizeof(b));
	sent(c, b, sizeof(b));
	CHECK_RET(raw_write(c->fd, d, sizeof(d)), sizeof(d));
	sent(c, d, sizeof(d));
	bracket(c, 2);
	return (NULL);
}
static const struct path P_VFORK_CLOSE = { "vfork-close",
	"vfork(), the child close()s the enabled socket (0) and execs "
	"/bin/true (exit 0): the parent's descriptor stays open and its "
	"write, syscall(SYS_write) and raw syscall go on encrypted in the "
	"same session", NULL, run_vfork_close };

/* r2: a socket without close-on-exec, as sockets are by default. */
static const char *
pre_rawexec(struct conn *c)
{
	int fl = fcntl(c->fd, F_GETFD);

	REQUIRE(fl >= 0, NULL);
	REQUIRE(fcntl(c->fd, F_SETFD, fl & ~FD_CLOEXEC) == 0, NULL);
	return (NULL);
}

static const char *
run_rawexec(struct conn *c)
{
	char cmd[512], m[121];
	char *argv[] = { "sh", "-c", cmd, NULL };
	uint8_t a[300];
	pid_t pid;
	int st;

	bracket(c, 1);
	fill(m, sizeof(m) - 1, "rawexec-sh", 1);
	m[sizeof(m) - 1] = '\0';
	/*
	 * Exit 3: fd N is not open in the new image and printf fails;
	 * 4: it is open but printf fails; 5: printf wrote to it.
	 */
	snprintf(cmd, sizeof(cmd), "if [ -e /proc/$$/fd/%d ]; then o=4; "
	    "else o=3; fi; printf %%s %s 2>/dev/null >&%d && exit 5; exit $o",
	    c->fd, m, c->fd);
	fflush(stdout);
	if ((pid = fx_fork()) == 0) {
		/* Not libc's execve: the system call, made by syscall(2). */
		syscall(SYS_execve, "/bin/sh", argv, environ);
		_exit(127);
	}
	REQUIRE(pid > 0, NULL);
	st = wait_status(pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 3)
		tap_diag("sh -c: %s; want exit 3 (fd %d not open in the new "
		    "image, printf fails); 4: open, printf fails; 5: printf "
		    "wrote; 127: execve failed", status_str(st), c->fd);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	/* The parent's session goes on, in sequence. */
	fill(a, sizeof(a), "rawexec-parent-SYS_write", 2);
	CHECK_RET(syscall(SYS_write, c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	bracket(c, 2);
	return (NULL);
}
static const struct path P_RAWEXEC = { "rawexec",
	"a socket without FD_CLOEXEC, fork() and syscall(SYS_execve) of "
	"/bin/sh -c 'printf MARKER >&N': N is not open in the new image, "
	"printf fails (sh exits 3 exactly), nothing of it on the wire; the "
	"parent's writes go on encrypted", pre_rawexec, run_rawexec };

#if defined(__x86_64__)
/* An i386 system call (int $0x80) of up to three arguments. */
static long
int80(long nr, long a1, long a2, long a3)
{
	long r;

	__asm__ volatile ("int $0x80"
	    : "=a" (r)
	    : "0" (nr), "b" (a1), "c" (a2), "d" (a3)
	    : "r8", "r9", "r10", "r11", "memory");
	return (r);
}
#endif

/* r3. */
static const char *
run_int80_table(struct conn *c)
{
#if defined(__x86_64__)
	uint8_t a[300];
	struct stat sb;
	char *low;
	long r;
	int f;

	low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	REQUIRE(low != MAP_FAILED, NULL);
	/* Were the execve let through, it would fail ENOENT, not exec. */
	strcpy(low, "/nonexistent/ktls-test-guard-int80-execve");
	bracket(c, 1);
	REQUIRE((f = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0, NULL);
	/* The engine has now seen the number, as not a socket. */
	CHECK_RET(write(f, "x", 1), 1);
	CHECK_RET(int80(63 /* dup2 */, c->fd, f, 0), -EPERM);
	CHECK_RET(int80(330 /* dup3 */, c->fd, f, 0), -EPERM);
	/* f is still /dev/null: these bytes go there, none to the peer. */
	fill(a, sizeof(a), "int80-dup2-target", 1);
	CHECK_RET(write(f, a, sizeof(a)), sizeof(a));
	CHECK_RET(syscall(SYS_write, f, a, sizeof(a)), sizeof(a));
	CHECK_RET(raw_write(f, a, sizeof(a)), sizeof(a));
	CHECK(fstat(f, &sb) == 0 && S_ISCHR(sb.st_mode));
	/* The rest of the descriptor table family, and exec. */
	CHECK_RET(int80(6 /* close */, c->fd, 0, 0), -EPERM);
	CHECK_RET((r = int80(41 /* dup */, c->fd, 0, 0)), -EPERM);
	if (r >= 0)
		close((int)r);
	CHECK_RET((r = int80(55 /* fcntl */, c->fd, F_DUPFD, 100)), -EPERM);
	if (r >= 0)
		close((int)r);
	CHECK_RET((r = int80(221 /* fcntl64 */, c->fd, F_DUPFD, 100)),
	    -EPERM);
	if (r >= 0)
		close((int)r);
	CHECK_RET(int80(436 /* close_range */, c->fd, c->fd, 0), -EPERM);
	CHECK_RET(int80(11 /* execve */, (long)(uintptr_t)low, 0, 0), -EPERM);
	/* The enabled socket is open and its session goes on. */
	CHECK(fcntl(c->fd, F_GETFD) >= 0);
	fill(a, sizeof(a), "int80-table-SYS_write", 2);
	CHECK_RET(syscall(SYS_write, c->fd, a, sizeof(a)), sizeof(a));
	sent(c, a, sizeof(a));
	CHECK_RET(close(f), 0);
	bracket(c, 2);
	munmap(low, 4096);
	return (NULL);
#else
	(void)c;
	return ("x86_64 only (the i386 ABI)");
#endif
}
static const struct path P_INT80_TABLE = { "int80-table",
	"int $0x80 (i386 ABI) dup2 and dup3 of the enabled socket onto a "
	"number the engine has seen as /dev/null: -EPERM, the number stays "
	"/dev/null and writes to it reach nothing; int $0x80 close, dup, "
	"fcntl(F_DUPFD), fcntl64, close_range, execve: -EPERM; the session "
	"goes on", NULL, run_int80_table };

/* fclose() in one thread, a new enable on the same number in another. */
struct fclose_thr {
	const struct fx_lsuite	*ls;
	int			family, num;
	atomic_int		go;
	struct conn		n;
	bool			made;
};

static void *
fclose_thr_main(void *arg)
{
	struct fclose_thr *t = arg;
	uint8_t a[300], b[310], d[320];

	while (!atomic_load(&t->go))
		;
	/* At once: its client socket takes the lowest free number. */
	if (conn_pair(&t->n, t->family, t->ls) != 0) {
		tap_case_failed = 1;
		return (NULL);
	}
	t->made = true;
	if (t->n.fd != t->num)
		tap_diag("the new socket got fd %d, not %d", t->n.fd, t->num);
	CHECK(t->n.fd == t->num);
	if (conn_enable(&t->n) != 0)
		return (NULL);
	fill(a, sizeof(a), "fclose-thread-new-write", 1);
	CHECK_RET(write(t->n.fd, a, sizeof(a)), sizeof(a));
	sent(&t->n, a, sizeof(a));
	/* Whatever the engine does late about the old socket has happened. */
	fx_sleep_ms(20);
	fill(b, sizeof(b), "fclose-thread-new-SYS_write", 2);
	CHECK_RET(syscall(SYS_write, t->n.fd, b, sizeof(b)), sizeof(b));
	sent(&t->n, b, sizeof(b));
	fill(d, sizeof(d), "fclose-thread-new-rawasm", 3);
	CHECK_RET(raw_write(t->n.fd, d, sizeof(d)), sizeof(d));
	sent(&t->n, d, sizeof(d));
	return (NULL);
}

static const char *
run_fclose_thread(struct conn *c)
{
	struct fclose_thr t;
	uint8_t a[300];
	pthread_t th;
	FILE *f;

	memset(&t, 0, sizeof(t));
	t.ls = c->ls;
	t.family = c->family;
	t.num = c->fd;
	atomic_init(&t.go, 0);
	/* The control thread takes no number of ours from here on. */
	REQUIRE(wait_control_accept(), NULL);
	REQUIRE(pthread_create(&th, NULL, fclose_thr_main, &t) == 0, NULL);
	REQUIRE((f = fdopen(c->fd, "w")) != NULL, NULL);
	fill(a, sizeof(a), "fclose-thread-old", 1);
	CHECK_RET(fwrite(a, 1, sizeof(a), f), sizeof(a));
	sent(c, a, sizeof(a));
	/* libc's internal close, which the interposer does not see. */
	CHECK_RET(fclose(f), 0);
	c->closed = true;
	atomic_store(&t.go, 1);
	REQUIRE(fx_join_ms(th, 10000), NULL);
	if (t.made) {
		conn_finish(&t.n);	/* TLS: records only, exactly its bytes */
		conn_free(&t.n);
	}
	/* case_path: the old stream is its fwrite's records, then EOF. */
	return (NULL);
}
static const struct path P_FCLOSE_THREAD = { "fclose-thread",
	"fclose() of a FILE on the enabled socket, then at once in another "
	"thread a new socket on the same number enabled: its write, "
	"syscall(SYS_write) (20 ms later) and raw syscall are encrypted in "
	"its own session; the old stream ends with its records, then EOF",
	NULL, run_fclose_thread };

/* The data-path cases, each for every suite and family. */
static const struct path *const data_paths[] = {
	&P_PWRITEV2, &P_SPLICE, &P_VMSPLICE, &P_STDIO, &P_DPRINTF,
	&P_SYSCALLS, &P_RAWASM, &P_INTERNAL, &P_DLOPEN, &P_BLOCKED,
	&P_PWRITE, &P_RIGHTS, &P_URING_AFTER, &P_AIO,
	&P_MORE_SYSCALLS, &P_DUP_BEFORE, &P_RIGHTS_MORE, &P_OTHER_ABI,
	&P_FORK, &P_ADDDUP2, &P_SPAWN, &P_VFORK, &P_RAWDUP, &P_RAWCLOSE,
	&P_COUNTERS, &P_DLOPEN_FILTER, &P_URING_LATE,
	&P_DUP_CLOSE, &P_VFORK_CLOSE, &P_RAWEXEC, &P_INT80_TABLE,
	&P_FCLOSE_THREAD,
};

/* Paths run in a fresh image of this program: "--sub TAG SUITE FAMILY". */
static const struct path *const sub_paths[] = { &P_URING_ALLOW };

/* ---- running a case in a child ---- */

typedef const char *(*case_fn)(const void *);

/*
 * Fork; the child runs fn (stdout shared, diagnostics as they come) and
 * exits 0, 1 (a check failed) or 77 (skipped, the reason in the pipe).
 * The parent, which never enables, prints the TAP line.
 */
static void
run_case(case_fn fn, const void *arg, const char *fmt, ...)
{
	char name[512], why[256];
	size_t wlen = 0;
	int p[2], status;
	ssize_t n;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	fflush(stdout);
	if (pipe(p) != 0 || (pid = fx_fork()) < 0) {
		tap_diag("pipe/fork: %s", strerror(errno));
		tap_case_failed = 1;
		tap_result("%s", name);
		return;
	}
	if (pid == 0) {
		const char *skip;

		close(p[0]);
		signal(SIGALRM, SIG_DFL);	/* not the parent's watchdog */
		alarm(CASE_TIMEOUT_S);
		skip = fn(arg);
		if (skip != NULL)
			(void)!write(p[1], skip, strlen(skip));
		fflush(stdout);
		_exit(skip != NULL ? 77 : tap_case_failed ? 1 : 0);
	}
	close(p[1]);
	while (wlen < sizeof(why) - 1 &&
	    (n = read(p[0], why + wlen, sizeof(why) - 1 - wlen)) > 0)
		wlen += (size_t)n;
	why[wlen] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		tap_skip(why, "%s", name);
		return;
	}
	if (WIFSIGNALED(status)) {
		tap_diag("the case's process was killed by signal %d (%s)%s",
		    WTERMSIG(status), strsignal(WTERMSIG(status)),
		    WTERMSIG(status) == SIGALRM ? ": it hung" : "");
		tap_case_failed = 1;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		tap_case_failed = 1;
	}
	tap_result("%s", name);
}

struct path_arg {
	const struct path	*path;
	const struct fx_lsuite	*ls;
	int			family;
};

/* One path on one enabled connection. */
static const char *
case_path(const void *arg)
{
	const struct path_arg *a = arg;
	struct conn c;
	const char *skip = NULL;

	if (conn_pair(&c, a->family, a->ls) != 0) {
		tap_case_failed = 1;
		return (NULL);
	}
	if (a->path->pre != NULL && (skip = a->path->pre(&c)) != NULL)
		return (skip);
	if (conn_enable(&c) != 0)
		return (NULL);
	if ((skip = a->path->run(&c)) != NULL)
		return (skip);
	conn_finish(&c);
	conn_free(&c);
	return (NULL);
}

/*
 * A path in a fresh image of this program (posix_spawn of /proc/self/exe
 * with "--sub"), KTLS_IO_URING=allow in its environment: the engine reads
 * the variable when it loads.  This child never enables anything.
 */
static const char *
case_exec_sub(const void *arg)
{
	const struct path_arg *a = arg;
	static char why[128];
	struct io_uring_params p;
	char si[16], fam[16], *argv[6], **envp;
	size_t n = 0, j = 0;
	pid_t pid;
	long ring;
	int st;

	/* A ring here, before any enable, says whether the kernel has them. */
	memset(&p, 0, sizeof(p));
	if ((ring = syscall(__NR_io_uring_setup, 8, &p)) < 0) {
		snprintf(why, sizeof(why), "io_uring_setup: %s",
		    strerror(errno));
		return (why);
	}
	close((int)ring);
	while (environ[n] != NULL)
		n++;
	REQUIRE((envp = calloc(n + 2, sizeof(*envp))) != NULL, NULL);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "KTLS_IO_URING=", 14) != 0)
			envp[j++] = environ[i];
	envp[j++] = "KTLS_IO_URING=allow";
	snprintf(si, sizeof(si), "%d", (int)(a->ls - suites));
	snprintf(fam, sizeof(fam), "%d", a->family);
	argv[0] = "test_guard";
	argv[1] = "--sub";
	argv[2] = (char *)a->path->tag;
	argv[3] = si;
	argv[4] = fam;
	argv[5] = NULL;
	fflush(stdout);
	CHECK_RET(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp),
	    0);
	free(envp);
	if (tap_case_failed)
		return (NULL);
	st = wait_status(pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		return ("skipped in the fresh image (its diagnostic above)");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("the fresh image: %s", status_str(st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return (NULL);
}

/* main() of the fresh image: one path, its verdict as the exit status. */
static int
sub_main(char **argv)
{
	struct path_arg a = { NULL, NULL, atoi(argv[4]) };
	const char *skip;
	int si = atoi(argv[3]);

	for (size_t i = 0; i < sizeof(sub_paths) / sizeof(sub_paths[0]); i++)
		if (strcmp(sub_paths[i]->tag, argv[2]) == 0)
			a.path = sub_paths[i];
	if (a.path == NULL || si < 0 || si >= NSUITES ||
	    (a.family != AF_INET && a.family != AF_INET6)) {
		tap_diag("--sub %s %s %s: no such path, suite or family",
		    argv[2], argv[3], argv[4]);
		return (1);
	}
	a.ls = &suites[si];
	alarm(CASE_TIMEOUT_S);
	if ((skip = case_path(&a)) != NULL)
		tap_diag("fresh image: skipped: %s", skip);
	fflush(stdout);
	return (skip != NULL ? 77 : tap_case_failed ? 1 : 0);
}

/* ---- controls: the detector is not blind ---- */

/*
 * The same writes on a socket that never enables TLS: the raw bytes are
 * exactly the marker writes, the detector finds the marker, and tlsdec
 * rejects the stream.  (Also by hand: KTLS_TEST_GUARD_NO_ENABLE=1.)
 */
static const char *
case_control(const void *arg)
{
	const int *family = arg;
	struct conn c;
	struct tlsdec *d;
	struct fx_keys k;
	union ktls_linux_crypto_info ci;
	uint8_t a[300];

	REQUIRE(conn_pair(&c, *family, &suites[0]) == 0, NULL);
	fill(a, sizeof(a), "control", 1);
	CHECK_RET(write(c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	CHECK_RET(syscall(SYS_write, c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	CHECK_RET(raw_write(c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	conn_finish(&c);	/* plain: raw == exactly what was written */
	CHECK(find_marker(c.raw, c.rawlen) == c.raw);
	fx_lsuite_keys(&suites[0], 0, &ci, &k);
	REQUIRE((d = tlsdec_new(&k.en)) != NULL, NULL);
	CHECK(tlsdec_feed(d, c.raw, c.rawlen) == -1);
	tlsdec_free(d);
	conn_free(&c);
	return (NULL);
}

/* ---- 13: a ring made before the first enable ---- */

static int
status_field(const char *field)
{
	char line[256];
	size_t fl = strlen(field);
	FILE *f = fopen("/proc/self/status", "re");
	int v = -1;

	if (f == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = atoi(line + fl + 1);
			break;
		}
	fclose(f);
	return (v);
}

/*
 * A fresh process (the case's child) makes an io_uring first: the ring
 * could send behind any filter, so TLS_TX is refused (EPERM) and the
 * socket stays plain TCP: a following write goes out unchanged.
 */
static const char *
case_uring_before(const void *arg)
{
	struct io_uring_params p;
	struct conn c;
	uint8_t a[300];
	long ring;

	(void)arg;
	memset(&p, 0, sizeof(p));
	if ((ring = syscall(__NR_io_uring_setup, 8, &p)) < 0) {
		static char why[128];

		snprintf(why, sizeof(why), "io_uring_setup: %s",
		    strerror(errno));
		return (why);
	}
	REQUIRE(conn_pair(&c, AF_INET, &suites[1]) == 0, NULL);
	fx_lsuite_keys(c.ls, 0, &c.ci, &c.k);
	CHECK_RET(ulp(c.fd), 0);
	CHECK_ERR(setsockopt(c.fd, SOL_TLS, TLS_TX, &c.ci, c.ls->l->size),
	    EPERM);
	tap_diag("Seccomp after the refused enable: %d",
	    status_field("Seccomp"));
	fill(a, sizeof(a), "uring-plain", 1);
	CHECK_RET(write(c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	conn_finish(&c);	/* plain: the bytes exactly */
	conn_free(&c);
	close((int)ring);
	return (NULL);
}

/* ---- 15: the filter appears at the first enable, not before ---- */

static const char *
case_seccomp_status(const void *arg)
{
	struct conn p, t, t2;
	uint8_t a[300];
	int filters;

	(void)arg;
	CHECK_RET(status_field("Seccomp"), 0);
	REQUIRE(conn_pair(&p, AF_INET, &suites[0]) == 0, NULL);
	fill(a, sizeof(a), "plain-before", 1);
	CHECK_RET(syscall(SYS_write, p.fd, a, sizeof(a)), sizeof(a));
	sent(&p, a, sizeof(a));
	REQUIRE(conn_pair(&t, AF_INET, &suites[0]) == 0, NULL);
	/* The ULP alone is not an enable. */
	CHECK_RET(ulp(t.fd), 0);
	CHECK_RET(status_field("Seccomp"), 0);
	fx_lsuite_keys(t.ls, 0, &t.ci, &t.k);
	t.tls = true;
	CHECK_RET(setsockopt(t.fd, SOL_TLS, TLS_TX, &t.ci, t.ls->l->size), 0);
	CHECK_RET(status_field("Seccomp"), 2);
	filters = status_field("Seccomp_filters");
	CHECK(filters >= 1);
	/* The plain socket, written the same way: unchanged. */
	fill(a, sizeof(a), "plain-after", 2);
	CHECK_RET(syscall(SYS_write, p.fd, a, sizeof(a)), sizeof(a));
	sent(&p, a, sizeof(a));
	fill(a, sizeof(a), "enabled", 3);
	CHECK_RET(syscall(SYS_write, t.fd, a, sizeof(a)), sizeof(a));
	sent(&t, a, sizeof(a));
	/* A second enable installs nothing more. */
	REQUIRE(conn_pair(&t2, AF_INET, &suites[1]) == 0, NULL);
	REQUIRE(conn_enable(&t2) == 0, NULL);
	CHECK_RET(status_field("Seccomp_filters"), filters);
	fill(a, sizeof(a), "enabled-2", 4);
	CHECK_RET(syscall(SYS_write, t2.fd, a, sizeof(a)), sizeof(a));
	sent(&t2, a, sizeof(a));
	conn_finish(&p);
	conn_finish(&t);
	conn_finish(&t2);
	conn_free(&p);
	conn_free(&t);
	conn_free(&t2);
	return (NULL);
}

/* ---- 16: exec after an enable ---- */

/* 1: a static ELF (no PT_INTERP), 0: dynamic, -1: not an ELF we read. */
static int
elf_static(const char *path)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = -1;

	if (fd < 0)
		return (-1);
	if (pread(fd, &eh, sizeof(eh), 0) == (ssize_t)sizeof(eh) &&
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64) {
		r = 1;
		for (int i = 0; i < eh.e_phnum; i++) {
			if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff +
			    (uint64_t)i * eh.e_phentsize)) != (ssize_t)sizeof(ph)) {
				r = -1;
				break;
			}
			if (ph.p_type == PT_INTERP)
				r = 0;
		}
	}
	close(fd);
	return (r);
}

/* Run path with stdout a pipe: its exit status and what it printed. */
static int
run_exec(const char *path, char *const argv[], char *const envp[],
    char *out, size_t outsz)
{
	int p[2], status = -1;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	out[0] = '\0';
	if (pipe(p) != 0)
		return (-1);
	fflush(stdout);
	if ((pid = fx_fork()) == 0) {
		close(p[0]);
		if (dup2(p[1], 1) != 1)
			_exit(126);
		close(p[1]);
		execve(path, argv, envp);
		_exit(127);
	}
	close(p[1]);
	while (pid > 0 && len < outsz - 1 &&
	    (n = read(p[0], out + len, outsz - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	return (status);
}

static void
check_exec(const char *path, char *const argv[], char *const envp[])
{
	char out[256];
	int st = run_exec(path, argv, envp, out, sizeof(out));

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    strcmp(out, "hello\n") != 0)
		tap_diag("%s: %s %d, printed \"%s\"", path,
		    WIFSIGNALED(st) ? "killed by signal" : "exit status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), out);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(strcmp(out, "hello\n") == 0);
}

struct exec_arg {
	const char	*path;
	bool		drop_preload;
};

/* In a process that has enabled a socket: exec, print "hello\n", exit 0. */
static const char *
case_exec(const void *arg)
{
	const struct exec_arg *e = arg;
	char *argv_bb[] = { "busybox", "echo", "hello", NULL };
	char *argv_echo[] = { "echo", "hello", NULL };
	char **envp;
	size_t n = 0, j = 0;
	struct conn c;
	uint8_t a[300];
	int st;

	if (strcmp(e->path, "/bin/busybox") == 0 &&
	    (st = elf_static(e->path)) != 1)
		return (st < 0 ? "/bin/busybox missing (Debian busybox-static)" :
		    "/bin/busybox is dynamically linked, not busybox-static");
	while (environ[n] != NULL)
		n++;
	envp = calloc(n + 1, sizeof(*envp));
	for (size_t i = 0; i < n; i++)
		if (!e->drop_preload || strncmp(environ[i], "LD_PRELOAD=",
		    11) != 0)
			envp[j++] = environ[i];
	REQUIRE(conn_pair(&c, AF_INET, &suites[0]) == 0, NULL);
	REQUIRE(conn_enable(&c) == 0, NULL);
	fill(a, sizeof(a), "exec-before", 1);
	CHECK_RET(write(c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	check_exec(e->path, strcmp(e->path, "/bin/busybox") == 0 ? argv_bb :
	    argv_echo, envp);
	fill(a, sizeof(a), "exec-after", 2);
	CHECK_RET(syscall(SYS_write, c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	conn_finish(&c);
	conn_free(&c);
	free(envp);
	return (NULL);
}

/* ---- 17: the application's SIGSYS handler ---- */

static volatile sig_atomic_t sys_a, sys_b, sys_code, sys_pid;

static void
on_sys_a(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	sys_code = si->si_code;
	sys_pid = si->si_pid;
	sys_a++;
}

static void
on_sys_b(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	sys_code = si->si_code;
	sys_pid = si->si_pid;
	sys_b++;
}

/* kill() may land on any thread: wait for the handler to have run. */
static bool
wait_count(volatile sig_atomic_t *v, int want)
{
	for (int i = 0; i < 2000 && *v < want; i++)
		fx_sleep_ms(1);
	return (*v == want);
}

static const char *
case_app_sigsys(const void *arg)
{
	struct sigaction sa, old;
	struct conn c;
	uint8_t a[300];

	(void)arg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sys_a;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	/* Before the enable. */
	CHECK_RET(sigaction(SIGSYS, &sa, NULL), 0);
	REQUIRE(conn_pair(&c, AF_INET, &suites[1]) == 0, NULL);
	REQUIRE(conn_enable(&c) == 0, NULL);
	memset(&old, 0, sizeof(old));
	CHECK_RET(sigaction(SIGSYS, NULL, &old), 0);
	if (old.sa_sigaction != on_sys_a || !(old.sa_flags & SA_SIGINFO))
		tap_diag("sigaction(SIGSYS) after the enable: handler %p "
		    "flags %#x, want %p SA_SIGINFO", (void *)old.sa_sigaction,
		    (unsigned int)old.sa_flags, (void *)on_sys_a);
	CHECK(old.sa_sigaction == on_sys_a && (old.sa_flags & SA_SIGINFO));
	CHECK_RET(raise(SIGSYS), 0);
	CHECK(sys_a == 1 && sys_code == SI_TKILL);
	fill(a, sizeof(a), "sigsys-a", 1);
	CHECK_RET(syscall(SYS_write, c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	CHECK(sys_a == 1);	/* the guard's trap is not the app's */
	/* After the enable: another handler; the old one is returned. */
	sa.sa_sigaction = on_sys_b;
	memset(&old, 0, sizeof(old));
	CHECK_RET(sigaction(SIGSYS, &sa, &old), 0);
	CHECK(old.sa_sigaction == on_sys_a);
	memset(&old, 0, sizeof(old));
	CHECK_RET(sigaction(SIGSYS, NULL, &old), 0);
	CHECK(old.sa_sigaction == on_sys_b);
	CHECK_RET(kill(getpid(), SIGSYS), 0);
	CHECK(wait_count(&sys_b, 1));
	CHECK(sys_code == SI_USER && sys_pid == getpid() && sys_a == 1);
	fill(a, sizeof(a), "sigsys-b", 2);
	CHECK_RET(syscall(SYS_write, c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	CHECK_RET(raw_write(c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	CHECK(sys_a == 1 && sys_b == 1);
	conn_finish(&c);
	conn_free(&c);
	return (NULL);
}

/* ---- beyond the brief: fclose() closes behind the engine ---- */

/*
 * fclose() of an fdopen()ed enabled socket closes the number through
 * libc's internal close, which the interposer does not see.  The number
 * is then free: a plain socket that gets it must stay plain (its peer
 * sees exactly its bytes), and the old connection must still end, after
 * its records, with EOF.
 */
static const char *
case_fclose(const void *arg)
{
	const int *eof_first = arg;
	struct conn c, n;
	uint8_t a[300];
	FILE *f;
	int num;

	REQUIRE(conn_pair(&c, AF_INET, &suites[0]) == 0, NULL);
	REQUIRE(conn_enable(&c) == 0, NULL);
	num = c.fd;
	REQUIRE((f = fdopen(c.fd, "w")) != NULL, NULL);
	fill(a, sizeof(a), "fclose", 1);
	CHECK_RET(fwrite(a, 1, sizeof(a), f), sizeof(a));
	sent(&c, a, sizeof(a));
	CHECK_RET(fclose(f), 0);
	c.closed = true;
	if (*eof_first) {
		/* Nothing else happens: the peer gets the records, then EOF. */
		conn_finish(&c);
		conn_free(&c);
		return (NULL);
	}
	/* A new plain pair: its client socket takes the lowest free number. */
	REQUIRE(conn_pair(&n, AF_INET, &suites[0]) == 0, NULL);
	if (n.fd != num)
		tap_diag("the new socket got fd %d, not %d: weaker", n.fd, num);
	fill(a, sizeof(a), "after-fclose-plain", 2);
	CHECK_RET(write(n.fd, a, sizeof(a)), sizeof(a));
	sent(&n, a, sizeof(a));
	CHECK_RET(syscall(SYS_write, n.fd, a, sizeof(a)), sizeof(a));
	sent(&n, a, sizeof(a));
	conn_finish(&n);	/* plain: exactly its bytes */
	conn_finish(&c);
	conn_free(&n);
	conn_free(&c);
	return (NULL);
}

/* ---- r5: a signal handler that makes and writes descriptors ---- */

/*
 * SIGALRM every 200 us; its handler closes the socketpair it made last
 * time, makes a new one and writes a byte into it (async-signal-safe
 * calls the interposer sees) while the interrupted thread may be inside
 * a call that holds the engine's descriptor table lock: exec preparation
 * (ktls_exec_prepare(), as posix_spawn, system and popen make it).
 */
static int sig_sp[2] = { -1, -1 };
static volatile sig_atomic_t sig_runs, sig_bad;

static void
on_alrm_sp(int sig)
{
	int saved = errno;

	(void)sig;
	if (sig_sp[0] >= 0) {
		close(sig_sp[0]);
		close(sig_sp[1]);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sig_sp) != 0) {
		sig_sp[0] = sig_sp[1] = -1;
		sig_bad++;
	} else if (write(sig_sp[0], "x", 1) != 1)
		sig_bad++;
	sig_runs++;
	errno = saved;
}

/* In its own process (setitimer is alarm's timer): exits with its verdict. */
static void
sig_deadlock_child(void)
{
	char *argv[] = { "true", NULL };
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	struct sigaction sa;
	struct conn c;
	uint8_t a[300];
	char out[16], x = 0;
	double end;
	long calls = 0;
	FILE *f;
	pid_t pid;
	int st;

	if (conn_pair(&c, AF_INET, &suites[0]) != 0 || conn_enable(&c) != 0)
		_exit(1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm_sp;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK_RET(sigaction(SIGALRM, &sa, NULL), 0);
	CHECK_RET(setitimer(ITIMER_REAL, &it, NULL), 0);
	for (end = fx_now_s() + 0.3; fx_now_s() < end; calls++)
		ktls_exec_prepare();
	for (int i = 0; i < 10; i++) {
		CHECK_RET(posix_spawn(&pid, "/bin/true", NULL, NULL, argv,
		    environ), 0);
		st = wait_status(pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (int i = 0; i < 3; i++) {
		st = system("exit 3");
		CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 3);
		REQUIRE((f = popen("echo hi", "r")) != NULL, );
		out[fread(out, 1, sizeof(out) - 1, f)] = '\0';
		CHECK(strcmp(out, "hi\n") == 0);
		CHECK_RET(pclose(f), 0);
	}
	it = (struct itimerval){ { 0, 0 }, { 0, 0 } };
	CHECK_RET(setitimer(ITIMER_REAL, &it, NULL), 0);
	tap_diag("%ld ktls_exec_prepare calls, %d handler runs", calls,
	    (int)sig_runs);
	CHECK(sig_runs > 0);
	CHECK(sig_bad == 0);
	/* The handler's last pair holds its byte. */
	CHECK(sig_sp[1] >= 0);
	CHECK_RET(read(sig_sp[1], &x, 1), 1);
	CHECK(x == 'x');
	/* The enabled socket is untouched by all of it. */
	fill(a, sizeof(a), "sig-deadlock-SYS_write", 1);
	CHECK_RET(syscall(SYS_write, c.fd, a, sizeof(a)), sizeof(a));
	sent(&c, a, sizeof(a));
	conn_finish(&c);
	conn_free(&c);
	fflush(stdout);
	_exit(tap_case_failed ? 1 : 0);
}

static const char *
case_sig_deadlock(const void *arg)
{
	int st = -1;
	pid_t pid;

	(void)arg;
	fflush(stdout);
	if ((pid = fx_fork()) == 0)
		sig_deadlock_child();
	REQUIRE(pid > 0, NULL);
	/* A few seconds, not the case's 30: a deadlock is the failure. */
	for (int ms = 0; ms < 5000; ms += 5) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		fx_sleep_ms(5);
		st = -1;
	}
	if (st == -1) {
		tap_diag("no exit within 5 s: deadlocked (killed)");
		kill(pid, SIGKILL);
		wait_status(pid);
		tap_case_failed = 1;
		return (NULL);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tap_diag("the process: %s", status_str(st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return (NULL);
}

/* ---- 18: a packet capture sees no marker ---- */

struct cap_arg {
	const struct fx_lsuite	*ls;
	int			family;
};

#define CONTROL_MARK	"KTLS-PLAIN-CONTROL"

static const char *
case_capture(const void *arg)
{
	static const struct path *const cap_paths[] = {
		&P_PWRITEV2, &P_SPLICE, &P_VMSPLICE, &P_STDIO, &P_DPRINTF,
		&P_SYSCALLS, &P_RAWASM, &P_INTERNAL, &P_DLOPEN, &P_BLOCKED,
		&P_MORE_SYSCALLS, &P_PWRITE, &P_RIGHTS, &P_AIO,
	};
	enum { NP = sizeof(cap_paths) / sizeof(cap_paths[0]) + 2 };
	const struct cap_arg *ca = arg;
	static char why[160];
	struct sockaddr_ll sll;
	struct tpacket_stats pst;
	socklen_t pl = sizeof(pst);
	struct ifreq ifr;
	uint8_t prefix[NP][32], *frame, ctl[400];
	bool seen[NP];
	size_t npre = 0, frames = 0, leaks = 0, ctl_frames = 0;
	uint64_t wire = 0, captured = 0;
	int s, ps, rcv = 32 << 20;
	struct conn c;
	ssize_t n;

	if (unshare(CLONE_NEWNET) != 0) {
		snprintf(why, sizeof(why), "unshare(CLONE_NEWNET): %s",
		    strerror(errno));
		return (why);
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	REQUIRE(s >= 0, NULL);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	REQUIRE(ioctl(s, SIOCGIFFLAGS, &ifr) == 0, NULL);
	ifr.ifr_flags |= IFF_UP;
	REQUIRE(ioctl(s, SIOCSIFFLAGS, &ifr) == 0, NULL);
	close(s);
	if (ca->family == AF_INET6) {
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6,
		    .sin6_addr = IN6ADDR_LOOPBACK_INIT };

		s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&s6, sizeof(s6)) != 0) {
			snprintf(why, sizeof(why), "::1 in the new namespace: "
			    "%s", strerror(errno));
			return (why);
		}
		close(s);
	}
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	REQUIRE(ps >= 0, NULL);
	if (setsockopt(ps, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) != 0)
		setsockopt(ps, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)if_nametoindex("lo");
	REQUIRE(bind(ps, (struct sockaddr *)&sll, sizeof(sll)) == 0, NULL);

	for (size_t i = 0; i < NP - 2; i++) {
		const struct path *p = cap_paths[i];
		const char *skip;
		int before = tap_case_failed;

		tap_case_failed = 0;
		REQUIRE(conn_pair(&c, ca->family, ca->ls) == 0, NULL);
		skip = p->pre != NULL ? p->pre(&c) : NULL;
		if (skip == NULL && conn_enable(&c) == 0)
			skip = p->run(&c);
		if (skip != NULL) {
			tap_diag("capture: %s skipped: %s", p->tag, skip);
			close(c.fd);
			close(c.peer);
		} else {
			conn_finish(&c);
			wire += c.rawlen;
			if (c.rawlen >= sizeof(prefix[0]))
				memcpy(prefix[npre++], c.raw, sizeof(prefix[0]));
		}
		if (tap_case_failed)
			tap_diag("capture: path %s failed its own checks",
			    p->tag);
		tap_case_failed |= before;
		conn_free(&c);
	}
	/* A plain control connection: its bytes must show in the capture. */
	REQUIRE(conn_pair(&c, ca->family, ca->ls) == 0, NULL);
	for (size_t i = 0; i < sizeof(ctl); i++)
		ctl[i] = (uint8_t)CONTROL_MARK "-"[i % (sizeof(CONTROL_MARK))];
	CHECK_RET(write(c.fd, ctl, sizeof(ctl)), sizeof(ctl));
	sent(&c, ctl, sizeof(ctl));
	conn_finish(&c);
	conn_free(&c);

	memset(seen, 0, sizeof(seen));
	frame = malloc(256 * 1024);
	while ((n = recv(ps, frame, 256 * 1024, MSG_DONTWAIT | MSG_TRUNC)) >= 0) {
		size_t len = (size_t)n > 256 * 1024 ? 256 * 1024 : (size_t)n;

		if ((size_t)n > len)
			tap_diag("a frame of %zd bytes, cut to %zu", n, len);
		frames++;
		captured += len;
		if (find_marker(frame, len) != NULL) {
			const uint8_t *m = find_marker(frame, len);

			if (leaks++ < 3)
				tap_diag("PLAINTEXT in frame %zu (%zu bytes) at "
				    "%zu: \"%.40s\"", frames, len,
				    (size_t)(m - frame), (const char *)m);
		}
		if (memmem(frame, len, CONTROL_MARK, sizeof(CONTROL_MARK) - 1))
			ctl_frames++;
		for (size_t i = 0; i < npre; i++)
			if (!seen[i] && memmem(frame, len, prefix[i],
			    sizeof(prefix[i])) != NULL)
				seen[i] = true;
	}
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
	free(frame);
	memset(&pst, 0, sizeof(pst));
	CHECK(getsockopt(ps, SOL_PACKET, PACKET_STATISTICS, &pst, &pl) == 0);
	tap_diag("capture: %zu frames, %llu bytes; %llu TLS wire bytes sent "
	    "on %zu connections; %u dropped", frames,
	    (unsigned long long)captured, (unsigned long long)wire, npre,
	    pst.tp_drops);
	CHECK(leaks == 0);
	CHECK(pst.tp_drops == 0);
	/* Not vacuous: it saw all the traffic, each stream, the control. */
	CHECK(wire > 0 && captured >= wire);
	for (size_t i = 0; i < npre; i++)
		if (!seen[i]) {
			tap_diag("capture: connection %zu's first bytes in no "
			    "frame", i);
			tap_case_failed = 1;
		}
	CHECK(ctl_frames > 0);
	close(ps);
	return (NULL);
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
	static const int fams[2] = { AF_INET, AF_INET6 };
	static const int zero = 0, one = 1;
	static const struct exec_arg ex_bb = { "/bin/busybox", false };
	static const struct exec_arg ex_echo = { "/bin/echo", true };
	static const struct exec_arg ex_echo_pre = { "/bin/echo", false };
	char v6why[128] = "";
	const char *e = getenv("KTLS_TEST_GUARD_NO_ENABLE");
	int s;

	no_enable = e != NULL && *e == '1';
	suites_init();
	if (argc == 5 && strcmp(argv[1], "--sub") == 0)
		return (sub_main(argv));
	fx_watchdog(290);
	if (no_enable)
		tap_diag("KTLS_TEST_GUARD_NO_ENABLE=1: no TLS_TX; every "
		    "data-path case must fail");
	/* ::1 usable?  (A socket here: the parent never enables.) */
	{
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6,
		    .sin6_addr = IN6ADDR_LOOPBACK_INIT };

		s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&s6, sizeof(s6)) != 0)
			snprintf(v6why, sizeof(v6why), "::1 not usable: %s",
			    strerror(errno));
		if (s >= 0)
			close(s);
	}

	for (int f = 0; f < 2; f++) {
		if (fams[f] == AF_INET6 && v6why[0] != '\0') {
			tap_skip(v6why, "control (%s)", fam_name(fams[f]));
			continue;
		}
		run_case(case_control, &fams[f], "control (%s): on a "
		    "never-enabled socket the detector finds the marker and "
		    "tlsdec rejects the stream", fam_name(fams[f]));
	}

	for (size_t i = 0; i < sizeof(data_paths) / sizeof(data_paths[0]); i++)
		for (int si = 0; si < NSUITES; si++)
			for (int f = 0; f < 2; f++) {
				struct path_arg a = { data_paths[i],
				    &suites[si], fams[f] };

				if (fams[f] == AF_INET6 && v6why[0] != '\0') {
					tap_skip(v6why, "%s (%s, %s)",
					    a.path->name, a.ls->fx->linux_name,
					    fam_name(a.family));
					continue;
				}
				run_case(case_path, &a, "%s (%s, %s)",
				    a.path->name,
				    a.ls->fx->linux_name, fam_name(a.family));
			}

	for (size_t i = 0; i < sizeof(sub_paths) / sizeof(sub_paths[0]); i++)
		for (int si = 0; si < NSUITES; si++)
			for (int f = 0; f < 2; f++) {
				struct path_arg a = { sub_paths[i],
				    &suites[si], fams[f] };

				if (fams[f] == AF_INET6 && v6why[0] != '\0') {
					tap_skip(v6why, "%s (%s, %s)",
					    a.path->name, a.ls->fx->linux_name,
					    fam_name(a.family));
					continue;
				}
				run_case(case_exec_sub, &a, "%s (%s, %s)",
				    a.path->name,
				    a.ls->fx->linux_name, fam_name(a.family));
			}

	run_case(case_uring_before, NULL, "io_uring made before the first "
	    "enable: TLS_TX -1 EPERM, the socket stays plain TCP and a write "
	    "goes out unchanged");
	run_case(case_seccomp_status, NULL, "/proc/self/status Seccomp: 0 "
	    "before the first enable (ULP alone included), 2 after; a second "
	    "enable adds no filter; a plain socket written by syscall(SYS_write) "
	    "before and after is unchanged");
	run_case(case_exec, &ex_bb, "exec after an enable: static busybox echo "
	    "hello exits 0 and prints \"hello\\n\"");
	run_case(case_exec, &ex_echo, "exec after an enable: /bin/echo hello "
	    "without LD_PRELOAD exits 0 and prints \"hello\\n\"");
	run_case(case_exec, &ex_echo_pre, "(beyond the brief) exec after an "
	    "enable: /bin/echo hello with the interposer preloaded again "
	    "exits 0 and prints \"hello\\n\"");
	run_case(case_app_sigsys, NULL, "the application's SIGSYS handler: set "
	    "before the enable and replaced after it, sigaction reads it back, "
	    "raise/kill reach it (SI_TKILL, SI_USER), syscall(SYS_write) still "
	    "encrypted and not seen by it");
	run_case(case_fclose, &one, "(beyond the brief) fclose of a FILE on an "
	    "enabled socket: the peer gets the records, then EOF");
	run_case(case_fclose, &zero, "(beyond the brief) fclose of a FILE on an "
	    "enabled socket: a plain socket that gets the number stays plain");
	run_case(case_sig_deadlock, NULL, "a SIGALRM handler every 200 us doing "
	    "socketpair, write and close while the main thread loops in "
	    "ktls_exec_prepare(), posix_spawn, system and popen (which hold "
	    "the engine's table lock): no deadlock, every call returns, the "
	    "enabled socket's write encrypted");

	for (int si = 0; si < NSUITES; si++)
		for (int f = 0; f < 2; f++) {
			struct cap_arg a = { &suites[si], fams[f] };

			if (fams[f] == AF_INET6 && v6why[0] != '\0') {
				tap_skip(v6why, "packet capture (%s, %s)",
				    a.ls->fx->linux_name, fam_name(a.family));
				continue;
			}
			run_case(case_capture, &a, "packet capture on lo in a "
			    "network namespace of its own (%s, %s): no marker "
			    "in any frame, every stream and a plain control "
			    "seen", a.ls->fx->linux_name, fam_name(a.family));
		}
	return (tap_done());
}
