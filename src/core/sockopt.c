/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The socket options of <ktls.h>: TCP_TXTLS_ENABLE, TCP_TXTLS_MODE (set
 * and get), and ktls_get_tx(), which reads a session's state back for the
 * interposer's getsockopt(SOL_TLS, TLS_TX).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "ktls.h"
#include "ktls_int.h"

KTLS_EXPORT int
ktls_get_tx(int fd, struct ktls_tx_info *ti)
{
	struct ktls_sock *so = ktls_sock_lookup(fd);
	const struct ktls_tx_ops *txo;
	const struct ktls_session *s;
	uint64_t seq;

	if (so == NULL)
		return ((int)ktls_ret(-ENOENT));
	s = so->tx;
	memset(ti, 0, sizeof(*ti));
	ti->cipher_algorithm = s->suite->cipher_alg;
	ti->cipher_key_len = s->suite->key_len;
	ti->auth_algorithm = s->suite->auth_alg;
	ti->tls_vminor = s->suite->vminor;
	memcpy(ti->cipher_key, s->params.cipher_key, s->suite->key_len);
	pthread_mutex_lock(&so->mtx);
	/* A write autocork holds is the application's: count its record. */
	ktls_sock_push_held(so);
	ktls_sock_txo(so)->flush(so);
	seq = so->next_seq;
	ktls_sock_unlock(so);
	txo = ktls_sock_txo(so);
	if (txo->next_seq != NULL && txo->next_seq(so, &seq) != 0) {
		ktls_sock_rele(so);
		explicit_bzero(ti, sizeof(*ti));
		return ((int)ktls_ret(-EIO));
	}
	ktls_be64enc(ti->rec_seq, seq);
	memcpy(ti->iv, s->params.iv, s->suite->iv_len);
	ti->iv_len = s->suite->iv_len;
	if (s->suite->kind == KTLS_AEAD_EXPLICIT) {
		/* salt || the next record's explicit nonce */
		ktls_be64enc(ti->iv + 4, seq + s->params.nonce_off);
		ti->iv_len = 12;
	}
	ktls_sock_rele(so);	/* s is the socket's: released last */
	return (0);
}

KTLS_EXPORT int
ktls_setsockopt(int fd, int level, int optname, const void *optval,
    socklen_t optlen)
{
	struct ktls_sock *so;
	int mode, r;

	ktls_sys_init();
	if (level != IPPROTO_TCP || (optname & ~0xff) != KTLS_SOCKOPT_BASE)
		return (ktls_sys.setsockopt(fd, level, optname, optval, optlen));
	switch (optname) {
	case TCP_TXTLS_ENABLE:
		return ((int)ktls_ret(ktls_sock_enable(fd, optval, optlen)));
	case TCP_TXTLS_MODE:
		if (optval == NULL || optlen != sizeof(int))
			return ((int)ktls_ret(-EINVAL));
		memcpy(&mode, optval, sizeof(mode));
		if ((so = ktls_sock_lookup(fd)) == NULL)
			return ((int)ktls_ret(-EINVAL));
		/* FreeBSD's ktls_set_tx_mode(): SW or IFNET, else EINVAL. */
		r = ktls_sock_set_mode(so, mode);
		ktls_sock_rele(so);
		return ((int)ktls_ret(r));
	default:
		/* Receive offload (TCP_RXTLS_*) is not there, as in D21277. */
		return ((int)ktls_ret(-ENOPROTOOPT));
	}
}

KTLS_EXPORT int
ktls_getsockopt(int fd, int level, int optname, void *optval,
    socklen_t *optlen)
{
	struct ktls_sock *so;
	int mode, type;
	socklen_t len = sizeof(type);

	ktls_sys_init();
	if (level != IPPROTO_TCP || optname != TCP_TXTLS_MODE)
		return (ktls_sys.getsockopt(fd, level, optname, optval, optlen));
	if (ktls_sys.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return (-1);
	if (optval == NULL || optlen == NULL || *optlen < sizeof(int))
		return ((int)ktls_ret(-EINVAL));
	so = ktls_sock_lookup(fd);
	mode = so != NULL ? ktls_sock_mode(so) : TCP_TLS_MODE_NONE;
	if (so != NULL)
		ktls_sock_rele(so);
	memcpy(optval, &mode, sizeof(mode));
	*optlen = sizeof(mode);
	return (0);
}
