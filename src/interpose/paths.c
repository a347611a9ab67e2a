/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Every other libc name through which bytes can reach a socket, and the
 * process-level calls the guard depends on (invariant 7).
 *
 * The list comes from glibc 2.36's exported symbols (nm -D libc.so.6),
 * not from memory.  The write family and where each is handled:
 *
 *   write __write writev send __send sendto sendmsg sendmmsg __sendmmsg
 *   sendfile sendfile64 aio_write aio_write64 ..... preload.c and here
 *   pwrite pwrite64 __pwrite64 __libc_pwrite pwritev pwritev64
 *   pwritev2 pwritev64v2 splice dprintf vdprintf __dprintf_chk
 *   __vdprintf_chk .................................. here
 *   __write_nocancel (GLIBC_PRIVATE: libc's own stdio and internal
 *   writers), _IO_file_write/_IO_do_write (stdio vtable, never called
 *   through the PLT), fwrite/fputs/printf on a FILE, syscall() .... not
 *   interposable: the guard's seccomp filter traps the system calls they
 *   make (src/core/guard.c)
 *   vmsplice tee (pipes only), copy_file_range (regular files only: a
 *   socket is EINVAL), eventfd_write, mq_send, process_vm_writev .. cannot
 *   write to a TCP socket
 *
 * No __send_chk or __write_chk exists in glibc (fortify checks reads).
 *
 * And the process-level calls:
 *   dlopen dlmopen ......... new code: the guard watches it too
 *   sigaction __sigaction signal bsd_signal sysv_signal .. SIGSYS: the
 *                            application's handler is recorded, the
 *                            guard's stays (sigset(3) is signal's kin:
 *                            glibc's calls its internal sigaction, left)
 *   fclose ................. its internal close of an enabled socket (also
 *                            trapped by the guard; this keeps it right
 *                            with KTLS_GUARD=0)
 *   sigprocmask pthread_sigmask .. SIGSYS is never blocked (a blocked
 *                            seccomp SIGSYS kills the thread)
 *   posix_spawn posix_spawnp popen system .. queues sent and enabled
 *                            sockets made close-on-exec first, as for the
 *                            exec family (popen and system spawn inside
 *                            libc, past posix_spawn's name)
 *   posix_spawn_file_actions_adddup2 .. refused (EPERM) for an enabled
 *                            socket: the new image would write it in the
 *                            clear
 */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ktls.h"
#include "interpose.h"

#define KTI_EXPORT	__attribute__((visibility("default")))

KTI_EXPORT ssize_t
__write(int fd, const void *buf, size_t len)
{
	return (ktls_write(fd, buf, len));
}

KTI_EXPORT ssize_t
__send(int fd, const void *buf, size_t len, int flags)
{
	return (ktls_send(fd, buf, len, flags));
}

KTI_EXPORT int
__sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	return (ktls_sendmmsg(fd, vec, vlen, flags));
}

/*
 * Names of one function: glibc exports several for each (off_t is 64-bit
 * on LP64, so the *64 names are the same call), aliases here.
 */
#define KTI_ALIAS(name, target)						\
	extern __typeof__(target) name					\
	    __attribute__((alias(#target), visibility("default")))

KTI_EXPORT ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return (ktls_pwrite(fd, buf, len, off));
}
KTI_ALIAS(pwrite64, pwrite);
KTI_ALIAS(__pwrite64, pwrite);
KTI_ALIAS(__libc_pwrite, pwrite);

KTI_EXPORT ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return (ktls_pwritev(fd, iov, iovcnt, off));
}
KTI_ALIAS(pwritev64, pwritev);

KTI_EXPORT ssize_t
pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	return (ktls_pwritev2(fd, iov, iovcnt, off, flags));
}
KTI_ALIAS(pwritev64v2, pwritev2);

KTI_EXPORT ssize_t
splice(int in_fd, off_t *off_in, int out_fd, off_t *off_out, size_t len,
    unsigned int flags)
{
	return (ktls_splice(in_fd, off_in, out_fd, off_out, len, flags));
}

