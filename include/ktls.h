/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ktls: FreeBSD's kernel TLS transmit offload, as a userspace engine for
 * Linux.
 *
 * After a TLS handshake done by any TLS library, hand the transmit keys of
 * a connected TCP socket to ktls with
 *
 *	ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_ENABLE, &en, sizeof(en));
 *
 * and from then on everything written to it with the ktls_* calls below
 * leaves as TLS records, framed and encrypted by ktls's worker threads, in
 * order.  On a socket that ktls does not manage every ktls_* call behaves
 * exactly as the libc call of the same name.
 *
 * The names and numbers of FreeBSD's <sys/ktls.h>, <netinet/tcp.h> and
 * <crypto/cryptodev.h> are kept where Linux does not already use them; the
 * socket option numbers are moved out of Linux's IPPROTO_TCP range (FreeBSD's
 * 39..42 are TCP-AO options on Linux).
 */
#ifndef KTLS_H
#define KTLS_H

#include <aio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Socket options, level IPPROTO_TCP.  The low byte is FreeBSD's number; the
 * high bits ("kt") keep them clear of every Linux TCP option, which the
 * kernel answers with ENOPROTOOPT.
 */
#define KTLS_SOCKOPT_BASE	0x6b740000
#define TCP_TXTLS_ENABLE	(KTLS_SOCKOPT_BASE | 39)
#define TCP_TXTLS_MODE		(KTLS_SOCKOPT_BASE | 40)
#define TCP_RXTLS_ENABLE	(KTLS_SOCKOPT_BASE | 41)
#define TCP_RXTLS_MODE		(KTLS_SOCKOPT_BASE | 42)

/* Values of TCP_TXTLS_MODE. */
#define TCP_TLS_MODE_NONE	0
#define TCP_TLS_MODE_SW		1
#define TCP_TLS_MODE_IFNET	2
#define TCP_TLS_MODE_TOE	3

/*
 * Control message for sendmsg(2): cmsg_level IPPROTO_TCP (or Linux's
 * SOL_TLS), cmsg_type TLS_SET_RECORD_TYPE, one byte of data: the TLS record
 * type of every record made from that message.  Same value as Linux's.
 */
#ifndef TLS_SET_RECORD_TYPE
#define TLS_SET_RECORD_TYPE	1
#endif

/* Algorithm identifiers, FreeBSD <crypto/cryptodev.h> numbering. */
#define CRYPTO_SHA1_HMAC		7
#define CRYPTO_AES_CBC			11
#define CRYPTO_SHA2_256_HMAC		18
#define CRYPTO_SHA2_384_HMAC		19
#define CRYPTO_AES_NIST_GCM_16		25
#define CRYPTO_CHACHA20_POLY1305	41

/* Protocol versions, as on the wire (FreeBSD <sys/ktls.h>). */
#define TLS_MAJOR_VER_ONE	3
#define TLS_MINOR_VER_ZERO	1	/* 3, 1: TLS 1.0 */
#define TLS_MINOR_VER_ONE	2	/* 3, 2: TLS 1.1 */
#define TLS_MINOR_VER_TWO	3	/* 3, 3: TLS 1.2 */
#define TLS_MINOR_VER_THREE	4	/* 3, 4: TLS 1.3 */

/* Record content types (RFC 8446, section 5.1). */
#define TLS_RLTYPE_CHANGE_CIPHER_SPEC	20
#define TLS_RLTYPE_ALERT		21
#define TLS_RLTYPE_HANDSHAKE		22
#define TLS_RLTYPE_APP			23

/* Largest record payload (RFC 8446, section 5.1: 2^14). */
#define TLS_MAX_MSG_SIZE_V10_2	16384

/*
 * The argument of TCP_TXTLS_ENABLE, as FreeBSD's.
 *
 * cipher_key/cipher_key_len: the AES or ChaCha20 key (16 or 32 bytes).
 * iv/iv_len:	AES-GCM TLS 1.2: the 4-byte implicit salt (the explicit
 *		nonce of each record is its sequence number);
 *		AES-GCM TLS 1.3, ChaCha20-Poly1305: the 12-byte static IV;
 *		AES-CBC: 16 bytes, the IV of the first record in TLS 1.0 (each
 *		later one chains from the previous ciphertext); TLS 1.1 and 1.2
 *		send a fresh random explicit IV in every record.
 * auth_*:	the HMAC algorithm and MAC key of a CBC suite; 0/NULL for AEAD.
 * flags:	must be 0.
 * tls_vmajor/tls_vminor: TLS_MAJOR_VER_ONE and TLS_MINOR_VER_*.
 * rec_seq:	the sequence number of the first record, big-endian.
 */
