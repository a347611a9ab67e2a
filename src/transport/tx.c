/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Transport: sending the ready prefix of a socket's queue to the kernel
 * socket (FreeBSD's pru_ready() then tcp_output()), and the poller thread
 * that goes on sending when a full kernel socket drains.
 *
 * Every send is non-blocking and gathers as many ready records as fit in
 * one sendmsg() (one record alone goes with send(): see tx_send()).
 * Nothing here ever sends a record that is not ready.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "ktls.h"
#include "../core/sys.h"
#include "../core/sock.h"
#include "transport.h"
#include "upcall.h"

#define TX_IOV_MAX	64

static pthread_mutex_t poller_mtx = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int poller_epfd = -1;	/* -1: not started */
static int poller_evfd = -1;		/* wakes the poller (autocork) */

/*
 * Autocork: sockets whose ready records wait for more data, for their
 * thread to wait (ktls_push()), or for the poller's deadline.  The list
 * holds a reference on each socket.  Lock order: so->mtx, then cork_mtx.
 */
static pthread_mutex_t cork_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct ktls_sock *cork_head;
static bool cork_ticking;		/* the poller keeps the deadlines */
static __thread unsigned int cork_mine;	/* this thread's entries */

static int	poller_arm(struct ktls_sock *so);
static int	poller_start(void);

void
ktls_tx_finish(struct ktls_sock *so)
{
	/* shutdown(SHUT_WR) waits for the queue, as the kernel's does. */
	if (so->head == NULL && so->shut_wr && !so->xp.fin_sent &&
	    !atomic_load(&so->dead)) {
		ktls_sys.shutdown(so->kfd, SHUT_WR);
		so->xp.fin_sent = true;
	}
}

/*
 * One span (a single ready record, a small response's usual case) goes
 * with send(2): the kernel then copies in no msghdr and imports no iovec
 * (measured on nginx, 1 KiB responses: sendmsg's extra kernel path was
 * about a third of a microsecond per response).  Both are the seam's,
 * and so the guard's gadget calls once it is up.
 */
static ssize_t
tx_send(int fd, const struct msghdr *msg)
{
	if (msg->msg_iovlen == 1)
		return (ktls_sys.send(fd, msg->msg_iov[0].iov_base,
		    msg->msg_iov[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL));
	return (ktls_sys.sendmsg(fd, msg, MSG_DONTWAIT | MSG_NOSIGNAL));
}

static bool
tx_flush(struct ktls_sock *so)
{
	struct iovec iov[TX_IOV_MAX];
	struct msghdr msg = { .msg_iov = iov };
	struct ktls_record *r;
	bool full = false;
	ssize_t n;
	int cnt, error;

	if (atomic_load(&so->dead)) {
		ktls_sock_purge(so);
		return (false);
	}
	/* Another thread is in sendmsg: it goes on with what is ready. */
	if (so->head_busy)
		return (false);
	for (;;) {
		cnt = 0;
		for (r = so->head; r != NULL && cnt < TX_IOV_MAX &&
		    atomic_load_explicit(&r->ready, memory_order_acquire);
		    r = r->next, cnt++) {
			/* Only the head can be partly sent; seqs follow. */
			KASSERT((r == so->head || r->sent == 0) &&
			    (r->next == NULL || r->next->seq == r->seq + 1),
			    ("%s: record seq %ju (sent %u), next seq %ju",
			    __func__, (uintmax_t)r->seq, r->sent, r->next ?
			    (uintmax_t)r->next->seq : 0));
			iov[cnt].iov_base = r->buf + r->sent;
			iov[cnt].iov_len = r->wire_len - r->sent;
		}
#ifdef KTLS_INVARIANTS
		/*
		 * The ready records are a prefix of the queue (one worker
		 * per session, in order; inline records only on an idle
		 * queue), so what stops the gather is the end of it.  The
		 * records just after the first one not ready, a bounded
		 * look: one of them ready means that one is ready too by now
		 * (the worker may have marked both since the gather looked;
		 * it marks them in order, so q's acquire shows r's mark).
		 */
		if (r != NULL && cnt < TX_IOV_MAX) {
			struct ktls_record *q = r->next;

			for (int k = 0; q != NULL && k < TX_IOV_MAX;
			    q = q->next, k++)
				KASSERT(!atomic_load_explicit(&q->ready,
				    memory_order_acquire) ||
				    atomic_load_explicit(&r->ready,
				    memory_order_relaxed),
				    ("%s: seq %ju ready behind seq %ju, not",
				    __func__, (uintmax_t)q->seq,
				    (uintmax_t)r->seq));
		}
#endif
		if (cnt == 0)
			break;
		msg.msg_iovlen = (size_t)cnt;
		/*
		 * The copy into the kernel socket runs without so->mtx, so
		 * that a writer queueing the next records (sendfile's caller
		 * while a worker sends a megabyte) does not wait for it.
		 * head_busy keeps the gathered records where they are: no
		 * other sender, and a failure meanwhile frees nothing.
		 */
		so->head_busy = true;
		pthread_mutex_unlock(&so->mtx);
		n = tx_send(so->kfd, &msg);
		error = n < 0 ? errno : 0;
		pthread_mutex_lock(&so->mtx);
		so->head_busy = false;
		/*
		 * A caller that found the queue busy may wait for this send
		 * (a non-blocking writer with a full queue): it looks again
		 * now, and its own flush sees EAGAIN if that is the truth.
		 */
		ktls_sock_wakeup(so);
		if (n < 0 && error == EINTR && !atomic_load(&so->dead))
			continue;
		if (n < 0 && (error == EAGAIN || error == ENOBUFS) &&
		    !atomic_load(&so->dead)) {
			full = true;
			if (poller_arm(so) != 0)
				ktls_sock_fail(so, ENOMEM, true);
			break;
		}
		if (n < 0) {
			if (!atomic_load(&so->dead))
				ktls_sock_fail(so, error, false);
			ktls_sock_purge(so);	/* what fail left, busy */
			return (false);
		}
		while (n > 0) {
			r = so->head;
			/* The kernel took no more than it was offered. */
			KASSERT(r != NULL && atomic_load_explicit(&r->ready,
			    memory_order_relaxed),
			    ("%s: %zd bytes sent past the ready prefix",
			    __func__, n));
			if ((size_t)n < r->wire_len - r->sent) {
				r->sent += (uint32_t)n;
				break;
			}
			n -= r->wire_len - r->sent;
			ktls_sock_sent(so);
		}
		/* Failed while the lock was out: what is left goes. */
		if (atomic_load(&so->dead)) {
			ktls_sock_purge(so);
			break;
		}
	}
	/* Waiters were woken after each send (above), progress or not. */
	ktls_tx_finish(so);
	return (full);
}

/*
 * Turn the connection into a reset: connect(AF_UNSPEC) makes Linux's
 * tcp_disconnect() send an RST even while the application still holds
 * its own descriptor of the socket.
 */
void
ktls_tx_reset(int kfd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	ktls_sys.setsockopt(kfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	connect(kfd, &sa, sizeof(sa));
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/*
 * Take off the cork list the entries of one thread (owner), or those
 * corked before `before' (owner NULL).  cork_mtx held.
 */
static struct ktls_sock *
cork_take(const void *owner, uint64_t before)
{
	struct ktls_sock **pp = &cork_head, *so, *taken = NULL;

	while ((so = *pp) != NULL) {
		if (owner != NULL ? so->xp.cork_owner == owner :
		    so->xp.cork_ns <= before) {
			*pp = so->xp.cork_next;
			so->xp.cork_next = taken;
			taken = so;
		} else
			pp = &so->xp.cork_next;
	}
	return (taken);
}

/* Send what the taken sockets hold, and drop the list's references. */
static void
cork_send(struct ktls_sock *so)
{
	struct ktls_sock *next;

	for (; so != NULL; so = next) {
		next = so->xp.cork_next;
		pthread_mutex_lock(&so->mtx);
		so->xp.corked = false;
		ktls_sock_push_held(so);
		tx_flush(so);
		ktls_sock_unlock(so);
		ktls_sock_rele(so);
	}
}

/*
 * Autocork (kern.ipc.tls.autocork_us > 0): the records just made ready
 * are sent by the next send on the socket, or when the calling thread
 * waits (ktls_push()), or by the poller after autocork_us, whichever
 * comes first.  With autocork off it is a flush.
 */
static void
tx_cork(struct ktls_sock *so)
{
	bool wake = false;

	/*
	 * Not held (autocork off, the socket failed, no poller for the
	 * deadline): what core holds for autocork is sealed, and all sent.
	 */
	if (ktls_autocork_us() == 0 || atomic_load(&so->dead)) {
		ktls_sock_push_held(so);
		tx_flush(so);
		return;
	}
	if (so->xp.corked)
		return;		/* on the list already: its deadline holds */
	if (poller_epfd < 0 && poller_start() < 0) {
		ktls_sock_push_held(so);
		tx_flush(so);
		return;
	}
	so->xp.corked = true;
	so->xp.cork_owner = &cork_mine;
	/* The write that made the record read the clock (sock_note_write()). */
	so->xp.cork_ns = so->last_write_ns;
	ktls_sock_hold(so);
	pthread_mutex_lock(&cork_mtx);
	so->xp.cork_next = cork_head;
	cork_head = so;
	cork_mine++;
	if (!cork_ticking)
		wake = cork_ticking = true;
	pthread_mutex_unlock(&cork_mtx);
	if (wake)
		/* Through the seam: libc's eventfd_write would trap (guard). */
		(void)ktls_sys.write(poller_evfd, &(uint64_t){ 1 }, 8);
}

void
ktls_tx_push_mine(void)
{
	struct ktls_sock *taken;

	if (cork_mine == 0)
		return;
	pthread_mutex_lock(&cork_mtx);
	taken = cork_take(&cork_mine, 0);
	cork_mine = 0;
	pthread_mutex_unlock(&cork_mtx);
	cork_send(taken);
}

/* Send every held record, whoever held it (exit, exec). */
void
ktls_tx_push_all(void)
{
	struct ktls_sock *taken;

	pthread_mutex_lock(&cork_mtx);
	taken = cork_take(NULL, UINT64_MAX);
	pthread_mutex_unlock(&cork_mtx);
	cork_send(taken);
}

/*
 * The poller's deadline duty: send what waited half of autocork_us or
 * more.  Returns whether to keep ticking: yes while entries come and go,
 * no after a quiet 100 ms.  *period_us is when to tick next: every
 * autocork_us / 2 while the deadline is what sends held records; longer
 * and longer (doubling, to CORK_TICK_MAX_US) while every tick finds
 * nothing expired, because the writers' own waits (ktls_push()) sent
 * their records first, as nginx's do.  A tick that finds an expired
 * entry goes back to autocork_us / 2: after a calm spell a writer that
 * relies on the deadline waits at most CORK_TICK_MAX_US once.  (Ticking
 * every 1 ms cost 6% of nginx's CPU per 1 KiB response, measured on
 * this machine kind.)
 */
#define CORK_TICK_MAX_US	16000

static bool
cork_tick(uint64_t *idle_since, uint64_t *period_us)
{
	struct ktls_sock *taken;
	uint64_t now = now_ns(), us;
	bool ticking;

	/* Ticks come every autocork_us / 2 when they must: none waits longer. */
	us = (uint64_t)ktls_autocork_us() / 2;
	pthread_mutex_lock(&cork_mtx);
	taken = cork_take(NULL, now - us * 1000u);
	if (cork_head != NULL || taken != NULL)
		*idle_since = now;
	else if (now - *idle_since > 100000000u)
		cork_ticking = false;
	ticking = cork_ticking;		/* read under the lock (TSan) */
	pthread_mutex_unlock(&cork_mtx);
	if (taken != NULL || *period_us < us)
		*period_us = us;
	else if (*period_us < CORK_TICK_MAX_US)
		*period_us = *period_us * 2 < CORK_TICK_MAX_US ?
		    *period_us * 2 : CORK_TICK_MAX_US;
	/*
	 * Taken entries keep cork_mine counts in their threads: the next
	 * ktls_push() there finds nothing and sets it back to 0.
	 */
	cork_send(taken);
	return (ticking);
}

#define POLLER_BACKOFF_MAX_US	10000

static void *
poller_main(void *arg)
{
	struct epoll_event ev[64];
	struct ktls_sock *so;
	struct timespec tick;
	uint64_t idle_since = 0, us, period_us = 0;
	eventfd_t junk;
	struct ktls_record *head;
	uint32_t sent;
	unsigned int backoff_us = 0;
	bool ticking = false, moved, fruitless;
	int n;

	(void)arg;
	for (;;) {
		moved = fruitless = false;
		us = period_us;
		if (us < 50)
			us = 50;
		tick.tv_sec = (time_t)(us / 1000000u);
		tick.tv_nsec = (long)(us % 1000000u) * 1000;
		n = epoll_pwait2(poller_epfd, ev, 64, ticking ? &tick : NULL,
		    NULL);
		for (int i = 0; i < n; i++) {
			if ((so = ev[i].data.ptr) == NULL) {
				/* Ticking (again): at autocork_us / 2. */
				(void)eventfd_read(poller_evfd, &junk);
				idle_since = now_ns();
				period_us = 0;
				continue;
			}
			(void)atomic_load_explicit(&so->xp.arm_seq,
			    memory_order_acquire);
			pthread_mutex_lock(&so->mtx);
			so->xp.armed = false;	/* one-shot: it fired */
			head = so->head;
			sent = head != NULL ? head->sent : 0;
			if (!tx_flush(so) || so->head != head ||
			    (head != NULL && head->sent != sent))
				moved = true;
			else
				fruitless = true;
			ktls_sock_unlock(so);
			ktls_sock_rele(so);	/* the armed reference */
		}
		/*
		 * Writable by epoll, yet EAGAIN and not a byte taken (global
		 * TCP memory pressure can do that): without a pause the
		 * one-shot re-arm fires at once and the poller spins
		 * (invariant 4).  Back off, 50 us doubling to 10 ms, until a
		 * wake-up moves data again.
		 */
		if (fruitless && !moved) {
			if (backoff_us < POLLER_BACKOFF_MAX_US)
				backoff_us = backoff_us == 0 ? 50 :
				    backoff_us * 2;
			if (backoff_us > POLLER_BACKOFF_MAX_US)
				backoff_us = POLLER_BACKOFF_MAX_US;
			usleep((useconds_t)backoff_us);
		} else if (moved) {
			backoff_us = 0;
		}
		pthread_mutex_lock(&cork_mtx);
		ticking = cork_ticking;
		pthread_mutex_unlock(&cork_mtx);
		if (ticking)
			ticking = cork_tick(&idle_since, &period_us);
	}
	return (NULL);
}

static int
poller_start(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int epfd, evfd;

	pthread_mutex_lock(&poller_mtx);
	if (poller_epfd < 0 && (epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0) {
		evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (evfd >= 0 &&
		    epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) == 0) {
			poller_evfd = evfd;
			poller_epfd = epfd;
			if (ktls_thread_start(poller_main, NULL,
			    "ktls-poller") == 0)
				epfd = -1;	/* taken */
		}
		if (epfd >= 0) {
			if (evfd >= 0)
				ktls_sys.close(evfd);
			ktls_sys.close(epfd);
			poller_epfd = poller_evfd = -1;
		}
	}
	epfd = poller_epfd;
	pthread_mutex_unlock(&poller_mtx);
	return (epfd);
}

/*
 * In a fork()ed child: the epoll instance is shared with the parent and
 * the thread is gone, so the next arm starts afresh; the corked sockets
 * are inherited ones, which send nothing more (sock.c), and the list and
 * its references go with them.
 */
void
ktls_tx_atfork_child(void)
{
	pthread_mutex_init(&poller_mtx, NULL);
	if (poller_epfd >= 0) {
		ktls_sys.close(poller_epfd);
		ktls_sys.close(poller_evfd);
	}
	poller_epfd = poller_evfd = -1;
	pthread_mutex_init(&cork_mtx, NULL);
	for (struct ktls_sock *so = cork_head; so != NULL;
	    so = so->xp.cork_next)
		so->xp.corked = false;
	cork_head = NULL;
	cork_ticking = false;
	cork_mine = 0;
}

/* An inherited socket's state: the parent's poller watched it. */
void
ktls_tx_sock_atfork_child(struct ktls_sock *so)
{
	so->xp.armed = so->xp.in_epoll = false;
}

/* Watch so->kfd for room (one-shot); the poller holds a reference. */
static int
poller_arm(struct ktls_sock *so)
{
	struct epoll_event ev = {
		.events = EPOLLOUT | EPOLLONESHOT,
		.data.ptr = so,
	};
	int epfd;

	if (so->xp.armed)
		return (0);
	if (ktls_fault_hit(KF_POLLER))
		return (-ENOMEM);
	if ((epfd = atomic_load(&poller_epfd)) < 0 &&
	    (epfd = poller_start()) < 0)
		return (-ENOMEM);
	/*
	 * The poller gets so back from the kernel (epoll), which orders the
	 * two threads without telling ThreadSanitizer: this release and the
	 * poller's acquire say it (they cost nothing on x86).
	 */
	atomic_fetch_add_explicit(&so->xp.arm_seq, 1, memory_order_release);
	if (epoll_ctl(epfd, so->xp.in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    so->kfd, &ev) != 0)
		return (-errno);
	so->xp.in_epoll = true;
	so->xp.armed = true;
	ktls_sock_hold(so);
	return (0);
}

/* Before so->kfd is closed: epoll keys on the open file, not the fd. */
static void
tx_forget(struct ktls_sock *so)
{
	KASSERT(!so->xp.armed, ("%s: still armed", __func__));
	if (so->xp.in_epoll) {
		epoll_ctl(poller_epfd, EPOLL_CTL_DEL, so->kfd, NULL);
		so->xp.in_epoll = false;
	}
}

const struct ktls_tx_ops ktls_tx_sw = {
	.name = "sw",
	.mode = TCP_TLS_MODE_SW,
	.flush = tx_flush,
	.cork = tx_cork,
	.forget = tx_forget,
};
