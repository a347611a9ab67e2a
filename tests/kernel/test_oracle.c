/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The oracle: ktls's software records against Linux's own kernel TLS, run
 * in a guest kernel that has it (tests/kernel/guest.py).
 *
 * For every AEAD suite of TLS 1.2 and 1.3 the same keys, IV/salt and first
 * sequence number go to two loopback connections: on one ktls encrypts in
 * software (TCP_TXTLS_ENABLE, kern.ipc.tls.ifnet.permitted 0), on the other
 * Linux does (TCP_ULP "tls" + SOL_TLS/TLS_TX).  The same calls are made on
 * both: write, writev, send, sendmsg with and without a record type,
 * sendfile at offsets, MSG_MORE.  Both peers read to EOF and the two
 * streams must be byte-identical; both are also decrypted by the tests'
 * own decryptor (tlsdec) and checked record by record (type, length,
 * sequence, plaintext) against a model of Linux's record boundaries.
 *
 * What decides a record boundary:
 *  - Linux 6.1 (tls_sw_sendmsg/tls_sw_sendpage): the calls.  A record
 *    holds at most 16384 bytes, a call without MSG_MORE closes its last
 *    record, a call with MSG_MORE leaves the tail open for the next calls
 *    of application data, a record-type message closes an open record
 *    first.  sendfile goes through a splice pipe of 16 pages, and Linux
 *    also closes the record at the end of every 16-page batch (the last
 *    page of a batch comes without MSG_SENDPAGE_NOTLAST, and MSG_MORE does
 *    not keep a sendpage record open), so a sendfile that spans more than
 *    16 pages of the file gets a short record every 16 pages; ktls cuts a
 *    sendfile at 16384 only.  The script keeps each sendfile within 16
 *    pages (one probe shows the other case).  How fast the peer reads does
 *    not matter to Linux.
 *  - ktls: the same, except for the differences the probes show, plus its
 *    per-socket queue (512 KiB of wire bytes): a call bigger than the room
 *    left in the queue is cut where the room ends, which can leave a short
 *    record in the middle of the call (as FreeBSD's sosend() cuts at
 *    sbspace()), depending on how far the worker got.  So after each call
 *    this test waits until the peer has every byte of it (the queue is
 *    empty again) and keeps every call well below 512 KiB.  ktls's inline
 *    path (small writes and sendfiles encrypted by the caller) and
 *    autocork (off in the library unless kern.ipc.tls.autocork_us is set;
 *    0 here, and one suite runs again with 2000) do not change the bytes.
 *
 * Call sequences where the two differ are not in the compared script; they
 * run as probes at the end that print both record layouts as comments:
 * sendfile after an open MSG_MORE record (Linux appends the file to it,
 * ktls closes it first), close or shutdown with an open record (Linux 6.1
 * drops it, ktls sends it), an empty send (ktls closes the open record,
 * Linux 6.1 does not), a record type with MSG_MORE
 * (Linux: EINVAL), a type-23 record-type message after an open record
 * (Linux closes it first, ktls fills it), a sendfile over more than 16
 * pages, and one 2 MiB write (ktls's queue limit; timing-dependent).
 *
 * On a kernel without kTLS (TCP_ULP "tls" fails with ENOENT) it skips.
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ktls.h>

#include "fixture.h"
#include "linux_info.h"
#include "tap.h"
#include "tlsdec.h"

#define MAXREC		16384
#define WAIT_MS		10000	/* a liveness bound, not a timing check */
#define FILE_LEN	200000
#define DATA_LEN	(512 * 1024)

/*
 * A suite as Linux's TLS_TX takes it, and how ktls is enabled for it.
 * freebsd_iv: TLS 1.2 AES-GCM enabled with FreeBSD's 4-byte salt (the
 * explicit nonce is the sequence number; Linux is given iv = rec_seq);
 * otherwise Linux's form, salt || first explicit nonce, 12 bytes.
 */
struct osuite {
	const char	*name;		/* in fx_suites */
	uint64_t	seq;		/* first record's sequence number */
	uint64_t	nonce;		/* TLS 1.2 GCM: first explicit nonce */
	bool		freebsd_iv;
	size_t		overhead;	/* wire bytes a record adds */
	struct fx_lsuite ls;		/* { 0 } here, set by suites_init() */
};

static struct osuite suites[] = {
	{ "TLS1.2-AES-128-GCM", 0x0102030405060708ULL,
	    0x0102030405060708ULL, true, 5 + 8 + 16, { 0 } },
	{ "TLS1.2-AES-256-GCM", 7, 0xfffffffffffffff0ULL, false, 5 + 8 + 16,
	    { 0 } },
	{ "TLS1.2-CHACHA20-POLY1305", 1, 0, false, 5 + 16, { 0 } },
	{ "TLS1.3-AES-128-GCM", 0, 0, false, 5 + 1 + 16, { 0 } },
	{ "TLS1.3-AES-256-GCM", 0xfffffff0ULL, 0, false, 5 + 1 + 16, { 0 } },
	{ "TLS1.3-CHACHA20-POLY1305", 1000, 0, false, 5 + 1 + 16, { 0 } },
};
#define NSUITES	((int)(sizeof(suites) / sizeof(suites[0])))

static void
suites_init(void)
{
	for (int i = 0; i < NSUITES; i++)
		suites[i].ls = fx_lsuite_by_name(suites[i].name);
}

/* One suite's key material, and both forms of it. */
struct okeys {
	uint8_t			key[32], salt[4], iv[12], rec_seq[8];
	uint8_t			en_iv[12];
	union ktls_linux_crypto_info ci;
	socklen_t		cilen;
	struct tls_enable	en;
};

static void
be64enc(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
be64dec(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (v);
}

static void
okeys_init(struct okeys *k, const struct osuite *s, int i)
{
	union ktls_linux_crypto_info *ci = &k->ci;

	memset(k, 0, sizeof(*k));
	for (int j = 0; j < 32; j++)
		k->key[j] = (uint8_t)(0x31 * i + 7 * j + 3);
	for (int j = 0; j < 4; j++)
		k->salt[j] = (uint8_t)(0x5a + 11 * i + j);
	for (int j = 0; j < 12; j++)
		k->iv[j] = (uint8_t)(0x90 + 5 * i + 3 * j);
	if (s->ls.l->salt_len != 0)		/* AES-GCM: iv is 8 bytes */
		be64enc(k->iv, s->ls.version == TLS_1_2_VERSION ? s->nonce :
		    be64dec(k->iv));
	be64enc(k->rec_seq, s->seq);

	memcpy(k->en_iv, k->salt, s->ls.l->salt_len);
	memcpy(k->en_iv + s->ls.l->salt_len, k->iv, s->ls.l->iv_len);
	k->cilen = (socklen_t)ktls_linux_info_fill(s->ls.l, ci, s->ls.version,
	    k->key, k->en_iv, k->rec_seq);

	k->en.cipher_key = k->key;
	k->en.cipher_key_len = (int)s->ls.l->key_len;
	k->en.iv = k->en_iv;
	k->en.iv_len = s->freebsd_iv ? 4 : 12;
	k->en.cipher_algorithm = s->ls.l->algorithm;
	k->en.tls_vmajor = TLS_MAJOR_VER_ONE;
	k->en.tls_vminor = s->ls.version == TLS_1_3_VERSION ?
	    TLS_MINOR_VER_THREE : TLS_MINOR_VER_TWO;
	memcpy(k->en.rec_seq, k->rec_seq, 8);
}

/*
 * The rec_seq and iv fields of a crypto_info of suite s, by <linux/tls.h>'s
 * names: what the kernel gives back is read without linux_tls.h's offsets.
 */
static const uint8_t *
ci_rec_seq(const struct osuite *s, const union ktls_linux_crypto_info *ci)
{
	uint16_t t = s->ls.l->cipher_type;

	return (t == TLS_CIPHER_CHACHA20_POLY1305 ? ci->chacha.rec_seq :
	    t == TLS_CIPHER_AES_GCM_256 ? ci->g256.rec_seq : ci->g128.rec_seq);
}

static const uint8_t *
ci_iv(const struct osuite *s, const union ktls_linux_crypto_info *ci)
{
	uint16_t t = s->ls.l->cipher_type;

	return (t == TLS_CIPHER_CHACHA20_POLY1305 ? ci->chacha.iv :
	    t == TLS_CIPHER_AES_GCM_256 ? ci->g256.iv : ci->g128.iv);
}

/*
 * The receiving end: a thread reads the stream into a buffer, to EOF; the
 * sender waits on it until the bytes of its last call have arrived.
 */
struct sink {
	int		fd;
	pthread_t	tid;
	pthread_mutex_t	mtx;
	pthread_cond_t	cv;
	uint8_t		*buf;
	size_t		len, cap;
	bool		eof;
	int		err;
	bool		started;
};

static void *
sink_main(void *arg)
{
	struct sink *s = arg;
	uint8_t *tmp = malloc(65536);
	ssize_t n;

	for (;;) {
		n = tmp != NULL ? read(s->fd, tmp, 65536) : -1;
		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&s->mtx);
		if (n > 0 && s->len + (size_t)n > s->cap) {
			size_t cap = s->cap ? s->cap : 1 << 20;
			uint8_t *nb;

			while (cap < s->len + (size_t)n)
				cap *= 2;
			if ((nb = realloc(s->buf, cap)) == NULL) {
				n = -1;
				errno = ENOMEM;
			} else {
				s->buf = nb;
				s->cap = cap;
			}
		}
		if (n > 0) {
			memcpy(s->buf + s->len, tmp, (size_t)n);
			s->len += (size_t)n;
		} else {
			s->eof = true;
			s->err = n < 0 ? errno : 0;
		}
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mtx);
		if (n <= 0)
			break;
	}
	free(tmp);
	return (NULL);
}

