/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The control socket: each process that has enabled a session answers
 * ktls-stat and ktls-switch on the abstract AF_UNIX socket "@ktls.<pid>":
 * GET (the counters), LIST (the enabled connections) and MODE (switch a
 * connection between software and kernel mode).  The protocol itself is
 * described once, in src/proto/ktls_ctl.h, shared with the tools
 * (docs/control.md).
 *
 * One detached thread, "ktls-control", per process, started by the first
 * successful enable.  It serves one connection at a time: answers are
 * built on the thread's stack a few kilobytes at a time, so serving costs
 * no heap (but for ktls_sock_foreach()'s list of sockets), and every wait on a client is bounded so that a client that connects and
 * says nothing delays the next one by at most CTL_CLIENT_MS (MODE itself
 * may take longer: ktls_sock_set_mode() waits, bounded, for the socket's
 * queue to drain, and the next client waits meanwhile).  Nothing here
 * may take the host process down: every failure is dropped (the counters
 * are a convenience, the application's connections are not).
 *
 * The engine calls libc's close/send/recv/poll/setsockopt/getsockopt
 * through ktls_sys: under the interposer those names are the interposer's
 * (ktls_int.h lists the calls that bypass the seam: socket, bind, listen,
 * accept4 here).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_ctl.h"
#include "ktls_int.h"

#define CTL_BACKLOG	16
#define CTL_CLIENT_MS	1000		/* whole request, and each send */
#define CTL_RETRY_NS	(10LL * 1000000000)	/* after a failed start */

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
 * KTLS_CTL_LINE_MAX + 1 bytes), -ECONNRESET (EOF before any byte).
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
		n = ktls_sys.poll(&pfd, 1, ms);
		if (n < 0 && errno != EINTR)
			return (-errno);
		if (n <= 0)
			continue;
		n = ktls_sys.recv(fd, req + len, size - 1 - len, MSG_DONTWAIT);
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

#define CTL_END_LINE	KTLS_CTL_END "\n"	/* the last line of GET, LIST */

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
		if (sizeof(buf) - off < KTLS_CTL_LINE_MAX + 1) {
			if ((error = ctl_send(fd, buf, off)) != 0)
				return (error);
			off = 0;
		}
		if (len == sizeof(int))
			n = snprintf(buf + off, sizeof(buf) - off,
			    "%s %d " KTLS_CTL_TUNABLE "\n", name, v.i);
		else
			n = snprintf(buf + off, sizeof(buf) - off,
			    "%s %ju " KTLS_CTL_COUNTER "\n", name,
			    (uintmax_t)v.u64);
		/* A name too long for the buffer cannot be sent whole. */
		if (n < 0 || (size_t)n >= sizeof(buf) - off)
			continue;
		off += (size_t)n;
	}
	if (sizeof(buf) - off < sizeof(CTL_END_LINE) - 1) {
		if ((error = ctl_send(fd, buf, off)) != 0)
			return (error);
		off = 0;
	}
	memcpy(buf + off, CTL_END_LINE, sizeof(CTL_END_LINE) - 1);
	return (ctl_send(fd, buf, off + sizeof(CTL_END_LINE) - 1));
}

/* Answer "ERR <name>" for a positive errno. */
static void
ctl_send_err(int fd, int error)
{
	const char *name = ktls_ctl_errname(error);
	char buf[32];
	int n;

	if (name != NULL)
		n = snprintf(buf, sizeof(buf), KTLS_CTL_ERR " %s\n", name);
	else
		n = snprintf(buf, sizeof(buf), KTLS_CTL_ERR " %d\n", error);
	if (n > 0 && (size_t)n < sizeof(buf))
		ctl_send(fd, buf, (size_t)n);
}

/*
 * A TCP endpoint as LIST shows it and MODE matches it: an IPv4-mapped
 * IPv6 address is the IPv4 address it maps, so that an AF_INET6 socket
 * talking to an IPv4 peer is found by its IPv4 addresses.  Scope ids are
 * not compared.
 */
struct ctl_ep {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* 4 bytes used for AF_INET */
	uint16_t	port;		/* host order */
};

static int
ctl_ep_from_sa(const struct sockaddr_storage *ss, struct ctl_ep *ep)
{
	memset(ep, 0, sizeof(*ep));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		ep->family = AF_INET;
		memcpy(ep->addr, &sin->sin_addr, 4);
		ep->port = ntohs(sin->sin_port);
		return (0);
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			ep->family = AF_INET;
			memcpy(ep->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			ep->family = AF_INET6;
			memcpy(ep->addr, &sin6->sin6_addr, 16);
		}
		ep->port = ntohs(sin6->sin6_port);
		return (0);
	}
	return (-EAFNOSUPPORT);
}