/*
 * dprintf(3): glibc formats into a FILE of its own and writes it with its
 * internal write, which the guard would trap; formatted here and written
 * through the engine, one write (so one record) for the whole output.
 */
KTI_EXPORT int
vdprintf(int fd, const char *fmt, va_list ap)
{
	char small[1024], *buf = small;
	va_list aq;
	ssize_t n;
	size_t done = 0;
	int len;

	va_copy(aq, ap);
	len = vsnprintf(small, sizeof(small), fmt, aq);
	va_end(aq);
	if (len < 0)
		return (-1);
	if ((size_t)len >= sizeof(small)) {
		if ((buf = malloc((size_t)len + 1)) == NULL)
			return (-1);
		vsnprintf(buf, (size_t)len + 1, fmt, ap);
	}
	while (done < (size_t)len) {
		n = ktls_write(fd, buf + done, (size_t)len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			len = -1;
			break;
		}
		done += (size_t)n;
	}
	if (buf != small)
		free(buf);
	return (len);
}

KTI_EXPORT int
dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vdprintf(fd, fmt, ap);
	va_end(ap);
	return (r);
}

/* _FORTIFY_SOURCE's names (the flag asks for %n checks: vsnprintf's). */
KTI_EXPORT int
__vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
	(void)flag;
	return (vdprintf(fd, fmt, ap));
}

KTI_EXPORT int
__dprintf_chk(int fd, int flag, const char *fmt, ...)
{
	va_list ap;
	int r;

	(void)flag;
	va_start(ap, fmt);
	r = vdprintf(fd, fmt, ap);
	va_end(ap);
	return (r);
}

/* ---- new code ---- */


KTI_EXPORT void *
dlopen(const char *file, int mode)
{
	void *h;

	NEXT(dlopen);
	if ((h = next_(file, mode)) != NULL)
		ktls_guard_refresh();
	return (h);
}

KTI_EXPORT void *
dlmopen(Lmid_t lmid, const char *file, int mode)
{
	void *h;

	NEXT(dlmopen);
	if ((h = next_(lmid, file, mode)) != NULL)
		ktls_guard_refresh();
	return (h);
}

/*
 * A sanitizer runtime loaded before the interposer finds the signal calls
 * below as libc's, and calls them while it sets itself up: so they are not
 * instrumented, and only SIGSYS goes into the engine.
 */
#define KTI_NOSAN	__attribute__((no_sanitize("thread", "address", \
	"undefined")))

/* ---- signal masks ---- */


/*
 * SIGSYS stays open in every thread: the guard's SIGSYS is forced, and
 * the kernel kills a thread that has a forced signal blocked.  Blocking
 * SIGSYS has no other use (a seccomp or bad-syscall SIGSYS is
 * synchronous), so the set is taken without it.
 */
KTI_NOSAN static const sigset_t *
without_sigsys(int how, const sigset_t *set, sigset_t *copy)
{
	if (set == NULL || how == SIG_UNBLOCK || !sigismember(set, SIGSYS))
		return (set);
	*copy = *set;
	sigdelset(copy, SIGSYS);
	return (copy);
}

KTI_EXPORT KTI_NOSAN int
pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;

	NEXT(pthread_sigmask);
	return (next_(how, without_sigsys(how, set, &copy), old));
}

KTI_EXPORT KTI_NOSAN int
sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;

	NEXT(sigprocmask);
	return (next_(how, without_sigsys(how, set, &copy), old));
}

/* ---- SIGSYS ---- */

/*
 * The application's SIGSYS disposition is recorded by the engine, not
 * installed over the guard's handler (ktls_sigaction()); glibc's signal()
 * and its kin call its internal sigaction, not this one, so each is here.
 */

