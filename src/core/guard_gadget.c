/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guard's gadget page: the engine's own system-call page, mapped at
 * GADGET_ADDR (guard_int.h) and left alone by every filter, and the
 * switch of the seam's (ktls_sys) write-family and descriptor-table
 * entries to calls made from it once the guard is up.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ktls_int.h"
#include "guard_int.h"

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

gadget_fn guard_gadget;

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
#define G(nr, a, b, c, d, e, f) sysret(guard_gadget((nr), (long)(a),	\
	(long)(b), (long)(c), (long)(d), (long)(e), (long)(f)))

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
int
guard_map_gadget(void)
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
	guard_gadget = (gadget_fn)p;
	return (0);
}
void
guard_switch_seam(void)
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
