/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The send path of an enabled socket: data cut into records (at most
 * kern.ipc.tls.maxlen bytes each), queued not ready and handed to the
 * socket's worker, or encrypted by the writer itself after a quiet spell;
 * the MSG_MORE open record; the queue limit and blocking; sendfile (the
 * file read by the worker, or by the caller for a small one) and splice
 * from a pipe.  Returns what was accepted, as FreeBSD's sosend() does, or
 * a negative errno: api.c turns it into -1 and errno.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"
#include "../proto/linux_tls.h"	/* SOL_TLS: Linux's record-type level */

/* Where the payload of the next records comes from. */
struct ktls_src {
	const struct iovec	*iov;	/* user memory (copied now) */
	int			iovcnt;
	size_t			off;	/* into iov[0] */
	struct ktls_fileref	*file;	/* or a file (read by the worker) */
	off_t			file_off;
	bool			typed;	/* a record-type message came with it */
};

static void
src_fill(struct ktls_src *src, struct ktls_record *r, uint8_t *dst,
    size_t len)
{
	size_t n;

	if (src->file != NULL) {
		atomic_fetch_add(&src->file->refs, 1);
		r->file = src->file;
		r->file_off = src->file_off;
		src->file_off += (off_t)len;
		return;
	}
	while (len > 0) {
		n = src->iov->iov_len - src->off;
		if (n > len)
			n = len;
		memcpy(dst, (const uint8_t *)src->iov->iov_base + src->off, n);
		dst += n;
		len -= n;
		src->off += n;
		if (src->off == src->iov->iov_len) {
			src->iov++;
			src->iovcnt--;
			src->off = 0;
		}
	}
}

/* The sticky error of a socket that cannot send, reported once. */
static int
sock_send_error(struct ktls_sock *so)
{
	int error;

	if (so->error != 0) {
		error = so->error;
		so->error = 0;
		return (-error);
	}
	if (so->seq_exhausted)
		return (-EOVERFLOW);
	if (atomic_load(&so->dead) || so->shut_wr)
		return (-EPIPE);
	return (0);
}

static int
sock_deadline(struct ktls_sock *so, struct timespec *ts)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (ktls_sys.getsockopt(so->kfd, SOL_SOCKET, SO_SNDTIMEO, &tv,
	    &len) != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0))
		return (0);
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += tv.tv_sec;
	ts->tv_nsec += tv.tv_usec * 1000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_nsec -= 1000000000L;
		ts->tv_sec++;
	}
	return (1);
}

/*
 * Make records of up to `chunk' bytes from src, frame them and hand them to
 * the worker.  Called with so->mtx held; drops it while copying.  Returns
 * the bytes queued, 0 when the socket changed meanwhile (the caller looks
 * again), or -ENOMEM.
 */
static ssize_t
sock_queue(struct ktls_sock *so, struct ktls_src *src, size_t chunk,
    uint8_t type, size_t maxlen)
{
	struct ktls_record *first = NULL, *last = NULL, *r, *next;
	unsigned int n = 0;
	size_t left, len, framed = 0;

	pthread_mutex_unlock(&so->mtx);
	for (left = chunk; left > 0; left -= len) {
		len = left < maxlen ? left : maxlen;
		if ((r = ktls_record_alloc(len)) == NULL)
			break;
		src_fill(src, r, r->buf + so->tx->suite->prefix_len, len);
		r->len = (uint32_t)len;
		if (last != NULL)
			last->wnext = r;
		else
			first = r;
		last = r;
	}
	pthread_mutex_lock(&so->mtx);
	last = NULL;
	if (so->error == 0 && !atomic_load(&so->dead) && !so->shut_wr) {
		for (r = first; r != NULL; last = r, r = r->wnext) {
			if (ktls_frame(so, r, type, r->len) != 0)
				break;
			framed += r->len;
			n++;
		}
	}
	/* What did not get a sequence number is not accepted. */
	r = last != NULL ? last->wnext : first;
	if (last != NULL)
		last->wnext = NULL;
	for (; r != NULL; r = next) {
		next = r->wnext;
		ktls_record_free(r);
	}
	/* Under so->mtx: records reach the worker in sequence order. */
	if (n > 0)
		ktls_enqueue(first, last, n);
	if (framed == 0 && first == NULL)
		return (-ENOMEM);
	return ((ssize_t)framed);
}

