/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guard's SIGSYS handler: it completes a trapped call, through the
 * engine's ktls_* call for an enabled socket, refused where the engine
 * cannot route it, otherwise unchanged from the gadget page; a vfork()
 * child's calls, which touch none of the engine's state; the
 * application's SIGSYS handler, recorded (ktls_sigaction()) and chained;
 * the guard's counters of trapped and refused calls.
 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"
#include "guard_int.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP	1	/* si_code of a seccomp SIGSYS */
#endif

/* The application's SIGSYS disposition (kernel layout), and a lock-free
 * copy for the handler: it is only ever replaced whole. */
struct ksigaction {
	void		*handler;
	unsigned long	 flags;
	void		*restorer;
	uint64_t	 mask;
};
static struct ksigaction app_sigsys;

static void guard_sigsys(int sig, siginfo_t *si, void *ucv);
static void guard_sigsys_body(int sig, siginfo_t *si, void *ucv);

/*
 * The guard's SIGSYS handler, installed through libc (its restorer), the
 * previous disposition in *old.  SA_NODEFER: a trap inside the handler
 * (it makes calls of its own) must not find SIGSYS blocked.
 */
int
guard_set_handler(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return (ktls_sys.sigaction(SIGSYS, &sa, old));
}

/*
 * The application's SIGSYS disposition, from the one guard_set_handler()
 * replaced.
 */
void
guard_keep_app_sigsys(const struct sigaction *old)
{
	app_sigsys = (struct ksigaction){ .handler = (void *)old->sa_sigaction,
	    .flags = (unsigned long)old->sa_flags };
	memcpy(&app_sigsys.mask, &old->sa_mask, sizeof(app_sigsys.mask));
}

static void
chain_app(int sig, siginfo_t *si, void *uc)
{
	struct ksigaction a = app_sigsys;

	if (a.handler == SIG_IGN)
		return;
	if (a.handler == SIG_DFL) {
		/* The default action: die of SIGSYS, as without the engine. */
		struct ksigaction dfl = { .handler = SIG_DFL };

		guard_gadget(SYS_rt_sigaction, SIGSYS, (long)&dfl, 0, 8, 0, 0);
		guard_gadget(SYS_tgkill, getpid(), gettid(), SIGSYS, 0, 0, 0);
		return;
	}
	if (a.flags & SA_RESETHAND)
		app_sigsys.handler = SIG_DFL;
	if (a.flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))a.handler)(sig, si, uc);
	else
		((void (*)(int))a.handler)(sig);
}

/*
 * sigaction(2) for the application: SIGSYS, once the guard is up, is
 * recorded (and called by the guard's handler for every SIGSYS not its
 * own) instead of replacing the guard's handler.
 */
KTLS_EXPORT int
ktls_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	struct ksigaction prev;

	if (sig != SIGSYS || !ktls_guard_active())
		return (ktls_sys_init(), ktls_sys.sigaction(sig, act, oact));
	pthread_mutex_lock(&guard_mtx);
	prev = app_sigsys;
	if (act != NULL) {
		struct ksigaction k = { .handler = (void *)act->sa_sigaction,
		    .flags = (unsigned long)act->sa_flags };

		memcpy(&k.mask, &act->sa_mask, sizeof(k.mask));
		app_sigsys = k;
	}
	pthread_mutex_unlock(&guard_mtx);
	if (oact != NULL) {
		memset(oact, 0, sizeof(*oact));
		oact->sa_sigaction = (void (*)(int, siginfo_t *, void *))
		    prev.handler;
		oact->sa_flags = (int)prev.flags;
		memcpy(&oact->sa_mask, &prev.mask, sizeof(prev.mask));
	}
	return (0);
}

/* rt_sigaction(SIGSYS, act, oact, size) made by libc: recorded. */
static long
emulate_sigaction(const struct ksigaction *act, struct ksigaction *oact,
    size_t size)
{
	if (size != 8)
		return (-EINVAL);
	if (oact != NULL)
		*oact = app_sigsys;
	/* posix_spawn's child resetting handlers: not the process's. */
	if (act != NULL && ktls_owner())
		app_sigsys = *act;
	return (0);
}

/*
 * rt_sigprocmask(how, set, oset, size), without SIGSYS.  The handler's
 * return restores the mask saved in its context, so that is the mask
 * changed, not the thread's current one.
 */
