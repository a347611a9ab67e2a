/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The soak test's load: N concurrent TLS clients (OpenSSL, non-blocking
 * sockets, one epoll loop per thread) against one HTTPS server on
 * 127.0.0.1, for a bounded time.  Driven by tests/soak/soak.py.
 *
 * Each client slot loops: connect, handshake (TLS 1.2 or 1.3 with
 * AES-128-GCM, AES-256-GCM or CHACHA20-POLY1305, chosen at random; some
 * connections resume a session), then one request ("Connection: close")
 * or several on the same connection (keep-alive), each a GET of a file
 * of the manifest chosen by weight.  A completed body is checked byte for
 * byte against the file (mapped read-only) and by SHA-256 and length
 * against the manifest.  With probability --abort-pct a request is
 * aborted: right after it is sent (a third of them) or when a random byte
 * of the body has arrived, by close() with SO_LINGER 0 (RST) or a plain
 * close() (no close_notify); those are not checked.  (A body that arrives
 * whole in the read that passes its abort point completes normally.)
 *
 * At the end of --duration no new request starts; downloads in progress
 * get --grace seconds to finish, then whatever is left is cut (counted,
 * not an error).  A connection with no progress for --stall seconds is an
 * error (20 s by default, less than the 30 s of grace: a connection stuck
 * at the end is an error, not a cut).  --sha-pct: the share of downloads
 * also hashed (100 by default; all are compared byte for byte).  Prints
 * one JSON object on stdout; progress lines on stderr.
 *
 * usage: soak_client --port P --manifest FILE [--clients N]
 *        [--duration S] [--grace S] [--stall S] [--abort-pct P]
 *        [--keepalive-pct P] [--resume-pct P] [--sha-pct P] [--threads T]
 *        [--seed S] [--ca FILE] [--progress SECS]
 * The manifest has one line per file: NAME SIZE SHA256HEX WEIGHT MAXCONC
 * PATH (MAXCONC: at most that many downloads of it at once, 0: no limit).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define MAXFILES	16
#define HEADMAX		4096
#define RDBUF		(64 * 1024)
#define BUDGET		(1 << 20)	/* bytes read per turn of a connection */
#define MAXERRS		40

/* ------------------------------------------------------------ settings */

static const char *host = "127.0.0.1";
static int port;
static int nclients = 1000;
static double duration = 20, grace = 30, stall = 20;
static double abort_pct = 5, keepalive_pct = 40, resume_pct = 20;
static double sha_pct = 100, progress_every = 5;
static int nthreads = 2;
static unsigned long long seed = 1;
static const char *manifest, *cafile;

struct file {
	char name[128];
	long long size;
	unsigned char sha[32];
	int weight, maxconc;
	const unsigned char *map;
	atomic_int cur;
	atomic_llong done, aborted;
};
static struct file files[MAXFILES];
static int nfiles, total_weight;

/* Version x cipher: one SSL_CTX each. */
struct combo {
	const char *label, *version;
	const char *suite13;		/* TLS 1.3 ciphersuite, or NULL */
	const char *list12;		/* TLS 1.2 cipher list */
	const char *name1, *name2;	/* acceptable negotiated names */
	SSL_CTX *ctx;
	atomic_llong done, tried, resumed;
};
static struct combo combos[] = {
	{ "TLS1.3 AES-128-GCM", "TLSv1.3", "TLS_AES_128_GCM_SHA256", NULL,
	  "TLS_AES_128_GCM_SHA256", NULL, NULL, 0, 0, 0 },
	{ "TLS1.3 AES-256-GCM", "TLSv1.3", "TLS_AES_256_GCM_SHA384", NULL,
	  "TLS_AES_256_GCM_SHA384", NULL, NULL, 0, 0, 0 },
	{ "TLS1.3 CHACHA20-POLY1305", "TLSv1.3",
	  "TLS_CHACHA20_POLY1305_SHA256", NULL,
	  "TLS_CHACHA20_POLY1305_SHA256", NULL, NULL, 0, 0, 0 },
	{ "TLS1.2 AES-128-GCM", "TLSv1.2", NULL,
	  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
	  "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
	  NULL, 0, 0, 0 },
	{ "TLS1.2 AES-256-GCM", "TLSv1.2", NULL,
	  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
	  "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
	  NULL, 0, 0, 0 },
	{ "TLS1.2 CHACHA20-POLY1305", "TLSv1.2", NULL,
	  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
	  "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
	  NULL, 0, 0, 0 },
};
#define NCOMBOS	((int)(sizeof(combos) / sizeof(combos[0])))