/*
 * MSG_MORE (Linux's tls_sw_sendmsg()): the tail of a send that announces
 * more stays in an open record, not framed, and the next sends of the same
 * type fill it until it is full or a send without MSG_MORE (or a close, or
 * a shutdown) closes it.  so->mtx held.
 */
/*
 * Encrypt a framed record here, by the writer (or pusher): nothing of the
 * socket is with its worker (sock_idle()), and so->mtx keeps it so.
 * Ready afterwards, or the socket failed (invariant 1: reset, the record
 * never sent).  so->mtx held.
 */
static void
sock_seal(struct ktls_sock *so, struct ktls_record *r)
{
	int error;

#ifdef KTLS_INVARIANTS
	for (struct ktls_record *q = so->head; q != NULL && q != r; q = q->next)
		KASSERT(atomic_load_explicit(&q->ready, memory_order_acquire),
		    ("%s: seq %ju, before seq %ju, is with the worker",
		    __func__, (uintmax_t)q->seq, (uintmax_t)r->seq));
#endif
	if ((error = ktls_encrypt(r)) != 0) {
		ktls_sock_fail(so, -error, true);
		atomic_store_explicit(&r->ready, true, memory_order_release);
		ktls_sock_purge(so);
		return;
	}
	atomic_store_explicit(&r->ready, true, memory_order_release);
}

void
ktls_sock_push_open(struct ktls_sock *so)
{
	struct ktls_record *r = so->open;
	bool held = so->open_held;

	if (r == NULL)
		return;
	so->open = NULL;
	so->open_held = false;
	/* A failed socket has reported its error; exhaustion says EOVERFLOW. */
	if (so->error != 0 || atomic_load(&so->dead) ||
	    ktls_frame(so, r, so->open_type, r->len) != 0) {
		ktls_record_free(r);
		return;
	}
	if (held)	/* small, and nothing queued since: sealed here */
		sock_seal(so, r);
	else
		ktls_enqueue(r, r, 1);
}

void
ktls_sock_push_held(struct ktls_sock *so)
{
	if (so->open != NULL && so->open_held)
		ktls_sock_push_open(so);
}

/* Take what fits of src into the open record; so->mtx held. */
static size_t
sock_fill_open(struct ktls_sock *so, struct ktls_src *src, size_t len,
    int flags)
{
	struct ktls_record *r = so->open;
	size_t n = so->open_cap - r->len;

	if (n > len)
		n = len;
	src_fill(src, r, r->buf + so->tx->suite->prefix_len + r->len, n);
	r->len += (uint32_t)n;
	if (r->len == so->open_cap || !(flags & MSG_MORE))
		ktls_sock_push_open(so);
	return (n);
}

/* Open a MSG_MORE record for the tail of a send; so->mtx held. */
static int
sock_open_record(struct ktls_sock *so, struct ktls_src *src, size_t len,
    uint8_t type, size_t maxlen)
{
	if ((so->open = ktls_record_alloc(maxlen)) == NULL)
		return (-ENOMEM);
	so->open->len = 0;
	so->open_cap = (uint32_t)maxlen;
	so->open_type = type;
	sock_fill_open(so, src, len, MSG_MORE);
	return (0);
}

static bool
sock_nonblock(struct ktls_sock *so, int flags)
{
	if (flags & MSG_DONTWAIT)
		return (true);
	/* O_NONBLOCK belongs to the open file, which kfd shares with fd. */
	return ((ktls_sys.fcntl(so->kfd, F_GETFL) & O_NONBLOCK) != 0);
}

/*
 * One small record, made and encrypted by the writer itself: with the
 * queue empty the worker holds nothing of this session, and so->mtx keeps
 * it that way, so the handoff (two wake-ups) is saved where it costs the
 * most: a response after a quiet spell (its header, a small file).  A
 * stream of writes that follow each other closely goes to the worker,
 * which sends many records per system call (measured, 1 KiB writes back
 * to back: 1087 MB/s through the worker, 88 MB/s inline).  so->mtx held.  The bytes taken, or 0 when the caller must look
 * at the socket again (it failed), or -ENOMEM.
 */
