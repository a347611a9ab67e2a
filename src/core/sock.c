/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Enabled sockets: the fd table, enabling, references, waiting, failure.
 *
 * The fd table maps an application fd number to its ktls_sock.  A call on
 * an fd the table does not hold costs one relaxed load before it goes to
 * libc (invariant 6).  Lookups that find a socket take a reference under
 * the table's read lock; close takes the write lock to remove it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"

static _Atomic(struct ktls_sock *) *fdtab;
static int fdtab_size;
static pthread_rwlock_t fdtab_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t fdtab_once = PTHREAD_ONCE_INIT;

/*
 * Enabled sockets by identity (their sockfs inode), so that a second
 * descriptor of an enabled socket (dup(2)) cannot give it a second session
 * (EALREADY, as FreeBSD, whose session hangs off the socket).  Under
 * fdtab_lock.
 */
#define INO_HASH	256
static struct ktls_sock *ino_hash[INO_HASH];

static struct ktls_sock **
ino_slot(ino_t ino)
{
	return (&ino_hash[(ino * 0x9e3779b97f4a7c15ULL) >> 56 & (INO_HASH - 1)]);
}

/* Copies of sockets made before their enable (sockdup_adopt()). */
struct sockdup {
	ino_t	ino;
	int	fd;
};
static pthread_mutex_t sockdup_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct sockdup *sockdups;
static size_t nsockdups, sockdups_cap;

/* Sessions in the inode index (ktls_fd_is_enabled_ro()'s fstat). */
static _Atomic int ino_count;

static bool
ino_enabled(ino_t ino)
{
	for (struct ktls_sock *so = *ino_slot(ino); so != NULL; so = so->ino_next)
		if (so->ino == ino)
			return (true);
	return (false);
}

static void
ino_remove(struct ktls_sock *so)
{
	struct ktls_sock **pp;

	pthread_rwlock_wrlock(&fdtab_lock);
	for (pp = ino_slot(so->ino); *pp != NULL; pp = &(*pp)->ino_next) {
		if (*pp == so) {
			*pp = so->ino_next;
			atomic_fetch_sub(&ino_count, 1);
			break;
		}
	}
	pthread_rwlock_unlock(&fdtab_lock);
}

/*
 * Once the guard is up, what a number that is not in the table was found
 * to be (ktls_sock_lookup_tx()): not a socket (until the number is closed
 * or replaced, which the engine sees: the guard traps libc's own and raw
 * close and dup too), or a socket without a session as of the enable
 * generation in the high bits (an enable may have made it a copy of an
 * enabled socket: a dup made before the enable).  0: not known.
 */
#define FK_NOTSOCK	1u
#define FK_PLAIN	2u
static _Atomic uint32_t *fdkind;
static _Atomic uint32_t enable_gen;

static void
fdkind_forget(int fd)
{
	if (fdkind != NULL && fd >= 0 && fd < fdtab_size)
		atomic_store_explicit(&fdkind[fd], 0, memory_order_relaxed);
}

void
ktls_fd_forget(int fd)
{
	fdkind_forget(fd);
}

static void
fdtab_init(void)
{
	struct rlimit rl;
	rlim_t n = 65536;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max > n)
		n = rl.rlim_max;
	if (n > (1 << 22))
		n = 1 << 22;
	/* Zero pages: only the parts in use ever take memory. */
	fdtab = calloc((size_t)n, sizeof(*fdtab));
	fdkind = calloc((size_t)n, sizeof(*fdkind));
	if (fdkind == NULL) {
		free(fdtab);
		fdtab = NULL;
	}
	fdtab_size = fdtab != NULL ? (int)n : 0;
}

struct ktls_sock *
ktls_sock_lookup(int fd)
{
	struct ktls_sock *so;

	if (fdtab == NULL || fd < 0 || fd >= fdtab_size ||
	    atomic_load_explicit(&fdtab[fd], memory_order_relaxed) == NULL)
		return (NULL);
	pthread_rwlock_rdlock(&fdtab_lock);
	so = atomic_load_explicit(&fdtab[fd], memory_order_relaxed);
	if (so != NULL)
		ktls_sock_hold(so);
	pthread_rwlock_unlock(&fdtab_lock);
	return (so);
}

