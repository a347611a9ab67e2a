/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guard's private declarations, shared by its files (the design is in
 * guard.c's opening comment):
 *
 *   guard.c         its state, installation, KTLS_GUARD/KTLS_IO_URING,
 *                   the public on/refresh/atfork entry points;
 *   guard_bpf.c     the trapped system calls and the seccomp program;
 *   guard_maps.c    the watched ranges (/proc/self/maps) and loading a
 *                   filter for them;
 *   guard_gadget.c  the engine's system-call page and the seam's switch
 *                   to it;
 *   guard_trap.c    the SIGSYS handler and its dispatch to the ktls_*
 *                   calls, the vfork child's path, ktls_sigaction().
 */
#ifndef KTLS_GUARD_INT_H
#define KTLS_GUARD_INT_H

#include <linux/filter.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#if !defined(__x86_64__)
#error "the guard is written for x86_64 (seccomp_data offsets, syscall ABI)"
#endif

/*
 * The engine's system-call page: the same address in every image, so
 * that every filter, inherited ones too, leaves it alone.  Below where
 * the kernel maps libraries (under the stack, a random 0-1 TiB lower:
 * 0x7eff... at the lowest) and inside what both sanitizers let a program
 * map: ASan's high memory (above 0x10007fff8000) and the gap GCC 12's
 * libtsan leaves between its reservations (which end at 0x7e8000000000).
 */
#define GADGET_ADDR	0x7e8b74000000UL
#define GADGET_SIZE	4096UL
/* SECCOMP_RET_DATA of the guard's traps: si_errno of its SIGSYS. */
#define GUARD_MAGIC	0x6b74
#define MAX_RANGES	1024

struct range {
	uintptr_t	lo, hi;		/* [lo, hi) */
};

/*
 * State shared by the guard's files (guard.c), under guard_mtx except
 * where said.
 */
extern pthread_mutex_t guard_mtx;
extern bool guard_allow_uring;		/* KTLS_IO_URING=allow; set at load */
/* The gadget page (guard_gadget.c): its stub, NULL until mapped. */
typedef long (*gadget_fn)(long, long, long, long, long, long, long);
extern gadget_fn guard_gadget;
int	guard_map_gadget(void);
void	guard_switch_seam(void);

/* The seccomp program for a set of ranges (guard_bpf.c). */
int	guard_build_filter(const struct range *rs, int n,
	    struct sock_fprog *prog);

/* The watched ranges (guard_maps.c). */
int	guard_read_ranges(struct range *out, int max);
int	guard_load_filter(const struct range *rs, int n);

/* The handler (guard_trap.c). */
int	guard_set_handler(struct sigaction *old);
void	guard_keep_app_sigsys(const struct sigaction *old);

#endif /* KTLS_GUARD_INT_H */
