/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the transport may call of core, and nothing else: how it reports
 * back (a record sent, the socket failed, progress for blocked callers)
 * and the socket references it holds while it works.  Implemented in
 * src/core/sock.c; core's own code uses the same calls.
 *
 * The transport also reads the socket's queue (so->head, each record's
 * buf, wire_len, sent and ready), so->kfd, so->dead, so->shut_wr,
 * so->tx and so->next_seq, and writes only r->sent of the head,
 * so->head_busy (while it sends with so->mtx released) and its own
 * so->xp.  Every call here is made with so->mtx held, but hold, rele
 * and unlock's caller.
 */
#ifndef KTLS_UPCALL_H
#define KTLS_UPCALL_H

#include <stdbool.h>

struct ktls_sock;

/* The head record of the queue left whole: core frees it. */
void	ktls_sock_sent(struct ktls_sock *so);
/* The socket failed: it sends nothing more (reset: the peer sees RST). */
void	ktls_sock_fail(struct ktls_sock *so, int error, bool reset);
/* Seal and queue the small write core holds for autocork, if any. */
void	ktls_sock_push_held(struct ktls_sock *so);
/* Free the ready records of a failed socket (workers free the rest). */
void	ktls_sock_purge(struct ktls_sock *so);
/* Bytes moved: wake who waits for room or for the queue to empty. */
void	ktls_sock_wakeup(struct ktls_sock *so);
/* Unlock so->mtx, then drop the references freed records left behind. */
void	ktls_sock_unlock(struct ktls_sock *so);
struct ktls_sock *ktls_sock_hold(struct ktls_sock *so);
void	ktls_sock_rele(struct ktls_sock *so);
/* kern.ipc.tls.autocork_us, read as it is now. */
int	ktls_autocork_us(void);

#endif /* KTLS_UPCALL_H */
