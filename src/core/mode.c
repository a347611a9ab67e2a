/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A socket's transmit mode (TCP_TXTLS_MODE): the state machine and the
 * gauges that count sessions by mode.  Each mode is a transport ops table
 * (src/transport/transport.h): software, the engine's record queue
 * (tx.c); kernel, the session handed to Linux kTLS (kmode.c).  The
 * socket holds its table; this file alone swaps it.
 *
 * A live software session moves at a record boundary: new writes wait,
 * the queue is sent, and the kernel takes over with the sequence number
 * that comes next, so the peer sees one record stream (FreeBSD's
 * ktls_set_tx_mode()).  Linux cannot give a session back, so the kernel
 * to software direction is refused.
 */
#include <errno.h>
#include <time.h>

#include "ktls.h"
#include "ktls_int.h"

#define MODE_DRAIN_S	2	/* a switch waits this long for the queue */

/* The gauge that counts this socket's session now. */
enum ktls_counter
ktls_sock_gauge(struct ktls_sock *so)
{
	return (ktls_sock_txo(so)->mode == TCP_TLS_MODE_IFNET ?
	    so->tx->suite->ifnet_counter : so->tx->suite->sw_counter);
}

int
ktls_sock_mode(struct ktls_sock *so)
{
	return (ktls_sock_txo(so)->mode);
}

/* The transmit modes, by TCP_TLS_MODE_* number. */
static const struct ktls_tx_ops *
mode_ops(int mode)
{
	switch (mode) {
	case TCP_TLS_MODE_SW:
		return (&ktls_tx_sw);
	case TCP_TLS_MODE_IFNET:
		return (&ktls_tx_kernel);
	default:
		return (NULL);
	}
}

static bool
mode_supports(const struct ktls_tx_ops *ops, const struct ktls_sock *so)
{
	return (ops->supports == NULL || ops->supports(so->tx->suite));
}

int
ktls_sock_attach(struct ktls_sock *so, const struct ktls_tx_ops *ops)
{
	enum ktls_counter from = ktls_sock_gauge(so);
	int error;

	KASSERT(so->head == NULL && so->open == NULL,
	    ("%s: records still queued", __func__));
	if (!mode_supports(ops, so))
		return (-EOPNOTSUPP);
	if (ops->attach != NULL && (error = ops->attach(so)) != 0)
		return (error);
	atomic_store_explicit(&so->txo, ops, memory_order_release);
	if (!so->inherited) {
		ktls_counter_add(from, -1);
		ktls_counter_add(ktls_sock_gauge(so), 1);
	}
	return (0);
}

int
ktls_sock_set_mode(struct ktls_sock *so, int mode)
{
	const struct ktls_tx_ops *ops = mode_ops(mode), *cur;
	struct timespec deadline;
	int error = 0;

	if (ops == NULL)
		return (-EINVAL);
	pthread_mutex_lock(&so->mtx);
	cur = ktls_sock_txo(so);
	if (ops == cur) {
		pthread_mutex_unlock(&so->mtx);
		return (0);
	}
	if (cur->keeps || !mode_supports(ops, so))
		error = -EOPNOTSUPP;
	else if (so->switching)
		error = -EBUSY;
	else if (so->error != 0 || atomic_load(&so->dead) || so->shut_wr ||
	    so->seq_exhausted)
		error = -EPIPE;
	if (error != 0) {
		pthread_mutex_unlock(&so->mtx);
		ktls_counter_add(KC_SWITCH_FAILED, 1);
		return (error);
	}
	/* New writes wait; what is queued goes out first, in order. */
	so->switching = true;
	ktls_sock_push_open(so);
	cur->flush(so);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += MODE_DRAIN_S;
	while (so->head != NULL && !atomic_load(&so->dead) && error == 0)
		error = ktls_sock_wait(so, &deadline);
	if (error == -EAGAIN)
		error = -EBUSY;		/* the peer does not read */
	else if (error == 0 && atomic_load(&so->dead))
		error = -EPIPE;
	if (error == 0)
		error = ktls_sock_attach(so, ops);
	so->switching = false;
	ktls_sock_wakeup(so);
	ktls_sock_unlock(so);
	ktls_counter_add(error != 0 ? KC_SWITCH_FAILED :
	    mode == TCP_TLS_MODE_IFNET ? KC_SWITCH_TO_IFNET : KC_SWITCH_TO_SW,
	    1);
	return (error);
}
