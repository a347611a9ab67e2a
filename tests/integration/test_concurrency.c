/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Concurrency on real loopback TCP:
 *
 *  a. eight writer threads, each on its own socket with its own suite
 *     (AEAD of TLS 1.2 and 1.3, and CBC, TLS 1.0's chained IVs among
 *     them), random write sizes: every stream byte-exact while the
 *     sessions share the workers and the poller;
 *  b. two threads writing whole messages (<= 16384 bytes) to one socket:
 *     every record is exactly one message (a record never mixes two
 *     writes) and each thread's messages arrive in its order;
 *  c. close from one thread while another is blocked writing on the same
 *     fd: the writer returns, nothing crashes, and a new socket that gets
 *     the number at once never carries a byte of the old stream.
 *
 * Every stream is decrypted by the fixture's receiver (tlsdec, no code
 * shared with the engine).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"

#define MiB		(1024u * 1024u)
#define REC		16384u

/* xorshift64*: per-thread, reproducible. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * 0x2545f4914f6cdd1dULL);
}

/*
 * a. Eight sockets, eight writers, eight suites.  The three the brief
 * names come first; TLS 1.0 CBC fails to decrypt unless its records are
 * encrypted strictly in order.
 */
static const char *const a_suites[8] = {
	"TLS1.2-AES-128-GCM",
	"TLS1.3-CHACHA20-POLY1305",
	"TLS1.0-AES-128-CBC-SHA1",
	"TLS1.3-AES-256-GCM",
	"TLS1.2-CHACHA20-POLY1305",
	"TLS1.1-AES-256-CBC-SHA1",
	"TLS1.2-AES-256-CBC-SHA384",
	"TLS1.0-AES-256-CBC-SHA1",
};

#define A_LEN		(8 * MiB)

struct a_writer {
	pthread_t	tid;
	int		fd;
	const uint8_t	*buf;		/* A_LEN bytes */
	uint64_t	seed;
	size_t		done;
	int		err;
	unsigned int	calls;
};

static void *
a_main(void *arg)
{
	struct a_writer *w = arg;
	uint64_t s = w->seed;
	ssize_t n;

	while (w->done < A_LEN) {
		size_t len = 1 + rnd(&s) % 100000;
		uint64_t how = rnd(&s) % 3;

		if (len > A_LEN - w->done)
			len = A_LEN - w->done;
		if (how == 0) {
			n = ktls_write(w->fd, w->buf + w->done, len);
		} else if (how == 1) {
			/* Records cut across the iovecs too. */
			size_t cut = len / 3;
			struct iovec iov[2] = {
				{ (void *)(w->buf + w->done), cut },
				{ (void *)(w->buf + w->done + cut), len - cut },
			};

			n = ktls_writev(w->fd, iov, 2);
		} else {
			n = ktls_send(w->fd, w->buf + w->done, len,
			    MSG_NOSIGNAL);
		}
		w->calls++;
		if (n <= 0) {
			w->err = n < 0 ? errno : -1;
			break;
		}
		w->done += (size_t)n;
	}
	return (NULL);
}