static int
sink_start(struct sink *s, int fd)
{
	pthread_condattr_t ca;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->mtx, NULL);
	if (pthread_create(&s->tid, NULL, sink_main, s) != 0)
		return (-1);
	s->started = true;
	return (0);
}

/* Wait until n bytes have arrived (or EOF); the bytes there now. */
static size_t
sink_wait(struct sink *s, size_t n, unsigned int ms)
{
	struct timespec ts;
	size_t have;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_nsec -= 1000000000L;
		ts.tv_sec++;
	}
	pthread_mutex_lock(&s->mtx);
	while (s->len < n && !s->eof)
		if (pthread_cond_timedwait(&s->cv, &s->mtx, &ts) == ETIMEDOUT)
			break;
	have = s->len;
	pthread_mutex_unlock(&s->mtx);
	return (have);
}

/* Join at EOF (the sender closed); false if it did not come in time. */
static bool
sink_finish(struct sink *s, unsigned int ms)
{
	if (!s->started)
		return (false);
	if (fx_join_ms(s->tid, ms)) {
		s->started = false;
		return (true);
	}
	tap_diag("receiver still reading after %u ms (%zu bytes)", ms, s->len);
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->tid, NULL);
	s->started = false;
	return (false);
}

static void
sink_free(struct sink *s)
{
	if (s->started)
		sink_finish(s, 1000);
	free(s->buf);
	pthread_mutex_destroy(&s->mtx);
	pthread_cond_destroy(&s->cv);
	memset(s, 0, sizeof(*s));
}

