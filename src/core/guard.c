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
};
/*
 * Nothing else is trapped, on purpose: posix_spawn's child runs with
 * every signal blocked (libc blocks them before its clone), so a trapped
 * call there kills it, and that child calls rt_sigaction for every signal
 * and close for its file actions.  So the application's SIGSYS handler is
 * kept by ktls_sigaction() (the interposer's sigaction and signal), and
 * libc's own close of an enabled socket by fclose() is told to the engine
 * by the interposer's fclose.
 */
/* The same family in the i386 ABI (int $0x80): refused from the ranges. */
static const uint32_t i386_nr[] = {
	4 /* write */, 146 /* writev */, 181 /* pwrite64 */, 187 /* sendfile */,
	239 /* sendfile64 */, 102 /* socketcall */, 369 /* sendto */,
	370 /* sendmsg */, 345 /* sendmmsg */, 313 /* splice */,
	334 /* pwritev */, 379 /* pwritev2 */, 248 /* io_submit */,
	425 /* io_uring_setup */,
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
	struct sigaction sa;

	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2 || map_gadget() != 0)
		return;
	ktls_sys_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
	if (ktls_sys.sigaction(SIGSYS, &sa, NULL) != 0)
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

/* A raw system call from the gadget page (valid once it is mapped). */
long
ktls_guard_syscall(long nr, long a1, long a2, long a3, long a4, long a5,
    long a6)
{
	return (gadget(nr, a1, a2, a3, a4, a5, a6));
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

static int
g_close(int fd)
{
	return ((int)G(SYS_close, fd, 0, 0, 0, 0, 0));
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
#define JSET(k, t, f)	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (k), (t), (f))
#define JA(k)		BPF_JUMP(BPF_JMP | BPF_JA, (k), 0, 0)
#define RET(k)		BPF_STMT(BPF_RET | BPF_K, (k))
#define RET_A		BPF_STMT(BPF_RET | BPF_A, 0)
#define LD_IMM(k)	BPF_STMT(BPF_LD | BPF_IMM, (k))
#define ST(m)		BPF_STMT(BPF_ST, (m))
#define LD_MEM(m)	BPF_STMT(BPF_LD | BPF_MEM, (m))
#define AND(k)		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, (k))

#define OFF_NR		offsetof(struct seccomp_data, nr)
#define OFF_ARCH	offsetof(struct seccomp_data, arch)
#define OFF_IP_LO	offsetof(struct seccomp_data, instruction_pointer)
#define OFF_IP_HI	(OFF_IP_LO + 4)

#define NTRAP		(sizeof(trapped_nr) / sizeof(trapped_nr[0]))
#define NI386		(sizeof(i386_nr) / sizeof(i386_nr[0]))
/* Instructions per watched range (see emit_range()). */
#define RANGE_INSNS	11

/*
 * One watched range: "instruction_pointer in [lo, hi)" on 32-bit halves;
 * in range jumps to the HIT label (ja's 32-bit offset), out of range
 * falls into the next block.
 */
static void
emit_range(struct sock_filter *p, const struct range *r, uint32_t to_hit)
{
	uint32_t slo = (uint32_t)r->lo, shi = (uint32_t)(r->lo >> 32);
	uint32_t elo = (uint32_t)r->hi, ehi = (uint32_t)(r->hi >> 32);

	p[0] = (struct sock_filter)LD_ABS(OFF_IP_HI);
	p[1] = (struct sock_filter)JGT(shi, 3, 0);	/* above lo: check hi */
	p[2] = (struct sock_filter)JEQ(shi, 0, 8);	/* below: out */
	p[3] = (struct sock_filter)LD_ABS(OFF_IP_LO);
	p[4] = (struct sock_filter)JGE(slo, 0, 6);
	p[5] = (struct sock_filter)LD_ABS(OFF_IP_HI);
	p[6] = (struct sock_filter)JGT(ehi, 4, 0);	/* above hi: out */
	p[7] = (struct sock_filter)JEQ(ehi, 0, 2);	/* below hi: in */
	p[8] = (struct sock_filter)LD_ABS(OFF_IP_LO);
	p[9] = (struct sock_filter)JGE(elo, 1, 0);
	p[10] = (struct sock_filter)JA(to_hit);		/* relative to p[11] */
}

/*
 * The whole program for a set of ranges.  The caller frees *progp.
 *
 *   arch x86_64: nr & x32 bit -> ERRNO(ENOSYS) if watched
 *                nr in trapped_nr -> TRAP if watched
 *   arch i386:   nr in i386_nr -> ERRNO(EPERM) if watched
 *   watched = not the gadget page, and in one of the ranges
 */
static int
build_filter(const struct range *rs, int n, struct sock_fprog *prog)
{
	size_t len = 2 + 2 + NTRAP + 1 + 3 + 3 + 1 + NI386 + 1 + 3 + 6 +
	    (size_t)n * RANGE_INSNS + 1 + 2;
	struct sock_filter *p, *f;
	size_t l_i386, l_trap, l_x32, l_eperm, l_range, l_hit;
	size_t i;

	if ((f = calloc(len, sizeof(*f))) == NULL)
		return (-ENOMEM);
	/* Label positions, in emission order. */
	l_trap = 2 + 2 + NTRAP + 1;
	l_x32 = l_trap + 3;
	l_i386 = l_x32 + 3;
	l_eperm = l_i386 + 1 + NI386 + 1;
	l_range = l_eperm + 3;
	l_hit = l_range + 6 + (size_t)n * RANGE_INSNS + 1;

	p = f;
	*p++ = (struct sock_filter)LD_ABS(OFF_ARCH);
	*p++ = (struct sock_filter)JEQ(AUDIT_ARCH_X86_64, 0,
	    (uint8_t)(l_i386 - 2));
	*p++ = (struct sock_filter)LD_ABS(OFF_NR);
	*p = (struct sock_filter)JSET(0x40000000u,
	    (uint8_t)(l_x32 - (size_t)(p - f) - 1), 0);
	p++;
	for (i = 0; i < NTRAP; i++, p++)
		*p = (struct sock_filter)JEQ(trapped_nr[i],
		    (uint8_t)(l_trap - (size_t)(p - f) - 1), 0);
	*p++ = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
	/* l_trap */
	*p++ = (struct sock_filter)LD_IMM(SECCOMP_RET_TRAP | GUARD_MAGIC);
	*p++ = (struct sock_filter)ST(0);
	*p = (struct sock_filter)JA((uint32_t)(l_range - (size_t)(p - f) - 1));
	p++;
	/* l_x32 */
	*p++ = (struct sock_filter)LD_IMM(SECCOMP_RET_ERRNO | ENOSYS);
	*p++ = (struct sock_filter)ST(0);
	*p = (struct sock_filter)JA((uint32_t)(l_range - (size_t)(p - f) - 1));
	p++;
	/* l_i386 */
	*p++ = (struct sock_filter)LD_ABS(OFF_NR);
	for (i = 0; i < NI386; i++, p++)
		*p = (struct sock_filter)JEQ(i386_nr[i],
		    (uint8_t)(l_eperm - (size_t)(p - f) - 1), 0);
	*p++ = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
	/* l_eperm, falls into l_range */
	*p++ = (struct sock_filter)LD_IMM(SECCOMP_RET_ERRNO | EPERM);
	*p++ = (struct sock_filter)ST(0);
	*p++ = (struct sock_filter)JA(0);
	/* l_range: the gadget page first */
	*p++ = (struct sock_filter)LD_ABS(OFF_IP_HI);
	*p++ = (struct sock_filter)JEQ((uint32_t)(GADGET_ADDR >> 32), 0, 4);
	*p++ = (struct sock_filter)LD_ABS(OFF_IP_LO);
	*p++ = (struct sock_filter)AND((uint32_t)~(GADGET_SIZE - 1));
	*p++ = (struct sock_filter)JEQ((uint32_t)GADGET_ADDR, 0, 1);
	*p++ = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
	for (i = 0; i < (size_t)n; i++, p += RANGE_INSNS)
		emit_range(p, &rs[i],
		    (uint32_t)(l_hit - (size_t)(p - f) - RANGE_INSNS));
	*p++ = (struct sock_filter)RET(SECCOMP_RET_ALLOW);
	/* l_hit */
	KASSERT((size_t)(p - f) == l_hit, ("%s: label", __func__));
	*p++ = (struct sock_filter)LD_MEM(0);
	*p++ = (struct sock_filter)RET_A;
	KASSERT((size_t)(p - f) == len, ("%s: length", __func__));
	prog->len = (unsigned short)len;
	prog->filter = f;
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
				ktls_counter_add(KC_GUARD_REFUSED, 1);
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
dispatch(long nr, const long *a)
{
	if (getpid() != guard_pid)
		return (dispatch_child(nr, a));
	switch (nr) {
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
			ktls_counter_add(KC_GUARD_REFUSED, 1);
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

static void
guard_sigsys(int sig, siginfo_t *si, void *ucv)
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
	g[REG_RAX] = dispatch(si->si_syscall, a);
	ktls_counter_add(KC_GUARD_TRAPPED, 1);
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
}

static int
guard_install_locked(void)
{
	static struct range rs[MAX_RANGES];
	struct sigaction sa, old;
	sigset_t sysset;
	int error, n;

	if (have_io_uring() && !guard_allow_uring)
		return (-EPERM);
	guard_pid = getpid();
	if (gadget == NULL && (error = map_gadget()) != 0)
		return (-EPERM);
	if ((n = read_ranges(rs, MAX_RANGES)) < 0)
		return (-EPERM);
	/* Our handler, with libc's restorer; the application's kept. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (ktls_sys.sigaction(SIGSYS, &sa, &old) != 0)
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

/* For the engine's threads and the interposer: is SIGSYS to stay open? */
bool
ktls_guard_keeps_sigsys(void)
{
	return (!guard_disabled);
}

void
ktls_guard_atfork_child(void)
{
	pthread_mutex_init(&guard_mtx, NULL);
	guard_pid = getpid();
}
