/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Flow control and the end of a connection, on real loopback TCP (127.0.0.1
 * and ::1): what a kernel socket promises a writer, kept by the engine.
 *
 *  a. non-blocking writers (O_NONBLOCK + edge-triggered epoll, and
 *     MSG_DONTWAIT): EAGAIN only from a full socket, always followed by an
 *     EPOLLOUT edge, no busy loop (invariant 4);
 *  b. close(2) and shutdown(SHUT_WR) with records queued: every byte, then
 *     EOF; writing after shutdown is EPIPE (invariant 3);
 *  c. the peer resets mid-transfer: the writer gets EPIPE/ECONNRESET in
 *     bounded time, SIGPIPE exactly as the kernel raises it, no leak;
 *  d. SO_LINGER {1, 0} then close: the peer sees a reset, never a broken
 *     record;
 *  e. SO_SNDTIMEO bounds a blocking write;
 *  f. signals interrupt a blocked write without SA_RESTART and do not with
 *     it;
 *  g. the sequence number space ends with a FIN and EOVERFLOW, never a wrap
 *     (invariant 2);
 *  h. sendfile from a file truncated under the engine: valid data or a
 *     reset, never garbage (invariant 1), and an error for the writer;
 *  i. autocork (kern.ipc.tls.autocork_us): a held small record leaves with
 *     the next send, on ktls_push(), or by itself after the deadline.
 *
 * Every stream is decrypted by the fixture's receiver (tlsdec, no code
 * shared with the engine) and compared byte for byte (FNV-1a over the
 * deterministic pattern for the big ones).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"

#define MiB		(1024u * 1024u)
#define BIG_LEN		(64u * MiB)
#define REC		16384u

/* The stream every case writes from: fx_pattern, seed 1. */
static uint8_t *big;

static atomic_int sigpipes;	/* SIGPIPEs delivered to this process */
static atomic_int usr1s;	/* SIGUSR1s handled */

static void
on_sigpipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigpipes, 1);
}

static void
on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&usr1s, 1);
}