static ssize_t
sock_send_inline(struct ktls_sock *so, struct ktls_src *src, size_t len,
    uint8_t type)
{
	struct ktls_record *r;

	if ((r = ktls_record_alloc(len)) == NULL)
		return (-ENOMEM);
	src_fill(src, r, r->buf + so->tx->suite->prefix_len, len);
	r->len = (uint32_t)len;
	if (ktls_frame(so, r, type, len) != 0) {
		ktls_record_free(r);
		return (0);
	}
	sock_seal(so, r);	/* failed: accepted, the error comes next */
	ktls_sock_txo(so)->cork(so);	/* more may follow: one send for both */
	return ((ssize_t)len);
}

/*
 * Autocork on (kern.ipc.tls.autocork_us): the small write is held in an
 * open record, unsealed, and the socket corked, so that a small sendfile
 * right after it (a response's body after its header, as nginx sends
 * them) joins it: one record, one AEAD seal, 22 bytes of overhead instead
 * of 44.  Sealed by any other send (as the record it would have been), by
 * the thread's next wait (ktls_push()), the deadline, close or shutdown.
 * so->mtx held.
 */
static ssize_t
sock_hold_small(struct ktls_sock *so, struct ktls_src *src, size_t len,
    uint8_t type, size_t maxlen)
{
	int error;

	if ((error = sock_open_record(so, src, len, type, maxlen)) != 0)
		return (error);
	so->open_held = true;
	ktls_sock_txo(so)->cork(so);
	return ((ssize_t)len);
}

/*
 * A mode switch in progress holds new writes back until the queue is sent
 * (mode.c); after it, when the layer below frames the records itself,
 * sends go there: -EXDEV tells the caller.  so->mtx held.
 */
static int
sock_wait_mode(struct ktls_sock *so)
{
	int error;

	while (so->switching)
		if ((error = ktls_sock_wait(so, NULL)) != 0)
			return (error);
	return (ktls_sock_txo(so)->sendmsg != NULL ? -EXDEV : 0);
}

/* Nothing of this socket is with a worker: every queued record is ready. */
static bool
sock_idle(struct ktls_sock *so)
{
	return (so->at_worker == 0);
}

/* Count a write into the current burst (see sock_send_inline()). */
static void
sock_note_write(struct ktls_sock *so)
{
	struct timespec now;
	uint64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	if (ns - so->last_write_ns > KTLS_INLINE_GAP_NS)
		so->burst = 0;
	so->burst++;
	so->last_write_ns = ns;
}

static ssize_t
ktls_sock_send(struct ktls_sock *so, struct ktls_src *src, size_t total,
    uint8_t type, int nb, int flags)
{
	struct timespec deadline;
	size_t accepted = 0, maxlen, room, chunk;
	ssize_t n;
	int error = 0, have_deadline = -1;

	maxlen = (size_t)atomic_load(&ktls_tunable_maxlen);
	pthread_mutex_lock(&so->mtx);
	if ((error = sock_wait_mode(so)) != 0) {
		ktls_sock_unlock(so);
		return (error);
	}
	sock_note_write(so);
	/*
	 * As Linux: a record-type message, even of type 23, ends it too.  A
	 * held record is sealed by any send but a small sendfile (which
	 * joins it, sock_sendfile_held()): writes keep the records they
	 * made before autocork held any.
	 */
	if (so->open != NULL && (so->open_held || type != so->open_type ||
	    src->file != NULL || src->typed))
		ktls_sock_push_open(so);
	if (so->open != NULL && sock_send_error(so) == 0)
		accepted = sock_fill_open(so, src, total, flags);
	while (accepted < total) {
		if ((error = sock_wait_mode(so)) != 0)
			break;		/* -EXDEV: the rest goes to the kernel */
		if ((error = sock_send_error(so)) != 0) {
			if (accepted > 0)	/* report it next time */
				so->error = error == -EPIPE ? 0 : -error;
			break;
		}
		if (so->queued >= KTLS_QUEUE_LIMIT) {
			/* O_NONBLOCK, asked only when it matters. */
			if (nb < 0)
				nb = sock_nonblock(so, flags);
			if (nb) {
				if (accepted > 0)
					break;
				/* Invariant 4: EAGAIN only from a full kernel socket. */
				if (ktls_sock_txo(so)->flush(so)) {
					error = -EAGAIN;
					break;
				}
				if (so->queued < KTLS_QUEUE_LIMIT ||
				    atomic_load(&so->dead))
					continue;
				/* Records still being encrypted: a short wait. */
				error = ktls_sock_wait(so, NULL);
			} else {
				if (have_deadline < 0)
					have_deadline = sock_deadline(so,
					    &deadline);
				error = ktls_sock_wait(so, have_deadline ?
				    &deadline : NULL);
			}
			if (error != 0)
				break;
			continue;
		}
		if ((flags & MSG_MORE) && src->file == NULL &&
		    total - accepted < maxlen) {
			if ((error = sock_open_record(so, src, total - accepted,
			    type, maxlen)) == 0)
				accepted = total;
			break;
		}
		if (sock_idle(so) && total - accepted <= KTLS_INLINE_MAX &&
		    total - accepted <= maxlen && !(flags & MSG_MORE) &&
		    src->file == NULL && so->burst <= KTLS_INLINE_BURST) {
			if (ktls_autocork_us() > 0 && !src->typed &&
			    type == TLS_RLTYPE_APP && so->open == NULL)
				n = sock_hold_small(so, src, total - accepted,
				    type, maxlen);
			else
				n = sock_send_inline(so, src, total - accepted,
				    type);
			if (n < 0) {
				error = (int)n;
				break;
			}
			accepted += (size_t)n;
			continue;
		}
		room = KTLS_QUEUE_LIMIT - so->queued;
		chunk = total - accepted;
		if (chunk > room)
			chunk = room > maxlen ? room : maxlen;
		if (chunk > total - accepted)
			chunk = total - accepted;
		/* MSG_MORE: whole records now, the tail into an open one. */
		if ((flags & MSG_MORE) && src->file == NULL)
			chunk -= chunk % maxlen;
		if ((n = sock_queue(so, src, chunk, type, maxlen)) < 0) {
			error = (int)n;
			break;
		}
		accepted += (size_t)n;
	}
	ktls_sock_unlock(so);
	if (accepted > 0)
		return ((ssize_t)accepted);
	if (error == -EPIPE && !(flags & MSG_NOSIGNAL))
		pthread_kill(pthread_self(), SIGPIPE);
	return (error);
}