/* The calls of the script. */
enum op_kind {
	OP_WRITE,	/* write(len) */
	OP_SEND,	/* send(len, flags) */
	OP_TYPED,	/* sendmsg(len) with a record type message */
	OP_WRITEV,	/* writev(iov lens) */
	OP_SENDMSG,	/* sendmsg(iov lens, flags), no control message */
	OP_SENDFILE,	/* sendfile(off, len) */
	OP_SHUTDOWN,	/* probes only: shutdown(SHUT_WR) */
};

#define OP_MAXIOV	6

struct op {
	enum op_kind	kind;
	size_t		len;
	int		flags;
	uint8_t		type;
	int		level;		/* OP_TYPED on ktls: cmsg level */
	off_t		off;
	size_t		iov[OP_MAXIOV];	/* 0-terminated, except a 0 marked */
	int		niov;
};

#define WRITE(n)		{ .kind = OP_WRITE, .len = (n) }
#define SEND(n, f)		{ .kind = OP_SEND, .len = (n), .flags = (f) }
#define TYPED(t, n)		{ .kind = OP_TYPED, .type = (t), .len = (n), \
				    .level = IPPROTO_TCP }
#define TYPED_SOLTLS(t, n)	{ .kind = OP_TYPED, .type = (t), .len = (n), \
				    .level = SOL_TLS }
#define SENDFILE(o, n)		{ .kind = OP_SENDFILE, .off = (o), .len = (n) }

static const struct op script[] = {
	WRITE(1),
	WRITE(100),
	WRITE(16384),
	WRITE(16385),
	WRITE(40000),
	TYPED(TLS_RLTYPE_ALERT, 2),
	TYPED(TLS_RLTYPE_HANDSHAKE, 100),
	TYPED(TLS_RLTYPE_HANDSHAKE, 20000),	/* two handshake records */
	{ .kind = OP_WRITEV, .iov = { 1, 4000, 13000, 0, 5000 }, .niov = 5 },
	{ .kind = OP_SENDMSG, .iov = { 300, 16384 }, .niov = 2 },
	SENDFILE(0, 1000),		/* ktls: the caller encrypts it */
	SENDFILE(3, 16384),
	SENDFILE(12345, 50000),
	SENDFILE(8192, 65536),		/* 16 whole pages: one splice batch */
	/* MSG_MORE: one record of 600 */
	SEND(100, MSG_MORE),
	SEND(200, MSG_MORE),
	SEND(300, 0),
	/* 16384 now, 3616 + 5 closed by the alert, then the alert */
	SEND(20000, MSG_MORE),
	SEND(5, MSG_MORE),
	TYPED(TLS_RLTYPE_ALERT, 2),
	/* 16384 now, 7 + 16000 + 377 = 16384, then 623 */
	SEND(16384 + 7, MSG_MORE),
	SEND(16000, MSG_MORE),
	WRITE(1000),
	/* a full record with MSG_MORE goes at once */
	SEND(16384, MSG_MORE),
	{ .kind = OP_WRITEV, .iov = { 10, 20 }, .niov = 2 },
	/* sendmsg with MSG_MORE: 1000 + 100 + 10 in one record */
	SEND(1000, MSG_MORE),
	{ .kind = OP_SENDMSG, .iov = { 50, 50 }, .niov = 2,
	    .flags = MSG_MORE },
	SEND(10, 0),
	/* application data named by the control message (Linux's level) */
	TYPED_SOLTLS(TLS_RLTYPE_APP, 10),
	WRITE(1),
};
#define NOPS	((int)(sizeof(script) / sizeof(script[0])))