static void
set_handler(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static const char *
fam(int family)
{
	return (family == AF_INET ? "IPv4" : "IPv6");
}

static void
set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void
set_linger0(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static uint64_t
hash_of(const uint8_t *buf, size_t len)
{
	return (fx_fnv1a(FX_FNV_INIT, buf, len));
}

/* What the receiver decrypted is exactly buf[0..len) and ended so. */
static void
check_stream(const struct fx_rx *rx, const uint8_t *buf, size_t len,
    int want_errno)
{
	if (rx->dec_failed)
		tap_diag("decrypt failed: %s", rx->dec_error);
	CHECK(!rx->dec_failed);
	if (rx->bytes != len)
		tap_diag("received %zu plaintext bytes, want %zu", rx->bytes,
		    len);
	CHECK(rx->bytes == len);
	CHECK(rx->bytes != len || rx->hash == hash_of(buf, len));
	if (rx->read_errno != want_errno)
		tap_diag("receiver ended with %s, want %s",
		    rx->read_errno ? strerror(rx->read_errno) : "EOF",
		    want_errno ? strerror(want_errno) : "EOF");
	CHECK(rx->read_errno == want_errno);
}

/* What the receiver decrypted is a prefix of buf[0..len): never garbage. */
static void
check_prefix(const struct fx_rx *rx, const uint8_t *buf, size_t len)
{
	if (rx->dec_failed)
		tap_diag("decrypt failed: %s", rx->dec_error);
	CHECK(!rx->dec_failed);
	CHECK(rx->bytes <= len);
	CHECK(rx->bytes > len || rx->hash == hash_of(buf, rx->bytes));
}

/*
 * kern.ipc.tls.stats.active once sockets of earlier cases that still
 * drain (or die) are gone: unchanged for 200 ms, at most 3 s.
 */
static uint64_t
active_settled(void)
{
	uint64_t v = fx_sysctl_u64("kern.ipc.tls.stats.active"), w;

	for (int i = 0, same = 0; i < 300 && same < 20; i++) {
		fx_sleep_ms(10);
		w = fx_sysctl_u64("kern.ipc.tls.stats.active");
		same = w == v ? same + 1 : 0;
		v = w;
	}
	return (v);
}

/* kern.ipc.tls.stats.active back to `want' within ms (no leaked socket). */
static bool
active_back_to(uint64_t want, unsigned int ms)
{
	for (unsigned int t = 0; t <= ms; t += 10) {
		if (fx_sysctl_u64("kern.ipc.tls.stats.active") == want)
			return (true);
		fx_sleep_ms(10);
	}
	tap_diag("kern.ipc.tls.stats.active is %llu, want %llu",
	    (unsigned long long)fx_sysctl_u64("kern.ipc.tls.stats.active"),
	    (unsigned long long)want);
	return (false);
}

/* A writer thread: one call, or calls until len bytes are accepted. */
struct wr {
	pthread_t	tid;
	int		fd;
	const uint8_t	*buf;
	size_t		len;
	bool		once;
	size_t		done;		/* bytes accepted */
	ssize_t		ret;		/* the last call's return */
	int		err;		/* and its errno */
	double		secs;
	atomic_bool	finished;
};

static void *
wr_main(void *arg)
{
	struct wr *w = arg;
	double t0 = fx_now_s();
	ssize_t n;

	while (w->done < w->len) {
		size_t len = w->once ? w->len : w->len - w->done;

		if (!w->once && len > MiB)
			len = MiB;
		n = ktls_write(w->fd, w->buf + w->done, len);
		w->ret = n;
		w->err = n < 0 ? errno : 0;
		if (n > 0)
			w->done += (size_t)n;
		if (n <= 0 || w->once)
			break;
	}
	w->secs = fx_now_s() - t0;
	atomic_store(&w->finished, true);
	return (NULL);
}

static int
wr_start(struct wr *w, int fd, const uint8_t *buf, size_t len, bool once)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->buf = buf;
	w->len = len;
	w->once = once;
	atomic_init(&w->finished, false);
	return (pthread_create(&w->tid, NULL, wr_main, w));
}

/*
 * a. A non-blocking writer driven by edge-triggered epoll on the
 * application's fd while the receiver stalls, then drains.  Invariant 4:
 * EAGAIN comes only from a full kernel socket, so an EPOLLOUT edge always
 * follows it; a lost wake-up shows as an epoll_wait timeout, a busy loop
 * (EAGAIN from a socket that is not full) as a huge EAGAIN count.
 */
static void
case_nonblock(int family, bool dontwait)
{
	const size_t total = 32 * MiB;
	struct fx_keys k;
	struct fx_rx rx = { .stall_ms = 500 };
	struct epoll_event ev;
	unsigned int eagain = 0, edges = 0;
	size_t off = 0;
	int fds[2], ep, n;

	REQUIRE(fx_enabled_pair(family, "TLS1.2-AES-128-GCM", 1, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	if (!dontwait)
		set_nonblock(fds[0]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLOUT | EPOLLET;
	ev.data.fd = fds[0];
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev) == 0);
	while (off < total) {
		size_t len = total - off < MiB ? total - off : MiB;
		ssize_t w;

		w = dontwait ? ktls_send(fds[0], big + off, len,
		    MSG_DONTWAIT | MSG_NOSIGNAL) :
		    ktls_write(fds[0], big + off, len);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EAGAIN) {
			if (++eagain >= 10000) {
				tap_diag("busy loop: %u EAGAINs", eagain);
				break;
			}
			/* The edge must come: a full socket drains. */
			n = epoll_wait(ep, &ev, 1, 5000);
			if (n != 1) {
				tap_diag("lost wake-up: no EPOLLOUT within 5 s "
				    "after EAGAIN (%zu of %zu bytes written)",
				    off, total);
				CHECK(n == 1);
				break;
			}
			edges++;
			continue;
		}
		tap_diag("write returned %zd (%s) at %zu", w,
		    w < 0 ? strerror(errno) : "-", off);
		CHECK(w > 0);
		break;
	}
	tap_diag("%s: %u EAGAIN, %u EPOLLOUT edges",
	    dontwait ? "MSG_DONTWAIT" : "O_NONBLOCK", eagain, edges);
	CHECK(off == total);
	/* The receiver stalled: the kernel socket must have filled. */
	CHECK(eagain > 0);
	CHECK(eagain < 10000);
	close(ep);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 30000));
	check_stream(&rx, big, total, 0);
	close(fds[1]);
	fx_rx_free(&rx);
}

/*
 * b1. close(2) right after a blocking writer's last 64 MiB write, with the
 * receiver stalled at first: the engine keeps the socket until the queue
 * is out, then the peer sees EOF (invariant 3), and the socket is freed.
 */
static void
case_close_queued(int family)
{
	const size_t total = 64 * MiB;
	struct fx_keys k;
	struct fx_rx rx = { .stall_ms = 500 };
	struct wr w;
	uint64_t base = active_settled();
	int fds[2];

	REQUIRE(fx_enabled_pair(family, "TLS1.3-AES-128-GCM", 0, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	REQUIRE(wr_start(&w, fds[0], big, total, false) == 0, );
	if (!fx_join_ms(w.tid, 30000)) {
		tap_diag("blocking writer stuck at %zu of %zu", w.done, total);
		CHECK(0);
		shutdown(fds[1], SHUT_RDWR);
		fx_rx_join(&rx);
		fx_rx_free(&rx);
		return;	/* the writer still holds fds[0]: leave it */
	}
	CHECK(w.done == total);
	/* At once: the last records are still queued. */
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 30000));
	check_stream(&rx, big, total, 0);
	CHECK(active_back_to(base, 5000));
	close(fds[1]);
	fx_rx_free(&rx);
}

