/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The public socket calls.  Each looks the fd up; an fd ktls does not
 * manage goes straight to libc.  On an enabled socket the data is cut into
 * records (at most kern.ipc.tls.maxlen bytes each), queued not ready and
 * handed to the socket's worker; the call returns what it accepted, as
 * FreeBSD's sosend() does.  This is the only layer that turns negative
 * errno values into -1 and errno.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"

#ifndef SOL_TLS
#define SOL_TLS		282
#endif

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
void
ktls_sock_push_open(struct ktls_sock *so)
{
	struct ktls_record *r = so->open;

	if (r == NULL)
		return;
	so->open = NULL;
	/* A failed socket has reported its error; exhaustion says EOVERFLOW. */
	if (so->error != 0 || atomic_load(&so->dead) ||
	    ktls_frame(so, r, so->open_type, r->len) != 0) {
		ktls_record_free(r);
		return;
	}
	ktls_enqueue(r, r, 1);
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
	int error;

	if ((r = ktls_record_alloc(len)) == NULL)
		return (-ENOMEM);
	src_fill(src, r, r->buf + so->tx->suite->prefix_len, len);
	r->len = (uint32_t)len;
	if (ktls_frame(so, r, type, len) != 0) {
		ktls_record_free(r);
		return (0);
	}
	if ((error = ktls_encrypt(r)) != 0) {
		/* Invariant 1: reset; the record is never sent. */
		ktls_sock_fail(so, -error, true);
		atomic_store_explicit(&r->ready, true, memory_order_release);
		ktls_tx_purge(so);
		return ((ssize_t)len);	/* accepted; the error comes next */
	}
	atomic_store_explicit(&r->ready, true, memory_order_release);
	ktls_tx_cork(so);	/* more may follow: one send for both */
	return ((ssize_t)len);
}

/*
 * A mode switch in progress holds new writes back until the queue is sent
 * (kmode.c); after it, sends go to the kernel: -EXDEV tells the caller.
 * so->mtx held.
 */
static int
sock_wait_mode(struct ktls_sock *so)
{
	int error;

	while (so->switching)
		if ((error = ktls_sock_wait(so, NULL)) != 0)
			return (error);
	return (atomic_load(&so->mode) == TCP_TLS_MODE_IFNET ? -EXDEV : 0);
}

/* Nothing of this socket is with a worker: every queued record is ready. */
static bool
sock_idle(struct ktls_sock *so)
{
	for (struct ktls_record *r = so->head; r != NULL; r = r->next)
		if (!atomic_load_explicit(&r->ready, memory_order_acquire))
			return (false);
	return (true);
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
	/* As Linux: a record-type message, even of type 23, ends it too. */
	if (so->open != NULL && (type != so->open_type || src->file != NULL ||
	    src->typed))
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
				if (ktls_tx_flush(so)) {
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
			if ((n = sock_send_inline(so, src, total - accepted,
			    type)) < 0) {
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

static ssize_t
ret(ssize_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return (-1);
	}
	return (r);
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
	if (atomic_load(&so->mode) == TCP_TLS_MODE_IFNET)
		return (ktls_kmode_sendmsg(so, msg, flags, nb, typed ? type : -1));
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
	return (r == -EXDEV ?
	    ktls_kmode_sendmsg(so, msg, flags, nb, typed ? type : -1) : r);
}

/*
 * An enabled socket passed in SCM_RIGHTS would reach a process whose
 * writes to it the engine does not see (invariant 7): refused, EPERM,
 * before anything is sent.
 */
ssize_t
ktls_rights_check(const struct msghdr *msg, bool ro)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR((struct msghdr *)msg); c != NULL;
	    c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		const int *fds = (const int *)CMSG_DATA(c);
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, fds + i, sizeof(fd));
			if (ro ? ktls_fd_is_enabled_ro(fd) :
			    ktls_fd_is_enabled(fd)) {
				if (!ro)
					ktls_counter_add_shared(KC_GUARD_REFUSED, 1);
				return (-EPERM);
			}
		}
	}
	return (0);
}

KTLS_EXPORT ssize_t
ktls_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(fd);
	ssize_t r;

	if (so == NULL) {
		ktls_sys_init();
		if (msg != NULL && msg->msg_controllen > 0 &&
		    (r = ktls_rights_check(msg, false)) != 0)
			return (ret(r));
		return (ktls_sys.sendmsg(fd, msg, flags));
	}
	r = msg == NULL ? -EFAULT :
	    ktls_sock_sendmsg(so, msg, flags, -1);
	ktls_sock_rele(so);
	return (ret(r));
}

