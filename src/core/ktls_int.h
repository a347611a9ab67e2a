/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Private to libktls: what the layers of src/ share.
 *
 * Conventions: functions inside the library return 0 or a negative errno;
 * only the public ktls_* calls, which imitate system calls, turn that into
 * -1 and errno.
 */
#ifndef KTLS_INT_H
#define KTLS_INT_H

#include <aio.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "suite.h"
#include "../crypto/backend.h"

#define KTLS_EXPORT	__attribute__((visibility("default")))

/* Invariant checks, live in test builds (-DKTLS_INVARIANTS). */
#ifdef KTLS_INVARIANTS
#define KASSERT(cond, msg) do {						\
	if (!(cond)) {							\
		ktls_panic_printf msg;					\
		abort();						\
	}								\
} while (0)
#define ktls_panic_printf(...) fprintf(stderr, "ktls: panic: " __VA_ARGS__)
#else
/* Not evaluated; sizeof keeps what only an assertion reads "used". */
#define KASSERT(cond, msg) do { (void)sizeof(cond); } while (0)
#endif

/*
 * The system calls the engine makes, behind a seam: resolved once with
 * dlsym(RTLD_NEXT) so that an LD_PRELOAD interposer that defines write(),
 * close(), ... never sees the engine's own calls, and so that tests can
 * inject faults.
 */
struct ktls_sysops {
	ssize_t	(*write)(int, const void *, size_t);
	ssize_t	(*writev)(int, const struct iovec *, int);
	ssize_t	(*send)(int, const void *, size_t, int);
	ssize_t	(*sendto)(int, const void *, size_t, int,
		    const struct sockaddr *, socklen_t);
	ssize_t	(*sendmsg)(int, const struct msghdr *, int);
	ssize_t	(*sendfile)(int, int, off_t *, size_t);
	int	(*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	ssize_t	(*pwrite)(int, const void *, size_t, off_t);
	ssize_t	(*pwritev2)(int, const struct iovec *, int, off_t, int);
	ssize_t	(*splice)(int, off_t *, int, off_t *, size_t, unsigned int);
	ssize_t	(*pread)(int, void *, size_t, off_t);
	ssize_t	(*read)(int, void *, size_t);
	ssize_t	(*recv)(int, void *, size_t, int);
	int	(*poll)(struct pollfd *, nfds_t, int);
	int	(*close)(int);
	int	(*shutdown)(int, int);
	int	(*setsockopt)(int, int, int, const void *, socklen_t);
	int	(*getsockopt)(int, int, int, void *, socklen_t *);
	int	(*fcntl)(int, int, ...);
	int	(*dup)(int);
	int	(*dup2)(int, int);
	int	(*dup3)(int, int, int);
	int	(*close_range)(unsigned int, unsigned int, int);
	int	(*sigaction)(int, const struct sigaction *, struct sigaction *);
	int	(*aio_write)(struct aiocb *);
	int	(*aio_error)(const struct aiocb *);
	ssize_t	(*aio_return)(struct aiocb *);
	int	(*aio_suspend)(const struct aiocb *const[], int,
		    const struct timespec *);
};
extern struct ktls_sysops ktls_sys;
/*
 * Every call the interposer (src/interpose/) defines goes through the seam
 * when the engine makes it: with LD_PRELOAD the engine's own call would
 * otherwise land in the interposer (a wait that pushes corked records, a
 * write routed back into the engine).  The engine's other system calls go
 * straight to libc, because no interposer of ktls defines them and none
 * needs faking in a test: fstat, mmap/munmap/madvise/mlock, socket, bind,
 * listen, accept4, connect (the reset in tx.c), getpeername, getsockname,
 * epoll_create1, epoll_ctl, epoll_pwait2 (the poller), eventfd, prctl and
 * seccomp (the guard), futex (sock.c's waits), clock_gettime.
 */

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
/* Not a vfork() child of the table's process (sock.c). */
bool	ktls_sock_owner(void);
/* A number's kind forgotten: it was closed (sock.c). */
void	ktls_fd_forget(int fd);
/* Enabled sockets close-on-exec, and nothing else (a vfork child). */
void	ktls_exec_cloexec(void);
/* -EPERM when msg passes an enabled socket in SCM_RIGHTS (api.c). */
ssize_t	ktls_rights_check(const struct msghdr *msg, bool ro);

/* A detached engine thread that takes no signal (thread.c). */
int	ktls_thread_start(void *(*fn)(void *), void *arg, const char *name);

/* Library-wide set-up, idempotent; starts no thread. */
void	ktls_init(void);
/* Just the ktls_sys table (the pass-through path). */
void	ktls_sys_init(void);
/* Wait (bounded) for every queue to reach the kernel (init.c). */
void	ktls_drain_all(void);
/* KTLS_BACKEND, now or as it was at load time (init.c). */
const char *ktls_env_backend(void);
/* KTLS_SENDFILE_MAP at load time: sendfile through a file mapping. */
bool	ktls_env_sendfile_map(void);

/* pthread_atfork() child handlers, one per module that keeps threads. */
void	ktls_sock_atfork_child(void);
void	ktls_workers_atfork_child(void);
void	ktls_poller_atfork_child(void);
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

/*
 * Fault injection (fault.c), for tests only: after `skip' more calls pass,
 * the site fails `fail' calls (-1: every one).  ktls_fault_hit() is the
 * site's question.
 */
enum ktls_fault_site {
	KF_CRYPTO,		/* the backend's encrypt fails */
	KF_RECORD_ALLOC,	/* ktls_record_alloc() */
	KF_FILEREF_ALLOC,	/* sendfile's file reference */
	KF_SESSION_ALLOC,	/* enable: the session */
	KF_KEYMEM_ALLOC,	/* enable: key memory */
	KF_SOCK_ALLOC,		/* enable: the socket state */
	KF_POLLER,		/* watching a full kernel socket */
	KF__COUNT
};
void	ktls_fault_set(enum ktls_fault_site site, int64_t skip, int64_t fail);
bool	ktls_fault_hit(enum ktls_fault_site site);
uint64_t ktls_fault_hits(enum ktls_fault_site site);

/* Key memory (keymem.c): locked, not in core dumps, wiped on free. */
void	*ktls_keymem_alloc(size_t len);
void	ktls_keymem_free(void *p, size_t len);

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
	/* The worker's window of the file (filemap.c). */
	uint8_t		*map;
	off_t		map_off;
	size_t		map_len;
	bool		nomap;	/* not mappable: pread() */
};

