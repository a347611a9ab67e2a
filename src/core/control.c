/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The control socket: each process that has enabled a session answers
 * ktls-stat on the abstract AF_UNIX socket "@ktls.<pid>" (docs/control.md).
 *
 * One detached thread, "ktls-control", per process, started by the first
 * successful enable.  It serves one connection at a time: the answer is a
 * few hundred bytes built on the thread's stack, so serving costs no heap,
 * and every wait on a client is bounded so that a client that connects and
 * says nothing delays the next one by at most CTL_CLIENT_MS.  Nothing here
 * may take the host process down: every failure is dropped (the counters
 * are a convenience, the application's connections are not).
 *
 * The engine calls libc's close/send/setsockopt/getsockopt through
 * ktls_sys: under the interposer those names are the interposer's.
 * socket/bind/listen/accept4/recv/poll are not interposed.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"

#define CTL_BACKLOG	16
#define CTL_CLIENT_MS	1000		/* whole request, and each send */
#define CTL_RETRY_NS	(10LL * 1000000000)	/* after a failed start */
#define CTL_REQ_MAX	64

/*
 * ctl_running is the fast path of ktls_control_start(): set once the
 * listener of this process exists, cleared only in a fork()ed child.
 * ctl_mtx serializes starting; ctl_lfd is the listening socket and
 * ctl_cfd the connection being served (both -1 when none), kept so that a
 * fork()ed child can close its copies: the child's copy of an accepted
 * connection would otherwise hold it open after the parent is done.
 */
static pthread_mutex_t ctl_mtx = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool ctl_running;
static _Atomic int ctl_lfd = -1;
static _Atomic int ctl_cfd = -1;
static int64_t ctl_failed_at;		/* CLOCK_MONOTONIC ns, 0: never */

static int64_t
ctl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* Send all of buf, within CTL_CLIENT_MS per call (SO_SNDTIMEO). */
static int
ctl_send(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = ktls_sys.send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return (-errno);
		}
		buf += n;
		len -= (size_t)n;
	}
	return (0);
}

/*
 * Read the request line into req (NUL-terminated, without the newline)
 * within CTL_CLIENT_MS in all, however slowly the client sends.  A line
 * may also end at EOF (a client that shut down its writing side).
 * 0, or a negative errno: -ETIMEDOUT, -EMSGSIZE (no newline in
 * CTL_REQ_MAX bytes), -ECONNRESET (EOF before any byte).
 */
static int
ctl_read_request(int fd, char *req, size_t size)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t deadline = ctl_now_ns() + CTL_CLIENT_MS * 1000000LL;
	size_t len = 0;
	ssize_t n;
	int ms;
	char *nl;

	for (;;) {
		ms = (int)((deadline - ctl_now_ns()) / 1000000);
		if (ms <= 0)
			return (-ETIMEDOUT);
		n = poll(&pfd, 1, ms);
		if (n < 0 && errno != EINTR)
			return (-errno);
		if (n <= 0)
			continue;
		n = recv(fd, req + len, size - 1 - len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return (-errno);
		}
		if (n == 0) {
			if (len == 0)
				return (-ECONNRESET);
			req[len] = '\0';
			break;
		}
		len += (size_t)n;
		req[len] = '\0';
		if ((nl = memchr(req, '\n', len)) != NULL) {
			*nl = '\0';
			len = (size_t)(nl - req);
			break;
		}
		if (len == size - 1)
			return (-EMSGSIZE);
	}
	if (len > 0 && req[len - 1] == '\r')
		req[len - 1] = '\0';
	return (0);
}

/*
 * The answer to GET: every node, in ktls_sysctl_name() order, as
 * "name value kind" (kind "tunable" for a setting, whose int value the
 * sysctl returns, "counter" for a 64-bit count), then "END".
 */
static int
ctl_answer_get(int fd)
{
	char buf[2048];
	size_t off = 0, len;
	const char *name;
	union {
		uint64_t	u64;
		int		i;
	} v;
	int n, error;

	for (unsigned int i = 0; (name = ktls_sysctl_name(i)) != NULL; i++) {
		len = sizeof(v);
		v.u64 = 0;
		if (ktls_sysctl_get(name, &v, &len) != 0)
			continue;
		if (sizeof(buf) - off < 256) {
			if ((error = ctl_send(fd, buf, off)) != 0)
				return (error);
			off = 0;
		}
		if (len == sizeof(int))
			n = snprintf(buf + off, sizeof(buf) - off,
			    "%s %d tunable\n", name, v.i);
		else
			n = snprintf(buf + off, sizeof(buf) - off,
			    "%s %ju counter\n", name, (uintmax_t)v.u64);
		/* A name too long for the buffer cannot be sent whole. */
		if (n < 0 || (size_t)n >= sizeof(buf) - off)
			continue;
		off += (size_t)n;
	}
	if (sizeof(buf) - off < 4) {
		if ((error = ctl_send(fd, buf, off)) != 0)
			return (error);
		off = 0;
	}
	memcpy(buf + off, "END\n", 4);
	return (ctl_send(fd, buf, off + 4));
}

