/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guard: invariant 7.  Symbol interposition sees only the calls a
 * program makes through libc's exported names; libc's own internal calls
 * (stdio's write, dprintf), raw system calls (syscall(2), inline asm,
 * runtimes) and kernel-side paths (io_uring, Linux AIO) would put an
 * enabled socket's plaintext on the wire.  So at the first enable in a
 * process (never before: invariant 6) the engine installs a seccomp
 * filter on every thread:
 *
 *   - the write-family system calls (the table below), made from code
 *     that was mapped in the process when the filter was built (libc, the
 *     program, its libraries: the "watched" ranges), trap into SIGSYS;
 *   - the same calls made from the engine's own system-call page, mapped
 *     at a fixed address (GADGET_ADDR) and excluded from every filter, go
 *     through: the engine sends on it, and so does the interposer's
 *     pass-through path once the guard is up;
 *   - anything made from elsewhere goes through untouched.
 *
 * The SIGSYS handler completes a trapped call: through the engine when its
 * descriptor is an enabled socket (the same ktls_* call the interposer
 * makes), refused with a documented errno where the engine cannot route
 * it (io_uring set-up, an io_submit write, an enabled socket in
 * SCM_RIGHTS), and otherwise performed unchanged from the gadget page.
 *
 * Why a blacklist of ranges and not "everything but the gadget": the
 * filter survives execve(2) and cannot be removed.  A new image that does
 * not run the engine (a static busybox, a program started without
 * LD_PRELOAD) has no SIGSYS handler and would be killed by its first
 * write.  Its code is mapped at new addresses, outside the ranges, so its
 * calls go through; it never holds an enabled socket, because
 * ktls_exec_prepare() makes those close-on-exec.  The price: code mapped
 * after the filter is not watched until ktls_guard_refresh() adds a
 * filter for it (the interposer calls it after dlopen(); JIT code that
 * makes raw system calls is not covered), and a new image whose code
 * lands exactly in one of the old image's ranges has its write calls
 * trapped too (ASLR makes that a chance of about 10^-5 per exec; an image
 * that loads the engine finds the inherited filter at load time and
 * installs its handler and the gadget then, one that does not gets
 * SIGSYS).
 *
 * Seccomp needs no_new_privs or CAP_SYS_ADMIN: without the capability
 * the engine sets no_new_privs (setuid programs the process execs later
 * run without their privileges).  A process whose guard cannot be
 * installed gets no session: the enable fails with EPERM (never open).
 *
 * The application's SIGSYS handler keeps working: ktls_sigaction() (the
 * interposer's sigaction and signal) records it instead of installing it,
 * and the engine's handler passes it every SIGSYS that is not the
 * guard's.  SIGSYS must not be blocked in a thread that traps (the kernel
 * kills a thread that blocks a forced signal): the engine's threads leave
 * it open, and the interposer keeps it out of sigprocmask and
 * pthread_sigmask.
 *
 * Receive offload will route reads the same way: the read family (read,
 * readv, recvfrom, recvmsg, recvmmsg, preadv2, splice from the socket,
 * io_submit's reads) joins trapped_nr and dispatch() hands them to the
 * engine's receive calls; a raw read that bypassed the engine would hand
 * the application ciphertext.  Until then reads are not trapped.
 *
 * KTLS_GUARD=0 in the environment at load time turns the guard off, for
 * measurement only: invariant 7 does not hold then.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP	1	/* si_code of a seccomp SIGSYS */
#endif

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

/*
 * The stub copied to the gadget page: syscall(nr, a1..a6) in the SysV
 * calling convention, the raw result (-errno on failure) in rax.
 */
__asm__(
    ".pushsection .text.ktls_gadget,\"ax\",@progbits\n"
    ".type ktls_gadget_tmpl, @function\n"
    "ktls_gadget_tmpl:\n"
    "	mov %rdi, %rax\n"
    "	mov %rsi, %rdi\n"
    "	mov %rdx, %rsi\n"
    "	mov %rcx, %rdx\n"
    "	mov %r8, %r10\n"
    "	mov %r9, %r8\n"
    "	mov 8(%rsp), %r9\n"
    "	syscall\n"
    "	ret\n"
    "ktls_gadget_tmpl_end:\n"
    ".popsection\n");
extern const char ktls_gadget_tmpl[], ktls_gadget_tmpl_end[];

typedef long (*gadget_fn)(long, long, long, long, long, long, long);
static gadget_fn gadget;

struct range {
	uintptr_t	lo, hi;		/* [lo, hi) */
};

/*
 * State, under guard_mtx except where said.  guard_on is read without it
 * (set once; a thread that misses it only takes the slower libc path).
 */
static pthread_mutex_t guard_mtx = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool guard_on;
static bool guard_disabled;		/* KTLS_GUARD=0 */
static bool guard_allow_uring;		/* KTLS_IO_URING=allow */
/*
 * The process the engine's state belongs to.  A vfork()-style child
 * (posix_spawn's) shares this memory but not the descriptors: its trapped
 * calls are made unchanged (writes to an enabled socket refused), and
 * touch none of the engine's state.
 */
static pid_t guard_pid;
static struct range covered[MAX_RANGES];
static int ncovered;
/* The application's SIGSYS disposition (kernel layout), and a lock-free
 * copy for the handler: it is only ever replaced whole. */
struct ksigaction {
	void		*handler;
	unsigned long	 flags;
	void		*restorer;
	uint64_t	 mask;
};
static struct ksigaction app_sigsys;

/* The write-family calls, by x86_64 number: what the filter traps. */
static const uint32_t trapped_nr[] = {
	SYS_write, SYS_writev, SYS_pwrite64, SYS_pwritev, SYS_pwritev2,
	SYS_sendto, SYS_sendmsg, SYS_sendmmsg, SYS_sendfile, SYS_splice,
	SYS_io_uring_setup, SYS_io_submit,
	/*
	 * And every change of the descriptor table that could make or undo
	 * a descriptor of an enabled socket behind the engine's back (libc's
	 * own close in fclose(), a raw dup): the engine's table then stays
	 * exact, with no per-call check (fcntl only for F_DUPFD*, below).
	 */
	SYS_close, SYS_close_range, SYS_dup, SYS_dup2, SYS_dup3,
	/*
	 * And exec, raw or libc's own: the new image must not get an
	 * enabled socket (its code is not watched).
	 */
	SYS_execve, SYS_execveat,
};
/*
 * Also trapped, by their arguments (build_filter()): rt_sigaction of
 * SIGSYS, so the application's handler is recorded rather than installed
 * over the guard's; and rt_sigprocmask that blocks or sets a mask, so
 * that SIGSYS is taken out of it (a thread that has a seccomp SIGSYS
 * blocked is killed).  The second is what makes the first two safe in
 * posix_spawn's child: libc blocks every signal before its clone, with
 * that very call, and the child then resets handlers and closes and
 * dups descriptors.
 */
/* The same calls in the i386 ABI (int $0x80): refused from the ranges. */
static const uint32_t i386_nr[] = {
	4 /* write */, 146 /* writev */, 181 /* pwrite64 */, 187 /* sendfile */,
	239 /* sendfile64 */, 102 /* socketcall */, 369 /* sendto */,
	370 /* sendmsg */, 345 /* sendmmsg */, 313 /* splice */,
	334 /* pwritev */, 379 /* pwritev2 */, 248 /* io_submit */,
	425 /* io_uring_setup */,
	/* and what changes the descriptor table or execs */
	6 /* close */, 41 /* dup */, 63 /* dup2 */, 330 /* dup3 */,
	55 /* fcntl */, 221 /* fcntl64 */, 436 /* close_range */,
	11 /* execve */, 358 /* execveat */,
};

static bool
guard_env_off(void)
{
	const char *e = getenv("KTLS_GUARD");

	return (e != NULL && strcmp(e, "0") == 0);
}

static int map_gadget(void);
static void switch_seam(void);
static void guard_sigsys(int sig, siginfo_t *si, void *ucv);
static void guard_sigsys_body(int sig, siginfo_t *si, void *ucv);

/*
 * The guard's SIGSYS handler, installed through libc (its restorer), the
 * previous disposition in *old.  SA_NODEFER: a trap inside the handler
 * (it makes calls of its own) must not find SIGSYS blocked.
 */
static int
set_handler(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return (ktls_sys.sigaction(SIGSYS, &sa, old));
}

/*
 * An image exec'd by a process whose guard was up inherits its filters.
 * Their ranges are the old image's, so they rarely trap anything here;
 * when they do, this image must complete the call rather than die, and
 * its own pass-through calls must not trap: the handler and the gadget
 * now, before main().
 */
static void
guard_inherited(void)
{
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2 || map_gadget() != 0)
		return;
	ktls_sys_init();
	if (set_handler(NULL) != 0)
		return;
	guard_pid = getpid();
	switch_seam();
}

