/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guard's seccomp program: the system calls it traps (x86_64) and
 * refuses (i386), a small label-resolving assembler for classic BPF, and
 * the filter built from it for a set of watched ranges.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "ktls_int.h"
#include "guard_int.h"

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
 * Also trapped, by their arguments (guard_build_filter()): rt_sigaction of
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
int
guard_build_filter(const struct range *rs, int n, struct sock_fprog *prog)
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