/*
 * b2. shutdown(SHUT_WR) with records queued: all of them, then the FIN.
 * Writing afterwards fails with EPIPE, as on a kernel socket, both while
 * the queue is still going out and after the FIN left; MSG_NOSIGNAL keeps
 * SIGPIPE away, write(2) raises it.
 */
static void
case_shutdown(int family)
{
	const size_t total = 8 * MiB;
	struct fx_keys k;
	struct fx_rx rx = { .stall_ms = 300 };
	struct wr w;
	int fds[2], before;
	ssize_t n;

	REQUIRE(fx_enabled_pair(family, "TLS1.2-CHACHA20-POLY1305", 5, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	REQUIRE(wr_start(&w, fds[0], big, total, false) == 0, );
	REQUIRE(fx_join_ms(w.tid, 30000), );
	CHECK(w.done == total);
	CHECK(ktls_shutdown(fds[0], SHUT_WR) == 0);
	before = atomic_load(&sigpipes);
	n = ktls_send(fds[0], big, 100, MSG_NOSIGNAL);
	if (n != -1 || errno != EPIPE)
		tap_diag("send right after shutdown: %zd (%s), want EPIPE", n,
		    n < 0 ? strerror(errno) : "accepted");
	CHECK(n == -1 && errno == EPIPE);
	CHECK(fx_rx_finish(&rx, 30000));
	check_stream(&rx, big, total, 0);
	/* The FIN is out (the receiver saw EOF): still EPIPE. */
	n = ktls_send(fds[0], big, 100, MSG_NOSIGNAL);
	if (n != -1 || errno != EPIPE)
		tap_diag("send after the FIN: %zd (%s), want EPIPE", n,
		    n < 0 ? strerror(errno) : "accepted");
	CHECK(n == -1 && errno == EPIPE);
	CHECK(atomic_load(&sigpipes) == before);
	n = ktls_write(fds[0], big, 100);
	if (n != -1 || errno != EPIPE)
		tap_diag("write after the FIN: %zd (%s), want EPIPE", n,
		    n < 0 ? strerror(errno) : "accepted");
	CHECK(n == -1 && errno == EPIPE);
	CHECK(atomic_load(&sigpipes) == before + 1);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
	fx_rx_free(&rx);
}

/* c. The peer: reads a little, then resets the connection. */
struct rst_rx {
	pthread_t	tid;
	int		fd;
	struct tlsdec	*dec;
	size_t		want;		/* wire bytes to read first */
	size_t		wire;
	size_t		bytes;		/* plaintext decrypted */
	uint64_t	hash;
	bool		dec_failed;
};

static void *
rst_main(void *arg)
{
	struct rst_rx *r = arg;
	uint8_t buf[65536], *data;
	size_t len;
	ssize_t n;

	while (r->wire < r->want) {
		n = read(r->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r->wire += (size_t)n;
		if (!r->dec_failed && tlsdec_feed(r->dec, buf, (size_t)n) != 0)
			r->dec_failed = true;
		while (tlsdec_next(r->dec, NULL, NULL, &data, &len) == 1) {
			r->hash = fx_fnv1a(r->hash, data, len);
			r->bytes += len;
			free(data);
		}
	}
	/* Unread data and a zero linger: close(2) sends an RST. */
	set_linger0(r->fd);
	close(r->fd);
	return (NULL);
}

/* c. The sender: writes on until the reset shows, at most 10 s. */
struct rst_tx {
	pthread_t	tid;
	int		fd;
	bool		nosignal;	/* ktls_send(MSG_NOSIGNAL), else write */
	size_t		sent;
	int		errs[4];	/* errno of the failed calls */
	int		sigs[4];	/* SIGPIPEs raised during each of them */
	int		nerr;
	int		sigs_ok;	/* SIGPIPEs during successful calls */
	double		first_err;	/* seconds until the first error */
};

static void *
rst_tx_main(void *arg)
{
	struct rst_tx *t = arg;
	double t0 = fx_now_s();
	size_t off = 0;
	ssize_t n;
	int s0;

	t->first_err = -1;
	while (t->nerr < 4 && fx_now_s() - t0 < 10) {
		if (off + 65536 > BIG_LEN)
			off = 0;
		s0 = atomic_load(&sigpipes);
		n = t->nosignal ? ktls_send(t->fd, big + off, 65536,
		    MSG_NOSIGNAL) : ktls_write(t->fd, big + off, 65536);
		if (n > 0) {
			t->sigs_ok += atomic_load(&sigpipes) - s0;
			t->sent += (size_t)n;
			off += (size_t)n;
			continue;
		}
		if (t->first_err < 0)
			t->first_err = fx_now_s() - t0;
		t->errs[t->nerr] = n < 0 ? errno : 0;
		t->sigs[t->nerr] = atomic_load(&sigpipes) - s0;
		t->nerr++;
	}
	return (NULL);
}

/*
 * c. The peer resets mid-transfer while a blocking sender keeps writing:
 * the sender gets -1 with EPIPE or ECONNRESET within bounded time, and
 * SIGPIPE is raised exactly when EPIPE is returned without MSG_NOSIGNAL
 * (Linux's sk_stream_error()).  After close, the session is gone.
 */
static void
case_peer_reset(int family, bool nosignal)
{
	struct fx_keys k;
	struct rst_rx r;
	struct rst_tx t;
	uint64_t base = active_settled();
	int fds[2], epipes = 0;

	REQUIRE(fx_enabled_pair(family, "TLS1.2-AES-256-GCM", 77, &k, fds) == 0, );
	memset(&r, 0, sizeof(r));
	r.fd = fds[1];
	r.want = 300000;
	r.hash = FX_FNV_INIT;
	REQUIRE((r.dec = tlsdec_new(&k.en)) != NULL, );
	memset(&t, 0, sizeof(t));
	t.fd = fds[0];
	t.nosignal = nosignal;
	REQUIRE(pthread_create(&r.tid, NULL, rst_main, &r) == 0, );
	REQUIRE(pthread_create(&t.tid, NULL, rst_tx_main, &t) == 0, );
	CHECK(fx_join_ms(r.tid, 10000));
	if (!fx_join_ms(t.tid, 20000)) {
		tap_diag("sender stuck after the peer's reset");
		CHECK(0);
		return;
	}
	CHECK(!r.dec_failed);
	CHECK(r.bytes > 0 && r.bytes <= t.sent);
	CHECK(r.bytes > t.sent || r.hash == hash_of(big, r.bytes));
	tap_diag("%s: %zu bytes accepted, first error after %.2f s: %s",
	    nosignal ? "send(MSG_NOSIGNAL)" : "write", t.sent, t.first_err,
	    t.nerr ? strerror(t.errs[0]) : "none");
	CHECK(t.nerr > 0);
	CHECK(t.sigs_ok == 0);
	for (int i = 0; i < t.nerr; i++) {
		CHECK(t.errs[i] == EPIPE || t.errs[i] == ECONNRESET);
		if (t.errs[i] == EPIPE)
			epipes++;
		if (nosignal)
			CHECK(t.sigs[i] == 0);
		else
			CHECK(t.sigs[i] == (t.errs[i] == EPIPE ? 1 : 0));
	}
	/* Once the error is reported, the socket is gone for good. */
	CHECK(t.nerr < 2 || t.errs[t.nerr - 1] == EPIPE);
	CHECK(epipes > 0 || t.nerr < 2);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(active_back_to(base, 5000));
	tlsdec_free(r.dec);
}

/*
 * d. SO_LINGER {1, 0} on the sender, then close with records queued: the
 * peer reads what had arrived, all of it valid, and then ECONNRESET
 * (never a FIN, which would make a truncated stream look complete).
 */
static void
case_linger_reset(int family)
{
	struct fx_keys k;
	struct fx_rx rx = { .stall_ms = 500 };
	uint64_t base = active_settled();
	size_t off = 0;
	bool full = false;
	int fds[2];

	REQUIRE(fx_enabled_pair(family, "TLS1.2-AES-128-CBC-SHA256", 9, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	set_nonblock(fds[0]);
	for (int i = 0; i < 200 && off + MiB <= BIG_LEN; i++) {
		ssize_t n = ktls_write(fds[0], big + off, MiB);

		if (n < 0) {
			full = errno == EAGAIN;
			CHECK(errno == EAGAIN);
			break;
		}
		off += (size_t)n;
	}
	/* The kernel socket is full, so the engine holds records too. */
	CHECK(full);
	set_linger0(fds[0]);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 10000));
	check_prefix(&rx, big, off);
	if (rx.read_errno != ECONNRESET)
		tap_diag("peer read ended with %s, want ECONNRESET",
		    rx.read_errno ? strerror(rx.read_errno) : "EOF");
	CHECK(rx.read_errno == ECONNRESET);
	/* The queue was dropped, not sent. */
	CHECK(rx.bytes < off);
	tap_diag("%zu accepted, %zu decrypted before the reset", off,
	    rx.bytes);
	CHECK(active_back_to(base, 5000));
	close(fds[1]);
	fx_rx_free(&rx);
}

/* Reset a stuck pair so that a blocked writer returns. */
static void
unstick(int peer, struct wr *w)
{
	set_linger0(peer);
	shutdown(peer, SHUT_RDWR);
	fx_join_ms(w->tid, 10000);
}

/*
 * e. SO_SNDTIMEO 300 ms, a receiver that never reads: a large blocking
 * write returns (what it accepted, or -1/EAGAIN), and so does the next
 * one.  What was accepted then arrives intact once the peer reads.
 */
static void
case_sndtimeo(int family)
{
	const size_t total = 64 * MiB;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	struct wr w;
	size_t accepted = 0;
	int fds[2];

	REQUIRE(fx_enabled_pair(family, "TLS1.3-AES-256-GCM", 3, &k, fds) == 0, );
	CHECK(setsockopt(fds[0], SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv)) == 0);
	REQUIRE(wr_start(&w, fds[0], big, total, true) == 0, );
	if (!fx_join_ms(w.tid, 10000)) {
		tap_diag("write with SO_SNDTIMEO 300 ms still blocked "
		    "after 10 s");
		CHECK(0);
		unstick(fds[1], &w);
		return;
	}
	tap_diag("first write: %zd (%s) after %.2f s", w.ret,
	    w.ret < 0 ? strerror(w.err) : "accepted", w.secs);
	CHECK((w.ret > 0 && (size_t)w.ret < total) ||
	    (w.ret == -1 && w.err == EAGAIN));
	if (w.ret > 0)
		accepted = (size_t)w.ret;
	/* Nothing drained since: the next write times out with nothing. */
	REQUIRE(wr_start(&w, fds[0], big + accepted, MiB, true) == 0, );
	if (!fx_join_ms(w.tid, 10000)) {
		CHECK(0);
		unstick(fds[1], &w);
		return;
	}
	tap_diag("second write: %zd (%s) after %.2f s", w.ret,
	    w.ret < 0 ? strerror(w.err) : "accepted", w.secs);
	CHECK(w.ret == -1 && w.err == EAGAIN);
	if (w.ret > 0)
		accepted += (size_t)w.ret;
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 20000));
	check_stream(&rx, big, accepted, 0);
	close(fds[1]);
	fx_rx_free(&rx);
}