__attribute__((constructor)) static void
guard_load_env(void)
{
	const char *e;

	guard_disabled = guard_env_off();
	e = getenv("KTLS_IO_URING");
	guard_allow_uring = e != NULL && strcmp(e, "allow") == 0;
	if (!guard_disabled)
		guard_inherited();
}

bool
ktls_guard_active(void)
{
	return (atomic_load_explicit(&guard_on, memory_order_acquire));
}

KTLS_EXPORT int
ktls_guard_on(void)
{
	return (ktls_guard_active());
}

static long
sysret(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return (-1);
	}
	return (r);
}

/*
 * The pass-through calls of the seam once the guard is up: libc's own
 * would trap (its syscall instruction is in a watched range).
 */
#define G(nr, a, b, c, d, e, f) sysret(gadget((nr), (long)(a), (long)(b), \
	(long)(c), (long)(d), (long)(e), (long)(f)))

static ssize_t
g_write(int fd, const void *buf, size_t len)
{
	return (G(SYS_write, fd, buf, len, 0, 0, 0));
}

static ssize_t
g_writev(int fd, const struct iovec *iov, int cnt)
{
	return (G(SYS_writev, fd, iov, cnt, 0, 0, 0));
}

static ssize_t
g_send(int fd, const void *buf, size_t len, int flags)
{
	return (G(SYS_sendto, fd, buf, len, flags, 0, 0));
}