/* ------------------------------------------------------------ counters */

static atomic_llong st_connects, st_handshakes, st_resumed, st_requests;
static atomic_llong st_resume_tried;
static atomic_llong st_done, st_done_bytes, st_aborts, st_abort_rst;
static atomic_llong st_abort_bytes, st_body_bytes, st_cut, st_cut_bytes;
static atomic_llong st_close_notify, st_eof_plain, st_keepalive_reqs;
/* Errors: any of these fails the test. */
static atomic_llong er_connect, er_handshake, er_cipher, er_status;
static atomic_llong er_truncated, er_verify, er_stall, er_extra, er_other;

static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char *errs[MAXERRS];
static int nerrs;
static atomic_int stopping;	/* 1: no new requests; 2: cut everything */
static double t_origin;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

static void
note_error(atomic_llong *ctr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note_error(atomic_llong *ctr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	atomic_fetch_add(ctr, 1);
	n = snprintf(buf, sizeof(buf), "t=%.2f ", now() - t_origin);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&err_lock);
	if (nerrs < MAXERRS)
		errs[nerrs++] = strdup(buf);
	pthread_mutex_unlock(&err_lock);
}

/* ----------------------------------------------------------- randomness */

struct rng {
	uint64_t s;
};

static uint64_t
rnd(struct rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

static double
rnd01(struct rng *r)
{
	return ((rnd(r) >> 11) * 0x1.0p-53);
}

static bool
chance(struct rng *r, double pct)
{
	return (rnd01(r) * 100.0 < pct);
}

/* ---------------------------------------------------------- connections */

enum state {
	S_IDLE,		/* waiting to (re)start at c->start */
	S_CONNECT,
	S_HANDSHAKE,
	S_WRITE,	/* sending the request */
	S_HEAD,
	S_BODY,
	S_EOF,		/* body complete, Connection: close: expect the end */
};

static const char *state_names[] = { "idle", "connect", "handshake",
    "request", "head", "body", "eof" };

struct conn {
	int fd;
	SSL *ssl;
	enum state st;
	int combo;
	bool keepalive, closing;	/* closing: this request says close */
	bool resume;
	int reqs_left;
	int file;
	double start, progress;
	char req[256];
	int reqlen, reqoff;
	char head[HEADMAX + 1];
	int headlen;
	long long clen, got, abort_at;	/* abort_at: -1 none */
	bool abort_rst, mismatch, sha;
	long long mismatch_at;
	EVP_MD_CTX *md;
	uint32_t events;		/* registered with epoll */
	bool in_ready;
	SSL_SESSION *sess;		/* for resumption, of combo sess_combo */
	int sess_combo;
};

struct worker {
	int id, ep, first, n;
	struct conn *conns;
	struct rng rng;
	struct conn **ready;
	int nready;
	pthread_t th;
	atomic_int hist[S_EOF + 1];	/* connections per state, each second */
};

static void
set_events(struct worker *w, struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (c->events == ev)
		return;
	if (epoll_ctl(w->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    c->fd, &e) != 0) {
		note_error(&er_other, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->events = ev;
}

/* Ends the connection; the slot restarts at once (or never, stopping). */
static void
conn_close(struct worker *w, struct conn *c, bool rst, bool keep_session)
{
	if (c->ssl != NULL) {
		if (keep_session && SSL_session_reused(c->ssl) == 0) {
			SSL_SESSION *s = SSL_get1_session(c->ssl);

			if (s != NULL && SSL_SESSION_is_resumable(s)) {
				SSL_SESSION_free(c->sess);
				c->sess = s;
				c->sess_combo = c->combo;
			} else
				SSL_SESSION_free(s);
		}
		/*
		 * Else SSL_free() takes an unfinished connection's session
		 * off the cache, marking it not resumable: the very object
		 * c->sess holds when this connection resumed it.
		 */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN |
		    SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		if (rst) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		if (c->events)
			epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->events = 0;
	if (c->file >= 0) {
		atomic_fetch_sub(&files[c->file].cur, 1);
		c->file = -1;
	}
	c->st = S_IDLE;
	c->start = now();
}

static int
pick_file(struct worker *w)
{
	for (int tries = 0; tries < 20; tries++) {
		int x = (int)(rnd(&w->rng) % (uint64_t)total_weight), i;

		for (i = 0; i < nfiles - 1 && x >= files[i].weight; i++)
			x -= files[i].weight;
		if (files[i].maxconc == 0 ||
		    atomic_fetch_add(&files[i].cur, 1) < files[i].maxconc) {
			if (files[i].maxconc == 0)
				atomic_fetch_add(&files[i].cur, 1);
			return (i);
		}
		atomic_fetch_sub(&files[i].cur, 1);
	}
	/* The smallest file has no limit (checked at load). */
	atomic_fetch_add(&files[0].cur, 1);
	return (0);
}

static void
start_request(struct worker *w, struct conn *c)
{
	c->file = pick_file(w);
	c->reqs_left--;
	c->closing = !c->keepalive ||
	    (c->reqs_left == 0 && chance(&w->rng, 50));
	c->reqlen = snprintf(c->req, sizeof(c->req),
	    "GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
	    files[c->file].name,
	    c->closing ? "Connection: close\r\n" : "");
	c->reqoff = 0;
	c->headlen = 0;
	c->clen = -1;
	c->got = 0;
	c->mismatch = false;
	c->abort_at = -1;
	if (chance(&w->rng, abort_pct)) {
		/*
		 * A third right after the request (the response races with
		 * the close: the only way to abort a body of one record),
		 * the rest at a random byte of the body.
		 */
		if (chance(&w->rng, 30))
			c->abort_at = 0;
		else
			c->abort_at = 1 + (long long)(rnd01(&w->rng) *
			    (double)(files[c->file].size - 1));
		c->abort_rst = chance(&w->rng, 50);
	}
	c->sha = chance(&w->rng, sha_pct);
	if (c->sha)
		EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
	atomic_fetch_add(&st_requests, 1);
	c->st = S_WRITE;
	c->progress = now();
}

static void
start_conn(struct worker *w, struct conn *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };

	inet_pton(AF_INET, host, &sa.sin_addr);
	/* Some connections resume the slot's last session (its suite). */
	c->resume = c->sess != NULL && chance(&w->rng, resume_pct);
	c->combo = c->resume ? c->sess_combo : (int)(rnd(&w->rng) % NCOMBOS);
	c->keepalive = chance(&w->rng, keepalive_pct);
	c->reqs_left = c->keepalive ? 2 + (int)(rnd(&w->rng) % 9) : 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		note_error(&er_connect, "socket: %s", strerror(errno));
		c->start = now() + 1;
		return;
	}
	c->events = 0;
	c->progress = now();
	atomic_fetch_add(&st_connects, 1);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    errno != EINPROGRESS) {
		note_error(&er_connect, "connect: %s", strerror(errno));
		conn_close(w, c, false, false);
		c->start = now() + 1;
		return;
	}
	c->st = S_CONNECT;
	set_events(w, c, EPOLLOUT);
}

static void
want(struct worker *w, struct conn *c, int err)
{
	set_events(w, c, err == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
}

static const char *
ssl_err_string(int err)
{
	static __thread char buf[256];
	unsigned long e = ERR_peek_last_error();
	int saved = errno;

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
	} else
		snprintf(buf, sizeof(buf), "SSL_get_error %d, errno %d (%s)",
		    err, saved, saved ? strerror(saved) : "EOF");
	return (buf);
}

static const char *
where(struct conn *c)
{
	static __thread char buf[256];

	snprintf(buf, sizeof(buf), "%s %s %s got %lld/%lld",
	    combos[c->combo].label, state_names[c->st],
	    c->file >= 0 ? files[c->file].name : "-", c->got, c->clen);
	return (buf);
}

static void
hexsha(const unsigned char *h, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

/* A whole body arrived. */
static void
body_complete(struct worker *w, struct conn *c)
{
	struct file *f = &files[c->file];
	unsigned char h[32] = { 0 };
	unsigned int hl = 0;

	if (c->sha)
		EVP_DigestFinal_ex(c->md, h, &hl);
	if (c->mismatch || c->got != f->size ||
	    (c->sha && memcmp(h, f->sha, 32) != 0)) {
		char a[65], b[65];

		if (c->sha)
			hexsha(h, a);
		else
			strcpy(a, "(not computed)");
		hexsha(f->sha, b);
		note_error(&er_verify, "corrupt download: %s; first differing "
		    "byte at %lld; sha256 %s expected %s", where(c),
		    c->mismatch ? c->mismatch_at : -1, a, b);
	} else {
		atomic_fetch_add(&st_done, 1);
		atomic_fetch_add(&st_done_bytes, c->got);
		atomic_fetch_add(&f->done, 1);
		atomic_fetch_add(&combos[c->combo].done, 1);
		if (c->keepalive)
			atomic_fetch_add(&st_keepalive_reqs, 1);
	}
	atomic_fetch_sub(&f->cur, 1);
	c->file = -1;
	if (c->closing) {
		c->st = S_EOF;
		return;
	}
	if (c->reqs_left > 0 && atomic_load(&stopping) == 0) {
		start_request(w, c);
		return;
	}
	/* Keep-alive connection done: we close it, with close_notify. */
	SSL_shutdown(c->ssl);
	conn_close(w, c, false, true);
}

static void
count_abort(struct conn *c)
{
	atomic_fetch_add(&st_aborts, 1);
	atomic_fetch_add(&st_abort_bytes, c->got);
	atomic_fetch_add(&files[c->file].aborted, 1);
	if (c->abort_rst)
		atomic_fetch_add(&st_abort_rst, 1);
}

/* Body bytes: compared with the file, hashed; true: go on. */
static bool
feed_body(struct worker *w, struct conn *c, const unsigned char *p,
    long long n)
{
	struct file *f = &files[c->file];

	if (c->got + n > c->clen) {
		note_error(&er_extra, "%lld bytes past the body: %s",
		    c->got + n - c->clen, where(c));
		conn_close(w, c, true, false);
		return (false);
	}
	if (!c->mismatch && c->got + n <= f->size &&
	    memcmp(f->map + c->got, p, (size_t)n) != 0) {
		long long i = 0;

		while (f->map[c->got + i] == p[i])
			i++;
		c->mismatch = true;
		c->mismatch_at = c->got + i;
	}
	if (c->sha)
		EVP_DigestUpdate(c->md, p, (size_t)n);
	c->got += n;
	atomic_fetch_add(&st_body_bytes, n);
	if (c->abort_at > 0 && c->got >= c->abort_at && c->got < c->clen) {
		count_abort(c);
		conn_close(w, c, c->abort_rst, false);
		return (false);
	}
	if (c->got == c->clen) {
		body_complete(w, c);
		return (c->st != S_IDLE);
	}
	return (true);
}

/* The response head is in c->head[0..headlen); end: offset past CRLFCRLF */
static bool
parse_head(struct worker *w, struct conn *c, int end)
{
	char *cl;
	int status = 0;

	c->head[end] = '\0';
	if (sscanf(c->head, "HTTP/1.1 %d", &status) != 1 || status != 200) {
		note_error(&er_status, "status %d: %s: %.80s", status,
		    where(c), c->head);
		conn_close(w, c, true, false);
		return (false);
	}
	cl = strcasestr(c->head, "\r\nContent-Length:");
	if (cl == NULL || sscanf(cl + 17, " %lld", &c->clen) != 1 ||
	    c->clen != files[c->file].size) {
		note_error(&er_status, "Content-Length %lld: %s", c->clen,
		    where(c));
		conn_close(w, c, true, false);
		return (false);
	}
	c->st = S_BODY;
	return (true);
}

/* Reads what there is; false: the connection ended (or was closed). */
static bool
do_read(struct worker *w, struct conn *c, unsigned char *buf, bool *more)
{
	long long budget = BUDGET;

	while (budget > 0) {
		size_t n = 0;
		int r, err;

		if (c->st == S_HEAD)
			r = SSL_read_ex(c->ssl, c->head + c->headlen,
			    HEADMAX - c->headlen, &n);
		else
			r = SSL_read_ex(c->ssl, buf, RDBUF, &n);
		if (r <= 0) {
			err = SSL_get_error(c->ssl, r);
			if (err == SSL_ERROR_WANT_READ ||
			    err == SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				want(w, c, err);
				return (true);
			}
			if (c->st == S_EOF) {
				if (err == SSL_ERROR_ZERO_RETURN)
					atomic_fetch_add(&st_close_notify, 1);
				else
					atomic_fetch_add(&st_eof_plain, 1);
				ERR_clear_error();
				conn_close(w, c, false, true);
				return (false);
			}
			note_error(&er_truncated, "connection ended before the "
			    "response did: %s: %s", where(c),
			    err == SSL_ERROR_ZERO_RETURN ? "close_notify" :
			    ssl_err_string(err));
			conn_close(w, c, false, false);
			return (false);
		}
		budget -= (long long)n;
		c->progress = now();
		if (c->st == S_EOF) {
			note_error(&er_extra, "%zu bytes after a complete "
			    "response: %s", n, where(c));
			conn_close(w, c, true, false);
			return (false);
		}
		if (c->st == S_HEAD) {
			unsigned char tmp[HEADMAX];
			char *e;
			int end, extra;

			c->headlen += (int)n;
			e = memmem(c->head, (size_t)c->headlen, "\r\n\r\n", 4);
			if (e == NULL) {
				if (c->headlen >= HEADMAX) {
					note_error(&er_status, "head too long:"
					    " %s", where(c));
					conn_close(w, c, true, false);
					return (false);
				}
				continue;
			}
			/* Body bytes that came with the head, then the head. */
			end = (int)(e + 4 - c->head);
			extra = c->headlen - end;
			memcpy(tmp, c->head + end, (size_t)extra);
			c->headlen = end;
			if (!parse_head(w, c, end))
				return (false);
			if (extra > 0 && !feed_body(w, c, tmp, extra))
				return (false);
			if (c->st == S_WRITE) {
				*more = true;
				return (true);
			}
			continue;
		}
		if (!feed_body(w, c, buf, (long long)n))
			return (false);
		if (c->st == S_WRITE) {
			/* The next keep-alive request: write it first. */
			*more = true;
			return (true);
		}
	}
	*more = true;	/* budget spent: come back without waiting */
	return (true);
}

/* Drives c as far as it goes without blocking. */
static void
step(struct worker *w, struct conn *c, unsigned char *buf)
{
	for (;;) {
		bool more = false;
		int r, err;

		switch (c->st) {
		case S_IDLE:
			return;
		case S_CONNECT: {
			int e = 0;
			socklen_t l = sizeof(e);

			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
			if (e == 0) {
				struct sockaddr_storage ss;
				socklen_t sl = sizeof(ss);

				if (getpeername(c->fd, (struct sockaddr *)&ss,
				    &sl) != 0)
					return;		/* still connecting */
			}
			if (e != 0) {
				note_error(&er_connect, "connect: %s",
				    strerror(e));
				conn_close(w, c, false, false);
				c->start = now() + 0.5;
				return;
			}
			c->ssl = SSL_new(combos[c->combo].ctx);
			SSL_set_fd(c->ssl, c->fd);
			SSL_set_connect_state(c->ssl);
			if (c->resume) {
				SSL_set_session(c->ssl, c->sess);
				atomic_fetch_add(&st_resume_tried, 1);
				atomic_fetch_add(&combos[c->combo].tried, 1);
			}
			c->st = S_HANDSHAKE;
			c->progress = now();
			break;
		}
		case S_HANDSHAKE: {
			const char *v, *cn;

			r = SSL_do_handshake(c->ssl);
			if (r != 1) {
				err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_READ ||
				    err == SSL_ERROR_WANT_WRITE) {
					want(w, c, err);
					return;
				}
				note_error(&er_handshake, "handshake: %s: %s",
				    combos[c->combo].label,
				    ssl_err_string(err));
				conn_close(w, c, false, false);
				return;
			}
			atomic_fetch_add(&st_handshakes, 1);
			if (SSL_session_reused(c->ssl)) {
				atomic_fetch_add(&st_resumed, 1);
				atomic_fetch_add(&combos[c->combo].resumed, 1);
			}
			v = SSL_get_version(c->ssl);
			cn = SSL_CIPHER_get_name(SSL_get_current_cipher(
			    c->ssl));
			if (strcmp(v, combos[c->combo].version) != 0 ||
			    (strcmp(cn, combos[c->combo].name1) != 0 &&
			    (combos[c->combo].name2 == NULL ||
			    strcmp(cn, combos[c->combo].name2) != 0))) {
				note_error(&er_cipher, "asked %s, negotiated "
				    "%s %s", combos[c->combo].label, v, cn);
				conn_close(w, c, false, false);
				return;
			}
			if (atomic_load(&stopping)) {
				SSL_shutdown(c->ssl);
				conn_close(w, c, false, false);
				return;
			}
			start_request(w, c);
			break;
		}
		case S_WRITE: {
			size_t n = 0;

			r = SSL_write_ex(c->ssl, c->req + c->reqoff,
			    c->reqlen - c->reqoff, &n);
			if (r <= 0) {
				err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_READ ||
				    err == SSL_ERROR_WANT_WRITE) {
					want(w, c, err);
					return;
				}
				note_error(&er_truncated, "request: %s: %s",
				    where(c), ssl_err_string(err));
				conn_close(w, c, false, false);
				return;
			}
			c->reqoff += (int)n;
			if (c->reqoff < c->reqlen)
				break;
			c->st = S_HEAD;
			if (c->abort_at == 0) {
				count_abort(c);
				conn_close(w, c, c->abort_rst, false);
				return;
			}
			break;
		}
		case S_HEAD:
		case S_BODY:
		case S_EOF:
			if (!do_read(w, c, buf, &more))
				return;
			if (c->st == S_WRITE)
				break;
			if (more && !c->in_ready) {
				c->in_ready = true;
				w->ready[w->nready++] = c;
			}
			return;
		}
	}
}

