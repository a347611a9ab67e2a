/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Autocork's other half: every call through which a thread may wait for
 * its peer (poll, epoll, select, read, recv, sleep) first sends the small
 * records the thread's own writes held back (ktls_push()), so a response
 * never sits in the engine while its server waits for the next request.
 * The engine's poller sends them anyway after kern.ipc.tls.autocork_us;
 * these calls make that the rare case.  Nothing else changes: each call
 * then goes to libc's function of the same name.
 */
#include <dlfcn.h>
#include <poll.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "interpose.h"

#define KTI_EXPORT	__attribute__((visibility("default")))


KTI_EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	NEXT(read);
	ktls_push();
	return (next_(fd, buf, len));
}

KTI_EXPORT ssize_t
readv(int fd, const struct iovec *iov, int iovcnt)
{
	NEXT(readv);
	ktls_push();
	return (next_(fd, iov, iovcnt));
}

KTI_EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	NEXT(recv);
	ktls_push();
	return (next_(fd, buf, len, flags));
}

KTI_EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
    socklen_t *alen)
{
	NEXT(recvfrom);
	ktls_push();
	return (next_(fd, buf, len, flags, addr, alen));
}

KTI_EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	NEXT(recvmsg);
	ktls_push();
	return (next_(fd, msg, flags));
}

KTI_EXPORT int
recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
    struct timespec *timeout)
{
	NEXT(recvmmsg);
	ktls_push();
	return (next_(fd, vec, vlen, flags, timeout));
}

KTI_EXPORT int
poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	NEXT(poll);
	ktls_push();
	return (next_(fds, nfds, timeout));
}

KTI_EXPORT int
ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
    const sigset_t *mask)
{
	NEXT(ppoll);
	ktls_push();
	return (next_(fds, nfds, ts, mask));
}

KTI_EXPORT int
select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	NEXT(select);
	ktls_push();
	return (next_(n, r, w, e, tv));
}

KTI_EXPORT int
pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
    const sigset_t *mask)
{
	NEXT(pselect);
	ktls_push();
	return (next_(n, r, w, e, ts, mask));
}

KTI_EXPORT int
epoll_wait(int epfd, struct epoll_event *ev, int maxev, int timeout)
{
	NEXT(epoll_wait);
	ktls_push();
	return (next_(epfd, ev, maxev, timeout));
}

KTI_EXPORT int
epoll_pwait(int epfd, struct epoll_event *ev, int maxev, int timeout,
    const sigset_t *mask)
{
	NEXT(epoll_pwait);
	ktls_push();
	return (next_(epfd, ev, maxev, timeout, mask));
}

KTI_EXPORT int
epoll_pwait2(int epfd, struct epoll_event *ev, int maxev,
    const struct timespec *timeout, const sigset_t *mask)
{
	NEXT(epoll_pwait2);
	ktls_push();
	return (next_(epfd, ev, maxev, timeout, mask));
}

KTI_EXPORT int
nanosleep(const struct timespec *req, struct timespec *rem)
{
	NEXT(nanosleep);
	ktls_push();
	return (next_(req, rem));
}

KTI_EXPORT int
clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
    struct timespec *rem)
{
	NEXT(clock_nanosleep);
	ktls_push();
	return (next_(clk, flags, req, rem));
}
