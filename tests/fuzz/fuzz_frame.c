/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: record framing.
 *
 * Each input picks a suite (one enabled loopback pair per suite, made on
 * first use and kept) and runs up to 64 operations on it: write, writev,
 * send, sendmsg with TLS_SET_RECORD_TYPE at level IPPROTO_TCP or SOL_TLS,
 * MSG_MORE, MSG_DONTWAIT, empty sends, sizes 0..40000, and
 * kern.ipc.tls.maxlen changes (1..16384), at most 256 KiB and about 2048
 * records in all.  A
 * receiver thread feeds the peer's bytes to the independent decryptor
 * (tests/common/tlsdec.c).  At the end of the input (an empty send closes
 * a MSG_MORE record) every byte accepted must have come back, in order,
 * in records of the type it was sent with, each 1..maxlen bytes (the
 * largest maxlen of the input), a record boundary at the end of every
 * send without MSG_MORE (writes are never merged), and nothing more.
 * Anything else aborts, so libFuzzer keeps the input.
 *
 * Input: u8 suite, u16 initial maxlen, then operations: an opcode byte
 * (bits 0-2 kind, bit 3 MSG_MORE, bit 4 MSG_DONTWAIT, bits 5-6 iovecs)
 * and its operands (u16 sizes, u8 record types).
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "ktls.h"
#include "linux_tls.h"		/* SOL_TLS where libc has none */
#include "tlsdec.h"

#define MAX_OPS		64
#define MAX_BYTES	(256 * 1024)
#define MAX_WRITE	40000
#define MAX_RECORDS	2048	/* about: keeps maxlen 1 inputs fast */
#define WAIT_S		20

struct rec {
	uint8_t		type;
	size_t		len;
	uint8_t		*data;
};

struct pair {
	bool		up;
	const char	*name;
	int		fds[2];
	struct fx_keys	keys;
	struct tlsdec	*dec;
	pthread_t	tid;
	pthread_mutex_t	mtx;
	pthread_cond_t	cv;
	struct rec	*recs;		/* decrypted, not yet checked */
	size_t		nrecs, cap;
	size_t		bytes;		/* their plaintext bytes */
	bool		failed;		/* tlsdec rejected the stream */
	bool		eof;
	char		why[256];
};

static struct pair pairs[32];

/* What the input sent: bytes, the type of each, where records must end. */
static uint8_t exp_data[MAX_BYTES];
static uint8_t exp_type[MAX_BYTES];
static uint8_t exp_end[MAX_BYTES + 1];	/* 1: a record ends here */
static size_t exp_len;
static uint8_t src[MAX_WRITE];
static uint32_t pattern_seed = 1;

static void *
rx_main(void *arg)
{
	struct pair *p = arg;
	uint8_t *buf = malloc(256 * 1024);
	struct rec r;
	ssize_t n;

	assert(buf != NULL);
	for (;;) {
		n = read(p->fds[1], buf, 256 * 1024);
		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&p->mtx);
		if (n <= 0) {
			p->eof = true;
			pthread_cond_broadcast(&p->cv);
			pthread_mutex_unlock(&p->mtx);
			break;
		}
		if (!p->failed && tlsdec_feed(p->dec, buf, (size_t)n) != 0) {
			p->failed = true;
			snprintf(p->why, sizeof(p->why), "%s",
			    tlsdec_error(p->dec));
		}
		while (tlsdec_next(p->dec, &r.type, NULL, &r.data,
		    &r.len) == 1) {
			if (p->nrecs == p->cap) {
				p->cap = p->cap ? p->cap * 2 : 256;
				p->recs = realloc(p->recs,
				    p->cap * sizeof(*p->recs));
				assert(p->recs != NULL);
			}
			p->recs[p->nrecs++] = r;
			p->bytes += r.len;
		}
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mtx);
	}
	free(buf);
	return (NULL);
}

static struct pair *
pair_get(int si)
{
	struct pair *p = &pairs[si];

	if (p->up)
		return (p);
	if (fx_enabled_pair(AF_INET, fx_suites[si].name, 0, &p->keys,
	    p->fds) != 0 || (p->dec = tlsdec_new(&p->keys.en)) == NULL) {
		fprintf(stderr, "fuzz_frame: %s: enabled pair: %s\n",
		    fx_suites[si].name, strerror(errno));
		abort();
	}
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->tid, NULL, rx_main, p) != 0)
		abort();
	p->name = fx_suites[si].name;
	p->up = true;
	return (p);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	assert(fx_nsuites <= (int)(sizeof(pairs) / sizeof(pairs[0])));
	fx_enable_ktls();
	return (0);
}