static void
cut(struct worker *w, struct conn *c)
{
	if (c->st == S_IDLE)
		return;
	if (c->st >= S_WRITE && c->st <= S_BODY) {
		atomic_fetch_add(&st_cut, 1);
		atomic_fetch_add(&st_cut_bytes, c->got);
	}
	conn_close(w, c, true, false);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(RDBUF);
	struct epoll_event evs[256];
	double t_end = t_origin + duration, t_cut = t_end + grace;
	double next_check = now() + 1;

	for (;;) {
		double t = now();
		int n, active = 0;
		bool is_stopping = t >= t_end;

		if (t >= t_cut && atomic_load(&stopping) < 2)
			atomic_store(&stopping, 2);
		else if (is_stopping && atomic_load(&stopping) == 0)
			atomic_store(&stopping, 1);
		for (int i = 0; i < w->n; i++) {
			struct conn *c = &w->conns[i];

			if (atomic_load(&stopping) == 2) {
				cut(w, c);
				continue;
			}
			if (c->st == S_IDLE) {
				if (!is_stopping && t >= c->start)
					start_conn(w, c);
				else
					continue;
			}
			if (is_stopping && (c->st == S_CONNECT ||
			    c->st == S_HANDSHAKE)) {
				conn_close(w, c, false, false);
				continue;
			}
			active++;
			if (t >= next_check && t - c->progress > stall) {
				note_error(&er_stall, "no progress for %.0f s:"
				    " %s", t - c->progress, where(c));
				conn_close(w, c, true, false);
			}
		}
		if (t >= next_check) {
			int hist[S_EOF + 1] = { 0 };

			for (int i = 0; i < w->n; i++)
				hist[w->conns[i].st]++;
			for (int i = 0; i <= S_EOF; i++)
				atomic_store(&w->hist[i], hist[i]);
			next_check = t + 1;
		}
		if (atomic_load(&stopping) == 2 || (is_stopping && active == 0))
			break;
		n = epoll_wait(w->ep, evs, 256, w->nready ? 0 : 50);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c->in_ready)
				step(w, c, buf);
		}
		{
			int nr = w->nready;
			struct conn *r[nr > 0 ? nr : 1];

			memcpy(r, w->ready, sizeof(r[0]) * nr);
			w->nready = 0;
			for (int i = 0; i < nr; i++) {
				r[i]->in_ready = false;
				step(w, r[i], buf);
			}
		}
	}
	for (int i = 0; i < w->n; i++) {
		cut(w, &w->conns[i]);
		SSL_SESSION_free(w->conns[i].sess);
		EVP_MD_CTX_free(w->conns[i].md);
	}
	free(buf);
	return (NULL);
}

