/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The transport layer's interface: what core may call of it.
 *
 * A socket's records leave through one transmit mode at a time, each an
 * ops table (FreeBSD's TCP_TLS_MODE_SW and TCP_TLS_MODE_IFNET):
 *
 *   ktls_tx_sw	    software: core frames and encrypts the records; the
 *		    transport sends the ready prefix of the socket's queue
 *		    to the kernel socket, and its poller goes on when a
 *		    full socket drains (tx.c);
 *   ktls_tx_kernel  kernel: the session is handed down to Linux kTLS, which
 *		    frames and encrypts; sends go straight to the kernel
 *		    (kmode.c).
 *
 * The socket holds its table (so->txo); the mode state machine in core
 * (mode.c) swaps it at a record boundary.  A receive side gets the same
 * shape.  What the transport may call back of core is upcall.h, and
 * nothing else.
 */
#ifndef KTLS_TRANSPORT_H
#define KTLS_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct ktls_sock;
struct ktls_suite;

/*
 * The transport's own state in every socket (so->xp), under so->mtx but
 * for cork_next (tx.c's cork_mtx).  Core never reads it.
 */
struct ktls_tx_state {
	bool			fin_sent;	/* SHUT_WR done after the queue */
	bool			armed;		/* poller watches kfd (a ref) */
	bool			in_epoll;	/* kfd added to the poller */
	_Atomic uint32_t	arm_seq;	/* publishes so to the poller */
	bool			corked;		/* on the autocork list */
	struct ktls_sock	*cork_next;	/* ... guarded by its lock */
	const void		*cork_owner;	/* ... the thread that corked */
	uint64_t		cork_ns;	/* ... since when */
};

/*
 * One transmit mode.  Every call but sendmsg and sendfile is made with
 * so->mtx held.
 */
struct ktls_tx_ops {
	const char	*name;		/* "sw", "ifnet" */
	int		mode;		/* TCP_TLS_MODE_SW, TCP_TLS_MODE_IFNET */
	/* Once in this mode the socket stays (Linux keeps what it got). */
	bool		keeps;
	/* Can this mode take a session of the suite? */
	bool		(*supports)(const struct ktls_suite *su);
	/*
	 * Take the socket over at a record boundary: nothing queued, the
	 * next record is so->next_seq.  0 or a negative errno (EOPNOTSUPP:
	 * not here, not this suite); on failure the socket is as it was.
	 * NULL: nothing to hand over.
	 */
	int		(*attach)(struct ktls_sock *so);
	/*
	 * Send what is ready; then, when the queue is empty and
	 * shutdown(SHUT_WR) was asked for, the FIN.  True when the kernel
	 * socket said EAGAIN during this very call (the transport then
	 * finishes the job by itself).
	 */
	bool		(*flush)(struct ktls_sock *so);
	/*
	 * The records just made ready: send them now, or hold them for
	 * kern.ipc.tls.autocork_us (so->last_write_ns is the time of the
	 * write that made them); see ktls_tx_push_mine().
	 */
	void		(*cork)(struct ktls_sock *so);
	/* so->kfd is about to be closed: stop watching it. */
	void		(*forget)(struct ktls_sock *so);
	/*
	 * The layer below frames the records itself: a send (no lock held;
	 * nb as ktls_sock_sendmsg()'s; type: the record type the message
	 * asked for, checked, or -1), and sendfile(2).  NULL: core frames
	 * and queues, and flush sends.
	 */
	ssize_t		(*sendmsg)(struct ktls_sock *so, const struct msghdr *msg,
			    int flags, int nb, int type);
	ssize_t		(*sendfile)(struct ktls_sock *so, int in_fd,
			    off_t *offset, size_t count);
	/* The next record's sequence number, as the layer below counts it. */
	int		(*next_seq)(struct ktls_sock *so, uint64_t *seq);
};

extern const struct ktls_tx_ops ktls_tx_sw;
extern const struct ktls_tx_ops ktls_tx_kernel;

/*
 * Process-wide.  ktls_tx_reset: the connection of kfd becomes a reset
 * (any mode).  ktls_tx_push_mine: send the records this thread corked;
 * ktls_tx_push_all: every thread's (exit, exec); no lock held.
 */
void	ktls_tx_reset(int kfd);
void	ktls_tx_push_mine(void);
void	ktls_tx_push_all(void);
/* In a fork()ed child: a socket's state, and the poller and cork list. */
void	ktls_tx_sock_atfork_child(struct ktls_sock *so);
void	ktls_tx_atfork_child(void);

/* Within the transport: the FIN once the queue is empty (both modes). */
void	ktls_tx_finish(struct ktls_sock *so);

#endif /* KTLS_TRANSPORT_H */
