/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * aio_write(2) on an enabled socket, as FreeBSD's: the request completes
 * once the data is accepted into the socket (framed and queued).  One
 * thread per process works the requests in submission order, writing as a
 * blocking writer would.  Results go into the aiocb exactly where glibc
 * keeps them, so libc's aio_error()/aio_return() read them too.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"

struct aio_req {
	struct aio_req		*next;
	struct aiocb		*cb;
	struct ktls_sock	*so;	/* a reference */
};

static pthread_mutex_t aio_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t aio_cv = PTHREAD_COND_INITIALIZER;	/* new work */
static pthread_cond_t aio_done_cv = PTHREAD_COND_INITIALIZER;	/* completions */
static struct aio_req *aio_head, *aio_tail;
static bool aio_started;

static void *
aio_notify_thread(void *arg)
{
	struct sigevent ev = *(struct sigevent *)arg;

	free(arg);
	ev.sigev_notify_function(ev.sigev_value);
	return (NULL);
}

/*
 * Notify as the aiocb asked.  ev is a copy taken before completion was
 * published: from then on the aiocb belongs to the application again.
 */
static void
aio_notify(const struct sigevent *ev)
{
	struct sigevent *copy;
	pthread_attr_t attr;
	pthread_t tid;

	switch (ev->sigev_notify) {
	case SIGEV_SIGNAL:
		sigqueue(getpid(), ev->sigev_signo, ev->sigev_value);
		break;
	case SIGEV_THREAD:
		if ((copy = malloc(sizeof(*copy))) == NULL)
			break;
		*copy = *ev;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&tid, ev->sigev_notify_attributes != NULL ?
		    ev->sigev_notify_attributes : &attr, aio_notify_thread,
		    copy) != 0)
			free(copy);
		pthread_attr_destroy(&attr);
		break;
	default:
		break;
	}
}

static void
aio_run(struct aio_req *q)
{
	struct aiocb *cb = q->cb;
	struct iovec iov = { .iov_base = (void *)cb->aio_buf,
	    .iov_len = cb->aio_nbytes };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct sigevent ev = cb->aio_sigevent;
	ssize_t r;

	/* A blocking write, whatever O_NONBLOCK says; never SIGPIPE. */
	r = ktls_sock_sendmsg(q->so, &msg, MSG_NOSIGNAL, 0);
	pthread_mutex_lock(&aio_mtx);
	cb->__return_value = r < 0 ? -1 : r;
	__atomic_store_n(&cb->__error_code, r < 0 ? (int)-r : 0,
	    __ATOMIC_RELEASE);
	pthread_cond_broadcast(&aio_done_cv);
	pthread_mutex_unlock(&aio_mtx);
	ktls_sock_rele(q->so);
	free(q);
	aio_notify(&ev);
}

static void *
aio_main(void *arg)
{
	struct aio_req *q;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&aio_mtx);
		while (aio_head == NULL)
			pthread_cond_wait(&aio_cv, &aio_mtx);
		q = aio_head;
		aio_head = q->next;
		if (aio_head == NULL)
			aio_tail = NULL;
		pthread_mutex_unlock(&aio_mtx);
		aio_run(q);
	}
	return (NULL);
}

/* In a fork()ed child: the parent's requests are the parent's. */
void
ktls_aio_atfork_child(void)
{
	pthread_mutex_init(&aio_mtx, NULL);
	pthread_cond_init(&aio_cv, NULL);
	pthread_cond_init(&aio_done_cv, NULL);
	aio_head = aio_tail = NULL;
	aio_started = false;
}

KTLS_EXPORT int
ktls_aio_write(struct aiocb *cb)
{
	struct ktls_sock *so;
	struct aio_req *q;

	ktls_sys_init();
	if (cb == NULL || (so = ktls_sock_lookup(cb->aio_fildes)) == NULL)
		return (ktls_sys.aio_write(cb));
	if ((q = malloc(sizeof(*q))) == NULL) {
		ktls_sock_rele(so);
		errno = EAGAIN;
		return (-1);
	}
	q->next = NULL;
	q->cb = cb;
	q->so = so;
	cb->__return_value = 0;
	__atomic_store_n(&cb->__error_code, EINPROGRESS, __ATOMIC_RELEASE);

	pthread_mutex_lock(&aio_mtx);
	if (!aio_started) {
		if (ktls_thread_start(aio_main, NULL, "ktls-aio") != 0) {
			pthread_mutex_unlock(&aio_mtx);
			ktls_sock_rele(so);
			free(q);
			errno = EAGAIN;
			return (-1);
		}
		aio_started = true;
	}
	if (aio_tail != NULL)
		aio_tail->next = q;
	else
		aio_head = q;
	aio_tail = q;
	pthread_cond_signal(&aio_cv);
	pthread_mutex_unlock(&aio_mtx);
	return (0);
}

KTLS_EXPORT int
ktls_aio_error(const struct aiocb *cb)
{
	ktls_sys_init();
	return (ktls_sys.aio_error(cb));
}

KTLS_EXPORT ssize_t
ktls_aio_return(struct aiocb *cb)
{
	ktls_sys_init();
	return (ktls_sys.aio_return(cb));
}

static bool
aio_any_done(const struct aiocb *const list[], int nent)
{
	for (int i = 0; i < nent; i++)
		if (list[i] != NULL && __atomic_load_n(&list[i]->__error_code,
		    __ATOMIC_ACQUIRE) != EINPROGRESS)
			return (true);
	return (false);
}

/*
 * Waits for ktls's requests and libc's alike: both keep their state in
 * the aiocb; libc's completions are seen within a 10 ms slice.
 */
KTLS_EXPORT int
ktls_aio_suspend(const struct aiocb *const list[], int nent,
    const struct timespec *timeout)
{
	struct timespec end, now, slice;
	int r = 0;

	ktls_sys_init();
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (timeout != NULL) {
		end.tv_sec += timeout->tv_sec;
		end.tv_nsec += timeout->tv_nsec;
		if (end.tv_nsec >= 1000000000L) {
			end.tv_nsec -= 1000000000L;
			end.tv_sec++;
		}
	}
	pthread_mutex_lock(&aio_mtx);
	while (!aio_any_done(list, nent)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout != NULL && (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))) {
			r = -1;
			errno = EAGAIN;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &slice);
		slice.tv_nsec += 10000000L;
		if (slice.tv_nsec >= 1000000000L) {
			slice.tv_nsec -= 1000000000L;
			slice.tv_sec++;
		}
		pthread_cond_timedwait(&aio_done_cv, &aio_mtx, &slice);
	}
	pthread_mutex_unlock(&aio_mtx);
	return (r);
}