static size_t
iov_total(const struct iovec *iov, int iovcnt, int *error)
{
	size_t total = 0;

	*error = 0;
	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && iov == NULL)) {
		*error = -EINVAL;
		return (0);
	}
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - total) {
			*error = -EINVAL;
			return (0);
		}
		total += iov[i].iov_len;
	}
	return (total);
}

/*
 * The record type a message asks for: TLS_SET_RECORD_TYPE at level
 * IPPROTO_TCP (FreeBSD) or SOL_TLS (Linux), one byte.  Application data
 * when there is none.  *typed: there was one.
 */
static int
msg_record_type(const struct msghdr *msg, uint8_t *type, bool *typed)
{
	struct cmsghdr *cm;

	*type = TLS_RLTYPE_APP;
	*typed = false;
	if (msg->msg_controllen == 0)
		return (0);
	if (msg->msg_control == NULL)
		return (-EINVAL);
	for (cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm != NULL;
	    cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
		if (cm->cmsg_level != IPPROTO_TCP && cm->cmsg_level != SOL_TLS)
			continue;
		/* Its data must lie inside msg_control (fuzz_cmsg). */
		if (cm->cmsg_type != TLS_SET_RECORD_TYPE ||
		    cm->cmsg_len != CMSG_LEN(1) ||
		    (const char *)cm + CMSG_LEN(1) > (const char *)msg->msg_control
		    + msg->msg_controllen)
			return (-EINVAL);
		*type = *CMSG_DATA(cm);
		*typed = true;
	}
	return (0);
}

ssize_t
ktls_sock_sendmsg(struct ktls_sock *so, const struct msghdr *msg, int flags,
    int nb)
{
	const struct ktls_tx_ops *txo;
	bool typed;
	struct ktls_src src;
	size_t total;
	uint8_t type;
	ssize_t r;
	int error;

	total = iov_total(msg->msg_iov, (int)msg->msg_iovlen, &error);
	if (error == 0)
		error = msg_record_type(msg, &type, &typed);
	/* Linux refuses a record type with MSG_MORE (FreeBSD has no MSG_MORE). */
	if (error == 0 && typed && (flags & MSG_MORE))
		error = -EINVAL;
	if (error != 0)
		return (error);
	txo = ktls_sock_txo(so);
	if (txo->sendmsg != NULL)
		return (txo->sendmsg(so, msg, flags, nb, typed ? type : -1));
	if (total == 0) {
		/* An empty send without MSG_MORE closes the open record. */
		if (!(flags & MSG_MORE)) {
			pthread_mutex_lock(&so->mtx);
			ktls_sock_push_open(so);
			ktls_sock_unlock(so);
		}
		return (0);
	}
	src = (struct ktls_src){ .iov = msg->msg_iov,
	    .iovcnt = (int)msg->msg_iovlen, .typed = typed };
	r = ktls_sock_send(so, &src, total, type, nb, flags);
	return (r == -EXDEV ? ktls_sock_txo(so)->sendmsg(so, msg, flags, nb,
	    typed ? type : -1) : r);
}

