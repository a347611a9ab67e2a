/* SPDX-License-Identifier: BSD-2-Clause */
/* The LD_PRELOAD interposer's private header. */
#ifndef KTLS_INTERPOSE_H
#define KTLS_INTERPOSE_H

#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/*
 * libc's functions of the names the interposer defines and calls on, all
 * of them, resolved the one way: dlsym(RTLD_NEXT) once, at load time (or
 * at the first call, should another library's constructor come first),
 * never from inside a call libc may make holding its own locks.  The
 * engine keeps its own table of the system calls it makes (ktls_sys).
 */
#define KTI_LIBC_CALLS(X)						\
	X(getsockopt) X(execve) X(execvpe) X(fexecve)			\
	X(dlopen) X(dlmopen) X(fclose) X(popen) X(system)		\
	X(posix_spawn) X(posix_spawnp) X(posix_spawn_file_actions_adddup2) \
	X(pthread_sigmask) X(sigprocmask) X(sigaction)			\
	X(read) X(readv) X(recv) X(recvfrom) X(recvmsg) X(recvmmsg)	\
	X(poll) X(ppoll) X(select) X(pselect)				\
	X(epoll_wait) X(epoll_pwait) X(epoll_pwait2)			\
	X(nanosleep) X(clock_nanosleep)

struct kti_libc {
#define KTI_LIBC_FIELD(name)	__typeof__(&name) name;
	KTI_LIBC_CALLS(KTI_LIBC_FIELD)
#undef KTI_LIBC_FIELD
};
extern struct kti_libc kti_libc;
extern _Atomic bool kti_libc_ready;

/*
 * The table, resolved.  Inlined and, with kti_libc_init(), left out of
 * ThreadSanitizer's instrumentation: its runtime calls our sigaction()
 * while it initializes itself, before it can trace a call.
 */
#if defined(__SANITIZE_THREAD__)
#define KTI_NO_TSAN	__attribute__((no_sanitize_thread))
#else
#define KTI_NO_TSAN
#endif
KTI_NO_TSAN void kti_libc_init(void);

static inline __attribute__((always_inline)) const struct kti_libc *
kti_libc_get(void)
{
	if (__builtin_expect(!atomic_load_explicit(&kti_libc_ready,
	    memory_order_acquire), 0))
		kti_libc_init();
	return (&kti_libc);
}

/* Returned by the Linux API handlers for "not mine: call libc". */
#define KTI_PASS	(-2)

int	kti_setsockopt(int fd, int level, int optname, const void *optval,
	    socklen_t optlen);
int	kti_getsockopt(int fd, int level, int optname, void *optval,
	    socklen_t *optlen);
/* Descriptor bookkeeping of the ULP state (the engine follows its own). */
/* The ULP state alone (the engine follows the descriptor itself). */
void	kti_ulp_dup(int oldfd, int newfd);
void	kti_ulp_forget(int fd);

/* libc's function of the same name, as next_ in the calling function. */
#define NEXT(name)	__typeof__(&name) next_ = kti_libc_get()->name

#endif /* KTLS_INTERPOSE_H */
