/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Framing (FreeBSD's ktls_frame()): give a filled record its sequence
 * number and header and append it, not ready, to the socket queue.
 */
#include <errno.h>
#include <stdint.h>

#include "ktls.h"
#include "ktls_int.h"

int
ktls_frame(struct ktls_sock *so, struct ktls_record *r, uint8_t type,
    size_t len)
{
	const struct ktls_suite *s = so->tx->suite;
	size_t wire = ktls_suite_record_len(s, len);
	uint8_t *h = r->buf;

	KASSERT(len <= TLS_MAX_MSG_SIZE_V10_2, ("%s: len %zu", __func__, len));
	/* Invariant 2: a record takes its sequence number once. */
	KASSERT(r->so == NULL && r->next == NULL,
	    ("%s: record %p framed twice (seq %ju)", __func__, (void *)r,
	    (uintmax_t)r->seq));
	/* RFC 8446 section 5.5: a sequence number never wraps. */
	if (so->seq_exhausted)
		return (-EOVERFLOW);
	r->seq = so->next_seq++;
	if (so->next_seq == 0) {
		/* That was the last one: the FIN follows it. */
		so->seq_exhausted = true;
		so->shut_wr = true;
	}
#ifdef KTLS_INVARIANTS
	/* One more than the last one framed: no reuse, no gap, no wrap. */
	KASSERT(!so->inv_framed || (so->inv_last_framed != UINT64_MAX &&
	    r->seq == so->inv_last_framed + 1),
	    ("%s: seq %ju after %ju", __func__, (uintmax_t)r->seq,
	    (uintmax_t)so->inv_last_framed));
	/* Written once: a worker reads both, unlocked (ktls_encrypt()). */
	if (!so->inv_framed) {
		so->inv_first_seq = r->seq;
		so->inv_framed = true;
	}
	so->inv_last_framed = r->seq;
#endif
	/* The queue is in sequence order. */
	KASSERT(so->tail == NULL || so->tail->seq + 1 == r->seq,
	    ("%s: seq %ju queued after %ju", __func__, (uintmax_t)r->seq,
	    (uintmax_t)so->tail->seq));
	r->type = type;
	r->len = (uint32_t)len;
	r->wire_len = (uint32_t)wire;
	r->so = ktls_sock_hold(so);

	/* RFC 5246 section 6.2.1; TLS 1.3 hides the type (RFC 8446 5.2). */
	h[0] = ktls_suite_is_tls13(s) ? TLS_RLTYPE_APP : type;
	h[1] = TLS_MAJOR_VER_ONE;
	h[2] = ktls_suite_is_tls13(s) ? TLS_MINOR_VER_TWO : s->vminor;
	h[3] = (uint8_t)((wire - KTLS_HDR_LEN) >> 8);
	h[4] = (uint8_t)(wire - KTLS_HDR_LEN);

	if (so->tail != NULL)
		so->tail->next = r;
	else
		so->head = r;
	so->tail = r;
	so->queued += wire;
	atomic_fetch_add_explicit(&ktls_unsent, wire, memory_order_relaxed);
	return (0);
}
