/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Linux's kTLS socket API (Documentation/networking/tls.rst,
 * net/tls/tls_main.c) on top of ktls: setsockopt(SOL_TCP, TCP_ULP, "tls"),
 * then setsockopt(SOL_TLS, TLS_TX, struct tls12_crypto_info_*), read back
 * with getsockopt(SOL_TLS, TLS_TX).  The crypto_info is turned into
 * FreeBSD's struct tls_enable and given to the engine; errors are Linux's.
 * Only <ktls.h> of the engine is used.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include "ktls.h"
#include "interpose.h"
#include "../proto/linux_tls.h"
#define ULP_NAME_MAX	16	/* TCP_ULP_NAME_MAX */

/*
 * Which fds have the "tls" ULP (ktls's own fd table knows the sessions):
 * the socket's inode, so that a number closed where the interposer does
 * not see it (libc's own close in fclose(), a raw close the guard passed
 * to the engine) and reused by a new socket does not carry the ULP over.
 */
static _Atomic(uint64_t) *ulp;
static int ulp_size;
static pthread_once_t ulp_once = PTHREAD_ONCE_INIT;

static void
ulp_init(void)
{
	struct rlimit rl;
	rlim_t n = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max > n)
		n = rl.rlim_max;
	if (n > (1 << 22))
		n = 1 << 22;
	ulp = calloc((size_t)n, sizeof(*ulp));
	ulp_size = ulp != NULL ? (int)n : 0;
}

static uint64_t
fd_ino(int fd)
{
	struct stat st;

	return (fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0);
}

static bool
ulp_get(int fd)
{
	uint64_t ino;

	if (ulp == NULL || fd < 0 || fd >= ulp_size ||
	    (ino = atomic_load_explicit(&ulp[fd], memory_order_relaxed)) == 0)
		return (false);
	if (fd_ino(fd) == ino)
		return (true);
	atomic_store_explicit(&ulp[fd], 0, memory_order_relaxed);
	return (false);
}

static void
ulp_set(int fd, bool on)
{
	if (on)
		pthread_once(&ulp_once, ulp_init);
	if (ulp != NULL && fd >= 0 && fd < ulp_size)
		atomic_store_explicit(&ulp[fd], on ? fd_ino(fd) : 0,
		    memory_order_relaxed);
}

void
kti_ulp_dup(int oldfd, int newfd)
{
	if (oldfd != newfd)
		ulp_set(newfd, ulp_get(oldfd));
}

void
kti_ulp_forget(int fd)
{
	ulp_set(fd, false);
}

static int
fail(int error)
{
	errno = error;
	return (-1);
}

static bool
ktls_enabled(void)
{
	int on = 0;
	size_t len = sizeof(on);

	return (ktls_sysctl_get("kern.ipc.tls.enable", &on, &len) == 0 && on);
}

/* setsockopt(SOL_TCP, TCP_ULP, "tls"): tls_init() in net/tls/tls_main.c. */
static int
ulp_attach(int fd, const void *optval, socklen_t optlen)
{
	char name[ULP_NAME_MAX];
	int type = 0, proto = 0;
	socklen_t len = sizeof(type);
	struct sockaddr_storage ss;

	if (optval == NULL || optlen < 1)
		return (fail(EFAULT));
	memset(name, 0, sizeof(name));
	memcpy(name, optval, optlen < sizeof(name) - 1 ? optlen :
	    sizeof(name) - 1);
	if (strcmp(name, "tls") != 0 || !ktls_enabled())
		return (KTI_PASS);	/* another ULP, or ktls is off */
	if (kti_libc_get()->getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return (-1);
	len = sizeof(proto);
	kti_libc_get()->getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	if (type != SOCK_STREAM || proto != IPPROTO_TCP)
		return (KTI_PASS);	/* the kernel's own answer */
	if (ulp_get(fd))
		return (fail(EEXIST));
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return (fail(ENOTCONN));
	ulp_set(fd, true);
	return (0);
}

/* setsockopt(SOL_TLS, TLS_TX): do_tls_setsockopt_conf(). */
static int
tls_tx_set(int fd, const void *optval, socklen_t optlen)
{
	const struct ktls_linux_layout *l;
	union ktls_linux_crypto_info ci;
	uint8_t iv[12];
	struct tls_enable en;
	int r, error;

	if (optval == NULL || optlen < sizeof(ci.info))
		return (fail(EINVAL));
	memcpy(&ci.info, optval, sizeof(ci.info));
	if (ci.info.version != TLS_1_2_VERSION &&
	    ci.info.version != TLS_1_3_VERSION)
		return (fail(EINVAL));
	l = ktls_linux_layout_find(ci.info.cipher_type, 0, 0);
	if (l == NULL || optlen != l->size)
		return (fail(EINVAL));
	memcpy(&ci, optval, optlen);

	memset(&en, 0, sizeof(en));
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = ci.info.version == TLS_1_3_VERSION ?
	    TLS_MINOR_VER_THREE : TLS_MINOR_VER_TWO;
	en.cipher_algorithm = l->algorithm;
	en.cipher_key = ktls_linux_info_key(l, &ci);
	en.cipher_key_len = l->key_len;
	ktls_linux_info_parse(l, &ci, iv, en.rec_seq);
	en.iv = iv;
	en.iv_len = 12;
	r = ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_ENABLE, &en, sizeof(en));
	error = errno;
	explicit_bzero(&ci, sizeof(ci));
	explicit_bzero(iv, sizeof(iv));
	if (r == 0)
		return (0);
	/* Linux says EBUSY for keys already set. */
	return (fail(error == EALREADY ? EBUSY : error));
}