/* ------------------------------------------------------------- set-up */

static void
load_manifest(void)
{
	FILE *f = fopen(manifest, "r");
	char line[2048];

	if (f == NULL) {
		perror(manifest);
		exit(2);
	}
	while (fgets(line, sizeof(line), f) != NULL && nfiles < MAXFILES) {
		struct file *x = &files[nfiles];
		char hex[80], path[1024];
		struct stat st;
		int fd;

		if (sscanf(line, "%127s %lld %79s %d %d %1023s", x->name,
		    &x->size, hex, &x->weight, &x->maxconc, path) != 6)
			continue;
		for (int i = 0; i < 32; i++)
			sscanf(hex + 2 * i, "%2hhx", &x->sha[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0 || st.st_size != x->size) {
			fprintf(stderr, "%s: missing or not %lld bytes\n",
			    path, x->size);
			exit(2);
		}
		x->map = mmap(NULL, (size_t)x->size, PROT_READ, MAP_SHARED,
		    fd, 0);
		if (x->map == MAP_FAILED) {
			perror("mmap");
			exit(2);
		}
		close(fd);
		total_weight += x->weight;
		nfiles++;
	}
	fclose(f);
	if (nfiles == 0 || total_weight <= 0 || files[0].maxconc != 0) {
		fprintf(stderr, "%s: no files, or the first one is limited\n",
		    manifest);
		exit(2);
	}
}

static void
make_contexts(void)
{
	for (int i = 0; i < NCOMBOS; i++) {
		struct combo *k = &combos[i];
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		int v = strcmp(k->version, "TLSv1.3") == 0 ? TLS1_3_VERSION :
		    TLS1_2_VERSION;

		if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, v) ||
		    !SSL_CTX_set_max_proto_version(ctx, v) ||
		    (k->suite13 && !SSL_CTX_set_ciphersuites(ctx, k->suite13))
		    || (k->list12 && !SSL_CTX_set_cipher_list(ctx, k->list12))) {
			fprintf(stderr, "SSL_CTX for %s failed\n", k->label);
			exit(2);
		}
		if (cafile != NULL) {
			if (!SSL_CTX_load_verify_locations(ctx, cafile, NULL)) {
				fprintf(stderr, "%s: cannot load\n", cafile);
				exit(2);
			}
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		} else
			SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		/* Keep the reads record by record (no read-ahead). */
		SSL_CTX_set_read_ahead(ctx, 0);
		k->ctx = ctx;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: soak_client --port P --manifest FILE "
	    "[--clients N] [--duration S] [--grace S] [--stall S] "
	    "[--abort-pct P] [--keepalive-pct P] [--resume-pct P] "
	    "[--sha-pct P] [--threads T] [--seed S] [--ca FILE] "
	    "[--progress SECS]\n");
	exit(2);
}