/* The engine's own closes too must not leave a number's kind cached. */
static int
g_close(int fd)
{
	ktls_fd_forget(fd);
	return ((int)G(SYS_close, fd, 0, 0, 0, 0, 0));
}

static int
g_close_range(unsigned int first, unsigned int last, int flags)
{
	for (unsigned int fd = first; fd <= last && fd < (1u << 22); fd++)
		ktls_fd_forget((int)fd);
	return ((int)G(SYS_close_range, first, last, flags, 0, 0, 0));
}

static int
g_dup(int fd)
{
	return ((int)G(SYS_dup, fd, 0, 0, 0, 0, 0));
}

static int
g_dup2(int fd, int newfd)
{
	return ((int)G(SYS_dup2, fd, newfd, 0, 0, 0, 0));
}

static int
g_dup3(int fd, int newfd, int flags)
{
	return ((int)G(SYS_dup3, fd, newfd, flags, 0, 0, 0));
}

/* fcntl's third argument, int or pointer, read as glibc reads it. */
static int
g_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return ((int)G(SYS_fcntl, fd, cmd, arg, 0, 0, 0));
}

static ssize_t
g_sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *a, socklen_t alen)
{
	return (G(SYS_sendto, fd, buf, len, flags, a, alen));
}

static ssize_t
g_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return (G(SYS_sendmsg, fd, msg, flags, 0, 0, 0));
}

static int
g_sendmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags)
{
	return ((int)G(SYS_sendmmsg, fd, vec, n, flags, 0, 0));
}

static ssize_t
g_sendfile(int out, int in, off_t *off, size_t count)
{
	return (G(SYS_sendfile, out, in, off, count, 0, 0));
}

static ssize_t
g_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return (G(SYS_pwrite64, fd, buf, len, off, 0, 0));
}

static ssize_t
g_pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return (G(SYS_pwritev2, fd, iov, cnt, off, 0, flags));
}

static ssize_t
g_splice(int in, off_t *offin, int out, off_t *offout, size_t len,
    unsigned int flags)
{
	return (G(SYS_splice, in, offin, out, offout, len, flags));
}

/* ---- the filter ---- */

#define LD_ABS(off)	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, t, f)	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define JGT(k, t, f)	BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (k), (t), (f))
#define JGE(k, t, f)	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (k), (t), (f))
#define JA(k)		BPF_JUMP(BPF_JMP | BPF_JA, (k), 0, 0)

#define OFF_NR		offsetof(struct seccomp_data, nr)
#define OFF_ARCH	offsetof(struct seccomp_data, arch)
#define OFF_IP_LO	offsetof(struct seccomp_data, instruction_pointer)
#define OFF_IP_HI	(OFF_IP_LO + 4)

