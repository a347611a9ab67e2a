/* SPDX-License-Identifier: BSD-2-Clause */
/* The LD_PRELOAD interposer's private header. */
#ifndef KTLS_INTERPOSE_H
#define KTLS_INTERPOSE_H

#include <pthread.h>
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

#endif /* KTLS_INTERPOSE_H */