/*
 * A write-family lookup.  With the guard up, a number the engine did not
 * see become a descriptor of an enabled socket (a dup made before the
 * enable, a descriptor this process sent itself) is found by the socket's
 * inode and becomes one more descriptor of the session, never a plaintext
 * path (invariant 7).  fdkind keeps the answer for other numbers, so the
 * fstat() is paid once per number (and per socket, once per enable).
 */
struct ktls_sock *
ktls_sock_lookup_tx(int fd)
{
	struct ktls_sock *so = ktls_sock_lookup(fd), *s;
	struct stat st;
	uint32_t k, gen;
	bool found;

	if (so != NULL || !ktls_guard_active() || fdkind == NULL || fd < 0 ||
	    fd >= fdtab_size || atomic_load_explicit(&ino_count,
	    memory_order_relaxed) == 0)
		return (so);
	gen = atomic_load_explicit(&enable_gen, memory_order_acquire);
	k = atomic_load_explicit(&fdkind[fd], memory_order_relaxed);
	if (k == FK_NOTSOCK || k == (FK_PLAIN | gen << 2))
		return (NULL);
	if (fstat(fd, &st) != 0)
		return (NULL);
	if (!S_ISSOCK(st.st_mode)) {
		atomic_store_explicit(&fdkind[fd], FK_NOTSOCK,
		    memory_order_relaxed);
		return (NULL);
	}
	/*
	 * The search under the read lock: a signal handler's write may come
	 * here while its thread holds it (ktls_exec_prepare()).  Only an
	 * adoption, which is rare, takes the write lock.
	 */
	pthread_rwlock_rdlock(&fdtab_lock);
	found = ino_enabled(st.st_ino);
	pthread_rwlock_unlock(&fdtab_lock);
	if (!found) {
		atomic_store_explicit(&fdkind[fd], FK_PLAIN | gen << 2,
		    memory_order_relaxed);
		return (NULL);
	}
	if (!ktls_owner())
		return (NULL);
	pthread_rwlock_wrlock(&fdtab_lock);
	for (s = *ino_slot(st.st_ino); s != NULL; s = s->ino_next)
		if (s->ino == st.st_ino && atomic_load(&s->refs) > 0)
			break;
	if (s != NULL && atomic_load(&fdtab[fd]) == NULL) {
		/* nfds first, under the table lock: a close may follow. */
		pthread_mutex_lock(&s->mtx);
		s->nfds++;
		pthread_mutex_unlock(&s->mtx);
		ktls_sock_hold(s);		/* the table's */
		atomic_store(&fdtab[fd], s);
		so = ktls_sock_hold(s);		/* the caller's */
	} else if (s != NULL) {
		so = ktls_sock_hold(atomic_load(&fdtab[fd]));
	}
	pthread_rwlock_unlock(&fdtab_lock);
	return (so);
}

/*
 * The same question without touching the engine's state: for a
 * vfork()-style child, which shares this memory but not the descriptors.
 */