/* Linux's record boundaries for the script, and what each record holds. */
struct mrec {
	uint8_t		type;
	size_t		len;
};

struct model {
	struct mrec	*recs;
	size_t		nrecs, cap;
	size_t		open;		/* MSG_MORE bytes not closed yet */
	size_t		wire;		/* wire bytes of the closed records */
	size_t		overhead;
	uint8_t		*plain;		/* every payload byte, in order */
	size_t		plen, pcap;
};

static void
model_emit(struct model *m, uint8_t type, size_t len)
{
	if (m->nrecs == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->recs = realloc(m->recs, m->cap * sizeof(*m->recs));
		if (m->recs == NULL)
			abort();
	}
	m->recs[m->nrecs++] = (struct mrec){ type, len };
	m->wire += len + m->overhead;
}

static void
model_bytes(struct model *m, const void *p, size_t len)
{
	if (m->plen + len > m->pcap) {
		while (m->plen + len > m->pcap)
			m->pcap = m->pcap ? 2 * m->pcap : 1 << 20;
		if ((m->plain = realloc(m->plain, m->pcap)) == NULL)
			abort();
	}
	memcpy(m->plain + m->plen, p, len);
	m->plen += len;
}

static void
model_app(struct model *m, size_t len, bool more)
{
	size_t total = m->open + len;

	while (total > MAXREC) {
		model_emit(m, TLS_RLTYPE_APP, MAXREC);
		total -= MAXREC;
	}
	if (total == MAXREC || (!more && total > 0)) {
		model_emit(m, TLS_RLTYPE_APP, total);
		total = 0;
	}
	m->open = total;
}

static void
model_typed(struct model *m, uint8_t type, size_t len)
{
	if (m->open > 0) {
		model_emit(m, TLS_RLTYPE_APP, m->open);
		m->open = 0;
	}
	while (len > 0) {
		size_t n = len < MAXREC ? len : MAXREC;

		model_emit(m, type, n);
		len -= n;
	}
}

static void
model_free(struct model *m)
{
	free(m->recs);
	free(m->plain);
	memset(m, 0, sizeof(*m));
}

static uint8_t data[DATA_LEN], fdata[FILE_LEN];

/* A record-type message around iov. */
static ssize_t
send_typed(bool ktls, int fd, int level, uint8_t type, const void *buf,
    size_t len, int flags)
{
	union {
		struct cmsghdr	h;
		uint8_t		b[CMSG_SPACE(1)];
	} cm;
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *c;

	memset(&cm, 0, sizeof(cm));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = ktls ? level : SOL_TLS;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(c) = type;
	return (ktls ? ktls_sendmsg(fd, &msg, flags) : sendmsg(fd, &msg, flags));
}

/*
 * One call of the script on fd (through ktls or libc), payload from src
 * (or the file).  The bytes the call should take; *r what it returned.
 */
static size_t
do_op(bool ktls, int fd, int ffd, const struct op *op, const uint8_t *src,
    ssize_t *r)
{
	struct iovec iov[OP_MAXIOV];
	struct msghdr msg = { .msg_iov = iov };
	size_t total = 0;
	off_t off;

	switch (op->kind) {
	case OP_WRITE:
		*r = ktls ? ktls_write(fd, src, op->len) :
		    write(fd, src, op->len);
		return (op->len);
	case OP_SEND:
		*r = ktls ? ktls_send(fd, src, op->len, op->flags) :
		    send(fd, src, op->len, op->flags);
		return (op->len);
	case OP_TYPED:
		*r = send_typed(ktls, fd, op->level, op->type, src, op->len,
		    op->flags);
		return (op->len);
	case OP_WRITEV:
	case OP_SENDMSG:
		for (int i = 0; i < op->niov; i++) {
			iov[i].iov_base = (void *)(src + total);
			iov[i].iov_len = op->iov[i];
			total += op->iov[i];
		}
		msg.msg_iovlen = (size_t)op->niov;
		if (op->kind == OP_WRITEV)
			*r = ktls ? ktls_writev(fd, iov, op->niov) :
			    writev(fd, iov, op->niov);
		else
			*r = ktls ? ktls_sendmsg(fd, &msg, op->flags) :
			    sendmsg(fd, &msg, op->flags);
		return (total);
	case OP_SENDFILE:
		off = op->off;
		*r = ktls ? ktls_sendfile(fd, ffd, &off, op->len) :
		    sendfile(fd, ffd, &off, op->len);
		return (op->len);
	case OP_SHUTDOWN:
		*r = ktls ? ktls_shutdown(fd, SHUT_WR) : shutdown(fd, SHUT_WR);
		return (0);
	}
	abort();
}

/* The model's view of one call: its records and plaintext. */
static void
model_op(struct model *m, const struct op *op, const uint8_t *src,
    size_t len)
{
	switch (op->kind) {
	case OP_TYPED:
		/* Type 23 by message: Linux closes an open record first. */
		model_typed(m, op->type, len);
		model_bytes(m, src, len);
		break;
	case OP_SENDFILE:
		if (m->open != 0)
			abort();	/* not in the script: see the probes */
		model_app(m, len, false);
		model_bytes(m, fdata + op->off, len);
		break;
	case OP_SHUTDOWN:
		break;
	default:
		model_app(m, len, (op->flags & MSG_MORE) != 0);
		model_bytes(m, src, len);
		break;
	}
}