static void
ctl_serve(int fd)
{
	struct timeval tv = { .tv_sec = CTL_CLIENT_MS / 1000,
	    .tv_usec = CTL_CLIENT_MS % 1000 * 1000 };
	struct ucred uc;
	socklen_t len = sizeof(uc);
	char req[CTL_REQ_MAX];
	uid_t euid;

	ktls_sys.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/*
	 * Abstract names have no file permissions: the peer's credentials
	 * are the only check.  The effective uid is read now, not at start:
	 * a server that drops privileges after forking answers as who it is.
	 */
	euid = geteuid();
	if (ktls_sys.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 ||
	    len != sizeof(uc) || (uc.uid != euid && uc.uid != 0)) {
		ctl_send(fd, "ERR EACCES\n", 11);
		return;
	}
	if (ctl_read_request(fd, req, sizeof(req)) != 0)
		return;
	if (strcmp(req, "GET") == 0)
		ctl_answer_get(fd);
	else
		ctl_send(fd, "ERR EINVAL\n", 11);
}

static void *
ctl_main(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
				continue;
			case EBADF:
			case EINVAL:
			case ENOTSOCK:
				/* The listener is gone: nothing left to do. */
				return (NULL);
			default:
				/* EMFILE and the like: wait, don't spin. */
				usleep(100 * 1000);
				continue;
			}
		}
		atomic_store(&ctl_cfd, fd);
		ctl_serve(fd);
		/*
		 * Forget before closing: a fork() in between leaks the
		 * number in the child, where closing it after reuse would
		 * close somebody else's file.
		 */
		atomic_store(&ctl_cfd, -1);
		ktls_sys.close(fd);
	}
	return (NULL);
}

/* Bind and listen on "@ktls.<pid>" and start the thread; 0 or -errno. */
static int
ctl_listen(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t alen;
	int fd, n, error;

	/* sun_path[0] stays NUL: the abstract namespace. */
	n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "ktls.%ld",
	    (long)getpid());
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    (size_t)n);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-errno);
	if (bind(fd, (struct sockaddr *)&sun, alen) != 0 ||
	    listen(fd, CTL_BACKLOG) != 0) {
		error = -errno;
		goto err_fd;
	}
	if ((error = ktls_thread_start(ctl_main, (void *)(intptr_t)fd,
	    "ktls-control")) != 0)
		goto err_fd;
	atomic_store(&ctl_lfd, fd);
	return (0);

err_fd:
	ktls_sys.close(fd);
	return (error);
}

/*
 * Called after every successful enable: one load when the listener runs.
 * A failed start (no fds left, the name taken) is retried by a later
 * enable, but not more often than every CTL_RETRY_NS, so that a busy
 * server does not pay a socket() for every connection.
 */
void
ktls_control_start(void)
{
	int64_t now;

	if (atomic_load_explicit(&ctl_running, memory_order_acquire))
		return;
	pthread_mutex_lock(&ctl_mtx);
	if (!atomic_load(&ctl_running)) {
		now = ctl_now_ns();
		if (ctl_failed_at == 0 || now - ctl_failed_at >= CTL_RETRY_NS) {
			if (ctl_listen() == 0)
				atomic_store_explicit(&ctl_running, true,
				    memory_order_release);
			else
				ctl_failed_at = now != 0 ? now : 1;
		}
	}
	pthread_mutex_unlock(&ctl_mtx);
}

/*
 * In a fork()ed child: the control thread did not come along and the
 * name carries the parent's pid.  Close the copies of the parent's
 * sockets (the parent keeps serving on its own) and let the child's next
 * enable start a listener of its own.  Only this thread runs here, so
 * plain resets are safe; ctl_mtx may have been held by a parent thread.
 */
void
ktls_control_atfork_child(void)
{
	int fd;

	pthread_mutex_init(&ctl_mtx, NULL);
	if ((fd = atomic_exchange(&ctl_cfd, -1)) >= 0)
		ktls_sys.close(fd);
	if ((fd = atomic_exchange(&ctl_lfd, -1)) >= 0)
		ktls_sys.close(fd);
	ctl_failed_at = 0;
	atomic_store(&ctl_running, false);
}