bool
ktls_fd_is_enabled_ro(int fd)
{
	struct stat st;
	bool found;

	if (fdtab != NULL && fd >= 0 && fd < fdtab_size &&
	    atomic_load_explicit(&fdtab[fd], memory_order_relaxed) != NULL)
		return (true);
	if (atomic_load_explicit(&ino_count, memory_order_relaxed) == 0 ||
	    fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return (false);
	pthread_rwlock_rdlock(&fdtab_lock);
	found = ino_enabled(st.st_ino);
	pthread_rwlock_unlock(&fdtab_lock);
	return (found);
}

bool
ktls_fd_is_enabled(int fd)
{
	struct ktls_sock *so = ktls_sock_lookup_tx(fd);

	if (so == NULL)
		return (false);
	ktls_sock_rele(so);
	return (true);
}

/* Take fd out of the table; returns the table's reference, or NULL. */
struct ktls_sock *
ktls_sock_unlink(int fd)
{
	struct ktls_sock *so;

	if (fdtab == NULL || fd < 0 || fd >= fdtab_size)
		return (NULL);
	if (atomic_load_explicit(&fdtab[fd], memory_order_relaxed) == NULL) {
		fdkind_forget(fd);
		return (NULL);
	}
	/* A vfork child's close: the parent's entry stays. */
	if (!ktls_owner())
		return (NULL);
	fdkind_forget(fd);
	pthread_rwlock_wrlock(&fdtab_lock);
	so = atomic_exchange_explicit(&fdtab[fd], NULL, memory_order_relaxed);
	pthread_rwlock_unlock(&fdtab_lock);
	return (so);
}

/* Enter so under fd (a reference of the caller's becomes the table's). */
int
ktls_sock_link(int fd, struct ktls_sock *so)
{
	int error = 0;

	pthread_once(&fdtab_once, fdtab_init);
	if (fd < 0 || fd >= fdtab_size)
		return (-EBADF);
	pthread_rwlock_wrlock(&fdtab_lock);
	if (atomic_load(&fdtab[fd]) != NULL)
		error = -EBUSY;
	else
		atomic_store(&fdtab[fd], so);
	pthread_rwlock_unlock(&fdtab_lock);
	return (error);
}

struct ktls_sock *
ktls_sock_hold(struct ktls_sock *so)
{
	atomic_fetch_add_explicit(&so->refs, 1, memory_order_relaxed);
	return (so);
}

static void
sock_destroy(struct ktls_sock *so)
{
	enum ktls_counter gauge = ktls_sock_gauge(so);

	KASSERT(so->head == NULL, ("%s: queue not empty", __func__));
	if (so->open != NULL)	/* a MSG_MORE record never closed */
		ktls_record_free(so->open);
	ino_remove(so);
	ktls_sock_txo(so)->forget(so);
	ktls_sys.close(so->kfd);
	ktls_session_destroy(so->tx);
	pthread_mutex_destroy(&so->mtx);
	if (!so->inherited) {
		ktls_counter_add(KC_ACTIVE, -1);
		ktls_counter_add(gauge, -1);
	}
	free(so);
}

void
ktls_sock_rele(struct ktls_sock *so)
{
	if (atomic_fetch_sub_explicit(&so->refs, 1, memory_order_acq_rel) == 1)
		sock_destroy(so);
}

void
ktls_sock_unlock(struct ktls_sock *so)
{
	int n = so->pending_rele;

	so->pending_rele = 0;
	pthread_mutex_unlock(&so->mtx);
	/* Records freed under the lock held references: drop them now. */
	while (n-- > 0)
		ktls_sock_rele(so);
}

void
ktls_sock_wakeup(struct ktls_sock *so)
{
	atomic_fetch_add_explicit(&so->progress, 1, memory_order_release);
	if (so->waiters > 0)
		syscall(SYS_futex, &so->progress, FUTEX_WAKE_PRIVATE, INT_MAX,
		    NULL, NULL, 0);
}

/*
 * Sleep until the socket makes progress.  so->mtx held on entry and on
 * return.  Like a blocking socket call: without a deadline the futex wait
 * is restarted after a signal handler installed with SA_RESTART and fails
 * with EINTR otherwise; with a deadline (SO_SNDTIMEO) a handler always
 * means EINTR.  Returns 0, -EINTR, or -EAGAIN when the deadline passed.
 */
int
ktls_sock_wait(struct ktls_sock *so, const struct timespec *deadline)
{
	struct timespec now, rel, *relp = NULL;
	uint32_t seen = atomic_load_explicit(&so->progress,
	    memory_order_acquire);
	long r;
	int error = 0;

	if (deadline != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		rel.tv_sec = deadline->tv_sec - now.tv_sec;
		rel.tv_nsec = deadline->tv_nsec - now.tv_nsec;
		if (rel.tv_nsec < 0) {
			rel.tv_nsec += 1000000000L;
			rel.tv_sec--;
		}
		if (rel.tv_sec < 0)
			return (-EAGAIN);
		relp = &rel;
	}
	so->waiters++;
	pthread_mutex_unlock(&so->mtx);
	r = syscall(SYS_futex, &so->progress, FUTEX_WAIT_PRIVATE, seen, relp,
	    NULL, 0);
	if (r != 0 && errno == EINTR)
		error = -EINTR;
	else if (r != 0 && errno == ETIMEDOUT)
		error = -EAGAIN;
	pthread_mutex_lock(&so->mtx);
	so->waiters--;
	return (error);
}

/*
 * The socket can send nothing more: remember why, drop what was ready,
 * and reset the connection when a record could not be made (invariants 1
 * and 3: the peer sees a reset, never a clear or broken record, and the
 * application sees the error on its next call).
 */
void
ktls_sock_fail(struct ktls_sock *so, int error, bool reset)
{
	if (so->error == 0 && !atomic_load(&so->dead))
		so->error = error;
	atomic_store(&so->dead, true);
	if (so->open != NULL) {
		ktls_record_free(so->open);
		so->open = NULL;
	}
	if (reset)
		ktls_tx_reset(so->kfd);
	ktls_sock_purge(so);
	ktls_sock_wakeup(so);
}

/* Unlink and free the head record, sent or abandoned. */
static void
sock_dequeue(struct ktls_sock *so)
{
	struct ktls_record *r = so->head;

	so->head = r->next;
	if (so->head == NULL)
		so->tail = NULL;
	so->queued -= r->wire_len;
	atomic_fetch_sub_explicit(&ktls_unsent, r->wire_len,
	    memory_order_relaxed);
	ktls_record_free(r);
	/* The record's socket reference: dropped after so->mtx is released. */
	so->pending_rele++;
}

void
ktls_sock_sent(struct ktls_sock *so)
{
#ifdef KTLS_INVARIANTS
	const struct ktls_record *r = so->head;

	/* Invariant 2: records leave whole, ready, in sequence order. */
	KASSERT(r != NULL && atomic_load_explicit(&r->ready,
	    memory_order_relaxed) && so->inv_framed && (so->inv_sent ?
	    so->inv_last_sent != UINT64_MAX && r->seq == so->inv_last_sent + 1 :
	    r->seq == so->inv_first_seq),
	    ("%s: record seq %ju sent after %ju%s", __func__,
	    r != NULL ? (uintmax_t)r->seq : 0, (uintmax_t)so->inv_last_sent,
	    so->inv_sent ? "" : " (none yet)"));
	so->inv_sent = true;
	so->inv_last_sent = r->seq;
#endif
	sock_dequeue(so);
}

void
ktls_sock_purge(struct ktls_sock *so)
{
	if (so->head_busy)
		return;		/* the sender purges when it has the lock */
	while (so->head != NULL &&
	    atomic_load_explicit(&so->head->ready, memory_order_acquire))
		sock_dequeue(so);
}

void
ktls_sock_foreach(void (*fn)(struct ktls_sock *so, void *arg), void *arg)
{
	static unsigned int gen;
	struct ktls_sock **list = NULL, *so;
	size_t n = 0, cap = 0;

	/* Collect under the table lock, call without it: fn may block. */
	pthread_rwlock_rdlock(&fdtab_lock);
	gen++;
	for (int fd = 0; fdtab != NULL && fd < fdtab_size; fd++) {
		if ((so = atomic_load(&fdtab[fd])) == NULL || so->visit == gen)
			continue;
		so->visit = gen;
		if (n == cap) {
			struct ktls_sock **nl;

			cap = cap ? cap * 2 : 64;
			if ((nl = realloc(list, cap * sizeof(*nl))) == NULL)
				break;
			list = nl;
		}
		list[n++] = ktls_sock_hold(so);
	}
	pthread_rwlock_unlock(&fdtab_lock);
	for (size_t i = 0; i < n; i++) {
		fn(list[i], arg);
		ktls_sock_rele(list[i]);
	}
	free(list);
}

/*
 * In a fork()ed child, alone with the sockets it inherited: the keys were
 * wiped (MADV_WIPEONFORK) and sharing a session with the parent would
 * reuse its nonces (invariant 2), so an inherited enabled socket can send
 * nothing more from here: every write fails with EPIPE, nothing goes out
 * in the clear (invariant 1), and close() frees it.  The parent's queues
 * and records are left alone; the threads that owned them are gone.
 */
void
ktls_sock_atfork_child(void)
{
	struct ktls_sock *so;

	pthread_rwlock_init(&fdtab_lock, NULL);
	pthread_mutex_init(&sockdup_mtx, NULL);
	atomic_store(&ktls_unsent, 0);
	for (int fd = 0; fdtab != NULL && fd < fdtab_size; fd++) {
		if ((so = atomic_load(&fdtab[fd])) == NULL)
			continue;
		pthread_mutex_init(&so->mtx, NULL);
		atomic_store(&so->refs, 1);
		atomic_store(&so->dead, true);
		so->inherited = true;	/* not in this process's counters */
		so->error = 0;
		so->head = so->tail = NULL;
		so->queued = 0;
		so->at_worker = 0;
		ktls_tx_sock_atfork_child(so);
		so->waiters = so->pending_rele = 0;
	}
}

/*
 * Before exec: the new image would hold an enabled socket without the
 * engine, and write to it in the clear (invariant 1), and the queues would
 * die with this image (invariant 3).  So the queues are sent first, and
 * the application's descriptors of enabled sockets become close-on-exec:
 * the connection ends with this image, as cleanly as at exit.
 */
/*
 * The close-on-exec half of ktls_exec_prepare() alone, for a vfork()
 * child about to exec (its own descriptor table; the parent's queues are
 * not its to wait for).
 */
void
ktls_exec_cloexec(void)
{
	int fl;

	for (int fd = 0; fdtab != NULL && fd < fdtab_size; fd++) {
		if (atomic_load_explicit(&fdtab[fd], memory_order_relaxed) ==
		    NULL)
			continue;
		if ((fl = ktls_sys.fcntl(fd, F_GETFD)) >= 0)
			ktls_sys.fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
}

KTLS_EXPORT void
ktls_exec_prepare(void)
{
	int fl;

	if (fdtab == NULL)
		return;
	ktls_drain_all();
	pthread_rwlock_rdlock(&fdtab_lock);
	for (int fd = 0; fd < fdtab_size; fd++) {
		if (atomic_load_explicit(&fdtab[fd], memory_order_relaxed) ==
		    NULL)
			continue;
		if ((fl = ktls_sys.fcntl(fd, F_GETFD)) >= 0)
			ktls_sys.fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	pthread_rwlock_unlock(&fdtab_lock);
}

/*
 * Copies of sockets made before their enable (dup, dup2, dup3, F_DUPFD of
 * a socket that has no session yet): at the enable each becomes a
 * descriptor of the session, so that the session lives while any
 * descriptor of the socket is open and none of them is a plaintext path.
 * Entries are checked (fstat) when used and pruned when stale.
 */

static bool
fd_is_ino(int fd, ino_t ino)
{
	struct stat st;

	return (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_ino == ino);
}

/* Drop entries whose number is no longer that socket.  sockdup_mtx held. */
static void
sockdup_prune(void)
{
	size_t j = 0;

	for (size_t i = 0; i < nsockdups; i++)
		if (fd_is_ino(sockdups[i].fd, sockdups[i].ino))
			sockdups[j++] = sockdups[i];
	nsockdups = j;
}

/* newfd was made a copy of oldfd, which is not enabled. */
void
ktls_sock_note_dup(int oldfd, int newfd)
{
	struct stat st;

	if (fstat(oldfd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return;
	pthread_mutex_lock(&sockdup_mtx);
	if (nsockdups + 2 > sockdups_cap)
		sockdup_prune();
	if (nsockdups + 2 > sockdups_cap) {
		size_t cap = sockdups_cap ? sockdups_cap * 2 : 16;
		struct sockdup *n = realloc(sockdups, cap * sizeof(*n));

		if (n != NULL) {
			sockdups = n;
			sockdups_cap = cap;
		}
	}
	if (nsockdups + 2 <= sockdups_cap) {
		sockdups[nsockdups++] = (struct sockdup){ st.st_ino, oldfd };
		sockdups[nsockdups++] = (struct sockdup){ st.st_ino, newfd };
	}
	pthread_mutex_unlock(&sockdup_mtx);
}

/*
 * At the enable of so (under fdtab_lock, written): its socket's other
 * known descriptors join the session.
 */
static void
sockdup_adopt(struct ktls_sock *so, int fd)
{
	pthread_mutex_lock(&sockdup_mtx);
	for (size_t i = 0; i < nsockdups; i++) {
		int d = sockdups[i].fd;

		if (sockdups[i].ino != so->ino || d == fd || d < 0 ||
		    d >= fdtab_size || atomic_load(&fdtab[d]) != NULL ||
		    !fd_is_ino(d, so->ino))
			continue;
		so->nfds++;
		ktls_sock_hold(so);		/* the new entry's */
		atomic_store(&fdtab[d], so);
	}
	sockdup_prune();
	pthread_mutex_unlock(&sockdup_mtx);
}

/* Is fd a connected TCP socket?  0, or the errno enabling fails with. */
static int
sock_check_tcp(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int type, proto;

	len = sizeof(type);
	if (ktls_sys.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
		return (-errno);
	len = sizeof(proto);
	if (ktls_sys.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0)
		return (-errno);
	if (type != SOCK_STREAM || proto != IPPROTO_TCP)
		return (-EINVAL);
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return (-ENOTCONN);
	return (0);
}

/* TCP_TXTLS_ENABLE (FreeBSD's ktls_enable_tx()). */
int
ktls_sock_enable(int fd, const void *optval, socklen_t optlen)
{
	struct ktls_session *sess;
	struct ktls_sock *so;
	struct stat st;
	uint8_t rs[8];
	bool busy;
	int error, kfd;

	ktls_init();
	ktls_counter_add(KC_ENABLE_CALLS, 1);
	if (!atomic_load(&ktls_tunable_enable))
		return (-EOPNOTSUPP);
	if ((error = sock_check_tcp(fd)) != 0)
		return (error);
	/* Invariant 7: no session without the guard (guard.c). */
	if ((error = ktls_guard_install()) != 0)
		return (error);
	pthread_once(&fdtab_once, fdtab_init);
	if (fd >= fdtab_size)
		return (-EMFILE);
	if (fstat(fd, &st) != 0)
		return (-errno);
	pthread_rwlock_rdlock(&fdtab_lock);
	busy = atomic_load(&fdtab[fd]) != NULL || ino_enabled(st.st_ino);
	pthread_rwlock_unlock(&fdtab_lock);
	if (busy)
		return (-EALREADY);
	if ((error = ktls_session_create(optval, optlen, &sess)) != 0)
		return (error);
	if ((error = ktls_workers_start()) != 0)
		goto err_session;
	/*
	 * The engine sends on its own descriptor of the socket, so that
	 * close(fd) frees the number at once while queued records still go
	 * out, and a new socket that reuses the number never sees them.
	 */
	if ((kfd = ktls_sys.fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		error = -errno;
		goto err_session;
	}
	if (ktls_fault_hit(KF_SOCK_ALLOC) ||
	    (so = calloc(1, sizeof(*so))) == NULL) {
		error = -ENOMEM;
		goto err_kfd;
	}
	pthread_mutex_init(&so->mtx, NULL);
	atomic_init(&so->refs, 1);		/* the table's */
	so->nfds = 1;
	so->kfd = kfd;
	so->ino = st.st_ino;
	so->tx = sess;
	atomic_init(&so->txo, &ktls_tx_sw);
	so->worker = ktls_worker_pick();
	/* optval need not be aligned for a struct tls_enable (fuzz_enable). */
	memcpy(rs, (const uint8_t *)optval + offsetof(struct tls_enable,
	    rec_seq), sizeof(rs));
	so->next_seq = ktls_be64dec(rs);

	pthread_rwlock_wrlock(&fdtab_lock);
	busy = atomic_load(&fdtab[fd]) != NULL || ino_enabled(so->ino);
	if (!busy) {
		so->ino_next = *ino_slot(so->ino);
		*ino_slot(so->ino) = so;
		atomic_fetch_add(&ino_count, 1);
		sockdup_adopt(so, fd);
		/* Numbers known as plain sockets may be copies of this one. */
		atomic_fetch_add_explicit(&enable_gen, 1, memory_order_release);
		atomic_store(&fdtab[fd], so);
	}
	pthread_rwlock_unlock(&fdtab_lock);
	if (busy) {
		error = -EALREADY;
		goto err_so;
	}
	ktls_counter_add(KC_OFFLOAD_TOTAL, 1);
	ktls_counter_add(KC_ACTIVE, 1);
	ktls_control_start();
	ktls_counter_add(sess->suite->sw_counter, 1);
	/*
	 * FreeBSD's order: the layer below when permitted and able (here the
	 * kernel's TLS), else software.  Nothing is queued yet, unless another
	 * thread writes already: then software it stays.
	 */
	if (atomic_load(&ktls_tunable_ifnet_permitted)) {
		pthread_mutex_lock(&so->mtx);
		if (so->head == NULL && so->open == NULL)
			(void)ktls_sock_attach(so, &ktls_tx_kernel);
		pthread_mutex_unlock(&so->mtx);
	}
	return (0);

err_so:
	pthread_mutex_destroy(&so->mtx);
	free(so);
err_kfd:
	ktls_sys.close(kfd);
err_session:
	ktls_session_destroy(sess);
	return (error);
}
