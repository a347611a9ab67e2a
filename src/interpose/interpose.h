/* SPDX-License-Identifier: BSD-2-Clause */
/* The LD_PRELOAD interposer's private header. */
#ifndef KTLS_INTERPOSE_H
#define KTLS_INTERPOSE_H

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

/* The interposer's calls that are libc's and not the engine's. */
struct kti_libc {
	int	(*getsockopt)(int, int, int, void *, socklen_t *);
};
extern struct kti_libc kti_libc;
void	kti_libc_init(void);

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

/*
 * libc's function of the same name, as next_ in the calling function,
 * found on the first call (two threads may both look it up: the same
 * answer, stored atomically).
 */
#define NEXT(name)							\
	static _Atomic(void *) next_p_;					\
	__typeof__(&name) next_ = (__typeof__(&name))atomic_load_explicit(\
	    &next_p_, memory_order_relaxed);				\
	if (__builtin_expect(next_ == NULL, 0)) {			\
		next_ = (__typeof__(&name))dlsym(RTLD_NEXT, #name);	\
		atomic_store_explicit(&next_p_, (void *)next_,		\
		    memory_order_relaxed);				\
	}

#endif /* KTLS_INTERPOSE_H */