KTLS_EXPORT ssize_t
ktls_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(fd);
	struct msghdr msg = { .msg_iov = (struct iovec *)iov,
	    .msg_iovlen = (size_t)iovcnt };
	ssize_t r;

	if (so == NULL) {
		ktls_sys_init();
		return (ktls_sys.writev(fd, iov, iovcnt));
	}
	r = iovcnt < 0 ? -EINVAL :
	    ktls_sock_sendmsg(so, &msg, 0, -1);
	ktls_sock_rele(so);
	return (ret(r));
}

/* send(2) is sendto(2) without an address. */
KTLS_EXPORT ssize_t
ktls_send(int fd, const void *buf, size_t len, int flags)
{
	return (ktls_sendto(fd, buf, len, flags, NULL, 0));
}

KTLS_EXPORT ssize_t
ktls_write(int fd, const void *buf, size_t len)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(fd);
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (so == NULL) {
		ktls_sys_init();
		return (ktls_sys.write(fd, buf, len));
	}
	/* write(2) on a socket raises SIGPIPE like send() without flags. */
	r = ktls_sock_sendmsg(so, &msg, 0, -1);
	ktls_sock_rele(so);
	return (ret(r));
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
static ssize_t
sock_sendfile_inline(struct ktls_sock *so, int in_fd, off_t off, size_t count)
{
	struct ktls_record *r;
	ssize_t n;
	int error;

	pthread_mutex_lock(&so->mtx);
	if (!sock_idle(so) || so->error != 0 || atomic_load(&so->dead) ||
	    so->switching || atomic_load(&so->mode) != TCP_TLS_MODE_SW ||
	    so->shut_wr || so->seq_exhausted || so->open != NULL) {
		pthread_mutex_unlock(&so->mtx);
		return (SENDFILE_NOT_TAKEN);
	}
	sock_note_write(so);
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
	ktls_tx_flush(so);	/* or, failed, drops it */
	ktls_sock_unlock(so);
	return (n);
}

/* Kernel mode: the kernel's sendfile, which its TLS frames. */
static ssize_t
sock_sendfile_kernel(struct ktls_sock *so, int in_fd, off_t *offset,
    size_t count)
{
	ssize_t r = ktls_sys.sendfile(so->kfd, in_fd, offset, count);

	return (r < 0 ? -errno : r);
}

static ssize_t
sock_sendfile(struct ktls_sock *so, int in_fd, off_t *offset, size_t count)
{
	struct ktls_fileref *f;
	struct ktls_src src;
	struct stat st;
	off_t off;
	ssize_t r;

	if (atomic_load(&so->mode) == TCP_TLS_MODE_IFNET)
		return (sock_sendfile_kernel(so, in_fd, offset, count));
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
	f->map = NULL;
	f->nomap = !ktls_env_sendfile_map();
	src = (struct ktls_src){ .file = f, .file_off = off };
	r = ktls_sock_send(so, &src, count, TLS_RLTYPE_APP,
	    -1, 0);
	ktls_fileref_rele(f);
	if (r == -EXDEV)	/* switched to kernel mode meanwhile */
		return (sock_sendfile_kernel(so, in_fd, offset, count));
	if (r > 0) {
		if (offset != NULL)
			*offset = off + r;
		else
			lseek(in_fd, off + r, SEEK_SET);
	}
	return (r);
}

KTLS_EXPORT ssize_t
ktls_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(out_fd);
	ssize_t r;

	if (so == NULL) {
		ktls_sys_init();
		return (ktls_sys.sendfile(out_fd, in_fd, offset, count));
	}
	r = sock_sendfile(so, in_fd, offset, count);
	ktls_sock_rele(so);
	return (ret(r));
}

/* sendto(2): TCP is connected, so the address plays no part. */
KTLS_EXPORT ssize_t
ktls_sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *addr, socklen_t alen)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(fd);
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (so == NULL) {
		ktls_sys_init();
		return (ktls_sys.sendto(fd, buf, len, flags, addr, alen));
	}
	r = ktls_sock_sendmsg(so, &msg, flags, -1);
	ktls_sock_rele(so);
	return (ret(r));
}

