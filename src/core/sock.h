/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The data core and transport share: a socket's session, its queue of
 * records, and the locks of the engine.  What each layer may call is in
 * ktls_int.h (core), transport.h (core calls transport) and upcall.h
 * (transport calls core).
 */
#ifndef KTLS_SOCK_H
#define KTLS_SOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "suite.h"
#include "../crypto/backend.h"
#include "../transport/transport.h"

/*
 * A TLS transmit session: the suite, the keys and the backend that
 * encrypts with them.  Owned by exactly one socket.
 */
struct ktls_session {
	const struct ktls_suite	*suite;
	const struct ktls_backend *be;
	struct ktls_cctx	*cctx;
	uint8_t			*keys;		/* key memory: cipher, iv, auth */
	size_t			keys_len;
	struct ktls_crypto_params params;	/* points into keys */
};
int	ktls_session_create(const void *optval, socklen_t optlen,
	    struct ktls_session **sp);
void	ktls_session_destroy(struct ktls_session *s);

/*
 * A record in a socket's queue: FreeBSD's ext_pgs mbuf.  buf holds the
 * whole record as it will go on the wire: header, explicit IV, payload,
 * trailer.  A record is not ready until its worker has encrypted it; the
 * queue is sent in order up to the first record that is not ready.
 */
struct ktls_fileref;
struct ktls_sock;

struct ktls_record {
	struct ktls_record	*next;		/* socket queue */
	struct ktls_record	*wnext;		/* worker queue */
	struct ktls_sock	*so;		/* holds a reference */
	uint64_t		seq;
	uint8_t			type;
	_Atomic bool		ready;
	bool			pooled;		/* a full-size pool buffer */
	uint32_t		len;		/* payload bytes */
	uint32_t		wire_len;	/* whole record */
	uint32_t		sent;		/* wire bytes already sent */
	struct ktls_fileref	*file;		/* sendfile: payload to read */
	off_t			file_off;
	uint8_t			buf[];
};

struct ktls_fileref {
	_Atomic int	refs;
	int		fd;	/* our own dup of the sendfile in_fd */
};

/*
 * The per-socket state of an enabled socket.
 *
 * so->mtx protects the queue, the counters of queued bytes, flags and error;
 * the session's crypto state is used only by the thread that encrypts the
 * socket's records (its worker, or the writer while the queue is idle).
 *
 * Locks of the engine, what each protects, and their order.  "A > B":
 * B may be taken while A is held, never A while B is held.  A leaf takes
 * no other lock of the engine while held.  Every order below is the only
 * nesting found in the code (grep the lock calls; follow the callees):
 *
 *   fdtab_lock (sock.c, rwlock)  the fd table, the inode index
 *	(ino_hash, ino_count), enable_gen.  Held written > so->mtx (an
 *	adopted copy's nfds++, ktls_sock_lookup_tx()), > sockdup_mtx
 *	(sockdup_adopt() at enable).
 *   so->mtx (per socket)  as above.  Held > wq->mtx (ktls_enqueue()),
 *	> cork_mtx (tx.c's cork op), > poller_mtx (poller_start() from
 *	the cork op or poller_arm()), > pool_mtx (record alloc and
 *	free, ktls_sock_purge()), > kc_mtx (ktls_counter_add(): a thread's
 *	first count registers its slot).  Never two sockets' at once.
 *	Never fdtab_lock under it: the last ktls_sock_rele() (sock_destroy()
 *	takes fdtab_lock, pool_mtx, km_mtx, kc_mtx) waits for
 *	ktls_sock_unlock() (pending_rele).
 *   wq_start_mtx (worker.c)  starting the workers (wqs, nwq).
 *	Held > kc_mtx.
 *   guard_mtx (guard*.c)  installing and refreshing the guard's
 *	filters, the application's SIGSYS disposition.  Held > kc_mtx.
 *   wq->mtx (worker.c, per worker)  that worker's record list and
 *	running flag.  Leaf.
 *   cork_mtx (tx.c)  the autocork list, cork_ticking.  Leaf.
 *   poller_mtx (tx.c)  starting the poller (poller_epfd, poller_evfd).
 *	Leaf.
 *   sockdup_mtx (sock.c)  the copies made before an enable.  Leaf.
 *   pool_mtx (record.c)  the pool of full-size record buffers.  Leaf.
 *   kc_mtx (counters.c)  the list of live threads' counter slots and
 *	the retired sums.  Leaf.
 *   km_mtx (keymem.c)  the key memory free lists.  Leaf.
 *   aio_mtx (aio.c)  the aio request queue, aio_started, publishing
 *	completions.  Leaf (ktls_sock_sendmsg() and ktls_sock_rele() run
 *	without it).
 *   ctl_mtx (control.c)  starting the control listener.  Leaf.
 *   reg_mtx (registry.c)  the backend table while it is written.  Leaf.
 *
 * A total order that contains all of it: fdtab_lock, so->mtx,
 * wq_start_mtx, guard_mtx, then the leaves (wq->mtx, cork_mtx,
 * poller_mtx, sockdup_mtx, pool_mtx, kc_mtx, km_mtx, aio_mtx, ctl_mtx,
 * reg_mtx).  so->mtx is released while a caller sleeps (ktls_sock_wait()),
 * while a writer copies (sock_queue()) and while the transport sends
 * (tx.c, head_busy); wq->mtx and aio_mtx in their condition waits.  A SIGSYS of the guard runs the ktls_* calls, which
 * take fdtab_lock and so->mtx: a thread that holds an engine lock makes
 * no trapped system call (the engine's own go through ktls_sys and its
 * system-call page) but one whose ktls_* path takes no lock: the
 * fclose() of /proc/self/maps under guard_mtx (ktls_guard_refresh())
 * closes a number not in the table.
 */