#define NTRAP		(sizeof(trapped_nr) / sizeof(trapped_nr[0]))
#define NI386		(sizeof(i386_nr) / sizeof(i386_nr[0]))
#define OFF_ARG_LO(i)	(offsetof(struct seccomp_data, args[0]) + 8 * (i))
#define OFF_ARG_HI(i)	(OFF_ARG_LO(i) + 4)

/*
 * A small assembler for the filter: conditional jumps name labels, which
 * are resolved at the end (classic BPF's jt/jf are 8-bit and relative;
 * a label too far for them is an error, and only `ja' goes far).
 */
enum { L_NEXT = -1 };
struct bpf_asm {
	struct sock_filter	*f;
	int			(*tgt)[2];	/* labels of jt, jf (or ja) */
	size_t			 n, cap;
	size_t			 label[16];
	bool			 failed;
};

static void
bpf_emit(struct bpf_asm *a, struct sock_filter ins, int jt, int jf)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		void *nf = realloc(a->f, cap * sizeof(*a->f));
		void *nt = nf ? realloc(a->tgt, cap * sizeof(*a->tgt)) : NULL;

		if (nf != NULL)
			a->f = nf;
		if (nt == NULL) {
			a->failed = true;
			return;
		}
		a->tgt = nt;
		a->cap = cap;
	}
	a->f[a->n] = ins;
	a->tgt[a->n][0] = jt;
	a->tgt[a->n][1] = jf;
	a->n++;
}

#define STMT(code, k)	bpf_emit(a, (struct sock_filter)BPF_STMT((code), (k)), \
	L_NEXT, L_NEXT)
#define JMP(op, k, t, f) bpf_emit(a, (struct sock_filter)BPF_JUMP(	\
	BPF_JMP | (op) | BPF_K, (k), 0, 0), (t), (f))
#define LABEL(l)	(a->label[(l)] = a->n)

static int
bpf_link(struct bpf_asm *a)
{
	for (size_t i = 0; i < a->n; i++) {
		for (int j = 0; j < 2; j++) {
			size_t to;

			if (a->tgt[i][j] == L_NEXT)
				continue;
			to = a->label[a->tgt[i][j]];
			if (BPF_OP(a->f[i].code) == BPF_JA) {
				a->f[i].k = (uint32_t)(to - i - 1);
				break;
			}
			if (to <= i || to - i - 1 > 255)
				return (-E2BIG);
			if (j == 0)
				a->f[i].jt = (uint8_t)(to - i - 1);
			else
				a->f[i].jf = (uint8_t)(to - i - 1);
		}
	}
	return (0);
}

enum { LB_I386, LB_X32, LB_TRAP, LB_EPERM, LB_RANGE, LB_HIT, LB_ALLOW,
	LB_FCNTL, LB_SIGACT, LB_SIGMASK, LB_ALLOW2 };

/*
 * One watched range: "instruction_pointer in [lo, hi)" on 32-bit halves;
 * in range jumps to LB_HIT, out of range falls into the next block.
 */
static void
emit_range(struct bpf_asm *a, const struct range *r)
{
	uint32_t slo = (uint32_t)r->lo, shi = (uint32_t)(r->lo >> 32);
	uint32_t elo = (uint32_t)r->hi, ehi = (uint32_t)(r->hi >> 32);
	size_t b = a->n;

	/* Relative jumps within the block: "out" is its end (b + 11). */
	bpf_emit(a, (struct sock_filter)LD_ABS(OFF_IP_HI), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)JGT(shi, 3, 0), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)JEQ(shi, 0, 8), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)LD_ABS(OFF_IP_LO), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)JGE(slo, 0, 6), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)LD_ABS(OFF_IP_HI), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)JGT(ehi, 4, 0), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)JEQ(ehi, 0, 2), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)LD_ABS(OFF_IP_LO), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)JGE(elo, 1, 0), L_NEXT, L_NEXT);
	bpf_emit(a, (struct sock_filter)JA(0), LB_HIT, L_NEXT);
	KASSERT(a->failed || a->n == b + 11, ("%s: block", __func__));
}

/*
 * The whole program for a set of ranges.  The caller frees prog->filter.
 *
 *   arch x86_64: nr & x32 bit -> ERRNO(ENOSYS) if watched
 *                nr in trapped_nr, fcntl(F_DUPFD*), rt_sigaction(SIGSYS),
 *                rt_sigprocmask(BLOCK or SETMASK, set) -> TRAP if watched
 *   arch i386:   nr in i386_nr -> ERRNO(EPERM) if watched
 *   watched = not the gadget page, and in one of the ranges
 */