/* sendfile's single pass (filemap.c); worker only. */
const uint8_t *ktls_file_map(struct ktls_fileref *f, off_t off, size_t len);
void	ktls_file_unmap(struct ktls_fileref *f);
int	ktls_encrypt_guarded(const struct ktls_session *s,
	    struct ktls_crypt_op *op);

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
 *	> cork_mtx (ktls_tx_cork()), > poller_mtx (poller_start() from
 *	ktls_tx_cork() or ktls_poller_arm()), > pool_mtx (record alloc and
 *	free, ktls_tx_purge()), > kc_mtx (ktls_counter_add(): a thread's
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
 * reg_mtx).  so->mtx is released while a caller sleeps (ktls_sock_wait())
 * and while a writer copies (sock_queue()); wq->mtx and aio_mtx in their
 * condition waits.  A SIGSYS of the guard runs the ktls_* calls, which
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
	struct ktls_record	*open;		/* MSG_MORE: not framed yet */
	uint32_t		open_cap;	/* its payload capacity */
	uint8_t			open_type;
	size_t			queued;		/* wire bytes in the queue */
	int			error;		/* sticky, reported once */
	_Atomic bool		dead;		/* nothing more can be sent */
	int			nfds;		/* application fds in the table */
	bool			inherited;	/* from the parent of a fork() */
	bool			shut_wr;	/* shutdown(SHUT_WR) asked for */
	bool			fin_sent;	/* ... and done, queue empty */
	bool			armed;		/* poller watches kfd (holds a ref) */
	_Atomic uint32_t	arm_seq;	/* publishes so to the poller */
	bool			in_epoll;	/* kfd added to the poller */
	_Atomic int		mode;		/* TCP_TLS_MODE_SW or _IFNET */
	bool			switching;	/* a mode change waits for the queue */
	unsigned int		visit;		/* ktls_sock_foreach() generation */
	bool			corked;		/* on the autocork list (tx.c) */
	struct ktls_sock	*cork_next;	/* ... guarded by its lock */
	const void		*cork_owner;	/* ... the thread that corked */
	uint64_t		cork_ns;	/* ... since when */

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
	uint64_t		inv_last_sent;	/* ktls_tx_flush(): last seq */
	uint64_t		inv_last_enc;	/* ktls_encrypt(): last seq */
