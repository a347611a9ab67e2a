/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Private to core (src/core): its modules' calls to one another.  The
 * layers below see only what they need: sys.h (the seam, assertions,
 * faults), sock.h (the socket and its queue), transport.h (what core
 * calls of the transport) and upcall.h (what the transport calls of core).
 *
 * Conventions: functions inside the library return 0 or a negative errno;
 * only the public ktls_* calls, which imitate system calls, turn that into
 * -1 and errno.
 */
#ifndef KTLS_INT_H
#define KTLS_INT_H

#include <sys/sendfile.h>

#include "sys.h"
#include "sock.h"
#include "counters.h"
#include "../transport/upcall.h"

#define KTLS_EXPORT	__attribute__((visibility("default")))

/*
 * The guard (guard*.c, invariant 7): a seccomp filter, installed at the
 * first enable, that traps write-family system calls made outside the
 * engine's own system-call page; the write-family entries of ktls_sys
 * then go through that page.
 */
int	ktls_guard_install(void);	/* 0, or -EPERM: no session */
bool	ktls_guard_active(void);
void	ktls_guard_atfork_child(void);
/* Is fd a descriptor of an enabled socket? */
bool	ktls_fd_is_enabled(int fd);
bool	ktls_fd_is_enabled_ro(int fd);	/* changes nothing */
/* newfd was made a copy of oldfd, which has no session (sock.c). */
void	ktls_sock_note_dup(int oldfd, int newfd);
/*
 * The process the engine's state belongs to (init.c): set at set-up, in
 * a fork()ed child, and after an exec that inherited the guard.  A
 * vfork() child (posix_spawn's too) shares the memory but not the
 * descriptor table or the signal dispositions: it is not the owner, and
 * must change neither the fd table nor what the guard recorded.
 */
void	ktls_owner_set(void);
bool	ktls_owner(void);
/* A number's kind forgotten: it was closed (sock.c). */
void	ktls_fd_forget(int fd);
/* Enabled sockets close-on-exec, and nothing else (a vfork child). */
void	ktls_exec_cloexec(void);
/* -EPERM when msg passes an enabled socket in SCM_RIGHTS (api.c). */
ssize_t	ktls_rights_check(const struct msghdr *msg, bool ro);

/* Library-wide set-up, idempotent; starts no thread. */
void	ktls_init(void);
/* Wait (bounded) for every queue to reach the kernel (init.c). */
void	ktls_drain_all(void);
/* KTLS_BACKEND, now or as it was at load time (init.c). */
const char *ktls_env_backend(void);

/* pthread_atfork() child handlers, one per module that keeps threads. */
void	ktls_sock_atfork_child(void);
void	ktls_workers_atfork_child(void);
void	ktls_aio_atfork_child(void);
void	ktls_counters_atfork_child(void);
void	ktls_control_atfork_child(void);
void	ktls_record_atfork_child(void);
void	ktls_keymem_atfork_child(void);

/* The control socket (control.c): started once a session exists. */
void	ktls_control_start(void);

/* Counters and sysctl tree (counters.c): enum ktls_counter in counters.h. */
void	ktls_counter_add(enum ktls_counter c, int64_t v);
void	ktls_counter_add_shared(enum ktls_counter c, int64_t v);
uint64_t ktls_counter_read(enum ktls_counter c);
extern _Atomic int ktls_tunable_enable;	/* kern.ipc.tls.enable */
extern _Atomic int ktls_tunable_maxlen;	/* kern.ipc.tls.maxlen */
extern _Atomic int ktls_tunable_autocork_us; /* kern.ipc.tls.autocork_us */
extern _Atomic int ktls_tunable_ifnet_permitted; /* ...ifnet.permitted */

/* Key memory (keymem.c): locked, not in core dumps, wiped on free. */
void	*ktls_keymem_alloc(size_t len);
void	ktls_keymem_free(void *p, size_t len);

#define KTLS_QUEUE_LIMIT	(512 * 1024)	/* wire bytes queued per socket */
#define KTLS_INLINE_MAX		4096	/* writes the writer encrypts itself */
#define KTLS_INLINE_GAP_NS	50000	/* ... the first writes after a gap */
#define KTLS_INLINE_BURST	4	/* ... this many of them */
#define KTLS_AUTOCORK_MAX_US	100000	/* kern.ipc.tls.autocork_us at most */

/* The public calls' return: r, or -1 with errno -r (api.c, sockopt.c). */
static inline ssize_t
ktls_ret(ssize_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return (-1);
	}
	return (r);
}