static int
build_filter(const struct range *rs, int n, struct sock_fprog *prog)
{
	struct bpf_asm as = { 0 }, *a = &as;
	size_t i;
	int error;

	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH);
	JMP(BPF_JEQ, AUDIT_ARCH_X86_64, L_NEXT, LB_I386);
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_NR);
	JMP(BPF_JSET, 0x40000000u, LB_X32, L_NEXT);
	for (i = 0; i < NTRAP; i++)
		JMP(BPF_JEQ, trapped_nr[i], LB_TRAP, L_NEXT);
	JMP(BPF_JEQ, SYS_fcntl, LB_FCNTL, L_NEXT);
	JMP(BPF_JEQ, SYS_rt_sigaction, LB_SIGACT, L_NEXT);
	JMP(BPF_JEQ, SYS_rt_sigprocmask, LB_SIGMASK, L_NEXT);
	LABEL(LB_ALLOW);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

	/* Classic BPF jumps forward only: these end at LB_ALLOW2. */
	LABEL(LB_FCNTL);		/* only the duplicating commands */
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(1));
	JMP(BPF_JEQ, F_DUPFD, LB_TRAP, L_NEXT);
	JMP(BPF_JEQ, F_DUPFD_CLOEXEC, LB_TRAP, LB_ALLOW2);
	LABEL(LB_SIGACT);		/* only SIGSYS */
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(0));
	JMP(BPF_JEQ, SIGSYS, LB_TRAP, LB_ALLOW2);
	LABEL(LB_SIGMASK);		/* what could block SIGSYS */
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(0));
	JMP(BPF_JEQ, SIG_UNBLOCK, LB_ALLOW2, L_NEXT);
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_LO(1));
	JMP(BPF_JEQ, 0, L_NEXT, LB_TRAP);
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG_HI(1));
	JMP(BPF_JEQ, 0, LB_ALLOW2, LB_TRAP);
	LABEL(LB_ALLOW2);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

	LABEL(LB_TRAP);
	STMT(BPF_LD | BPF_IMM, SECCOMP_RET_TRAP | GUARD_MAGIC);
	STMT(BPF_ST, 0);
	JMP(BPF_JA, 0, LB_RANGE, L_NEXT);
	LABEL(LB_X32);
	STMT(BPF_LD | BPF_IMM, SECCOMP_RET_ERRNO | ENOSYS);
	STMT(BPF_ST, 0);
	JMP(BPF_JA, 0, LB_RANGE, L_NEXT);
	LABEL(LB_I386);
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_NR);
	for (i = 0; i < NI386; i++)
		JMP(BPF_JEQ, i386_nr[i], LB_EPERM, L_NEXT);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	LABEL(LB_EPERM);
	STMT(BPF_LD | BPF_IMM, SECCOMP_RET_ERRNO | EPERM);
	STMT(BPF_ST, 0);

	LABEL(LB_RANGE);		/* the gadget page first */
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_IP_HI);
	bpf_emit(a, (struct sock_filter)JEQ((uint32_t)(GADGET_ADDR >> 32), 0,
	    4), L_NEXT, L_NEXT);
	STMT(BPF_LD | BPF_W | BPF_ABS, OFF_IP_LO);
	STMT(BPF_ALU | BPF_AND | BPF_K, (uint32_t)~(GADGET_SIZE - 1));
	bpf_emit(a, (struct sock_filter)JEQ((uint32_t)GADGET_ADDR, 0, 1),
	    L_NEXT, L_NEXT);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	for (i = 0; i < (size_t)n; i++)
		emit_range(a, &rs[i]);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	LABEL(LB_HIT);
	STMT(BPF_LD | BPF_MEM, 0);
	STMT(BPF_RET | BPF_A, 0);

	error = a->failed ? -ENOMEM : a->n > BPF_MAXINSNS ? -E2BIG :
	    bpf_link(a);
	free(a->tgt);
	if (error != 0) {
		free(a->f);
		return (error);
	}
	prog->len = (unsigned short)a->n;
	prog->filter = a->f;
	return (0);
}

static bool
is_covered(uintptr_t lo, uintptr_t hi)
{
	for (int i = 0; i < ncovered; i++)
		if (covered[i].lo <= lo && hi <= covered[i].hi)
			return (true);
	return (false);
}