/*
 * sendfile(2), Linux semantics: offset NULL reads from and advances
 * in_fd's file offset; otherwise *offset is used and updated and the file
 * offset is left alone.  The file is read by the worker (from the page
 * cache straight into the record), through a descriptor of our own, so
 * in_fd may be closed as soon as this returns.
 */
/*
 * A small sendfile in a response after a quiet spell: read (pread) and
 * encrypted by the caller now, as sock_send_inline() does for writes, so
 * without a descriptor of our own or a handoff.  The bytes sent, 0 at end
 * of file, a negative errno, or SENDFILE_NOT_TAKEN when the general path
 * must take it.
 */
#define SENDFILE_NOT_TAKEN	((ssize_t)-1 - 4096)

/*
 * The small file joins the held record before it (a response's header):
 * read into it, sealed, sent.  so->mtx held, released here.
 */
static ssize_t
sock_sendfile_held(struct ktls_sock *so, int in_fd, off_t off, size_t count)
{
	struct ktls_record *r = so->open;
	ssize_t n;
	int error;

	do
		n = ktls_sys.pread(in_fd, r->buf + so->tx->suite->prefix_len +
		    r->len, count, off);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* Not a file (a pipe, a socket): sendfile(2) says EINVAL. */
		error = n == 0 ? 0 : errno == ESPIPE ? -EINVAL : -errno;
		pthread_mutex_unlock(&so->mtx);
		return (error);
	}
	r->len += (uint32_t)n;
	ktls_sock_push_open(so);
	ktls_sock_txo(so)->flush(so);	/* or, failed, drops it */
	ktls_sock_unlock(so);
	return (n);
}

static ssize_t
sock_sendfile_inline(struct ktls_sock *so, int in_fd, off_t off, size_t count)
{
	struct ktls_record *r;
	ssize_t n;
	int error;

	pthread_mutex_lock(&so->mtx);
	/* dead first: GCC 12 under -fsanitize=address warns otherwise. */
	if (atomic_load(&so->dead) || !sock_idle(so) || so->error != 0 ||
	    so->switching || ktls_sock_txo(so)->sendmsg != NULL ||
	    so->shut_wr || so->seq_exhausted || (so->open != NULL &&
	    (!so->open_held || so->open_type != TLS_RLTYPE_APP ||
	    so->open_cap - so->open->len < count))) {
		pthread_mutex_unlock(&so->mtx);
		return (SENDFILE_NOT_TAKEN);
	}
	sock_note_write(so);
	if (so->open != NULL)
		return (sock_sendfile_held(so, in_fd, off, count));
	if (so->burst > KTLS_INLINE_BURST ||
	    (r = ktls_record_alloc(count)) == NULL) {
		pthread_mutex_unlock(&so->mtx);
		return (SENDFILE_NOT_TAKEN);
	}
	do
		n = ktls_sys.pread(in_fd, r->buf + so->tx->suite->prefix_len,
		    count, off);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* Not a file (a pipe, a socket): sendfile(2) says EINVAL. */
		error = n == 0 ? 0 : errno == ESPIPE ? -EINVAL : -errno;
		ktls_record_free(r);
		pthread_mutex_unlock(&so->mtx);
		return (error);
	}
	r->len = (uint32_t)n;
	if (ktls_frame(so, r, TLS_RLTYPE_APP, (size_t)n) != 0) {
		ktls_record_free(r);
		pthread_mutex_unlock(&so->mtx);
		return (SENDFILE_NOT_TAKEN);
	}
	if ((error = ktls_encrypt(r)) != 0)
		ktls_sock_fail(so, -error, true);
	atomic_store_explicit(&r->ready, true, memory_order_release);
	ktls_sock_txo(so)->flush(so);	/* or, failed, drops it */
	ktls_sock_unlock(so);
	return (n);
}

