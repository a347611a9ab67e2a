/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The public socket calls, the errno boundary.  Each looks the fd up; an
 * fd ktls does not manage goes straight to libc.  On an enabled socket the
 * call goes to the send path (send.c), the options (sockopt.c) or the
 * descriptor bookkeeping below (shutdown, close, dup, fcntl, close_range).
 * This is the only layer that turns negative errno values into -1 and
 * errno (ktls_ret()).
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
			return (ktls_ret(r));
		return (ktls_sys.sendmsg(fd, msg, flags));
	}
	r = msg == NULL ? -EFAULT :
	    ktls_sock_sendmsg(so, msg, flags, -1);
	ktls_sock_rele(so);
	return (ktls_ret(r));
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
	return (ktls_ret(r));
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
	return (ktls_ret(r));
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
	r = ktls_sock_sendfile(so, in_fd, offset, count);
	ktls_sock_rele(so);
	return (ktls_ret(r));
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
	return (ktls_ret(r));
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
				return ((int)ktls_ret(n));
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
		return (ktls_ret(-ESPIPE));
	ktls_sys_init();
	return (ktls_sys.pwrite(fd, buf, len, off));
}

KTLS_EXPORT ssize_t
ktls_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	if (ktls_fd_is_enabled(fd))
		return (ktls_ret(-ESPIPE));
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
	return (ktls_ret(r));
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
	    ktls_sock_splice(so, in_fd, len, flags);
	ktls_sock_rele(so);
	return (ktls_ret(r));
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
		return ((int)ktls_ret(-EINVAL));
	}
	pthread_mutex_lock(&so->mtx);
	if (how != SHUT_WR && ktls_sys.shutdown(so->kfd, SHUT_RD) != 0)
		r = -errno;
	if (r == 0 && how != SHUT_RD) {
		/* The FIN follows the queued records (see tx_finish()). */
		ktls_sock_push_open(so);
		so->shut_wr = true;
		ktls_sock_txo(so)->flush(so);
	}
	ktls_sock_unlock(so);
	ktls_sock_rele(so);
	return ((int)ktls_ret(r));
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
		ktls_sock_txo(so)->flush(so);	/* what autocork held back */
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
	if (oldfd == newfd || !ktls_owner())
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
		return ((int)ktls_ret(error));
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