/*
 * A sanitizer runtime's own system calls (its reports, LeakSanitizer's
 * stop-the-world thread, which runs with every signal blocked, where a
 * trap would kill) are not the application's: its text is not watched.
 * Only test builds (make test-asan/test-tsan) load one.
 */
static bool
sanitizer_rt(const char *line)
{
	static const char *const rt[] = { "/libasan.so", "/libtsan.so",
	    "/liblsan.so", "/libubsan.so", "/libclang_rt." };

	for (size_t i = 0; i < sizeof(rt) / sizeof(rt[0]); i++)
		if (strstr(line, rt[i]) != NULL)
			return (true);
	return (false);
}

/*
 * The executable mappings of the process not yet covered: everything but
 * the gadget page, [vdso] and [vsyscall] (no write-family call in
 * either).  Adjacent mappings merge.
 */
static int
read_ranges(struct range *out, int max)
{
	char line[512];
	FILE *fp;
	int n = 0;

	if ((fp = fopen("/proc/self/maps", "re")) == NULL)
		return (-errno);
	while (fgets(line, sizeof(line), fp) != NULL) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
		    perms[2] != 'x')
			continue;
		if (strstr(line, "[vdso]") != NULL ||
		    strstr(line, "[vsyscall]") != NULL || sanitizer_rt(line) ||
		    (lo <= GADGET_ADDR && GADGET_ADDR < hi) ||
		    is_covered(lo, hi))
			continue;
		if (n > 0 && out[n - 1].hi == lo) {
			out[n - 1].hi = hi;
			continue;
		}
		if (n == max) {
			n = -E2BIG;
			break;
		}
		out[n++] = (struct range){ lo, hi };
	}
	fclose(fp);
	return (n);
}

static int
load_filter(const struct range *rs, int n)
{
	struct sock_fprog prog;
	long r;
	int error;

	if ((error = build_filter(rs, n, &prog)) != 0)
		return (error);
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_TSYNC, &prog);
	free(prog.filter);
	if (r != 0)
		return (r > 0 ? -EBUSY : -errno);	/* > 0: a thread's tid */
	for (int i = 0; i < n && ncovered < MAX_RANGES; i++)
		covered[ncovered++] = rs[i];
	return (0);
}

/* ---- the handler ---- */