struct ktls_sock {
	pthread_mutex_t		mtx;
	_Atomic int		refs;
	int			kfd;		/* our dup: the engine sends here */
	ino_t			ino;		/* the socket's identity (sockfs) */
	struct ktls_sock	*ino_next;	/* identity hash (sock.c) */
	struct ktls_session	*tx;
	unsigned int		worker;		/* pinned worker */
	uint64_t		next_seq;	/* framing: next sequence number */
	uint64_t		last_write_ns;	/* when the last write came */
	unsigned int		burst;		/* writes since the last gap */
	bool			seq_exhausted;	/* next_seq wrapped: no more */

	struct ktls_record	*head, *tail;	/* socket queue, in order */
	/*
	 * The transport is sending from the head with so->mtx released:
	 * nothing but it unlinks a record (ktls_sock_purge() waits for it).
	 */
	bool			head_busy;
	/* Records handed to the worker and not yet ready (worker.c). */
	unsigned int		at_worker;
	struct ktls_record	*open;		/* MSG_MORE: not framed yet */
	uint32_t		open_cap;	/* its payload capacity */
	uint8_t			open_type;
	/*
	 * The open record is autocork's, not MSG_MORE's: a small write
	 * held unsealed so that a small sendfile right after it (a
	 * response's body after its header) joins it in one record; sealed
	 * by the writer or pusher at any other send, a wait, the deadline.
	 */
	bool			open_held;
	size_t			queued;		/* wire bytes in the queue */
	int			error;		/* sticky, reported once */
	_Atomic bool		dead;		/* nothing more can be sent */
	int			nfds;		/* application fds in the table */
	bool			inherited;	/* from the parent of a fork() */
	bool			shut_wr;	/* shutdown(SHUT_WR) asked for */
	/* The transmit mode (transport.h), swapped by mode.c. */
	const struct ktls_tx_ops *_Atomic txo;
	struct ktls_tx_state	xp;		/* the transport's own */
	bool			switching;	/* a mode change waits for the queue */
	unsigned int		visit;		/* ktls_sock_foreach() generation */

	/* Blocked callers sleep on this futex word; bumped on progress. */
	_Atomic uint32_t	progress;
	int			waiters;
	int			pending_rele;	/* refs to drop after unlock */
#ifdef KTLS_INVARIANTS
	/*
	 * Only for the KASSERTs of invariant 2 (zero at calloc: nothing
	 * yet).  Framed and sent under so->mtx; encrypted by the thread
	 * that encrypts (ktls_encrypt(): one at a time).
	 */
	bool			inv_framed;	/* a record was framed */
	bool			inv_sent;	/* a record was sent whole */
	bool			inv_encrypted;	/* a record was encrypted */
	uint64_t		inv_first_seq;	/* the first framed record's */
	uint64_t		inv_last_framed; /* ktls_frame(): last seq */
	uint64_t		inv_last_sent;	/* ktls_sock_sent(): last seq */
	uint64_t		inv_last_enc;	/* ktls_encrypt(): last seq */
#endif
};

/* Wire bytes queued in all sockets of the process (for exit, see init.c). */
extern _Atomic size_t ktls_unsent;

#endif /* KTLS_SOCK_H */