struct tls_enable {
	const uint8_t *cipher_key;
	const uint8_t *iv;
	const uint8_t *auth_key;
	int	cipher_algorithm;
	int	cipher_key_len;
	int	iv_len;
	int	auth_algorithm;
	int	auth_key_len;
	int	flags;
	uint8_t	tls_vmajor;
	uint8_t	tls_vminor;
	uint8_t	rec_seq[8];
};

/*
 * Receive (TCP_RXTLS_ENABLE, the same struct tls_enable; AEAD suites only,
 * CBC is EPROTONOSUPPORT): the peer's records are decrypted by the reading
 * call.  As FreeBSD's, each recvmsg(2) returns at most one record; with
 * room for it, a control message (cmsg_level IPPROTO_TCP, cmsg_type
 * TLS_GET_RECORD) carries the record's header: its type, version and
 * plaintext length (big-endian, as on the wire).  MSG_EOR is set when the
 * call returned the record's last byte.  A record that fails authentication
 * is EBADMSG, and so is every read after it.
 */
#define TLS_GET_RECORD		2
struct tls_get_record {
	uint8_t		tls_type;
	uint8_t		tls_vmajor;
	uint8_t		tls_vminor;
	uint16_t	tls_length;	/* big-endian */
};

/*
 * ktls_enable_rx(fd, en, sizeof(*en), KTLS_RX_LINUX) enables receive with
 * Linux kTLS's semantics instead (Documentation/networking/tls.rst, the
 * interposer's setsockopt(SOL_TLS, TLS_RX)): application data of several
 * records merged up to the caller's length, a non-data record alone with
 * a control message (cmsg_level SOL_TLS, cmsg_type TLS_GET_RECORD_TYPE,
 * one byte), EIO for a non-data record with no room for it.  flags 0 is
 * TCP_RXTLS_ENABLE.  0, or -1 with errno.
 */
#define KTLS_RX_LINUX		0x1
int	ktls_enable_rx(int fd, const struct tls_enable *en, socklen_t len,
	    unsigned int flags);

/*
 * The socket calls.  Same signatures and, on a socket ktls does not manage,
 * the same behaviour as the libc calls.  On an enabled socket they behave as
 * FreeBSD's kernel does: the call returns the bytes accepted (framed and
 * queued), not the bytes already on the wire.
 */
int	ktls_setsockopt(int fd, int level, int optname, const void *optval,
	    socklen_t optlen);
int	ktls_getsockopt(int fd, int level, int optname, void *optval,
	    socklen_t *optlen);
ssize_t	ktls_read(int fd, void *buf, size_t len);
ssize_t	ktls_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t	ktls_recv(int fd, void *buf, size_t len, int flags);
ssize_t	ktls_recvfrom(int fd, void *buf, size_t len, int flags,
	    struct sockaddr *addr, socklen_t *alen);
ssize_t	ktls_recvmsg(int fd, struct msghdr *msg, int flags);
int	ktls_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
	    int flags, struct timespec *timeout);
ssize_t	ktls_write(int fd, const void *buf, size_t len);
ssize_t	ktls_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t	ktls_send(int fd, const void *buf, size_t len, int flags);
ssize_t	ktls_sendmsg(int fd, const struct msghdr *msg, int flags);
/* Linux sendfile(2): offset NULL uses and advances in_fd's file offset. */
ssize_t	ktls_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
/* sendto(2), sendmmsg(2): on an enabled socket the address is ignored. */
ssize_t	ktls_sendto(int fd, const void *buf, size_t len, int flags,
	    const struct sockaddr *addr, socklen_t alen);
int	ktls_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
	    int flags);
/*
 * Positioned writes: ESPIPE on an enabled socket, as on any socket, except
 * pwritev2() with offset -1, which is writev() (RWF_NOWAIT: non-blocking).
 */
ssize_t	ktls_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t	ktls_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off);
ssize_t	ktls_pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off,
	    int flags);
/* splice(2): from a pipe into an enabled socket, the bytes become records. */
ssize_t	ktls_splice(int in_fd, off_t *off_in, int out_fd, off_t *off_out,
	    size_t len, unsigned int flags);
int	ktls_shutdown(int fd, int how);
/* Closes fd at once; queued records are still sent, as after close(2). */
int	ktls_close(int fd);

/*
 * For interposers, and programs that duplicate descriptors themselves:
 * after dup(2), dup2(2), dup3(2) or fcntl(F_DUPFD*) of an enabled socket,
 * ktls_fd_dup(oldfd, newfd) makes newfd a descriptor of the same TLS
 * session; ktls_fd_closed(fd) tells ktls that fd was closed or replaced by
 * other means (close(2) is ktls_close's job otherwise).  The session ends
 * when its last descriptor goes.
 */