struct reader {
	const uint8_t	*p;
	size_t		left;
};

static uint8_t
rd8(struct reader *r)
{
	uint8_t v = 0;

	if (r->left > 0) {
		v = *r->p++;
		r->left--;
	}
	return (v);
}

static uint16_t
rd16(struct reader *r)
{
	uint16_t v = rd8(r);

	return ((uint16_t)(v | rd8(r) << 8));
}

static void
set_maxlen(int v, int *hi, int *cur)
{
	if (ktls_sysctl_set("kern.ipc.tls.maxlen", &v, sizeof(v)) != 0) {
		fprintf(stderr, "fuzz_frame: maxlen %d refused\n", v);
		abort();
	}
	if (v > *hi)
		*hi = v;
	*cur = v;
}

static void __attribute__((noreturn, format(printf, 2, 3)))
mismatch(const struct pair *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_frame: %s: ", p->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/*
 * Account for a send of len bytes of type that returned n.  typed: it
 * came with a record-type message, which (as on Linux) refuses MSG_MORE
 * and ends an open record before its own bytes.
 */
static void
sent(const struct pair *p, const uint8_t *buf, size_t len, uint8_t type,
    int flags, ssize_t n, int err, bool typed)
{
	if (typed && (flags & MSG_MORE)) {
		if (n != -1 || err != EINVAL)
			mismatch(p, "record type with MSG_MORE: %zd (%s), want "
			    "EINVAL", n, n < 0 ? strerror(err) : "accepted");
		return;
	}
	if (typed && (n > 0 || len == 0))
		exp_end[exp_len] = 1;
	if (n < 0) {
		/* A healthy pair says EAGAIN at most, and only if asked to. */
		if ((flags & MSG_DONTWAIT) && err == EAGAIN)
			return;
		mismatch(p, "send of %zu bytes (flags %#x): %s", len, flags,
		    strerror(err));
	}
	if ((size_t)n > len)
		mismatch(p, "send of %zu bytes returned %zd", len, n);
	if (n < (ssize_t)len && !(flags & MSG_DONTWAIT))
		mismatch(p, "blocking send of %zu bytes took %zd", len, n);
	memcpy(exp_data + exp_len, buf, (size_t)n);
	memset(exp_type + exp_len, type, (size_t)n);
	exp_len += (size_t)n;
	/* Without MSG_MORE nothing stays open: a record ends here. */
	if (!(flags & MSG_MORE) && (n > 0 || len == 0))
		exp_end[exp_len] = 1;
}

static ssize_t
do_sendmsg(int fd, const uint8_t *buf, size_t len, int niov, int level,
    uint8_t type, int flags)
{
	union {
		struct cmsghdr	hdr;
		uint8_t		buf[CMSG_SPACE(1)];
	} cm;
	struct iovec iov[4];
	struct msghdr msg;
	size_t off = 0;

	memset(&msg, 0, sizeof(msg));
	for (int i = 0; i < niov; i++) {
		size_t n = i == niov - 1 ? len - off : len / (size_t)niov;

		iov[i].iov_base = (void *)(buf + off);
		iov[i].iov_len = n;
		off += n;
	}
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)niov;
	if (level != 0) {
		memset(&cm, 0, sizeof(cm));
		cm.hdr.cmsg_level = level;
		cm.hdr.cmsg_type = TLS_SET_RECORD_TYPE;
		cm.hdr.cmsg_len = CMSG_LEN(1);
		*CMSG_DATA(&cm.hdr) = type;
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
	}
	return (ktls_sendmsg(fd, &msg, flags));
}