/* Numeric address and decimal port (digits only, 0-65535). */
static int
ctl_ep_parse(const char *addr, const char *port, struct ctl_ep *ep)
{
	struct in6_addr a6;
	unsigned long p = 0;
	size_t len = strlen(port);

	if (len == 0 || len > 5)
		return (-EINVAL);
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)port[i]))
			return (-EINVAL);
		p = p * 10 + (unsigned long)(port[i] - '0');
	}
	if (p > 65535)
		return (-EINVAL);
	memset(ep, 0, sizeof(*ep));
	ep->port = (uint16_t)p;
	if (inet_pton(AF_INET, addr, ep->addr) == 1) {
		ep->family = AF_INET;
		return (0);
	}
	if (inet_pton(AF_INET6, addr, &a6) != 1)
		return (-EINVAL);
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		ep->family = AF_INET;
		memcpy(ep->addr, &a6.s6_addr[12], 4);
	} else {
		ep->family = AF_INET6;
		memcpy(ep->addr, &a6, 16);
	}
	return (0);
}

static bool
ctl_ep_equal(const struct ctl_ep *a, const struct ctl_ep *b)
{
	return (a->family == b->family && a->port == b->port &&
	    memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0);
}

/*
 * The local and foreign endpoints of an enabled socket, from the engine's
 * own descriptor of it.  -ENOTCONN for a socket that is not connected any
 * more, or one that is not this process's session: a fork()ed child's
 * copies of its parent's sockets (dead here, the parent's to switch).
 */
static int
ctl_sock_eps(struct ktls_sock *so, struct ctl_ep *l, struct ctl_ep *f)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (so->inherited)
		return (-ENOTCONN);
	len = sizeof(ss);
	if (getpeername(so->kfd, (struct sockaddr *)&ss, &len) != 0 ||
	    ctl_ep_from_sa(&ss, f) != 0)
		return (-ENOTCONN);
	len = sizeof(ss);
	if (getsockname(so->kfd, (struct sockaddr *)&ss, &len) != 0 ||
	    ctl_ep_from_sa(&ss, l) != 0)
		return (-ENOTCONN);
	return (0);
}

/* Address, space, port; at most INET6_ADDRSTRLEN + 6 bytes with the NUL. */
static void
ctl_ep_format(const struct ctl_ep *ep, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(ep->family, ep->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, size, "%s %u", a, (unsigned int)ep->port);
}

static const char *
ctl_mode_name(int mode)
{
	switch (mode) {
	case TCP_TLS_MODE_NONE:
		return (KTLS_CTL_MODE_NONE);
	case TCP_TLS_MODE_SW:
		return (KTLS_CTL_MODE_SW);
	case TCP_TLS_MODE_IFNET:
		return (KTLS_CTL_MODE_IFNET);
	case TCP_TLS_MODE_TOE:
		return (KTLS_CTL_MODE_TOE);
	default:
		return (KTLS_CTL_MODE_UNKNOWN);
	}
}

/* LIST: lines gathered in buf, sent whenever it is nearly full. */
struct ctl_list {
	int	fd;
	int	error;		/* the first failed send: stop there */
	size_t	off;
	char	buf[4096];
};

static void
ctl_list_one(struct ktls_sock *so, void *arg)
{
	struct ctl_list *cl = arg;
	const struct ktls_suite *suite;
	struct ctl_ep l, f;
	char ls[INET6_ADDRSTRLEN + 8], fs[INET6_ADDRSTRLEN + 8];
	int n;

	if (cl->error != 0 || ctl_sock_eps(so, &l, &f) != 0)
		return;
	/* The suite's entry is static; tx lives as long as so. */
	pthread_mutex_lock(&so->mtx);
	suite = so->tx != NULL ? so->tx->suite : NULL;
	pthread_mutex_unlock(&so->mtx);
	ctl_ep_format(&l, ls, sizeof(ls));
	ctl_ep_format(&f, fs, sizeof(fs));
	if (sizeof(cl->buf) - cl->off < KTLS_CTL_LINE_MAX + 1) {
		if ((cl->error = ctl_send(cl->fd, cl->buf, cl->off)) != 0)
			return;
		cl->off = 0;
	}
	n = snprintf(cl->buf + cl->off, sizeof(cl->buf) - cl->off,
	    KTLS_CTL_CONN " %s %s %s %s\n", ls, fs,
	    ctl_mode_name(ktls_sock_mode(so)),
	    suite != NULL && suite->name != NULL ? suite->name : "-");
	if (n > 0 && (size_t)n < sizeof(cl->buf) - cl->off)
		cl->off += (size_t)n;
}

/* LIST: "conn laddr lport faddr fport mode suite" per socket, then END. */
static int
ctl_answer_list(int fd)
{
	struct ctl_list cl = { .fd = fd };

	ktls_sock_foreach(ctl_list_one, &cl);
	if (cl.error != 0)
		return (cl.error);
	if (sizeof(cl.buf) - cl.off < sizeof(CTL_END_LINE) - 1) {
		if ((cl.error = ctl_send(fd, cl.buf, cl.off)) != 0)
			return (cl.error);
		cl.off = 0;
	}
	memcpy(cl.buf + cl.off, CTL_END_LINE, sizeof(CTL_END_LINE) - 1);
	return (ctl_send(fd, cl.buf, cl.off + sizeof(CTL_END_LINE) - 1));
}