static long
emulate_sigmask(ucontext_t *uc, int how, const uint64_t *set, uint64_t *oset,
    size_t size)
{
	uint64_t cur, want;

	if (size != 8)
		return (-EINVAL);
	memcpy(&cur, &uc->uc_sigmask, sizeof(cur));
	want = *set & ~(1ULL << (SIGSYS - 1));
	switch (how) {
	case SIG_BLOCK:
		want |= cur;
		break;
	case SIG_SETMASK:
		break;
	default:
		return (-EINVAL);
	}
	if (oset != NULL)
		*oset = cur;
	memcpy(&uc->uc_sigmask, &want, sizeof(want));
	return (0);
}

static long
neg(long r)
{
	return (r < 0 ? -errno : r);
}

/*
 * io_submit(2) of Linux AIO: the kernel would write an enabled socket
 * itself.  Refused (EPERM) when any request writes one; otherwise made.
 */
static long
guarded_io_submit(long ctx, long nr, struct iocb **iocbs, bool child)
{
	for (long i = 0; i < nr; i++) {
		const struct iocb *cb = iocbs[i];
		int fd = (int)cb->aio_fildes;

		if ((cb->aio_lio_opcode == IOCB_CMD_PWRITE ||
		    cb->aio_lio_opcode == IOCB_CMD_PWRITEV) &&
		    (child ? ktls_fd_is_enabled_ro(fd) :
		    ktls_fd_is_enabled(fd))) {
			if (!child)
				ktls_counter_add_shared(KC_GUARD_REFUSED, 1);
			return (i > 0 ? i : -EPERM);
		}
	}
	return (guard_gadget(SYS_io_submit, ctx, nr, (long)iocbs, 0, 0, 0));
}

/*
 * In a vfork()-style child: made unchanged, except a write onto an
 * enabled socket (refused: the engine's state is the parent's).
 */