/*
 * f1. A handler installed without SA_RESTART interrupts a write blocked on
 * a never-reading peer: it returns what it accepted or -1/EINTR.  Signals
 * are sent until it returns (the first may land while it is copying, not
 * sleeping), at most 5 s.
 */
static void
case_signal_intr(int family)
{
	const size_t total = 64 * MiB;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	struct wr w;
	bool joined = false;
	int fds[2], s0 = atomic_load(&usr1s);

	set_handler(SIGUSR1, on_usr1, 0);
	REQUIRE(fx_enabled_pair(family, "TLS1.3-CHACHA20-POLY1305", 11, &k, fds) == 0, );
	REQUIRE(wr_start(&w, fds[0], big, total, true) == 0, );
	fx_sleep_ms(300);
	/* Without a reader 64 MiB cannot be accepted: it is blocked. */
	CHECK(!atomic_load(&w.finished));
	for (int i = 0; i < 50 && !joined; i++) {
		pthread_kill(w.tid, SIGUSR1);
		joined = fx_join_ms(w.tid, 100);
	}
	if (!joined) {
		tap_diag("write not interrupted by 50 signals");
		CHECK(joined);
		unstick(fds[1], &w);
		return;
	}
	tap_diag("interrupted write: %zd (%s), %d signals",
	    w.ret, w.ret < 0 ? strerror(w.err) : "accepted",
	    atomic_load(&usr1s) - s0);
	CHECK(atomic_load(&usr1s) > s0);
	CHECK((w.ret > 0 && (size_t)w.ret < total) ||
	    (w.ret == -1 && w.err == EINTR));
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 20000));
	check_stream(&rx, big, w.ret > 0 ? (size_t)w.ret : 0, 0);
	close(fds[1]);
	fx_rx_free(&rx);
}