/* sendmmsg(2): the messages one after the other, as the kernel does. */
KTLS_EXPORT int
ktls_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(fd);
	unsigned int i;
	ssize_t n;

	if (so == NULL) {
		for (i = 0; i < vlen; i++)
			if (vec[i].msg_hdr.msg_controllen > 0 &&
			    (n = ktls_rights_check(&vec[i].msg_hdr, false)) != 0)
				return ((int)ret(n));
		ktls_sys_init();
		return (ktls_sys.sendmmsg(fd, vec, vlen, flags));
	}
	ktls_sock_rele(so);
	if (vlen > UIO_MAXIOV)
		vlen = UIO_MAXIOV;
	for (i = 0; i < vlen; i++) {
		if ((n = ktls_sendmsg(fd, &vec[i].msg_hdr, flags)) < 0)
			return (i > 0 ? (int)i : -1);
		vec[i].msg_len = (unsigned int)n;
	}
	return ((int)i);
}

/*
 * The positioned writes.  A socket has no file position: Linux answers
 * ESPIPE, and so does an enabled one; pwritev2() with offset -1 is
 * writev() with flags (RWF_NOWAIT: do not block), on a socket too.
 */
KTLS_EXPORT ssize_t
ktls_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (ktls_fd_is_enabled(fd))
		return (ret(-ESPIPE));
	ktls_sys_init();
	return (ktls_sys.pwrite(fd, buf, len, off));
}

KTLS_EXPORT ssize_t
ktls_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	if (ktls_fd_is_enabled(fd))
		return (ret(-ESPIPE));
	ktls_sys_init();
	return (ktls_sys.pwritev2(fd, iov, iovcnt, off, 0));
}

KTLS_EXPORT ssize_t
ktls_pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off,
    int flags)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(fd);
	struct msghdr msg = { .msg_iov = (struct iovec *)iov,
	    .msg_iovlen = (size_t)iovcnt };
	ssize_t r;

	if (so == NULL) {
		ktls_sys_init();
		return (ktls_sys.pwritev2(fd, iov, iovcnt, off, flags));
	}
	if (off != -1)
		r = -ESPIPE;
	else if (iovcnt < 0)
		r = -EINVAL;
	else
		r = ktls_sock_sendmsg(so, &msg,
		    (flags & RWF_NOWAIT) ? MSG_DONTWAIT : 0, -1);
	ktls_sock_rele(so);
	return (ret(r));
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

	if (nb && poll(&pfd, 1, 0) == 0) {
		errno = EAGAIN;
		return (-1);
	}
	return (read(fd, buf, len));
}
static ssize_t
sock_splice(struct ktls_sock *so, int in_fd, size_t len, unsigned int flags)
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

KTLS_EXPORT ssize_t
ktls_splice(int in_fd, off_t *off_in, int out_fd, off_t *off_out,
    size_t len, unsigned int flags)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(out_fd);
	ssize_t r;

	if (so == NULL) {
		ktls_sys_init();
		return (ktls_sys.splice(in_fd, off_in, out_fd, off_out, len,
		    flags));
	}
	r = off_in != NULL || off_out != NULL ? -ESPIPE :
	    sock_splice(so, in_fd, len, flags);
	ktls_sock_rele(so);
	return (ret(r));
}

KTLS_EXPORT int
ktls_shutdown(int fd, int how)
{
	struct ktls_sock *so = ktls_sock_lookup(fd);
	int r = 0;

	if (so == NULL) {
		ktls_sys_init();
		return (ktls_sys.shutdown(fd, how));
	}
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
		ktls_sock_rele(so);
		return ((int)ret(-EINVAL));
	}
	pthread_mutex_lock(&so->mtx);
	if (how != SHUT_WR && ktls_sys.shutdown(so->kfd, SHUT_RD) != 0)
		r = -errno;
	if (r == 0 && how != SHUT_RD) {
		/* The FIN follows the queued records (see tx_finish()). */
		ktls_sock_push_open(so);
		so->shut_wr = true;
		ktls_tx_flush(so);
	}
	ktls_sock_unlock(so);
	ktls_sock_rele(so);
	return ((int)ret(r));
}

/*
 * The application let go of one descriptor of the socket.  When it was the
 * last, the connection is closed after the queued records, as the kernel
 * does after close(2), unless SO_LINGER says otherwise: a zero linger time
 * resets the connection and drops the queue; a positive one makes the
 * caller wait (at most that long) for the queue to reach the kernel.
 * Consumes the table's reference.
 */