/* Wait for exp_len bytes of records, then check them all. */
static void
verify(struct pair *p, int hi)
{
	struct timespec dl;
	size_t off = 0, i;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_S;
	pthread_mutex_lock(&p->mtx);
	while (p->bytes < exp_len && !p->failed && !p->eof && rc == 0)
		rc = pthread_cond_timedwait(&p->cv, &p->mtx, &dl);
	if (p->failed)
		mismatch(p, "tlsdec: %s", p->why);
	if (p->bytes < exp_len)
		mismatch(p, "%zu of %zu bytes came back (%s)", p->bytes,
		    exp_len, p->eof ? "EOF" : "timeout");
	if (p->bytes > exp_len)
		mismatch(p, "%zu bytes came back, %zu were sent", p->bytes,
		    exp_len);
	for (i = 0; i < p->nrecs; i++) {
		struct rec *r = &p->recs[i];

		if (r->len == 0 || r->len > (size_t)hi)
			mismatch(p, "record %zu: %zu bytes, maxlen %d", i,
			    r->len, hi);
		if (memcmp(r->data, exp_data + off, r->len) != 0)
			mismatch(p, "record %zu: plaintext differs at %zu", i,
			    off);
		for (size_t j = 0; j < r->len; j++)
			if (exp_type[off + j] != r->type)
				mismatch(p, "record %zu of type %u holds a byte "
				    "sent as type %u (offset %zu)", i, r->type,
				    exp_type[off + j], off + j);
		for (size_t j = 1; j < r->len; j++)
			if (exp_end[off + j])
				mismatch(p, "record %zu (%zu bytes at %zu) "
				    "spans the end of a send at %zu", i,
				    r->len, off, off + j);
		off += r->len;
		free(r->data);
	}
	p->nrecs = 0;
	p->bytes = 0;
	pthread_mutex_unlock(&p->mtx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	struct pair *p;
	int fd, hi = 0, cur = 0, flags, level, niov;
	size_t records = 0;
	uint8_t op, type;
	size_t len;
	ssize_t n;

	if (size < 3)
		return (0);
	p = pair_get(rd8(&r) % fx_nsuites);
	fd = p->fds[0];
	exp_len = 0;
	memset(exp_end, 0, sizeof(exp_end));
	set_maxlen(rd16(&r) % TLS_MAX_MSG_SIZE_V10_2 + 1, &hi, &cur);
	for (int i = 0; i < MAX_OPS && r.left > 0; i++) {
		op = rd8(&r);
		flags = MSG_NOSIGNAL;
		if (op & 8)
			flags |= MSG_MORE;
		if (op & 16)
			flags |= MSG_DONTWAIT;
		niov = 1 + ((op >> 5) & 3);
		type = TLS_RLTYPE_APP;
		level = 0;
		len = 0;
		switch (op & 7) {
		case 0:		/* new maxlen */
			set_maxlen(rd16(&r) % TLS_MAX_MSG_SIZE_V10_2 + 1, &hi,
			    &cur);
			continue;
		case 1:		/* an empty send: closes a MSG_MORE record */
			break;
		case 2:		/* a small one */
			len = rd8(&r);
			break;
		default:
			len = rd16(&r) % (MAX_WRITE + 1);
			break;
		}
		if (len > MAX_BYTES - exp_len)
			len = MAX_BYTES - exp_len;
		if (len > (MAX_RECORDS - records) * (size_t)cur)
			len = (MAX_RECORDS - records) * (size_t)cur;
		records += (len + (size_t)cur - 1) / (size_t)cur;
		fx_pattern(src, len, pattern_seed++);
		errno = 0;
		switch (op & 7) {
		case 3:
			n = ktls_write(fd, src, len);
			flags = MSG_NOSIGNAL;
			break;
		case 4: {
			struct iovec iov[2] = {
				{ src, len / 2 }, { src + len / 2, len - len / 2 },
			};

			n = ktls_writev(fd, iov, 2);
			flags = MSG_NOSIGNAL;
			break;
		}
		case 5:
		case 6:		/* a record type, FreeBSD's or Linux's level */
			type = (uint8_t)(TLS_RLTYPE_CHANGE_CIPHER_SPEC +
			    rd8(&r) % 5);
			level = (op & 7) == 5 ? IPPROTO_TCP : SOL_TLS;
			n = do_sendmsg(fd, src, len, niov, level, type, flags);
			break;
		case 7:
			n = do_sendmsg(fd, src, len, niov, 0, 0, flags);
			break;
		default:
			n = ktls_send(fd, src, len, flags);
			break;
		}
		sent(p, src, len, type, flags, n, errno,
		    (op & 7) == 5 || (op & 7) == 6);
	}
	/* Close whatever MSG_MORE left open. */
	n = ktls_send(fd, NULL, 0, MSG_NOSIGNAL);
	sent(p, src, 0, TLS_RLTYPE_APP, MSG_NOSIGNAL, n, errno, false);
	verify(p, hi);
	return (0);
}