static void
print_json(double secs)
{
	printf("{\n");
#define N(name, v) \
	printf("  \"%s\": %lld,\n", name, (long long)atomic_load(&v))
	N("connections", st_connects);
	N("handshakes", st_handshakes);
	N("resume_tried", st_resume_tried);
	N("resumed", st_resumed);
	N("requests", st_requests);
	N("completed", st_done);
	N("completed_bytes", st_done_bytes);
	N("keepalive_completed", st_keepalive_reqs);
	N("aborts", st_aborts);
	N("aborts_rst", st_abort_rst);
	N("abort_bytes", st_abort_bytes);
	N("body_bytes", st_body_bytes);
	N("cut_at_end", st_cut);
	N("cut_bytes", st_cut_bytes);
	N("close_notify", st_close_notify);
	N("eof_without_close_notify", st_eof_plain);
	N("err_connect", er_connect);
	N("err_handshake", er_handshake);
	N("err_cipher", er_cipher);
	N("err_status", er_status);
	N("err_truncated", er_truncated);
	N("err_verify", er_verify);
	N("err_stall", er_stall);
	N("err_extra", er_extra);
	N("err_other", er_other);
#undef N
	printf("  \"seconds\": %.3f,\n", secs);
	printf("  \"files\": [");
	for (int i = 0; i < nfiles; i++)
		printf("%s{\"name\": \"%s\", \"size\": %lld, \"completed\": "
		    "%lld, \"aborted\": %lld}", i ? ", " : "", files[i].name,
		    files[i].size, (long long)atomic_load(&files[i].done),
		    (long long)atomic_load(&files[i].aborted));
	printf("],\n  \"suites\": {");
	for (int i = 0; i < NCOMBOS; i++)
		printf("%s\"%s\": %lld", i ? ", " : "", combos[i].label,
		    (long long)atomic_load(&combos[i].done));
	printf("},\n  \"resumed_per_suite\": {");
	for (int i = 0; i < NCOMBOS; i++)
		printf("%s\"%s\": [%lld, %lld]", i ? ", " : "", combos[i].label,
		    (long long)atomic_load(&combos[i].resumed),
		    (long long)atomic_load(&combos[i].tried));
	printf("},\n  \"errors\": [");
	for (int i = 0; i < nerrs; i++) {
		printf("%s\"", i ? ",\n    " : "\n    ");
		for (const char *p = errs[i]; *p; p++)
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p < 0x20)
				printf(" ");
			else
				putchar(*p);
		printf("\"");
	}
	printf("]\n}\n");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct rlimit rl;
	struct worker *ws;
	bool *joined;
	double t_last = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--port") == 0)
			port = atoi(v);
		else if (strcmp(a, "--manifest") == 0)
			manifest = v;
		else if (strcmp(a, "--clients") == 0)
			nclients = atoi(v);
		else if (strcmp(a, "--duration") == 0)
			duration = atof(v);
		else if (strcmp(a, "--grace") == 0)
			grace = atof(v);
		else if (strcmp(a, "--stall") == 0)
			stall = atof(v);
		else if (strcmp(a, "--abort-pct") == 0)
			abort_pct = atof(v);
		else if (strcmp(a, "--keepalive-pct") == 0)
			keepalive_pct = atof(v);
		else if (strcmp(a, "--progress") == 0)
			progress_every = atof(v);
		else if (strcmp(a, "--sha-pct") == 0)
			sha_pct = atof(v);
		else if (strcmp(a, "--resume-pct") == 0)
			resume_pct = atof(v);
		else if (strcmp(a, "--threads") == 0)
			nthreads = atoi(v);
		else if (strcmp(a, "--seed") == 0)
			seed = strtoull(v, NULL, 0);
		else if (strcmp(a, "--ca") == 0)
			cafile = v;
		else
			usage();
	}
	if (port <= 0 || manifest == NULL || nclients <= 0 || nthreads <= 0)
		usage();
	if (nthreads > nclients)
		nthreads = nclients;
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	load_manifest();
	make_contexts();

	t_origin = now();
	ws = calloc((size_t)nthreads, sizeof(*ws));
	for (int t = 0; t < nthreads; t++) {
		struct worker *w = &ws[t];

		w->id = t;
		w->first = nclients * t / nthreads;
		w->n = nclients * (t + 1) / nthreads - w->first;
		w->conns = calloc((size_t)w->n, sizeof(*w->conns));
		w->ready = calloc((size_t)w->n, sizeof(*w->ready));
		w->rng.s = seed * 1000003ULL + (uint64_t)t;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		for (int i = 0; i < w->n; i++) {
			struct conn *c = &w->conns[i];

			c->fd = -1;
			c->file = -1;
			c->st = S_IDLE;
			/* Ramp up over the first second. */
			c->start = t_origin + (double)(w->first + i) / nclients;
			c->md = EVP_MD_CTX_new();
		}
	}
	joined = calloc((size_t)nthreads, sizeof(*joined));
	for (int t = 0; t < nthreads; t++)
		pthread_create(&ws[t].th, NULL, worker_main, &ws[t]);

	/* Progress on stderr while the threads run. */
	for (;;) {
		int st = atomic_load(&stopping);
		double t = now() - t_origin;
		bool alive = false;

		for (int i = 0; i < nthreads; i++) {
			if (joined[i])
				continue;
			if (pthread_tryjoin_np(ws[i].th, NULL) == EBUSY)
				alive = true;
			else
				joined[i] = true;
		}
		if (!alive)
			break;
		if (progress_every > 0 && t - t_last >= progress_every) {
			int hist[S_EOF + 1] = { 0 };

			t_last = t;
			for (int i = 0; i < nthreads; i++)
				for (int j = 0; j <= S_EOF; j++)
					hist[j] += atomic_load(&ws[i].hist[j]);
			fprintf(stderr, "t=%.0fs%s connections %lld completed "
			    "%lld aborts %lld MB %.0f errors %d; now: connecting "
			    "%d, handshaking %d, request/head %d, body %d, end "
			    "%d\n", t,
			    st ? " (ending)" : "",
			    (long long)atomic_load(&st_connects),
			    (long long)atomic_load(&st_done),
			    (long long)atomic_load(&st_aborts),
			    atomic_load(&st_body_bytes) / 1e6, nerrs,
			    hist[S_CONNECT], hist[S_HANDSHAKE],
			    hist[S_WRITE] + hist[S_HEAD], hist[S_BODY],
			    hist[S_EOF]);
		}
		usleep(100000);
	}
	print_json(now() - t_origin);
	return (0);
}