/* hold, rele, unlock, wakeup, fail, purge, sent: upcall.h. */
struct ktls_sock *ktls_sock_lookup(int fd);	/* returns a reference */
/* The same for the write family: also finds copies (sock.c). */
struct ktls_sock *ktls_sock_lookup_tx(int fd);
struct ktls_sock *ktls_sock_unlink(int fd);	/* the table's reference */
int	ktls_sock_link(int fd, struct ktls_sock *so);
int	ktls_sock_enable(int fd, const void *optval, socklen_t optlen);
struct timespec;
int	ktls_sock_wait(struct ktls_sock *so, const struct timespec *deadline);
/* Frame and queue a message's data (send.c); a negative errno on failure. */
/* nb: 1 non-blocking, 0 blocking, -1 as the socket's O_NONBLOCK says. */
ssize_t	ktls_sock_sendmsg(struct ktls_sock *so, const struct msghdr *msg,
	    int flags, int nb);
/* sendfile(2) and splice(2) from a pipe on an enabled socket (send.c). */
ssize_t	ktls_sock_sendfile(struct ktls_sock *so, int in_fd, off_t *offset,
	    size_t count);
ssize_t	ktls_sock_splice(struct ktls_sock *so, int in_fd, size_t len,
	    unsigned int flags);
/* Frame the MSG_MORE record, if any (send.c); so->mtx held. */
void	ktls_sock_push_open(struct ktls_sock *so);
/*
 * Transmit mode (TCP_TXTLS_MODE): TCP_TLS_MODE_SW, or TCP_TLS_MODE_IFNET
 * once the session is in the kernel (Linux kTLS).  ktls_sock_set_mode()
 * switches a live socket: 0 or a negative errno (EINVAL: not a mode;
 * EOPNOTSUPP: the kernel has no kTLS or not this suite, or kernel to
 * software, which Linux cannot do; EBUSY: the queue did not drain).
 * No lock held by the caller.
 */
int	ktls_sock_mode(struct ktls_sock *so);
int	ktls_sock_set_mode(struct ktls_sock *so, int mode);
/* The socket's transmit mode now (its ops table, transport.h). */
static inline const struct ktls_tx_ops *
ktls_sock_txo(struct ktls_sock *so)
{
	return (atomic_load_explicit(&so->txo, memory_order_acquire));
}
/*
 * Hand the socket to ops at a record boundary (so->mtx held, nothing
 * queued) and move its session to that mode's gauge: 0 or ops->attach's
 * negative errno, the socket unchanged (mode.c).
 */
int	ktls_sock_attach(struct ktls_sock *so, const struct ktls_tx_ops *ops);
/*
 * fn once for every enabled socket of the process (whatever its number of
 * descriptors), with a reference held; fn may lock so->mtx and may call
 * ktls_sock_set_mode().  One caller at a time (the control thread).
 */
void	ktls_sock_foreach(void (*fn)(struct ktls_sock *so, void *arg),
	    void *arg);
/* The kern.ipc.tls.sw.* / ifnet.* gauge that counts the session now. */
enum ktls_counter ktls_sock_gauge(struct ktls_sock *so);

/* Records (record.c). */
struct ktls_record *ktls_record_alloc(size_t payload);
void	ktls_record_free(struct ktls_record *r);
void	ktls_fileref_rele(struct ktls_fileref *f);

/* Framing (frame.c): so->mtx held. */
int	ktls_frame(struct ktls_sock *so, struct ktls_record *r, uint8_t type,
	    size_t len);

/*
 * Encrypt a framed record (worker.c): by its socket's worker, or by the
 * writer itself while the socket's queue was empty (send.c), so never by
 * two threads at once.  0 or a negative errno (reset the connection).
 */
int	ktls_encrypt(struct ktls_record *r);

/*
 * Receive record checks (recv.c, docs/rx.md).  ktls_rx_header(): the
 * whole wire length of the record a 5-byte header starts, or Linux's
 * error (-EMSGSIZE too long, -EBADMSG shorter than the overhead, -EINVAL
 * not version 3,3).  ktls_rx_open(): authenticate and decrypt a whole
 * record into dst (ktls_suite_open_len() bytes of room; may be in place),
 * giving its content type and plaintext length (TLS 1.3: the inner type,
 * padding removed); -EBADMSG on a forgery (dst zeroed) or a TLS 1.3
 * record with no content type.  ktls_rx_min_record(): the smallest
 * record of the suite.  AEAD suites only.
 */
size_t	ktls_rx_min_record(const struct ktls_suite *s);
int	ktls_rx_header(const struct ktls_suite *s, const uint8_t *hdr,
	    size_t *wire_len);
int	ktls_rx_open(const struct ktls_session *sess, uint64_t seq,
	    const uint8_t *rec, size_t rec_len, uint8_t *dst, uint8_t *type,
	    size_t *len);

/* Workers (worker.c). */
int	ktls_workers_start(void);
unsigned int ktls_worker_pick(void);
void	ktls_enqueue(struct ktls_record *first, struct ktls_record *last,
	    unsigned int n);

#endif /* KTLS_INT_H */