KTI_NOSAN static int
kti_sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	struct sigaction copy;

	/* A handler that runs with SIGSYS blocked would die of a trap. */
	if (act != NULL && sigismember(&act->sa_mask, SIGSYS) == 1) {
		copy = *act;
		sigdelset(&copy.sa_mask, SIGSYS);
		act = &copy;
	}
	if (sig == SIGSYS)
		return (ktls_sigaction(sig, act, oact));
	NEXT(sigaction);
	return (next_(sig, act, oact));
}

KTI_EXPORT KTI_NOSAN int
sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	return (kti_sigaction(sig, act, oact));
}

KTI_EXPORT KTI_NOSAN int
__sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	return (kti_sigaction(sig, act, oact));
}

/* signal(3) with glibc's BSD semantics (SA_RESTART, handler kept). */
static sighandler_t
signal_as(int sig, sighandler_t h, int flags)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (h != SIG_DFL && h != SIG_IGN && !(flags & SA_NODEFER))
		sigaddset(&sa.sa_mask, sig);
	if (kti_sigaction(sig, &sa, &old) != 0)
		return (SIG_ERR);
	return (old.sa_handler);
}

KTI_EXPORT sighandler_t
signal(int sig, sighandler_t h)
{
	return (signal_as(sig, h, SA_RESTART));
}

KTI_EXPORT sighandler_t
bsd_signal(int sig, sighandler_t h)
{
	return (signal_as(sig, h, SA_RESTART));
}

/* System V semantics: reset to SIG_DFL on delivery, not blocked. */
KTI_EXPORT sighandler_t
sysv_signal(int sig, sighandler_t h)
{
	return (signal_as(sig, h, SA_RESETHAND | SA_NODEFER));
}

/* ---- stdio ---- */


/*
 * fclose(3) closes its descriptor with libc's internal close: for an
 * enabled socket the engine must hear of it, or the connection would
 * outlive the application's last descriptor (the buffered bytes were
 * flushed through the engine already, by the guard).
 */
KTI_EXPORT int
fclose(FILE *fp)
{
	int fd = fp != NULL ? fileno(fp) : -1, r;

	NEXT(fclose);
	r = next_(fp);
	/*
	 * With the guard up its close was trapped and told already: a second
	 * word now could hit a socket another thread has just opened (and
	 * enabled) on the number.
	 */
	if (fd >= 0 && !ktls_guard_on())
		ktls_fd_closed(fd);
	return (r);
}

/* ---- posix_spawn ---- */


/*
 * posix_spawn(3) execs inside libc, past the exec family's wrappers: the
 * same preparation first (queues sent, enabled sockets close-on-exec).
 */
KTI_EXPORT int
posix_spawn(pid_t *pid, const char *path,
    const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
    char *const argv[], char *const envp[])
{

	NEXT(posix_spawn);
	ktls_exec_prepare();
	return (next_(pid, path, fa, attr, argv, envp));
}

KTI_EXPORT int
posix_spawnp(pid_t *pid, const char *file,
    const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
    char *const argv[], char *const envp[])
{

	NEXT(posix_spawnp);
	ktls_exec_prepare();
	return (next_(pid, file, fa, attr, argv, envp));
}


/* popen(3) and system(3) spawn through libc's own posix_spawn: the same. */
KTI_EXPORT FILE *
popen(const char *cmd, const char *mode)
{

	NEXT(popen);
	ktls_exec_prepare();
	return (next_(cmd, mode));
}

KTI_EXPORT int
system(const char *cmd)
{

	NEXT(system);
	ktls_exec_prepare();
	return (next_(cmd));
}

/*
 * A dup2 file action would hand the new image an enabled socket, after
 * close-on-exec was set, as one of its plain descriptors (an inetd-style
 * child writing its stdout to the connection in the clear).  Refused.
 */
KTI_EXPORT int
posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd,
    int newfd)
{
	socklen_t len = sizeof(int);
	int mode;

	NEXT(posix_spawn_file_actions_adddup2);
	if (ktls_getsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &mode,
	    &len) == 0 && mode != TCP_TLS_MODE_NONE)
		return (EPERM);
	return (next_(fa, fd, newfd));
}