/*
 * f2. With SA_RESTART and no SO_SNDTIMEO the blocked write is restarted
 * after each handler: still blocked after ten signals, and it completes
 * in full once the receiver starts draining.
 */
static void __attribute__((unused))	/* not in a TSan build */
case_signal_restart(int family)
{
	const size_t total = 32 * MiB;
	struct fx_keys k;
	/* Long enough that the signals surely end before it drains. */
	struct fx_rx rx = { .stall_ms = 2500 };
	struct wr w;
	int fds[2], s0 = atomic_load(&usr1s);

	set_handler(SIGUSR1, on_usr1, SA_RESTART);
	REQUIRE(fx_enabled_pair(family, "TLS1.0-AES-128-CBC-SHA1", 0, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	REQUIRE(wr_start(&w, fds[0], big, total, true) == 0, );
	fx_sleep_ms(300);
	CHECK(!atomic_load(&w.finished));
	for (int i = 0; i < 10; i++) {
		pthread_kill(w.tid, SIGUSR1);
		fx_sleep_ms(50);
	}
	/* The receiver still stalls: the write must still be in progress. */
	if (atomic_load(&w.finished))
		tap_diag("write returned %zd (%s) during the signals", w.ret,
		    w.ret < 0 ? strerror(w.err) : "accepted");
	CHECK(!atomic_load(&w.finished));
	CHECK(atomic_load(&usr1s) - s0 == 10);
	if (!fx_join_ms(w.tid, 30000)) {
		tap_diag("write never finished");
		CHECK(0);
		unstick(fds[1], &w);
		return;
	}
	CHECK(w.ret == (ssize_t)total);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 20000));
	check_stream(&rx, big, w.ret > 0 ? (size_t)w.ret : 0, 0);
	close(fds[1]);
	fx_rx_free(&rx);
}