static void
chain_app(int sig, siginfo_t *si, void *uc)
{
	struct ksigaction a = app_sigsys;

	if (a.handler == SIG_IGN)
		return;
	if (a.handler == SIG_DFL) {
		/* The default action: die of SIGSYS, as without the engine. */
		struct ksigaction dfl = { .handler = SIG_DFL };

		gadget(SYS_rt_sigaction, SIGSYS, (long)&dfl, 0, 8, 0, 0);
		gadget(SYS_tgkill, getpid(), gettid(), SIGSYS, 0, 0, 0);
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
	if (act != NULL && getpid() == guard_pid)
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
	return (gadget(SYS_io_submit, ctx, nr, (long)iocbs, 0, 0, 0));
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
		return (gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
	case SYS_execve:
	case SYS_execveat:
		/* Its enabled sockets close-on-exec, in its own table. */
		ktls_exec_cloexec();
		return (gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
	}
	if (nr == SYS_io_submit)
		return (guarded_io_submit(a[0], a[1], (struct iocb **)a[2],
		    true));
	if (nr == SYS_io_uring_setup)
		return (guard_allow_uring ? gadget(nr, a[0], a[1], 0, 0, 0, 0) :
		    -ENOSYS);
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
	return (gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
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
	if (getpid() != guard_pid)
		return (dispatch_child(nr, a));
	switch (nr) {
	case SYS_execve:
	case SYS_execveat:
		ktls_exec_prepare();
		return (gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
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
		return (gadget(nr, a[0], a[1], 0, 0, 0, 0));
	case SYS_io_submit:
		return (guarded_io_submit(a[0], a[1], (struct iocb **)a[2],
		    false));
	default:
		return (gadget(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
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

	if (getpid() != guard_pid)
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
	    si->si_syscall != SYS_rt_sigaction && getpid() == guard_pid)
		ktls_counter_add_shared(KC_GUARD_TRAPPED, 1);
	errno = saved;
}

/* ---- installation ---- */

static int
map_gadget(void)
{
	size_t n = (size_t)(ktls_gadget_tmpl_end - ktls_gadget_tmpl);
	void *p;

	p = (void *)syscall(SYS_mmap, GADGET_ADDR, GADGET_SIZE,
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return (-errno);	/* EEXIST: the address is taken */
	if (p != (void *)GADGET_ADDR) {	/* a kernel that ignores the flag */
		syscall(SYS_munmap, p, GADGET_SIZE);
		return (-EEXIST);
	}
	memcpy(p, ktls_gadget_tmpl, n);
	if (mprotect(p, GADGET_SIZE, PROT_READ | PROT_EXEC) != 0)
		return (-errno);
	gadget = (gadget_fn)p;
	return (0);
}

/* A ring set up before the guard could send behind it: none may exist. */
static bool
have_io_uring(void)
{
	char path[300], link[64];
	struct dirent *de;
	DIR *d;
	bool found = false;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return (false);
	while (!found && (de = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[n] = '\0';
		found = strcmp(link, "anon_inode:[io_uring]") == 0;
	}
	closedir(d);
	return (found);
}

static void
switch_seam(void)
{
	ktls_sys.write = g_write;
	ktls_sys.writev = g_writev;
	ktls_sys.send = g_send;
	ktls_sys.sendto = g_sendto;
	ktls_sys.sendmsg = g_sendmsg;
	ktls_sys.sendmmsg = g_sendmmsg;
	ktls_sys.sendfile = g_sendfile;
	ktls_sys.pwrite = g_pwrite;
	ktls_sys.pwritev2 = g_pwritev2;
	ktls_sys.splice = g_splice;
	ktls_sys.close = g_close;
	ktls_sys.close_range = g_close_range;
	ktls_sys.dup = g_dup;
	ktls_sys.dup2 = g_dup2;
	ktls_sys.dup3 = g_dup3;
	ktls_sys.fcntl = g_fcntl;
}

static int
guard_install_locked(void)
{
	static struct range rs[MAX_RANGES];
	struct sigaction old;
	sigset_t sysset;
	int error, n;

	if (have_io_uring() && !guard_allow_uring)
		return (-EPERM);
	guard_pid = getpid();
	if (gadget == NULL && (error = map_gadget()) != 0)
		return (-EPERM);
	if ((n = read_ranges(rs, MAX_RANGES)) < 0)
		return (-EPERM);
	/* Our handler; the application's kept. */
	if (set_handler(&old) != 0)
		return (-EPERM);
	app_sigsys = (struct ksigaction){ .handler = (void *)old.sa_sigaction,
	    .flags = (unsigned long)old.sa_flags };
	memcpy(&app_sigsys.mask, &old.sa_mask, sizeof(app_sigsys.mask));
	/* Seccomp without CAP_SYS_ADMIN needs no_new_privs. */
	error = load_filter(rs, n);
	if (error == -EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		error = load_filter(rs, n);
	if (error != 0) {
		ktls_sys.sigaction(SIGSYS, &old, NULL);
		return (-EPERM);
	}
	/* The enabling thread may trap at once: SIGSYS open in it. */
	sigemptyset(&sysset);
	sigaddset(&sysset, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sysset, NULL);
	switch_seam();
	atomic_store_explicit(&guard_on, true, memory_order_release);
	ktls_counter_add(KC_GUARD_FILTERS, 1);
	return (0);
}

/*
 * Called by every enable before it creates a session: 0 when the guard is
 * up (or turned off by KTLS_GUARD=0), -EPERM when it cannot be.
 */
int
ktls_guard_install(void)
{
	int error = 0;

	if (guard_disabled || ktls_guard_active())
		return (0);
	pthread_mutex_lock(&guard_mtx);
	if (!ktls_guard_active())
		error = guard_install_locked();
	pthread_mutex_unlock(&guard_mtx);
	return (error);
}

/*
 * Code mapped since the last filter (dlopen()) is watched by one more
 * filter of just its ranges (filters stack; the strictest answer wins).
 */
KTLS_EXPORT void
ktls_guard_refresh(void)
{
	static struct range rs[MAX_RANGES];
	int n;

	if (!ktls_guard_active())
		return;
	pthread_mutex_lock(&guard_mtx);
	if ((n = read_ranges(rs, MAX_RANGES)) > 0 && load_filter(rs, n) == 0)
		ktls_counter_add(KC_GUARD_FILTERS, 1);
	pthread_mutex_unlock(&guard_mtx);
}

void
ktls_guard_atfork_child(void)
{
	pthread_mutex_init(&guard_mtx, NULL);
	guard_pid = getpid();
}
