/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Kernel mode, FreeBSD's "ifnet TLS" on Linux: the session is handed down
 * to the kernel's own TLS (TCP_ULP "tls", then SOL_TLS/TLS_TX with the
 * keys and the next record's sequence number), which may itself use a
 * NIC's offload.  From then on the socket's writes go straight to the
 * kernel; ktls only translates FreeBSD's record-type control message.
 * When a live socket switches, and the gauges that count it, are the mode
 * state machine's business (src/core/mode.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>

#include "ktls.h"
#include "../core/sys.h"
#include "../core/sock.h"
#include "../proto/linux_tls.h"
#include "transport.h"
#include "upcall.h"

/*
 * The session as Linux's crypto_info, the next record being seq: its
 * size.  Holds the key: wipe it after use.
 */
static socklen_t
kmode_info(const struct ktls_session *s, uint64_t seq,
    union ktls_linux_crypto_info *ci)
{
	const struct ktls_suite *su = s->suite;
	uint8_t iv[12], rec_seq[8];
	socklen_t len;

	memcpy(iv, s->params.iv, su->iv_len);
	/* TLS 1.2 GCM: the next record's explicit nonce (Linux counts on). */
	if (su->kind == KTLS_AEAD_EXPLICIT)
		ktls_be64enc(iv + 4, seq + s->params.nonce_off);
	ktls_be64enc(rec_seq, seq);
	len = (socklen_t)ktls_linux_info_fill(
	    &ktls_linux_layouts[su->linux_layout], ci,
	    ktls_suite_is_tls13(su) ? TLS_1_3_VERSION : TLS_1_2_VERSION,
	    s->params.cipher_key, iv, rec_seq);
	explicit_bzero(iv, sizeof(iv));
	return (len);
}

static bool
kmode_supports(const struct ktls_suite *su)
{
	return (ktls_suite_in_linux(su));
}

/*
 * Hand the session to the kernel; so->mtx held, nothing queued.  0, or
 * -EOPNOTSUPP when the kernel has no kTLS (the tls module is missing) or
 * not this suite, or another negative errno.  On failure the socket may
 * keep the "tls" ULP with no transmit state: Linux then passes data
 * through untouched, so software mode goes on as before.
 */
static int
kmode_attach(struct ktls_sock *so)
{
	union ktls_linux_crypto_info ci;
	socklen_t len;
	int error = 0;

	KASSERT(so->head == NULL && so->open == NULL,
	    ("%s: records still queued", __func__));
	if (!ktls_suite_in_linux(so->tx->suite))
		return (-EOPNOTSUPP);
	if (ktls_sys.setsockopt(so->kfd, IPPROTO_TCP, TCP_ULP, "tls", 3) != 0 &&
	    errno != EEXIST)
		return (errno == ENOENT ? -EOPNOTSUPP : -errno);
	len = kmode_info(so->tx, so->next_seq, &ci);
	if (ktls_sys.setsockopt(so->kfd, SOL_TLS, TLS_TX, &ci, len) != 0)
		error = errno == EINVAL || errno == ENOPROTOOPT ||
		    errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	explicit_bzero(&ci, sizeof(ci));
	return (error);
}

/* The next record's sequence number, as the kernel counts it. */
static int
kmode_seq(struct ktls_sock *so, uint64_t *seq)
{
	const struct ktls_linux_layout *l;
	union ktls_linux_crypto_info ci;
	socklen_t len;
	int error = 0;

	KASSERT(ktls_suite_in_linux(so->tx->suite),
	    ("%s: %s is not in Linux", __func__, so->tx->suite->name));
	l = &ktls_linux_layouts[so->tx->suite->linux_layout];
	len = l->size;		/* Linux wants the suite's exact size */

	if (ktls_sys.getsockopt(so->kfd, SOL_TLS, TLS_TX, &ci, &len) != 0)
		error = -errno;
	else
		*seq = ktls_be64dec((const uint8_t *)&ci + l->rec_seq);
	explicit_bzero(&ci, sizeof(ci));	/* the kernel gave the key */
	return (error);
}

/*
 * A send on a socket in kernel mode: straight to the kernel, the record
 * type (from FreeBSD's message at level IPPROTO_TCP or Linux's, parsed
 * by the caller; -1 for none) passed on as Linux's (SOL_TLS).
 * nb 0 (aio): wait for room even on a non-blocking socket.
 */
static ssize_t
kmode_sendmsg(struct ktls_sock *so, const struct msghdr *msg, int flags,
    int nb, int type)
{
	union {
		char		buf[CMSG_SPACE(1)];
		struct cmsghdr	align;
	} cbuf;
	struct msghdr m = *msg;
	struct cmsghdr *cm;
	struct pollfd pfd = { .fd = so->kfd, .events = POLLOUT };
	ssize_t n;

	m.msg_control = NULL;
	m.msg_controllen = 0;
	if (type >= 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf.buf;
		m.msg_controllen = sizeof(cbuf.buf);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_TLS;
		cm->cmsg_type = TLS_SET_RECORD_TYPE;
		cm->cmsg_len = CMSG_LEN(1);
		*CMSG_DATA(cm) = (uint8_t)type;
	}
	for (;;) {
		n = ktls_sys.sendmsg(so->kfd, &m, flags);
		if (n >= 0)
			return (n);
		if (errno == EAGAIN && nb == 0 && !(flags & MSG_DONTWAIT) &&
		    ktls_sys.poll(&pfd, 1, -1) >= 0)
			continue;
		if (errno == EINTR && nb == 0)
			continue;
		return (-errno);
	}
}

/* The kernel's sendfile, which its TLS frames. */
static ssize_t
kmode_sendfile(struct ktls_sock *so, int in_fd, off_t *offset, size_t count)
{
	ssize_t r = ktls_sys.sendfile(so->kfd, in_fd, offset, count);

	return (r < 0 ? -errno : r);
}

/* Nothing is ever queued in kernel mode: a flush is the FIN, if asked. */
static bool
kmode_flush(struct ktls_sock *so)
{
	KASSERT(so->head == NULL, ("%s: records queued", __func__));
	ktls_tx_finish(so);
	return (false);
}

static void
kmode_cork(struct ktls_sock *so)
{
	(void)kmode_flush(so);
}

static void
kmode_forget(struct ktls_sock *so)
{
	(void)so;
}

const struct ktls_tx_ops ktls_tx_kernel = {
	.name = "ifnet",
	.mode = TCP_TLS_MODE_IFNET,
	.keeps = true,		/* Linux cannot give a session back */
	.supports = kmode_supports,
	.attach = kmode_attach,
	.flush = kmode_flush,
	.cork = kmode_cork,
	.forget = kmode_forget,
	.sendmsg = kmode_sendmsg,
	.sendfile = kmode_sendfile,
	.next_seq = kmode_seq,
};