static void
sock_drop_fd(struct ktls_sock *so)
{
	struct linger l = { 0 };
	socklen_t len = sizeof(l);
	struct timespec deadline;

	ktls_sys.getsockopt(so->kfd, SOL_SOCKET, SO_LINGER, &l, &len);
	pthread_mutex_lock(&so->mtx);
	if (--so->nfds == 0) {
		ktls_sock_push_open(so);
		/*
		 * With the guard up, the stream ends here for every holder of
		 * the socket: a copy the engine never saw made (a raw dup
		 * before the first enable) would otherwise write plaintext
		 * once the session is gone.  The FIN follows the queue, and
		 * such a copy's writes fail with EPIPE.
		 */
		if (ktls_guard_active())
			so->shut_wr = true;
		ktls_tx_flush(so);	/* what autocork held back */
		if (l.l_onoff && l.l_linger == 0) {
			ktls_sock_fail(so, ECONNABORTED, true);
		} else if (l.l_onoff) {
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_sec += l.l_linger;
			while (so->head != NULL && !atomic_load(&so->dead) &&
			    ktls_sock_wait(so, &deadline) == 0)
				;
		}
	}
	ktls_sock_unlock(so);
	ktls_sock_rele(so);	/* the last record's release frees it */
}

/* close(2): the number is free at once; queued records still go out. */
KTLS_EXPORT int
ktls_close(int fd)
{
	struct ktls_sock *so = ktls_sock_unlink(fd);

	ktls_sys_init();
	if (so == NULL)
		return (ktls_sys.close(fd));
	ktls_sys.close(fd);
	sock_drop_fd(so);
	return (0);
}

/*
 * The descriptor-table calls, made and followed: a copy of an enabled
 * socket is a descriptor of its session, a number that is closed or
 * replaced is not any more.  The guard routes libc's own and raw ones
 * here too, so the engine's table is exact.
 */
KTLS_EXPORT int
ktls_dup(int oldfd)
{
	int fd;

	ktls_sys_init();
	if ((fd = ktls_sys.dup(oldfd)) >= 0) {
		ktls_fd_closed(fd);		/* a number of no file till now */
		ktls_fd_dup(oldfd, fd);
	}
	return (fd);
}

KTLS_EXPORT int
ktls_dup2(int oldfd, int newfd)
{
	int fd;

	ktls_sys_init();
	if ((fd = ktls_sys.dup2(oldfd, newfd)) >= 0 && oldfd != newfd) {
		ktls_fd_closed(newfd);		/* what newfd was is gone */
		ktls_fd_dup(oldfd, newfd);
	}
	return (fd);
}

KTLS_EXPORT int
ktls_dup3(int oldfd, int newfd, int flags)
{
	int fd;

	ktls_sys_init();
	if ((fd = ktls_sys.dup3(oldfd, newfd, flags)) >= 0) {
		ktls_fd_closed(newfd);
		ktls_fd_dup(oldfd, newfd);
	}
	return (fd);
}

KTLS_EXPORT int
ktls_fcntl(int fd, int cmd, long arg)
{
	int r;

	ktls_sys_init();
	r = ktls_sys.fcntl(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
		ktls_fd_closed(r);
		ktls_fd_dup(fd, r);
	}
	return (r);
}

/* close_range(2); CLOSE_RANGE_CLOEXEC closes nothing now. */
KTLS_EXPORT int
ktls_close_range(unsigned int first, unsigned int last, int flags)
{
	int r;

	ktls_sys_init();
	r = ktls_sys.close_range(first, last, flags);
	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		if (last > (1u << 22))
			last = 1u << 22;
		for (unsigned int fd = first; fd <= last; fd++)
			ktls_fd_closed((int)fd);
	}
	return (r);
}

KTLS_EXPORT void
ktls_push(void)
{
	ktls_tx_push_mine();
}

KTLS_EXPORT int
ktls_fd_dup(int oldfd, int newfd)
{
	struct ktls_sock *so;
	int error;

	/* Not in a vfork child: the table is the parent's. */
	if (oldfd == newfd || !ktls_sock_owner())
		return (0);
	if ((so = ktls_sock_lookup(oldfd)) == NULL) {
		/* A socket's copy: it joins the session if one comes. */
		ktls_sock_note_dup(oldfd, newfd);
		return (0);
	}
	ktls_fd_closed(newfd);
	pthread_mutex_lock(&so->mtx);
	so->nfds++;
	pthread_mutex_unlock(&so->mtx);
	/* The lookup's reference becomes the new entry's. */
	if ((error = ktls_sock_link(newfd, so)) != 0) {
		sock_drop_fd(so);
		return ((int)ret(error));
	}
	return (0);
}