static void
case_many_sockets(void)
{
	struct fx_keys k[8];
	struct fx_rx rx[8];
	struct a_writer w[8];
	uint8_t *buf;
	int fds[8][2];
	double t0 = fx_now_s();

	/* Each stream its own window of one pattern: cross-talk shows. */
	buf = malloc(A_LEN + 8 * 65536);
	fx_pattern(buf, A_LEN + 8 * 65536, 21);
	for (int i = 0; i < 8; i++) {
		memset(&rx[i], 0, sizeof(rx[i]));
		REQUIRE(fx_enabled_pair(i & 1 ? AF_INET6 : AF_INET, a_suites[i],
		    (uint64_t)i << 40, &k[i], fds[i]) == 0, );
		REQUIRE(fx_rx_start(&rx[i], fds[i][1], &k[i].en, false) == 0, );
		memset(&w[i], 0, sizeof(w[i]));
		w[i].fd = fds[i][0];
		w[i].buf = buf + (size_t)i * 65536 + 4099 * (size_t)i;
		w[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
	}
	for (int i = 0; i < 8; i++)
		REQUIRE(pthread_create(&w[i].tid, NULL, a_main, &w[i]) == 0, );
	for (int i = 0; i < 8; i++) {
		if (!fx_join_ms(w[i].tid, 60000)) {
			tap_diag("writer %d stuck at %zu of %u bytes", i,
			    w[i].done, A_LEN);
			CHECK(0);
			return;	/* it still uses its fd: leave all */
		}
		if (w[i].err != 0)
			tap_diag("writer %d (%s): error %s after %zu bytes", i,
			    a_suites[i], strerror(w[i].err), w[i].done);
		CHECK(w[i].done == A_LEN);
		CHECK(ktls_close(fds[i][0]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		CHECK(fx_rx_finish(&rx[i], 30000));
		if (rx[i].dec_failed)
			tap_diag("stream %d (%s): decrypt failed: %s", i,
			    a_suites[i], rx[i].dec_error);
		CHECK(!rx[i].dec_failed);
		CHECK(rx[i].read_errno == 0);
		if (rx[i].bytes != A_LEN)
			tap_diag("stream %d (%s): %zu bytes, want %u", i,
			    a_suites[i], rx[i].bytes, A_LEN);
		CHECK(rx[i].bytes == A_LEN);
		CHECK(rx[i].hash == fx_fnv1a(FX_FNV_INIT, w[i].buf, A_LEN));
		/* tlsdec checked the sequence numbers; count them too. */
		CHECK(rx[i].nrecs >= A_LEN / REC && rx[i].nrecs <= w[i].calls +
		    A_LEN / REC * 2);
		close(fds[i][1]);
		fx_rx_free(&rx[i]);
	}
	tap_diag("8 x 8 MiB in %.2f s", fx_now_s() - t0);
	free(buf);
}

/*
 * b. One socket, two threads, 4000 messages each.  Message n of thread t
 * has a length drawn from t's own sequence, first byte 0xa0|t, then (if
 * room) n and the length, then t's pattern.  Knowing each thread's
 * sequence, the receiver can tell for every record whose message it is
 * and whether it is exactly that message.
 */
#define B_MSGS		4000

struct b_writer {
	pthread_t	tid;
	int		fd;
	int		t;
	const uint8_t	*pat;		/* REC bytes of t's pattern */
	uint16_t	len[B_MSGS];
	int		sent;
	int		err;
};

static void
b_message(uint8_t *out, int t, int n, size_t len, const uint8_t *pat)
{
	uint8_t hdr[9];

	memcpy(out, pat + (size_t)n % 97, len > REC - 97 ? REC - 97 : len);
	if (len > REC - 97)
		memcpy(out + REC - 97, pat, len - (REC - 97));
	hdr[0] = (uint8_t)(0xa0 | t);
	hdr[1] = (uint8_t)n;
	hdr[2] = (uint8_t)(n >> 8);
	hdr[3] = (uint8_t)(n >> 16);
	hdr[4] = (uint8_t)(n >> 24);
	hdr[5] = (uint8_t)len;
	hdr[6] = (uint8_t)(len >> 8);
	hdr[7] = (uint8_t)(len >> 16);
	hdr[8] = (uint8_t)(len >> 24);
	memcpy(out, hdr, len < sizeof(hdr) ? len : sizeof(hdr));
}

static void *
b_main(void *arg)
{
	struct b_writer *w = arg;
	uint8_t msg[REC];
	ssize_t n;

	for (int i = 0; i < B_MSGS; i++) {
		b_message(msg, w->t, i, w->len[i], w->pat);
		n = w->t == 0 ? ktls_write(w->fd, msg, w->len[i]) :
		    ktls_send(w->fd, msg, w->len[i], MSG_NOSIGNAL);
		if (n != (ssize_t)w->len[i]) {
			/* A blocking write of one record is all or nothing. */
			w->err = n < 0 ? errno : -1;
			break;
		}
		w->sent++;
	}
	return (NULL);
}

static void
case_shared_socket(int family)
{
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	struct b_writer *w = calloc(2, sizeof(*w));
	uint8_t *pat = malloc(2 * REC), expect[REC];
	int fds[2], next[2] = { 0, 0 }, bad = 0;

	fx_pattern(pat, 2 * REC, 33);
	REQUIRE(fx_enabled_pair(family, "TLS1.2-AES-128-GCM", 100, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );
	for (int t = 0; t < 2; t++) {
		uint64_t s = 0x1234567ULL + (uint64_t)t * 7919;

		w[t].fd = fds[0];
		w[t].t = t;
		w[t].pat = pat + (size_t)t * REC;
		for (int i = 0; i < B_MSGS; i++)
			w[t].len[i] = (uint16_t)(1 + rnd(&s) % REC);
	}
	for (int t = 0; t < 2; t++)
		REQUIRE(pthread_create(&w[t].tid, NULL, b_main, &w[t]) == 0, );
	for (int t = 0; t < 2; t++) {
		if (!fx_join_ms(w[t].tid, 60000)) {
			tap_diag("writer %d stuck after %d messages", t,
			    w[t].sent);
			CHECK(0);
			return;
		}
		if (w[t].err)
			tap_diag("writer %d: error %s after %d messages", t,
			    strerror(w[t].err), w[t].sent);
		CHECK(w[t].sent == B_MSGS);
	}
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 30000));
	if (rx.dec_failed)
		tap_diag("decrypt failed: %s", rx.dec_error);
	CHECK(!rx.dec_failed);
	CHECK(rx.read_errno == 0);
	CHECK(rx.nrecs == 2 * B_MSGS);
	for (size_t i = 0; i < rx.nrecs && bad < 5; i++) {
		const struct fx_rec *r = &rx.recs[i];
		int t = r->len > 0 ? r->data[0] & 0x0f : -1;

		if (r->len == 0 || (r->data[0] & 0xf0) != 0xa0 || t > 1 ||
		    next[t] >= B_MSGS) {
			tap_diag("record %zu (len %zu) is no message", i,
			    r->len);
			bad++;
			continue;
		}
		b_message(expect, t, next[t], w[t].len[next[t]], w[t].pat);
		if (r->type != TLS_RLTYPE_APP ||
		    r->len != w[t].len[next[t]] ||
		    memcmp(r->data, expect, r->len) != 0) {
			tap_diag("record %zu: not thread %d's message %d "
			    "(len %zu, want %u)", i, t, next[t], r->len,
			    w[t].len[next[t]]);
			bad++;
		}
		next[t]++;
	}
	CHECK(bad == 0);
	CHECK(next[0] == B_MSGS && next[1] == B_MSGS);
	close(fds[1]);
	fx_rx_free(&rx);
	free(pat);
	free(w);
}

/* c. The blocked writer. */
struct c_writer {
	pthread_t	tid;
	int		fd;
	const uint8_t	*buf;
	size_t		len;
	ssize_t		ret;
	int		err;
	atomic_bool	finished;
};

static void *
c_main(void *arg)
{
	struct c_writer *w = arg;

	w->ret = ktls_write(w->fd, w->buf, w->len);
	w->err = w->ret < 0 ? errno : 0;
	atomic_store(&w->finished, true);
	return (NULL);
}

/*
 * c. The receiver of the old stream stalls 1.5 s, so a 32 MiB write
 * blocks; another thread closes the fd.  Like the kernel, the blocked
 * write goes on on the old connection (the engine's own descriptor) and
 * returns; the number, free at once, goes to a new socket that is
 * enabled with other keys and carries a new stream: its peer must decrypt
 * exactly that stream, and the old peer exactly what the writer was told
 * was accepted, then EOF.
 */
static void
case_close_while_writing(int family)
{
	const size_t old_len = 32 * MiB, new_len = 2 * MiB;
	struct fx_keys k1, k2;
	struct fx_rx rx1 = { .stall_ms = 1500 }, rx2 = { 0 };
	struct c_writer w;
	uint8_t *buf = malloc(old_len + new_len);
	size_t off;
	int fds[2], s, peer;

	fx_pattern(buf, old_len + new_len, 41);
	REQUIRE(fx_enabled_pair(family, "TLS1.3-AES-128-GCM", 0, &k1, fds) == 0, );
	REQUIRE(fx_rx_start(&rx1, fds[1], &k1.en, false) == 0, );
	memset(&w, 0, sizeof(w));
	w.fd = fds[0];
	w.buf = buf;
	w.len = old_len;
	atomic_init(&w.finished, false);
	REQUIRE(pthread_create(&w.tid, NULL, c_main, &w) == 0, );
	fx_sleep_ms(300);
	/* 32 MiB cannot all be accepted while the peer stalls. */
	CHECK(!atomic_load(&w.finished));
	CHECK(ktls_close(fds[0]) == 0);

	/* The lowest free number: the one just closed. */
	s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(s >= 0, );
	if (s != fds[0]) {
		tap_diag("socket() got %d, not %d: moving it there", s,
		    fds[0]);
		CHECK(dup2(s, fds[0]) == fds[0]);
		close(s);
		s = fds[0];
	}
	REQUIRE((peer = fx_connect_loopback(s, family)) >= 0, );
	fx_keys_init(&k2, fx_suite_by_name("TLS1.2-AES-256-GCM"), 500);
	/* The number is the new socket's now: enabling it must work. */
	CHECK(ktls_setsockopt(s, IPPROTO_TCP, TCP_TXTLS_ENABLE, &k2.en,
	    sizeof(k2.en)) == 0);
	REQUIRE(fx_rx_start(&rx2, peer, &k2.en, false) == 0, );
	for (off = 0; off < new_len;) {
		ssize_t n = ktls_write(s, buf + old_len + off, new_len - off);

		if (n <= 0) {
			tap_diag("new stream write: %s", n < 0 ?
			    strerror(errno) : "0");
			CHECK(n > 0);
			break;
		}
		off += (size_t)n;
	}
	CHECK(ktls_close(s) == 0);
	CHECK(fx_rx_finish(&rx2, 20000));
	if (rx2.dec_failed)
		tap_diag("new stream: decrypt failed: %s", rx2.dec_error);
	CHECK(!rx2.dec_failed);
	CHECK(rx2.read_errno == 0);
	CHECK(rx2.bytes == new_len);
	CHECK(rx2.hash == fx_fnv1a(FX_FNV_INIT, buf + old_len, new_len));

	/* The old writer returns once its peer drains. */
	if (!fx_join_ms(w.tid, 30000)) {
		tap_diag("writer blocked on the closed fd never returned");
		CHECK(0);
		return;
	}
	tap_diag("writer on the closed fd returned %zd (%s)", w.ret,
	    w.ret < 0 ? strerror(w.err) : "accepted");
	CHECK(w.ret > 0 || (w.ret == -1 && w.err != 0));
	CHECK(fx_rx_finish(&rx1, 30000));
	if (rx1.dec_failed)
		tap_diag("old stream: decrypt failed: %s", rx1.dec_error);
	CHECK(!rx1.dec_failed);
	CHECK(rx1.read_errno == 0);
	CHECK(rx1.bytes == (w.ret > 0 ? (size_t)w.ret : 0));
	CHECK(rx1.bytes > old_len ||
	    rx1.hash == fx_fnv1a(FX_FNV_INIT, buf, rx1.bytes));
	close(fds[1]);
	close(peer);
	fx_rx_free(&rx1);
	fx_rx_free(&rx2);
	free(buf);
}

int
main(void)
{
	fx_watchdog(300);
	fx_enable_ktls();

	case_many_sockets();
	tap_result("8 threads x 8 MiB random-size writes on 8 sockets, 8 "
	    "suites (AEAD 1.2/1.3, CBC 1.0/1.1/1.2): every stream exact");
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		const char *fam = f ? "IPv6" : "IPv4";

		case_shared_socket(family);
		tap_result("%s: 2 threads x %d messages on one socket: one "
		    "record per message, per-thread order", fam, B_MSGS);
		case_close_while_writing(family);
		tap_result("%s: close while another thread is blocked in "
		    "write: writer returns, the reused fd number carries "
		    "only its new stream", fam);
	}
	return (tap_done());
}
