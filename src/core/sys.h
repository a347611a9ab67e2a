/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What every layer of the engine may use (core, crypto glue, transport):
 * the system-call seam, assertions, fault injection, engine threads and
 * byte order.  Nothing here knows of sockets or sessions.
 */
#ifndef KTLS_SYS_H
#define KTLS_SYS_H

#include <aio.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

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
 * needs faking in a test: fstat, open (/proc/loadavg, worker.c),
 * mmap/munmap/madvise/mlock, socket, bind,
 * listen, accept4, connect (the reset in tx.c), getpeername, getsockname,
 * epoll_create1, epoll_ctl, epoll_pwait2 (the poller), eventfd, prctl and
 * seccomp (the guard), futex (sock.c's waits), clock_gettime.
 */

/* Resolve the ktls_sys table, once (init.c). */
void	ktls_sys_init(void);

/* A detached engine thread that takes no signal (thread.c). */
int	ktls_thread_start(void *(*fn)(void *), void *arg, const char *name);

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

#endif /* KTLS_SYS_H */
