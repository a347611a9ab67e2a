/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Transport: sending the ready prefix of a socket's queue to the kernel
 * socket (FreeBSD's pru_ready() then tcp_output()), and the poller thread
 * that goes on sending when a full kernel socket drains.
 *
 * Every send is non-blocking and gathers as many ready records as fit in
 * one sendmsg().  Nothing here ever sends a record that is not ready.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>

#include "../core/ktls_int.h"

#define TX_IOV_MAX	64

static pthread_mutex_t poller_mtx = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int poller_epfd = -1;	/* -1: not started */

/* Unlink and free sent (or abandoned) records at the head of the queue. */
static void
tx_dequeue(struct ktls_sock *so)
{
	struct ktls_record *r = so->head;

	so->head = r->next;
	if (so->head == NULL)
		so->tail = NULL;
	so->queued -= r->wire_len;
	atomic_fetch_sub_explicit(&ktls_unsent, r->wire_len,
	    memory_order_relaxed);
	ktls_record_free(r);
	/* The record's socket reference: dropped after so->mtx is released. */
	so->pending_rele++;
}

/* A failed socket: free the ready prefix; the worker frees the rest. */
void
ktls_tx_purge(struct ktls_sock *so)
{
	while (so->head != NULL &&
	    atomic_load_explicit(&so->head->ready, memory_order_acquire))
		tx_dequeue(so);
}

static void
tx_finish(struct ktls_sock *so)
{
	/* shutdown(SHUT_WR) waits for the queue, as the kernel's does. */
	if (so->head == NULL && so->shut_wr && !so->fin_sent &&
	    !atomic_load(&so->dead)) {
		ktls_sys.shutdown(so->kfd, SHUT_WR);
		so->fin_sent = true;
	}
}

bool
ktls_tx_flush(struct ktls_sock *so)
{
	struct iovec iov[TX_IOV_MAX];
	struct msghdr msg = { .msg_iov = iov };
	struct ktls_record *r;
	bool progress = false, full = false;
	ssize_t n;
	int cnt;

	if (atomic_load(&so->dead)) {
		ktls_tx_purge(so);
		return (false);
	}
	for (;;) {
		cnt = 0;
		for (r = so->head; r != NULL && cnt < TX_IOV_MAX &&
		    atomic_load_explicit(&r->ready, memory_order_acquire);
		    r = r->next, cnt++) {
			iov[cnt].iov_base = r->buf + r->sent;
			iov[cnt].iov_len = r->wire_len - r->sent;
		}
		if (cnt == 0)
			break;
		msg.msg_iovlen = (size_t)cnt;
		n = ktls_sys.sendmsg(so->kfd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == ENOBUFS) {
				full = true;
				if (ktls_poller_arm(so) != 0)
					ktls_sock_fail(so, ENOMEM, true);
				break;
			}
			ktls_sock_fail(so, errno, false);
			return (false);
		}
		progress = true;
		while (n > 0) {
			r = so->head;
			if ((size_t)n < r->wire_len - r->sent) {
				r->sent += (uint32_t)n;
				break;
			}
			n -= r->wire_len - r->sent;
			tx_dequeue(so);
		}
	}
	if (progress)
		ktls_sock_wakeup(so);
	tx_finish(so);
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

static void *
poller_main(void *arg)
{
	struct epoll_event ev[64];
	struct ktls_sock *so;
	int n;

	(void)arg;
	for (;;) {
		n = epoll_wait(poller_epfd, ev, 64, -1);
		for (int i = 0; i < n; i++) {
			so = ev[i].data.ptr;
			pthread_mutex_lock(&so->mtx);
			so->armed = false;	/* one-shot: it fired */
			ktls_tx_flush(so);
			ktls_sock_unlock(so);
			ktls_sock_rele(so);	/* the armed reference */
		}
	}
	return (NULL);
}

static int
poller_start(void)
{
	int epfd;

	pthread_mutex_lock(&poller_mtx);
	if (poller_epfd < 0 && (epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0) {
		poller_epfd = epfd;
		if (ktls_thread_start(poller_main, NULL, "ktls-poller") != 0) {
			ktls_sys.close(epfd);
			poller_epfd = -1;
		}
	}
	epfd = poller_epfd;
	pthread_mutex_unlock(&poller_mtx);
	return (epfd);
}

/*
 * In a fork()ed child: the epoll instance is shared with the parent and
 * the thread is gone.  The next arm starts afresh.
 */
void
ktls_poller_atfork_child(void)
{
	pthread_mutex_init(&poller_mtx, NULL);
	if (poller_epfd >= 0)
		ktls_sys.close(poller_epfd);
	poller_epfd = -1;
}

/* Watch so->kfd for room (one-shot); the poller holds a reference. */
int
ktls_poller_arm(struct ktls_sock *so)
{
	struct epoll_event ev = {
		.events = EPOLLOUT | EPOLLONESHOT,
		.data.ptr = so,
	};
	int epfd;

	if (so->armed)
		return (0);
	if ((epfd = atomic_load(&poller_epfd)) < 0 &&
	    (epfd = poller_start()) < 0)
		return (-ENOMEM);
	if (epoll_ctl(epfd, so->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    so->kfd, &ev) != 0)
		return (-errno);
	so->in_epoll = true;
	so->armed = true;
	ktls_sock_hold(so);
	return (0);
}

/* Before so->kfd is closed: epoll keys on the open file, not the fd. */
void
ktls_poller_forget(struct ktls_sock *so)
{
	if (so->in_epoll) {
		epoll_ctl(poller_epfd, EPOLL_CTL_DEL, so->kfd, NULL);
		so->in_epoll = false;
	}
}