/*
 * g. rec_seq 2^64 - 3, five records' worth of data: exactly three records
 * (2^64-3, -2, -1) leave, the write accepts only what they hold, the next
 * one fails with EOVERFLOW, and the FIN follows the last record without
 * any close: never a wrapped sequence number (RFC 8446 5.3, invariant 2).
 * one_call: a single 5-record write; else five 1-record writes.
 */
static void
case_seq_end(int family, const char *sname, bool one_call)
{
	const uint64_t start = UINT64_MAX - 2;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	int fds[2];
	ssize_t n;

	REQUIRE(fx_enabled_pair(family, sname, start, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
	if (one_call) {
		n = ktls_send(fds[0], big, 5 * REC, MSG_NOSIGNAL);
		if (n != 3 * REC)
			tap_diag("5-record write returned %zd (%s)", n,
			    n < 0 ? strerror(errno) : "accepted");
		CHECK(n == 3 * REC);
		n = ktls_send(fds[0], big + 3 * REC, REC, MSG_NOSIGNAL);
		CHECK(n == -1 && errno == EOVERFLOW);
	} else {
		for (unsigned int i = 0; i < 5; i++) {
			n = ktls_send(fds[0], big + i * REC, REC,
			    MSG_NOSIGNAL);
			if (i < 3)
				CHECK(n == REC);
			else
				CHECK(n == -1 && errno == EOVERFLOW);
		}
	}
	/* The FIN comes by itself: the receiver ends before our close. */
	CHECK(fx_rx_finish(&rx, 5000));
	if (rx.dec_failed)
		tap_diag("decrypt failed: %s", rx.dec_error);
	CHECK(!rx.dec_failed);
	CHECK(rx.read_errno == 0);
	CHECK(rx.nrecs == 3);
	for (size_t i = 0; i < rx.nrecs && i < 3; i++) {
		CHECK(rx.recs[i].seq == start + i);
		CHECK(rx.recs[i].type == TLS_RLTYPE_APP);
		CHECK(rx.recs[i].len == REC &&
		    memcmp(rx.recs[i].data, big + i * REC, REC) == 0);
	}
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
	fx_rx_free(&rx);
}

/*
 * h. sendfile of 256 KiB of a 1 MiB file, which the test truncates to
 * 4 KiB as soon as the call returns, before the worker read it all (the
 * records are queued, not yet filled).  Either the whole range had been
 * read (valid data, the race is lost: try again) or the engine resets
 * the connection: the peer decrypts a valid prefix then sees ECONNRESET,
 * never garbage (a zero-filled or short record), and the writer's next
 * call fails.  No SIGBUS: that would kill this program.
 */
static bool
case_sendfile_truncate(int family)
{
	const size_t flen = MiB, count = 256 * 1024;
	uint8_t *fbuf = malloc(flen);
	int attempt;
	bool won = false;

	fx_pattern(fbuf, flen, 5);
	for (attempt = 0; attempt < 10 && !won && !tap_case_failed;
	    attempt++) {
		struct fx_keys k;
		struct fx_rx rx = { .stall_ms = 300 };
		off_t off = 0;
		ssize_t n;
		int fds[2], ffd;

		REQUIRE((ffd = fx_tmpfile(flen, 5)) >= 0, false);
		REQUIRE(fx_enabled_pair(family, "TLS1.2-AES-128-GCM", 0, &k, fds) == 0,
		    false);
		REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, false);
		n = ktls_sendfile(fds[0], ffd, &off, count);
		CHECK(ftruncate(ffd, 4096) == 0);
		CHECK(n == (ssize_t)count);
		close(ffd);
		/* Let the worker finish with the records. */
		for (int i = 0; i < 200 &&
		    fx_sysctl_u64("kern.ipc.tls.stats.sw_tx_inqueue") != 0; i++)
			fx_sleep_ms(10);
		fx_sleep_ms(50);
		n = ktls_send(fds[0], big, 100, MSG_NOSIGNAL);
		if (n == 100) {
			/* Read before the truncation: all of it, valid. */
			CHECK(ktls_close(fds[0]) == 0);
			CHECK(fx_rx_finish(&rx, 10000));
			CHECK(!rx.dec_failed);
			CHECK(rx.bytes == count + 100);
			CHECK(rx.hash == fx_fnv1a(hash_of(fbuf, count), big,
			    100));
			CHECK(rx.read_errno == 0);
		} else {
			won = true;
			tap_diag("attempt %d: next send %zd (%s)", attempt, n,
			    n < 0 ? strerror(errno) : "?");
			CHECK(n == -1 && (errno == EIO || errno == EPIPE ||
			    errno == ECONNRESET));
			CHECK(ktls_close(fds[0]) == 0);
			CHECK(fx_rx_finish(&rx, 10000));
			check_prefix(&rx, fbuf, count);
			CHECK(rx.bytes < count);
			if (rx.read_errno != ECONNRESET)
				tap_diag("peer read ended with %s, want "
				    "ECONNRESET", rx.read_errno ?
				    strerror(rx.read_errno) : "EOF");
			CHECK(rx.read_errno == ECONNRESET);
			tap_diag("%zu of %zu bytes decrypted before the reset",
			    rx.bytes, count);
		}
		close(fds[1]);
		fx_rx_free(&rx);
	}
	free(fbuf);
	if (won)
		tap_diag("race won after %d attempt(s)", attempt);
	/* Never won: nothing was shown either way (the data was valid). */
	return (!won && !tap_case_failed);
}

static void
set_autocork(int us)
{
	CHECK(ktls_sysctl_set("kern.ipc.tls.autocork_us", &us,
	    sizeof(us)) == 0);
}

/* Wire bytes waiting in the receiver's socket. */
static int
unread(int fd)
{
	int n = -1;

	CHECK(ioctl(fd, FIONREAD, &n) == 0);
	return (n);
}

/* Wait (at most ms) until the receiver holds at least want bytes. */
static int
unread_wait(int fd, int want, unsigned int ms)
{
	int n;

	for (unsigned int i = 0; (n = unread(fd)) < want && i < ms; i++)
		fx_sleep_ms(1);
	return (n);
}

/*
 * i. Autocork.  A small write after a quiet spell is held (not sent):
 *   1. with nothing else happening it still leaves, by the poller's
 *      deadline (2 ms here);
 *   2. with a 100 ms deadline, ktls_push() sends it at once;
 *   3. a small sendfile right after a small write joins it: one record
 *      (a response's header and body, as nginx sends them), sent at once;
 * then the whole stream decrypts in order, exact.  Sizes of wire records
 * come from step 1: same suite, same overhead for each.
 */
static void
case_autocork(int family, const char *sname)
{
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t expect[100 + 200 + 300 + 1024];
	int fds[2], ffd, w1, n;
	off_t off = 0;

	set_autocork(2000);
	REQUIRE(fx_enabled_pair(family, sname, 7, &k, fds) == 0, );
	REQUIRE((ffd = fx_tmpfile(1024, 9)) >= 0, );
	memcpy(expect, big, 600);
	fx_pattern(expect + 600, 1024, 9);

	fx_sleep_ms(1);
	CHECK(ktls_write(fds[0], big, 100) == 100);
	/* 1: no further call of ours; the deadline sends it. */
	w1 = unread_wait(fds[1], 101, 10000);
	CHECK(w1 > 100);
	fx_sleep_ms(5);
	CHECK(unread(fds[1]) == w1);	/* one record, nothing more */

	/* 2: ktls_push() sends at once what waits 100 ms otherwise. */
	set_autocork(100000);
	fx_sleep_ms(1);
	CHECK(ktls_write(fds[0], big + 100, 200) == 200);
	ktls_push();
	n = unread(fds[1]);
	if (n != w1 + (w1 + 100))
		tap_diag("after ktls_push(): %d bytes unread, want %d", n,
		    w1 + w1 + 100);
	CHECK(n == w1 + (w1 + 100));

	/* 3: a small write, then a small sendfile: one record, at once. */
	fx_sleep_ms(1);
	CHECK(ktls_write(fds[0], big + 300, 300) == 300);
	CHECK(ktls_sendfile(fds[0], ffd, &off, 1024) == 1024);
	n = unread(fds[1]);
	if (n != 3 * w1 + 1324)
		tap_diag("after sendfile: %d bytes unread, want %d", n,
		    3 * w1 + 1324);
	CHECK(n == 3 * w1 + 1324);	/* w1 + (w1+100) + (w1+1224) */

	set_autocork(0);
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 10000));
	CHECK(!rx.dec_failed);
	CHECK(rx.nrecs == 3);
	for (size_t i = 0; i < rx.nrecs && i < 3; i++)
		CHECK(rx.recs[i].seq == 7 + i);
	CHECK(rx.nrecs < 3 || rx.recs[2].len == 300 + 1024);
	CHECK(rx.hash == hash_of(expect, sizeof(expect)));
	CHECK(rx.bytes == sizeof(expect));
	close(ffd);
	close(fds[1]);
	fx_rx_free(&rx);
}