struct ctl_mode {
	struct ctl_ep	l, f;
	int		mode;
	int		found;		/* sockets that matched */
	int		error;		/* the first failure, negative */
};

static void
ctl_mode_one(struct ktls_sock *so, void *arg)
{
	struct ctl_mode *cm = arg;
	struct ctl_ep l, f;
	int error;

	if (ctl_sock_eps(so, &l, &f) != 0 || !ctl_ep_equal(&l, &cm->l) ||
	    !ctl_ep_equal(&f, &cm->f))
		return;
	cm->found++;
	/* May wait (bounded) for the socket's queue to drain. */
	if ((error = ktls_sock_set_mode(so, cm->mode)) != 0 && cm->error == 0)
		cm->error = error;
}

/*
 * MODE <sw|ifnet> laddr lport faddr fport: switch the matching socket(s).
 * OK, or ERR: ENOENT (no such connection here), EINVAL (a malformed
 * request), or what ktls_sock_set_mode() said.
 */
static void
ctl_answer_mode(int fd, char *args)
{
	struct ctl_mode cm = { .error = 0 };
	char *tok[KTLS_CTL_MODE_ARGS], *save = NULL;
	int ntok = 0;

	for (char *t = strtok_r(args, KTLS_CTL_BLANKS, &save); t != NULL;
	    t = strtok_r(NULL, KTLS_CTL_BLANKS, &save)) {
		if (ntok == KTLS_CTL_MODE_ARGS) {
			ctl_send_err(fd, EINVAL);
			return;
		}
		tok[ntok++] = t;
	}
	if (ntok != KTLS_CTL_MODE_ARGS) {
		ctl_send_err(fd, EINVAL);
		return;
	}
	if (strcmp(tok[0], KTLS_CTL_MODE_SW) == 0)
		cm.mode = TCP_TLS_MODE_SW;
	else if (strcmp(tok[0], KTLS_CTL_MODE_IFNET) == 0)
		cm.mode = TCP_TLS_MODE_IFNET;
	else {
		ctl_send_err(fd, EINVAL);
		return;
	}
	if (ctl_ep_parse(tok[1], tok[2], &cm.l) != 0 ||
	    ctl_ep_parse(tok[3], tok[4], &cm.f) != 0) {
		ctl_send_err(fd, EINVAL);
		return;
	}
	ktls_sock_foreach(ctl_mode_one, &cm);
	if (cm.found == 0)
		ctl_send_err(fd, ENOENT);
	else if (cm.error != 0)
		ctl_send_err(fd, -cm.error);
	else
		ctl_send(fd, KTLS_CTL_OK "\n", sizeof(KTLS_CTL_OK "\n") - 1);
}

/* The request: its first word, then arguments separated by blanks. */
static void
ctl_dispatch(int fd, char *req)
{
	char *verb = req, *args;

	verb += strspn(verb, KTLS_CTL_BLANKS);
	args = verb + strcspn(verb, KTLS_CTL_BLANKS);
	if (*args != '\0')
		*args++ = '\0';
	if (strcmp(verb, KTLS_CTL_GET) == 0 &&
	    args[strspn(args, KTLS_CTL_BLANKS)] == '\0')
		ctl_answer_get(fd);
	else if (strcmp(verb, KTLS_CTL_LIST) == 0 &&
	    args[strspn(args, KTLS_CTL_BLANKS)] == '\0')
		ctl_answer_list(fd);
	else if (strcmp(verb, KTLS_CTL_MODE) == 0)
		ctl_answer_mode(fd, args);
	else
		ctl_send_err(fd, EINVAL);
}

static void
ctl_serve(int fd)
{
	struct timeval tv = { .tv_sec = CTL_CLIENT_MS / 1000,
	    .tv_usec = CTL_CLIENT_MS % 1000 * 1000 };
	struct ucred uc;
	socklen_t len = sizeof(uc);
	char req[KTLS_CTL_REQ_SIZE];
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
		ctl_send(fd, KTLS_CTL_ERR_EACCES,
		    sizeof(KTLS_CTL_ERR_EACCES) - 1);
		return;
	}
	switch (ctl_read_request(fd, req, sizeof(req))) {
	case 0:
		ctl_dispatch(fd, req);
		break;
	case -EMSGSIZE:
		ctl_send_err(fd, EMSGSIZE);
		break;
	default:
		break;
	}
}

static void *
ctl_main(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;

	for (;;) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };

		/*
		 * Wait in poll, not in accept: a blocked accept4() holds the
		 * lowest free descriptor number the whole time (the kernel
		 * takes it first), which a program closing and reopening
		 * stdin or stdout expects to get.  The listener is
		 * non-blocking for that reason.
		 */
		if (ktls_sys.poll(&pfd, 1, -1) < 0 && errno != EINTR)
			usleep(100 * 1000);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EAGAIN:
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
	struct sockaddr_un sun;
	socklen_t alen;
	int fd, error;

	alen = ktls_ctl_sockaddr(&sun, (long)getpid());
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0)
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