/* getsockopt(SOL_TLS, TLS_TX): do_tls_getsockopt_conf(). */
static int
tls_tx_get(int fd, void *optval, socklen_t *optlen)
{
	const struct ktls_linux_layout *l;
	union ktls_linux_crypto_info ci;
	struct ktls_tx_info ti;
	socklen_t len, size;

	if (optval == NULL || optlen == NULL)
		return (fail(EFAULT));
	len = *optlen;
	if (len < sizeof(ci.info))
		return (fail(EINVAL));
	if (ktls_get_tx(fd, &ti) != 0)
		return (fail(EBUSY));	/* keys not set yet */
	/* Enabled with FreeBSD's API in a suite Linux has no name for? */
	l = ktls_linux_layout_find(0, ti.cipher_algorithm, ti.cipher_key_len);
	size = len == sizeof(ci.info) ? sizeof(ci.info) : l != NULL ? l->size : 0;
	if (l == NULL || len != size) {
		explicit_bzero(&ti, sizeof(ti));
		return (fail(EINVAL));
	}
	ktls_linux_info_fill(l, &ci, ti.tls_vminor == TLS_MINOR_VER_THREE ?
	    TLS_1_3_VERSION : TLS_1_2_VERSION, ti.cipher_key, ti.iv,
	    ti.rec_seq);
	memcpy(optval, &ci, size);
	*optlen = size;
	explicit_bzero(&ci, sizeof(ci));
	explicit_bzero(&ti, sizeof(ti));
	return (0);
}

int
kti_setsockopt(int fd, int level, int optname, const void *optval,
    socklen_t optlen)
{
	int on;

	if (level == IPPROTO_TCP && optname == TCP_ULP)
		return (ulp_attach(fd, optval, optlen));
	if (level != SOL_TLS || !ulp_get(fd))
		return (KTI_PASS);
	switch (optname) {
	case TLS_TX:
		return (tls_tx_set(fd, optval, optlen));
	case TLS_TX_ZEROCOPY_RO:
		/* A promise that sendfile's file will not change: a hint. */
		if (optval == NULL || optlen != sizeof(int))
			return (fail(EINVAL));
		memcpy(&on, optval, sizeof(on));
		return (on == 0 || on == 1 ? 0 : fail(EINVAL));
	default:
		/* TLS_RX: receive stays in userspace (OpenSSL falls back). */
		return (fail(ENOPROTOOPT));
	}
}

int
kti_getsockopt(int fd, int level, int optname, void *optval,
    socklen_t *optlen)
{
	char name[ULP_NAME_MAX] = "tls";
	int zero = 0;

	if (level == IPPROTO_TCP && optname == TCP_ULP && ulp_get(fd)) {
		if (optval == NULL || optlen == NULL)
			return (fail(EFAULT));
		if (*optlen > sizeof(name))
			*optlen = sizeof(name);
		memcpy(optval, name, *optlen);
		return (0);
	}
	if (level != SOL_TLS || !ulp_get(fd))
		return (KTI_PASS);
	switch (optname) {
	case TLS_TX:
		return (tls_tx_get(fd, optval, optlen));
	case TLS_TX_ZEROCOPY_RO:
		if (optval == NULL || optlen == NULL)
			return (fail(EFAULT));
		if (*optlen < sizeof(int))
			return (fail(EINVAL));
		memcpy(optval, &zero, sizeof(zero));
		*optlen = sizeof(int);
		return (0);
	default:
		return (fail(ENOPROTOOPT));
	}
}