int
main(void)
{
	fx_watchdog(300);
	fx_enable_ktls();
	/* SIGPIPE is counted, not fatal: case c checks when it is raised. */
	set_handler(SIGPIPE, on_sigpipe, SA_RESTART);
	big = malloc(BIG_LEN);
	fx_pattern(big, BIG_LEN, 1);

	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;

		case_nonblock(family, false);
		tap_result("%s: O_NONBLOCK + EPOLLET writer, stalled reader: "
		    "every EAGAIN followed by EPOLLOUT, no busy loop, 32 MiB "
		    "exact", fam(family));
		case_nonblock(family, true);
		tap_result("%s: MSG_DONTWAIT on a blocking socket: the same",
		    fam(family));
		case_close_queued(family);
		tap_result("%s: close with records queued: 64 MiB exact, then "
		    "EOF, session freed", fam(family));
		case_shutdown(family);
		tap_result("%s: shutdown(SHUT_WR) with records queued: all "
		    "data, EOF; later writes EPIPE, SIGPIPE only without "
		    "MSG_NOSIGNAL", fam(family));
		case_peer_reset(family, true);
		tap_result("%s: peer reset mid-transfer, send(MSG_NOSIGNAL): "
		    "EPIPE/ECONNRESET, no SIGPIPE, no leak", fam(family));
		case_peer_reset(family, false);
		tap_result("%s: peer reset mid-transfer, write: SIGPIPE "
		    "exactly with EPIPE, no leak", fam(family));
		case_linger_reset(family);
		tap_result("%s: SO_LINGER {1,0} close with records queued: "
		    "peer sees a valid prefix then ECONNRESET", fam(family));
		case_sndtimeo(family);
		tap_result("%s: SO_SNDTIMEO 300 ms bounds a blocking write",
		    fam(family));
		case_signal_intr(family);
		tap_result("%s: signal without SA_RESTART interrupts a blocked "
		    "write (partial or EINTR)", fam(family));
#ifdef __SANITIZE_THREAD__
		/* TSan holds signals back until its next interceptor. */
		tap_skip("ThreadSanitizer delivers signals late", "%s: signal "
		    "with SA_RESTART", fam(family));
#else
		case_signal_restart(family);
		tap_result("%s: signal with SA_RESTART: the write goes on and "
		    "completes", fam(family));
#endif
		case_seq_end(family, f ? "TLS1.3-CHACHA20-POLY1305" :
		    "TLS1.2-AES-128-GCM", f == 0);
		tap_result("%s: rec_seq 2^64-3: three records, EOVERFLOW, FIN, "
		    "no wrap (%s)", fam(family), f == 0 ? "one write" :
		    "record by record");
		if (case_sendfile_truncate(family))
			tap_skip("the worker read the file before every "
			    "truncation", "%s: sendfile from a truncated file",
			    fam(family));
		else
			tap_result("%s: sendfile from a file truncated under "
			    "the engine: valid prefix then reset, next call "
			    "fails", fam(family));
		case_autocork(family, f ? "TLS1.2-AES-256-GCM" :
		    "TLS1.3-AES-128-GCM");
		tap_result("%s: autocork: a held small record leaves by the "
		    "deadline, on ktls_push(), and a small sendfile joins it "
		    "in one record", fam(family));
	}
	free(big);
	return (tap_done());
}