KTLS_EXPORT void
ktls_fd_closed(int fd)
{
	struct ktls_sock *so = ktls_sock_unlink(fd);

	if (so != NULL)
		sock_drop_fd(so);
}

KTLS_EXPORT int
ktls_get_tx(int fd, struct ktls_tx_info *ti)
{
	struct ktls_sock *so = ktls_sock_lookup(fd);
	const struct ktls_session *s;
	uint64_t seq;

	if (so == NULL)
		return ((int)ret(-ENOENT));
	s = so->tx;
	memset(ti, 0, sizeof(*ti));
	ti->cipher_algorithm = s->suite->cipher_alg;
	ti->cipher_key_len = s->suite->key_len;
	ti->auth_algorithm = s->suite->auth_alg;
	ti->tls_vminor = s->suite->vminor;
	memcpy(ti->cipher_key, s->params.cipher_key, s->suite->key_len);
	pthread_mutex_lock(&so->mtx);
	seq = so->next_seq;
	pthread_mutex_unlock(&so->mtx);
	if (ktls_sock_mode(so) == TCP_TLS_MODE_IFNET &&
	    ktls_kmode_seq(so, &seq) != 0) {
		ktls_sock_rele(so);
		explicit_bzero(ti, sizeof(*ti));
		return ((int)ret(-EIO));
	}
	ktls_be64enc(ti->rec_seq, seq);
	memcpy(ti->iv, s->params.iv, s->suite->iv_len);
	ti->iv_len = s->suite->iv_len;
	if (s->suite->kind == KTLS_AEAD_EXPLICIT) {
		/* salt || the next record's explicit nonce */
		ktls_be64enc(ti->iv + 4, seq + s->params.nonce_off);
		ti->iv_len = 12;
	}
	ktls_sock_rele(so);	/* s is the socket's: released last */
	return (0);
}

KTLS_EXPORT int
ktls_setsockopt(int fd, int level, int optname, const void *optval,
    socklen_t optlen)
{
	struct ktls_sock *so;
	int mode, r;

	ktls_sys_init();
	if (level != IPPROTO_TCP || (optname & ~0xff) != KTLS_SOCKOPT_BASE)
		return (ktls_sys.setsockopt(fd, level, optname, optval, optlen));
	switch (optname) {
	case TCP_TXTLS_ENABLE:
		return ((int)ret(ktls_sock_enable(fd, optval, optlen)));
	case TCP_TXTLS_MODE:
		if (optval == NULL || optlen != sizeof(int))
			return ((int)ret(-EINVAL));
		memcpy(&mode, optval, sizeof(mode));
		if ((so = ktls_sock_lookup(fd)) == NULL)
			return ((int)ret(-EINVAL));
		/* FreeBSD's ktls_set_tx_mode(): SW or IFNET, else EINVAL. */
		r = ktls_sock_set_mode(so, mode);
		ktls_sock_rele(so);
		return ((int)ret(r));
	default:
		/* Receive offload (TCP_RXTLS_*) is not there, as in D21277. */
		return ((int)ret(-ENOPROTOOPT));
	}
}

KTLS_EXPORT int
ktls_getsockopt(int fd, int level, int optname, void *optval,
    socklen_t *optlen)
{
	struct ktls_sock *so;
	int mode, type;
	socklen_t len = sizeof(type);

	ktls_sys_init();
	if (level != IPPROTO_TCP || optname != TCP_TXTLS_MODE)
		return (ktls_sys.getsockopt(fd, level, optname, optval, optlen));
	if (ktls_sys.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return (-1);
	if (optval == NULL || optlen == NULL || *optlen < sizeof(int))
		return ((int)ret(-EINVAL));
	so = ktls_sock_lookup(fd);
	mode = so != NULL ? ktls_sock_mode(so) : TCP_TLS_MODE_NONE;
	if (so != NULL)
		ktls_sock_rele(so);
	memcpy(optval, &mode, sizeof(mode));
	*optlen = sizeof(mode);
	return (0);
}