#endif
};

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

/* Big-endian 64-bit fields (rec_seq, explicit nonces). */
static inline uint64_t
ktls_be64dec(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (v);
}

static inline void
ktls_be64enc(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Wire bytes queued in all sockets of the process (for exit, see init.c). */
extern _Atomic size_t ktls_unsent;

struct ktls_sock *ktls_sock_hold(struct ktls_sock *so);
void	ktls_sock_rele(struct ktls_sock *so);
struct ktls_sock *ktls_sock_lookup(int fd);	/* returns a reference */
/* The same for the write family: also finds copies (sock.c). */
struct ktls_sock *ktls_sock_lookup_tx(int fd);
struct ktls_sock *ktls_sock_unlink(int fd);	/* the table's reference */
int	ktls_sock_link(int fd, struct ktls_sock *so);
int	ktls_sock_enable(int fd, const void *optval, socklen_t optlen);
struct timespec;
int	ktls_sock_wait(struct ktls_sock *so, const struct timespec *deadline);
/* Frame and queue a message's data (api.c); a negative errno on failure. */
/* nb: 1 non-blocking, 0 blocking, -1 as the socket's O_NONBLOCK says. */
ssize_t	ktls_sock_sendmsg(struct ktls_sock *so, const struct msghdr *msg,
	    int flags, int nb);
/* sendfile(2) and splice(2) from a pipe on an enabled socket (send.c). */
ssize_t	ktls_sock_sendfile(struct ktls_sock *so, int in_fd, off_t *offset,
	    size_t count);
ssize_t	ktls_sock_splice(struct ktls_sock *so, int in_fd, size_t len,
	    unsigned int flags);
void	ktls_sock_wakeup(struct ktls_sock *so);	/* so->mtx held */
/* Unlock so->mtx, then drop the references freed records left behind. */
void	ktls_sock_unlock(struct ktls_sock *so);
void	ktls_sock_fail(struct ktls_sock *so, int error, bool reset);
/* Frame the MSG_MORE record, if any (api.c); so->mtx held. */
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
 * writer itself while the socket's queue was empty (api.c), so never by
 * two threads at once.  0 or a negative errno (reset the connection).
 */
int	ktls_encrypt(struct ktls_record *r);

/* Workers (worker.c). */
int	ktls_workers_start(void);
unsigned int ktls_worker_pick(void);
void	ktls_enqueue(struct ktls_record *first, struct ktls_record *last,
	    unsigned int n);

/*
 * Transport (src/transport/tx.c), so->mtx held.  ktls_tx_flush sends the
 * ready prefix of the queue; it returns true when the kernel socket said
 * EAGAIN during this very call (the poller then finishes the job).
 */
bool	ktls_tx_flush(struct ktls_sock *so);
void	ktls_tx_purge(struct ktls_sock *so);
int	ktls_poller_arm(struct ktls_sock *so);
void	ktls_poller_forget(struct ktls_sock *so);
void	ktls_tx_reset(int kfd);
/*
 * Autocork (kern.ipc.tls.autocork_us > 0): the records just made ready
 * are sent by the next send on the socket, or when the calling thread
 * waits (ktls_push()), or by the poller after autocork_us, whichever
 * comes first.  With autocork off it is ktls_tx_flush().  so->mtx held;
 * so->last_write_ns is the time of the write that made the records.
 */
void	ktls_tx_cork(struct ktls_sock *so);
/*
 * Kernel mode (src/transport/kmode.c).  ktls_kmode_install: so->mtx held,
 * queue empty; 0 or a negative errno (EOPNOTSUPP: no kTLS, or not this
 * suite).  ktls_kmode_sendmsg: a send on a socket in kernel mode (no lock;
 * nb as ktls_sock_sendmsg's; type: the record type its message asked for,
 * already checked, or -1).  ktls_kmode_seq: the kernel's next sequence
 * number.
 */
int	ktls_kmode_install(struct ktls_sock *so);
ssize_t	ktls_kmode_sendmsg(struct ktls_sock *so, const struct msghdr *msg,
	    int flags, int nb, int type);
int	ktls_kmode_seq(struct ktls_sock *so, uint64_t *seq);
/* Send the records this thread corked (no lock held). */
void	ktls_tx_push_mine(void);
void	ktls_tx_push_all(void);		/* every thread's (exit, exec) */
void	ktls_cork_atfork_child(void);

#endif /* KTLS_INT_H */