ssize_t
ktls_sock_sendfile(struct ktls_sock *so, int in_fd, off_t *offset, size_t count)
{
	const struct ktls_tx_ops *txo = ktls_sock_txo(so);
	struct ktls_fileref *f;
	struct ktls_src src;
	struct stat st;
	off_t off;
	ssize_t r;

	if (txo->sendfile != NULL)	/* the layer below frames */
		return (txo->sendfile(so, in_fd, offset, count));
	if (offset != NULL && count <= KTLS_INLINE_MAX && count > 0 &&
	    *offset >= 0) {
		r = sock_sendfile_inline(so, in_fd, *offset, count);
		if (r != SENDFILE_NOT_TAKEN) {
			if (r > 0)
				*offset += r;
			return (r);
		}
	}
	if (fstat(in_fd, &st) != 0)
		return (-errno);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return (-EINVAL);
	off = offset != NULL ? *offset : lseek(in_fd, 0, SEEK_CUR);
	if (off < 0)
		return (offset != NULL ? -EINVAL : -errno);
	if (off >= st.st_size || count == 0)
		return (0);
	if ((uint64_t)count > (uint64_t)(st.st_size - off))
		count = (size_t)(st.st_size - off);
	if (count > SSIZE_MAX)
		count = SSIZE_MAX;
	if (ktls_fault_hit(KF_FILEREF_ALLOC) ||
	    (f = malloc(sizeof(*f))) == NULL)
		return (-ENOMEM);
	if ((f->fd = ktls_sys.fcntl(in_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		free(f);
		return (-errno);
	}
	atomic_init(&f->refs, 1);
	src = (struct ktls_src){ .file = f, .file_off = off };
	r = ktls_sock_send(so, &src, count, TLS_RLTYPE_APP,
	    -1, 0);
	ktls_fileref_rele(f);
	if (r == -EXDEV)	/* switched to kernel mode meanwhile */
		return (ktls_sock_txo(so)->sendfile(so, in_fd, offset, count));
	if (r > 0) {
		if (offset != NULL)
			*offset = off + r;
		else
			lseek(in_fd, off + r, SEEK_SET);
	}
	return (r);
}

/*
 * splice(2) from a pipe into an enabled socket: the pipe's bytes become
 * records.  They are read from the pipe only once the engine can take
 * them all (what was taken from the pipe is never lost, invariant 3): a
 * non-blocking call with the queue full says EAGAIN before reading.  An
 * enabled socket as in_fd is plain TCP (no receive offload yet).
 */
#define SPLICE_CHUNK	(64 * 1024)

/* SPLICE_F_NONBLOCK: a pipe with nothing to read says EAGAIN. */
static ssize_t
pipe_read(int fd, void *buf, size_t len, bool nb)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (nb && ktls_sys.poll(&pfd, 1, 0) == 0) {
		errno = EAGAIN;
		return (-1);
	}
	return (ktls_sys.read(fd, buf, len));
}
ssize_t
ktls_sock_splice(struct ktls_sock *so, int in_fd, size_t len, unsigned int flags)
{
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct stat st;
	uint8_t *buf;
	size_t room;
	ssize_t n, r;
	bool nb = (flags & SPLICE_F_NONBLOCK) || sock_nonblock(so, 0);

	if (fstat(in_fd, &st) != 0)
		return (-errno);
	if (!S_ISFIFO(st.st_mode))
		return (-EINVAL);
	if (len == 0)
		return (0);
	room = SPLICE_CHUNK;
	if (nb) {
		pthread_mutex_lock(&so->mtx);
		room = so->queued >= KTLS_QUEUE_LIMIT ? 0 :
		    KTLS_QUEUE_LIMIT - so->queued;
		pthread_mutex_unlock(&so->mtx);
		if (room == 0)
			return (-EAGAIN);
	}
	if (len > room)
		len = room;
	if (len > SPLICE_CHUNK)
		len = SPLICE_CHUNK;
	if ((buf = malloc(len)) == NULL)
		return (-ENOMEM);
	do
		n = pipe_read(in_fd, buf, len, flags & SPLICE_F_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		r = n == 0 ? 0 : -errno;
		free(buf);
		return (r);
	}
	iov = (struct iovec){ .iov_base = buf, .iov_len = (size_t)n };
	/* Blocking from here: the bytes are out of the pipe. */
	r = ktls_sock_sendmsg(so, &msg, (flags & SPLICE_F_MORE) ? MSG_MORE : 0,
	    0);
	free(buf);
	return (r);
}
