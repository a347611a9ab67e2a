/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A socket's transmit mode (TCP_TXTLS_MODE): the state machine and the
 * gauges that count sessions by mode.  Software mode is the engine's
 * record queue (src/transport/tx.c); kernel mode hands the session to
 * Linux kTLS (src/transport/kmode.c).
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
	return (atomic_load(&so->mode) == TCP_TLS_MODE_IFNET ?
	    so->tx->suite->ifnet_counter : so->tx->suite->sw_counter);
}

int
ktls_sock_mode(struct ktls_sock *so)
{
	return (atomic_load(&so->mode));
}

int
ktls_sock_set_mode(struct ktls_sock *so, int mode)
{
	struct timespec deadline;
	int error = 0;

	if (mode != TCP_TLS_MODE_SW && mode != TCP_TLS_MODE_IFNET)
		return (-EINVAL);
	pthread_mutex_lock(&so->mtx);
	if (mode == atomic_load(&so->mode)) {
		pthread_mutex_unlock(&so->mtx);
		return (0);
	}
	if (mode == TCP_TLS_MODE_SW)
		error = -EOPNOTSUPP;	/* Linux keeps what it was given */
	else if (!ktls_suite_in_linux(so->tx->suite))
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
	ktls_tx_flush(so);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += MODE_DRAIN_S;
	while (so->head != NULL && !atomic_load(&so->dead) && error == 0)
		error = ktls_sock_wait(so, &deadline);
	if (error == -EAGAIN)
		error = -EBUSY;		/* the peer does not read */
	else if (error == 0 && atomic_load(&so->dead))
		error = -EPIPE;
	if (error == 0)
		error = ktls_kmode_install(so);
	so->switching = false;
	ktls_sock_wakeup(so);
	ktls_sock_unlock(so);
	ktls_counter_add(error == 0 ? KC_SWITCH_TO_IFNET : KC_SWITCH_FAILED, 1);
	return (error);
}