/* One side of the comparison: a connection and its reading peer. */
struct side {
	bool		ktls;
	const char	*what;
	int		fds[2];
	struct sink	sink;
};

static int
side_open(struct side *sd, bool ktls, const struct okeys *k)
{
	int mode = -1;
	socklen_t len = sizeof(mode);

	memset(sd, 0, sizeof(*sd));
	sd->ktls = ktls;
	sd->what = ktls ? "ktls" : "Linux";
	sd->fds[0] = sd->fds[1] = -1;
	if (fx_tcp_pair(AF_INET, sd->fds) != 0) {
		tap_diag("fx_tcp_pair: %s", strerror(errno));
		return (-1);
	}
	if (ktls) {
		if (ktls_setsockopt(sd->fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE,
		    &k->en, sizeof(k->en)) != 0) {
			tap_diag("TCP_TXTLS_ENABLE: %s", strerror(errno));
			return (-1);
		}
		if (ktls_getsockopt(sd->fds[0], IPPROTO_TCP, TCP_TXTLS_MODE,
		    &mode, &len) != 0 || mode != TCP_TLS_MODE_SW) {
			tap_diag("TCP_TXTLS_MODE is %d, not SW (%d): %s", mode,
			    TCP_TLS_MODE_SW, strerror(errno));
			return (-1);
		}
	} else {
		if (setsockopt(sd->fds[0], SOL_TCP, TCP_ULP, "tls", 3) != 0 ||
		    setsockopt(sd->fds[0], SOL_TLS, TLS_TX, &k->ci,
		    k->cilen) != 0) {
			tap_diag("TCP_ULP/TLS_TX: %s", strerror(errno));
			return (-1);
		}
	}
	if (sink_start(&sd->sink, sd->fds[1]) != 0) {
		tap_diag("receiver thread: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

static void
side_close_writer(struct side *sd)
{
	if (sd->fds[0] >= 0)
		(void)(sd->ktls ? ktls_close(sd->fds[0]) : close(sd->fds[0]));
	sd->fds[0] = -1;
}

static void
side_free(struct side *sd)
{
	side_close_writer(sd);
	sink_free(&sd->sink);
	if (sd->fds[1] >= 0)
		close(sd->fds[1]);
	sd->fds[1] = -1;
}

/* The record headers of a stream around offset at. */
static void
print_headers(const char *what, const uint8_t *b, size_t len, size_t at)
{
	size_t off = 0, idx = 0, hit = (size_t)-1;
	size_t starts[4096];
	size_t n = 0;

	/* Find the record holding `at'. */
	while (off + 5 <= len && n < 4096) {
		size_t rl = (size_t)b[off + 3] << 8 | b[off + 4];

		starts[n++] = off;
		if (at >= off && at < off + 5 + rl)
			hit = n - 1;
		off += 5 + rl;
	}
	if (hit == (size_t)-1)
		hit = n > 0 ? n - 1 : 0;
	for (idx = hit >= 3 ? hit - 3 : 0; idx < n && idx <= hit + 2; idx++) {
		off = starts[idx];
		tap_diag("  %s record %zu at %zu: type %u version %02x%02x "
		    "length %u%s", what, idx, off, b[off], b[off + 1],
		    b[off + 2], (unsigned)(b[off + 3] << 8 | b[off + 4]),
		    idx == hit ? "   <-- first difference here" : "");
	}
}

static void
print_bytes(const char *what, const uint8_t *b, size_t len, size_t at)
{
	char hex[3 * 16 + 1] = "";

	for (size_t i = at; i < len && i < at + 16; i++)
		snprintf(hex + 3 * (i - at), 4, " %02x", b[i]);
	tap_diag("  %s bytes at %zu:%s", what, at, hex);
}

/*
 * Decrypt a whole stream with tlsdec and check it against the model:
 * every record's type, length, sequence number and plaintext.
 */
static bool
check_stream(const char *what, const struct okeys *k, const struct osuite *s,
    const struct model *m, const uint8_t *b, size_t len)
{
	struct tlsdec *d = tlsdec_new(&k->en);
	uint8_t type, *p;
	uint64_t seq;
	size_t plen, i = 0, poff = 0;
	bool ok = true;

	if (d == NULL) {
		tap_diag("%s: tlsdec_new refuses the parameters", what);
		return (false);
	}
	if (tlsdec_feed(d, b, len) != 0) {
		tap_diag("%s: tlsdec: %s", what, tlsdec_error(d));
		ok = false;
	}
	if (tlsdec_pending(d) != 0) {
		tap_diag("%s: %zu bytes after the last whole record", what,
		    tlsdec_pending(d));
		ok = false;
	}
	while (tlsdec_next(d, &type, &seq, &p, &plen) == 1) {
		if (i < m->nrecs && ok) {
			const struct mrec *r = &m->recs[i];

			if (type != r->type || plen != r->len ||
			    seq != s->seq + i || poff + plen > m->plen ||
			    memcmp(p, m->plain + poff, plen) != 0) {
				tap_diag("%s: record %zu: type %u, %zu bytes, "
				    "seq %llu; expected type %u, %zu bytes, "
				    "seq %llu%s", what, i, type, plen,
				    (unsigned long long)seq, r->type, r->len,
				    (unsigned long long)(s->seq + i),
				    type == r->type && plen == r->len &&
				    seq == s->seq + i ? " (plaintext differs)" :
				    "");
				ok = false;
			}
		}
		poff += plen;
		i++;
		free(p);
	}
	if (i != m->nrecs) {
		tap_diag("%s: %zu records, expected %zu", what, i, m->nrecs);
		ok = false;
	}
	if (tlsdec_nonmin_padded(d) != 0) {
		tap_diag("%s: %llu records padded", what,
		    (unsigned long long)tlsdec_nonmin_padded(d));
		ok = false;
	}
	tlsdec_free(d);
	return (ok);
}

static void
suite_case(const struct osuite *s, int si, const char *tag)
{
	struct okeys k;
	struct side sd[2];
	struct model m = { .overhead = s->overhead };
	struct ktls_tx_info ti;
	union ktls_linux_crypto_info back;
	socklen_t blen;
	size_t dpos = 0, want = 0, got, len;
	int ffd = -1;
	bool setup_ok = true, calls_ok = true, same;
	const uint8_t *a, *b;
	size_t alen, blen2;
	char name[128];

	snprintf(name, sizeof(name), "%s%s", s->name, tag);
	okeys_init(&k, s, si);
	memset(sd, 0, sizeof(sd));
	sd[0].fds[0] = sd[0].fds[1] = sd[1].fds[0] = sd[1].fds[1] = -1;
	if ((ffd = fx_tmpfile(FILE_LEN, 77)) < 0) {
		tap_diag("fx_tmpfile: %s", strerror(errno));
		setup_ok = false;
	}
	if (setup_ok && (side_open(&sd[0], true, &k) != 0 ||
	    side_open(&sd[1], false, &k) != 0))
		setup_ok = false;
	if (!setup_ok) {
		tap_case_failed = 1;
		tap_result("%s: set-up of both connections", name);
		goto out;
	}

	/* The script, on both; after each call both peers have its bytes. */
	for (int i = 0; i < NOPS; i++) {
		const struct op *op = &script[i];
		const uint8_t *src = data + dpos;

		for (int j = 0; j < 2; j++) {
			ssize_t r;

			len = do_op(sd[j].ktls, sd[j].fds[0], ffd, op, src, &r);
			if (r != (ssize_t)len) {
				tap_diag("%s: call %d (kind %d, %zu bytes): "
				    "returned %zd (%s)", sd[j].what, i,
				    op->kind, len, r,
				    r < 0 ? strerror(errno) : "short");
				calls_ok = false;
			}
		}
		if (op->kind != OP_SENDFILE)
			dpos += len;
		model_op(&m, op, src, len);
		want = m.wire;
		for (int j = 0; j < 2; j++) {
			got = sink_wait(&sd[j].sink, want, WAIT_MS);
			if (got < want) {
				tap_diag("%s: after call %d %zu bytes arrived, "
				    "Linux's boundaries make %zu", sd[j].what,
				    i, got, want);
				calls_ok = false;
			}
		}
	}

	/* The live state, before close: ktls's against the kernel's. */
	memset(&back, 0, sizeof(back));
	blen = k.cilen;
	CHECK(getsockopt(sd[1].fds[0], SOL_TLS, TLS_TX, &back, &blen) == 0);
	CHECK(ktls_get_tx(sd[0].fds[0], &ti) == 0);
	if (!tap_case_failed) {
		uint64_t kseq = be64dec(ci_rec_seq(s, &back));
		uint64_t mseq = be64dec(ti.rec_seq);

		if (kseq != mseq || kseq != s->seq + m.nrecs) {
			tap_diag("next sequence: ktls %llu, Linux %llu, model "
			    "%llu", (unsigned long long)mseq,
			    (unsigned long long)kseq,
			    (unsigned long long)(s->seq + m.nrecs));
			tap_case_failed = 1;
		}
		/* salt || next explicit nonce, or the static IV */
		CHECK(ti.iv_len == 12);
		CHECK(memcmp(ti.iv, k.salt, s->ls.l->salt_len) == 0);
		CHECK(memcmp(ti.iv + s->ls.l->salt_len, ci_iv(s, &back),
		    s->ls.l->salt_len ? 8 : 12) == 0);
		CHECK(memcmp(ti.cipher_key, k.key, s->ls.l->key_len) == 0);
	}
	tap_result("%s: live state: ktls_get_tx() == getsockopt(SOL_TLS, "
	    "TLS_TX) (next sequence %llu)", name,
	    (unsigned long long)(s->seq + m.nrecs));
	explicit_bzero(&ti, sizeof(ti));

	/* Both writers close; the peers read to EOF. */
	for (int j = 0; j < 2; j++) {
		side_close_writer(&sd[j]);
		if (!sink_finish(&sd[j].sink, WAIT_MS))
			calls_ok = false;
		if (sd[j].sink.err != 0) {
			tap_diag("%s: read: %s", sd[j].what,
			    strerror(sd[j].sink.err));
			calls_ok = false;
		}
	}
	a = sd[0].sink.buf;
	alen = sd[0].sink.len;
	b = sd[1].sink.buf;
	blen2 = sd[1].sink.len;
	same = alen == blen2 && (alen == 0 || memcmp(a, b, alen) == 0);
	if (!same) {
		size_t at = 0, min = alen < blen2 ? alen : blen2;

		while (at < min && a[at] == b[at])
			at++;
		tap_diag("streams differ: ktls %zu bytes, Linux %zu bytes, "
		    "first difference at offset %zu", alen, blen2, at);
		print_headers("ktls ", a, alen, at);
		print_headers("Linux", b, blen2, at);
		print_bytes("ktls ", a, alen, at);
		print_bytes("Linux", b, blen2, at);
		tap_case_failed = 1;
	}
	if (!calls_ok)
		tap_case_failed = 1;
	CHECK(alen == m.wire);
	tap_result("%s: ktls software stream == Linux kTLS stream, byte for "
	    "byte (ktls %zu, Linux %zu, expected %zu bytes; %zu records, %d "
	    "calls)", name, alen, blen2, m.wire, m.nrecs, NOPS);

	if (!check_stream("ktls", &k, s, &m, a, alen))
		tap_case_failed = 1;
	tap_result("%s: ktls stream decrypts (tlsdec) to the %zu records "
	    "made: types, lengths, sequence from %llu, %zu plaintext bytes",
	    name, m.nrecs, (unsigned long long)s->seq, m.plen);
	if (!check_stream("Linux", &k, s, &m, b, blen2))
		tap_case_failed = 1;
	tap_result("%s: Linux kTLS stream decrypts to the same records",
	    name);
out:
	side_free(&sd[0]);
	side_free(&sd[1]);
	if (ffd >= 0)
		close(ffd);
	model_free(&m);
	explicit_bzero(&k, sizeof(k));
}

/*
 * Probes: call sequences where ktls and Linux make different records.
 * Both layouts are printed (comments, not cases).
 */
struct probe {
	const char	*what;
	struct op	ops[4];
	int		nops;
};

static const struct probe probes[] = {
	{ "send 100 MSG_MORE, sendfile 1000",
	    { SEND(100, MSG_MORE), SENDFILE(0, 1000) }, 2 },
	{ "send 100 MSG_MORE, close",
	    { SEND(100, MSG_MORE) }, 1 },
	{ "send 100 MSG_MORE, shutdown(SHUT_WR)",
	    { SEND(100, MSG_MORE), { .kind = OP_SHUTDOWN } }, 2 },
	{ "send 100 MSG_MORE, send 0 bytes, write 10",
	    { SEND(100, MSG_MORE), SEND(0, 0), WRITE(10) }, 3 },
	{ "sendmsg record type 22 with MSG_MORE (100), write 10",
	    { { .kind = OP_TYPED, .type = TLS_RLTYPE_HANDSHAKE, .len = 100,
	    .level = IPPROTO_TCP, .flags = MSG_MORE }, WRITE(10) }, 2 },
	{ "send 100 MSG_MORE, sendmsg record type 23 (10)",
	    { SEND(100, MSG_MORE), TYPED(TLS_RLTYPE_APP, 10) }, 2 },
	{ "sendfile 100000 at offset 70001 (more than 16 pages)",
	    { SENDFILE(70001, 100000) }, 1 },
	{ "one write of 2 MiB (ktls's 512 KiB queue)",
	    { WRITE(2 << 20) }, 1 },
};
#define NPROBES	((int)(sizeof(probes) / sizeof(probes[0])))

static void
layout(char *out, size_t outlen, const struct okeys *k, const uint8_t *b,
    size_t len)
{
	struct tlsdec *d = tlsdec_new(&k->en);
	uint8_t type, ptype = 0;
	size_t plen, plen0 = 0, o = 0, run = 0, n = 0;
	int more;

	out[0] = '\0';
	if (d == NULL)
		return;
	if (tlsdec_feed(d, b, len) != 0)
		o += (size_t)snprintf(out + o, outlen - o, "(tlsdec: %s) ",
		    tlsdec_error(d));
	/* type:length, a run of equal records as type:lengthxN */
	do {
		more = tlsdec_next(d, &type, NULL, NULL, &plen);
		if (more == 1 && run > 0 && type == ptype && plen == plen0) {
			run++;
			continue;
		}
		if (run > 0 && o < outlen) {
			o += (size_t)snprintf(out + o, outlen - o, "%s%u:%zu",
			    n++ ? " " : "", ptype, plen0);
			if (run > 1 && o < outlen)
				o += (size_t)snprintf(out + o, outlen - o,
				    "x%zu", run);
		}
		ptype = type;
		plen0 = plen;
		run = 1;
	} while (more == 1);
	if (n == 0 && o < outlen)
		snprintf(out + o, outlen - o, "no records");
	tlsdec_free(d);
}

static void
probe_run(const struct probe *p, const struct osuite *s, int si)
{
	struct okeys k;
	struct side sd[2];
	char lay[2][1024], rets[2][256];
	int ffd = fx_tmpfile(FILE_LEN, 78);
	uint8_t *big = NULL;

	okeys_init(&k, s, si);
	memset(sd, 0, sizeof(sd));
	sd[0].fds[0] = sd[0].fds[1] = sd[1].fds[0] = sd[1].fds[1] = -1;
	if (ffd < 0 || side_open(&sd[0], true, &k) != 0 ||
	    side_open(&sd[1], false, &k) != 0) {
		tap_diag("probe \"%s\": set-up failed", p->what);
		goto out;
	}
	for (int j = 0; j < 2; j++) {
		size_t o = 0;

		rets[j][0] = '\0';
		for (int i = 0; i < p->nops; i++) {
			const struct op *op = &p->ops[i];
			const uint8_t *src = data;
			ssize_t r;

			if (op->len > DATA_LEN) {
				if (big == NULL && (big = malloc(op->len)))
					fx_pattern(big, op->len, 5);
				if ((src = big) == NULL)
					break;
			}
			do_op(sd[j].ktls, sd[j].fds[0], ffd, op, src, &r);
			o += (size_t)snprintf(rets[j] + o, sizeof(rets[j]) - o,
			    "%s%zd%s%s", i ? ", " : "", r, r < 0 ? " " : "",
			    r < 0 ? strerror(errno) : "");
			if (o >= sizeof(rets[j]))
				break;
		}
		side_close_writer(&sd[j]);
	}
	for (int j = 0; j < 2; j++) {
		sink_finish(&sd[j].sink, WAIT_MS);
		layout(lay[j], sizeof(lay[j]), &k, sd[j].sink.buf,
		    sd[j].sink.len);
	}
	tap_diag("probe \"%s\" (%s):", p->what, s->name);
	tap_diag("  Linux: returns %s; records (type:length) %s", rets[1],
	    lay[1]);
	tap_diag("  ktls:  returns %s; records (type:length) %s%s", rets[0],
	    lay[0], strcmp(lay[0], lay[1]) == 0 ? "  [same]" : "  [DIFFERENT]");
out:
	side_free(&sd[0]);
	side_free(&sd[1]);
	if (ffd >= 0)
		close(ffd);
	free(big);
	explicit_bzero(&k, sizeof(k));
}

int
main(void)
{
	int fds[2], r, e, zero = 0;
	double t0, t1;

	fx_watchdog(150);
	suites_init();
	if (fx_tcp_pair(AF_INET, fds) != 0) {
		printf("Bail out! no loopback TCP connection: %s\n",
		    strerror(errno));
		return (1);
	}
	r = setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", 3);
	e = errno;
	close(fds[0]);
	close(fds[1]);
	if (r != 0 && e == ENOENT) {
		printf("1..0 # SKIP no kernel TLS\n");
		return (0);
	}
	if (r != 0)
		tap_diag("setsockopt(TCP_ULP, \"tls\"): %s", strerror(e));
	CHECK(r == 0);
	/* ktls in software: enabled, not permitted to use the kernel. */
	CHECK(fx_sysctl_set_int("kern.ipc.tls.enable", 1) == 0);
	if (ktls_sysctl_set("kern.ipc.tls.ifnet.permitted", &zero,
	    sizeof(zero)) != 0 && errno != ENOENT)
		CHECK(0);
	if (ktls_sysctl_set("kern.ipc.tls.autocork_us", &zero,
	    sizeof(zero)) != 0 && errno != ENOENT)
		CHECK(0);
	tap_result("kernel TLS here; ktls enabled in software mode");

	fx_pattern(data, sizeof(data), 1234);
	fx_pattern(fdata, sizeof(fdata), 77);
	t0 = fx_now_s();
	for (int i = 0; i < NSUITES; i++)
		suite_case(&suites[i], i, "");
	/* Autocork holds a small record back, never changes it. */
	CHECK(fx_sysctl_set_int("kern.ipc.tls.autocork_us", 2000) == 0);
	suite_case(&suites[3], 3, " (autocork_us 2000)");
	CHECK(fx_sysctl_set_int("kern.ipc.tls.autocork_us", 0) == 0);
	t1 = fx_now_s();
	for (int i = 0; i < NPROBES; i++)
		probe_run(&probes[i], &suites[3], 3);
	tap_diag("suites %.1f s, probes %.1f s", t1 - t0, fx_now_s() - t1);
	return (tap_done());
}