int	ktls_fd_dup(int oldfd, int newfd);
void	ktls_fd_closed(int fd);
/* The same, made and followed in one call (fcntl: F_DUPFD* followed). */
int	ktls_dup(int oldfd);
int	ktls_dup2(int oldfd, int newfd);
int	ktls_dup3(int oldfd, int newfd, int flags);
int	ktls_fcntl(int fd, int cmd, long arg);
int	ktls_close_range(unsigned int first, unsigned int last, int flags);
/*
 * Call before execve(2): sends what is queued, then makes the descriptors
 * of enabled sockets close-on-exec (the new image would have the socket
 * but not ktls, and would write in the clear).
 */
void	ktls_exec_prepare(void);
/*
 * The guard (invariant 7: no plaintext by any path).  At the first enable
 * ktls installs a seccomp filter that sends every write-family system call
 * made from the code then mapped (libc's internal calls, syscall(2), raw
 * system calls) through ktls; code mapped later (dlopen) is covered once
 * ktls_guard_refresh() is called.  See ktls(3), "THE GUARD".
 */
void	ktls_guard_refresh(void);
/* 1 once the guard is up in this process, else 0. */
int	ktls_guard_on(void);
/*
 * sigaction(2) that keeps the guard's SIGSYS handler: for SIGSYS, once the
 * guard is up, the application's disposition is recorded and the guard's
 * handler passes it every SIGSYS that is not the guard's.  Other signals:
 * sigaction(2).  Programs that handle SIGSYS themselves must use this.
 */
struct sigaction;
int	ktls_sigaction(int sig, const struct sigaction *act,
	    struct sigaction *oact);

/*
 * Autocork.  With kern.ipc.tls.autocork_us > 0 (ktls-run sets 2000), a
 * small write's record is not sent at once: the next send on the socket
 * takes it along (a response's header and body leave in one segment), or
 * it goes when the writing thread calls ktls_push(), or at the latest
 * after autocork_us.  ktls_push() sends the calling thread's held records;
 * the interposer calls it before every call that may wait (poll, epoll,
 * select, read, recv).  Off by default: a program that calls ktls_write()
 * then waits in a call of its own should call ktls_push() first.
 */
void	ktls_push(void);

/*
 * The transmit state of an enabled socket, as Linux's
 * getsockopt(SOL_TLS, TLS_TX) reports it: the suite, the key, the IV
 * (TLS 1.2 AES-GCM: salt || the next record's explicit nonce, 12 bytes)
 * and the next record's sequence number.  0, or -1 with errno ENOENT when
 * fd is not enabled.  Holds the key: wipe it after use.
 */
struct ktls_tx_info {
	int	cipher_algorithm;
	int	cipher_key_len;
	int	auth_algorithm;
	int	iv_len;
	uint8_t	tls_vminor;
	uint8_t	cipher_key[32];
	uint8_t	iv[16];
	uint8_t	rec_seq[8];
};
int	ktls_get_tx(int fd, struct ktls_tx_info *ti);
/* The same for the receive side: rec_seq is the next record to open. */
int	ktls_get_rx(int fd, struct ktls_tx_info *ri);

/*
 * POSIX asynchronous writes.  The result is reported in the aiocb as glibc
 * does, so ktls_aio_error/ktls_aio_return and libc's aio_error/aio_return
 * both read it.
 */
int	ktls_aio_write(struct aiocb *cb);
int	ktls_aio_error(const struct aiocb *cb);
ssize_t	ktls_aio_return(struct aiocb *cb);
int	ktls_aio_suspend(const struct aiocb *const list[], int nent,
	    const struct timespec *timeout);

/*
 * The kern.ipc.tls.* tree, sysctlbyname(3) style: kern.ipc.tls.enable and
 * kern.ipc.tls.maxlen are int and writable; the counters are uint64_t.
 * ktls_sysctl_get with oldp NULL stores the size in *oldlenp.
 * Returns 0, or -1 with errno (ENOENT: no such name; ENOMEM: *oldlenp too
 * small; EINVAL: bad new value; EPERM: read-only).
 */
int	ktls_sysctl_get(const char *name, void *oldp, size_t *oldlenp);
int	ktls_sysctl_set(const char *name, const void *newp, size_t newlen);
/* The idx-th name of the tree (0, 1, ...), NULL past the end. */
const char *ktls_sysctl_name(unsigned int idx);
/* Its one-line description, NULL for an unknown name. */
const char *ktls_sysctl_descr(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* KTLS_H */