static long
dispatch_child(long nr, const long *a)
{
	switch (nr) {
	case SYS_close: case SYS_close_range: case SYS_dup: case SYS_dup2:
	case SYS_dup3: case SYS_fcntl:
		/* Its own descriptor table: nothing of the engine's. */
		return (guard_gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
	case SYS_execve:
	case SYS_execveat:
		/* Its enabled sockets close-on-exec, in its own table. */
		ktls_exec_cloexec();
		return (guard_gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
	}
	if (nr == SYS_io_submit)
		return (guarded_io_submit(a[0], a[1], (struct iocb **)a[2],
		    true));
	if (nr == SYS_io_uring_setup)
		return (guard_allow_uring ?
		    guard_gadget(nr, a[0], a[1], 0, 0, 0, 0) : -ENOSYS);
	if (ktls_fd_is_enabled_ro((int)a[nr == SYS_splice ? 2 : 0]))
		return (-EPERM);
	if (nr == SYS_sendmsg && a[1] != 0 &&
	    ktls_rights_check((const struct msghdr *)a[1], true) != 0)
		return (-EPERM);
	if (nr == SYS_sendmmsg)
		for (long i = 0; i < (long)(unsigned int)a[2]; i++)
			if (ktls_rights_check(&((const struct mmsghdr *)a[1])[i]
			    .msg_hdr, true) != 0)
				return (-EPERM);
	return (guard_gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
}

static long
dispatch(long nr, const long *a, ucontext_t *uc)
{
	/* The signal calls first: a vfork child makes them too. */
	if (nr == SYS_rt_sigaction)
		return (emulate_sigaction((const struct ksigaction *)a[1],
		    (struct ksigaction *)a[2], (size_t)a[3]));
	if (nr == SYS_rt_sigprocmask)
		return (emulate_sigmask(uc, (int)a[0], (const uint64_t *)a[1],
		    (uint64_t *)a[2], (size_t)a[3]));
	/* Not the owner (a vfork()-style child): made unchanged. */
	if (!ktls_owner())
		return (dispatch_child(nr, a));
	switch (nr) {
	case SYS_execve:
	case SYS_execveat:
		ktls_exec_prepare();
		return (guard_gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
	case SYS_close:
		return (neg(ktls_close((int)a[0])));
	case SYS_close_range:
		return (neg(ktls_close_range((unsigned int)a[0],
		    (unsigned int)a[1], (int)a[2])));
	case SYS_dup:
		return (neg(ktls_dup((int)a[0])));
	case SYS_dup2:
		return (neg(ktls_dup2((int)a[0], (int)a[1])));
	case SYS_dup3:
		return (neg(ktls_dup3((int)a[0], (int)a[1], (int)a[2])));
	case SYS_fcntl:
		return (neg(ktls_fcntl((int)a[0], (int)a[1], a[2])));
	case SYS_write:
		return (neg(ktls_write((int)a[0], (const void *)a[1],
		    (size_t)a[2])));
	case SYS_writev:
		return (neg(ktls_writev((int)a[0], (const struct iovec *)a[1],
		    (int)a[2])));
	case SYS_pwrite64:
		return (neg(ktls_pwrite((int)a[0], (const void *)a[1],
		    (size_t)a[2], (off_t)a[3])));
	case SYS_pwritev:
		return (neg(ktls_pwritev((int)a[0], (const struct iovec *)a[1],
		    (int)a[2], (off_t)a[3])));
	case SYS_pwritev2:
		return (neg(ktls_pwritev2((int)a[0], (const struct iovec *)a[1],
		    (int)a[2], (off_t)a[3], (int)a[5])));
	case SYS_sendto:
		return (neg(ktls_sendto((int)a[0], (const void *)a[1],
		    (size_t)a[2], (int)a[3], (const struct sockaddr *)a[4],
		    (socklen_t)a[5])));
	case SYS_sendmsg:
		return (neg(ktls_sendmsg((int)a[0], (const struct msghdr *)a[1],
		    (int)a[2])));
	case SYS_sendmmsg:
		return (neg(ktls_sendmmsg((int)a[0], (struct mmsghdr *)a[1],
		    (unsigned int)a[2], (int)a[3])));
	case SYS_sendfile:
		return (neg(ktls_sendfile((int)a[0], (int)a[1], (off_t *)a[2],
		    (size_t)a[3])));
	case SYS_splice:
		return (neg(ktls_splice((int)a[0], (off_t *)a[1], (int)a[2],
		    (off_t *)a[3], (size_t)a[4], (unsigned int)a[5])));
	case SYS_io_uring_setup:
		/*
		 * io_uring's operations are not system calls: the filter
		 * cannot see a ring's send.  Refused, so that programs fall
		 * back to plain calls, unless the operator opted in.
		 */
		if (!guard_allow_uring) {
			ktls_counter_add_shared(KC_GUARD_REFUSED, 1);
			return (-ENOSYS);
		}
		return (guard_gadget(nr, a[0], a[1], 0, 0, 0, 0));
	case SYS_io_submit:
		return (guarded_io_submit(a[0], a[1], (struct iocb **)a[2],
		    false));
	default:
		return (guard_gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
	}
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/*
 * posix_spawn's child runs on a stack libc mapped itself, which ASan
 * never saw allocated and whose shadow may hold another frame's stale
 * poison: cleared around this frame (the kernel's signal frame above it,
 * the instrumented frames to come below) before instrumented code runs.
 */
__attribute__((no_sanitize("address"))) static void
asan_foreign_stack(void)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);

	if (!ktls_owner())
		__asan_unpoison_memory_region((void *)(sp - 16384),
		    16384 + 8192);
}
#else
static void
asan_foreign_stack(void)
{
}
#endif

__attribute__((no_sanitize("address"))) static void
guard_sigsys(int sig, siginfo_t *si, void *ucv)
{
	asan_foreign_stack();
	guard_sigsys_body(sig, si, ucv);
}

static void
guard_sigsys_body(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	long a[6];
	int saved = errno;

	if (si->si_code != SYS_SECCOMP || si->si_errno != GUARD_MAGIC) {
		chain_app(sig, si, ucv);
		return;
	}
	a[0] = g[REG_RDI];
	a[1] = g[REG_RSI];
	a[2] = g[REG_RDX];
	a[3] = g[REG_R10];
	a[4] = g[REG_R8];
	a[5] = g[REG_R9];
	g[REG_RAX] = dispatch(si->si_syscall, a, uc);
	/*
	 * Counted: the calls made for the program, in this process (not a
	 * vfork child's), not the signal-mask bookkeeping (every thread's
	 * start makes one).
	 */
	if (si->si_syscall != SYS_rt_sigprocmask &&
	    si->si_syscall != SYS_rt_sigaction && ktls_owner())
		ktls_counter_add_shared(KC_GUARD_TRAPPED, 1);
	errno = saved;
}
