/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The LD_PRELOAD interposer: libc's names for every way data can be
 * written to a socket or a descriptor can change, each handing over to
 * the engine's ktls_* call (which goes straight to libc for an fd ktls
 * does not manage), plus the Linux kTLS socket options (linux_uapi.c).
 *
 * Loaded by ktls-run.  The engine is linked into this library, so its
 * dlsym(RTLD_NEXT) finds libc's functions, not these.
 *
 * Built without _FILE_OFFSET_BITS=64, so that the headers do not rename
 * sendfile, fcntl, aio_write... to their *64 twins: both names are defined
 * here, each on purpose (x86_64 and every LP64 target have one off_t).
 */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ktls.h"
#include "interpose.h"

#define KTI_EXPORT	__attribute__((visibility("default")))

struct kti_libc kti_libc;
_Atomic bool kti_libc_ready;

/*
 * No pthread_once here: a sanitizer's runtime, loaded first, calls read()
 * and sigaction() (ours) before it can run pthread_once.  Two threads
 * that both find the table unresolved both resolve it, to the same
 * values, each field stored atomically; the release store of ready
 * publishes them.
 */
KTI_NO_TSAN void
kti_libc_init(void)
{
	if (atomic_load_explicit(&kti_libc_ready, memory_order_acquire))
		return;
#define KTI_LIBC_RESOLVE(name)						\
	__atomic_store_n(&kti_libc.name,				\
	    (__typeof__(kti_libc.name))dlsym(RTLD_NEXT, #name),	\
	    __ATOMIC_RELAXED);
	KTI_LIBC_CALLS(KTI_LIBC_RESOLVE)
#undef KTI_LIBC_RESOLVE
	atomic_store_explicit(&kti_libc_ready, true, memory_order_release);
}

/* Before main(), for the reason ktls_load_env() gives. */
__attribute__((constructor)) static void
kti_load(void)
{
	kti_libc_init();
}

KTI_EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	return (ktls_write(fd, buf, len));
}

KTI_EXPORT ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	return (ktls_writev(fd, iov, iovcnt));
}

KTI_EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	return (ktls_send(fd, buf, len, flags));
}

KTI_EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *addr, socklen_t alen)
{
	return (ktls_sendto(fd, buf, len, flags, addr, alen));
}

KTI_EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return (ktls_sendmsg(fd, msg, flags));
}

KTI_EXPORT int
sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	return (ktls_sendmmsg(fd, vec, vlen, flags));
}

KTI_EXPORT ssize_t
sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return (ktls_sendfile(out_fd, in_fd, offset, count));
}

KTI_EXPORT ssize_t
sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return (ktls_sendfile(out_fd, in_fd, offset, count));
}

KTI_EXPORT int
aio_write(struct aiocb *cb)
{
	return (ktls_aio_write(cb));
}

/* struct aiocb64 is struct aiocb where off_t is 64-bit. */
_Static_assert(sizeof(struct aiocb64) == sizeof(struct aiocb),
    "aiocb64 layout");

KTI_EXPORT int
aio_write64(struct aiocb64 *cb)
{
	return (ktls_aio_write((struct aiocb *)cb));
}

/*
 * glibc's aio_suspend knows only its own requests; ktls's waits for
 * both kinds.
 */
KTI_EXPORT int
aio_suspend(const struct aiocb *const list[], int nent,
    const struct timespec *timeout)
{
	return (ktls_aio_suspend(list, nent, timeout));
}

KTI_EXPORT int
aio_suspend64(const struct aiocb64 *const list[], int nent,
    const struct timespec *timeout)
{
	return (ktls_aio_suspend((const struct aiocb *const *)list, nent,
	    timeout));
}

KTI_EXPORT int
shutdown(int fd, int how)
{
	return (ktls_shutdown(fd, how));
}

KTI_EXPORT int
close(int fd)
{
	kti_ulp_forget(fd);
	return (ktls_close(fd));
}

KTI_EXPORT int
close_range(unsigned int first, unsigned int last, int flags)
{
	int r = ktls_close_range(first, last, flags);

	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		if (last > (1u << 22))
			last = 1u << 22;
		for (unsigned int fd = first; fd <= last; fd++)
			kti_ulp_forget((int)fd);
	}
	return (r);
}

KTI_EXPORT int
dup(int oldfd)
{
	int fd;

	if ((fd = ktls_dup(oldfd)) >= 0)
		kti_ulp_dup(oldfd, fd);
	return (fd);
}

KTI_EXPORT int
dup2(int oldfd, int newfd)
{
	int fd;

	if ((fd = ktls_dup2(oldfd, newfd)) >= 0)
		kti_ulp_dup(oldfd, newfd);
	return (fd);
}

KTI_EXPORT int
dup3(int oldfd, int newfd, int flags)
{
	int fd;

	if ((fd = ktls_dup3(oldfd, newfd, flags)) >= 0)
		kti_ulp_dup(oldfd, newfd);
	return (fd);
}

static int
kti_fcntl(int fd, int cmd, va_list ap)
{
	long arg = va_arg(ap, long);	/* int or pointer: as glibc does */
	int r;

	r = ktls_fcntl(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		kti_ulp_dup(fd, r);
	return (r);
}

KTI_EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	int r;

	va_start(ap, cmd);
	r = kti_fcntl(fd, cmd, ap);
	va_end(ap);
	return (r);
}

KTI_EXPORT int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	int r;

	va_start(ap, cmd);
	r = kti_fcntl(fd, cmd, ap);
	va_end(ap);
	return (r);
}

KTI_EXPORT int
setsockopt(int fd, int level, int optname, const void *optval,
    socklen_t optlen)
{
	int r;

	if ((r = kti_setsockopt(fd, level, optname, optval, optlen)) != KTI_PASS)
		return (r);
	return (ktls_setsockopt(fd, level, optname, optval, optlen));
}

KTI_EXPORT int
getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)
{
	int r;

	if ((r = kti_getsockopt(fd, level, optname, optval, optlen)) != KTI_PASS)
		return (r);
	return (ktls_getsockopt(fd, level, optname, optval, optlen));
}

/*
 * The exec family: the new image gets no session, so the engine sends its
 * queues and closes enabled sockets on exec first (ktls_exec_prepare()).
 * glibc's own exec wrappers call execve internally, not through here, so
 * each is wrapped.
 */
#define EXEC_MAXARGS		4096

KTI_EXPORT int
execve(const char *path, char *const argv[], char *const envp[])
{
	ktls_exec_prepare();
	return (kti_libc_get()->execve(path, argv, envp));
}

KTI_EXPORT int
execvpe(const char *file, char *const argv[], char *const envp[])
{
	ktls_exec_prepare();
	return (kti_libc_get()->execvpe(file, argv, envp));
}

KTI_EXPORT int
fexecve(int fd, char *const argv[], char *const envp[])
{
	ktls_exec_prepare();
	return (kti_libc_get()->fexecve(fd, argv, envp));
}

KTI_EXPORT int
execv(const char *path, char *const argv[])
{
	return (execve(path, argv, environ));
}

KTI_EXPORT int
execvp(const char *file, char *const argv[])
{
	return (execvpe(file, argv, environ));
}

/* The list forms: their arguments into an array, then as above. */
static int
exec_list(const char *arg0, va_list ap, char **argv)
{
	int n = 0;

	argv[n++] = (char *)arg0;
	while (arg0 != NULL && n < EXEC_MAXARGS &&
	    (argv[n++] = va_arg(ap, char *)) != NULL)
		;
	if (n == EXEC_MAXARGS && argv[n - 1] != NULL) {
		errno = E2BIG;
		return (-1);
	}
	return (0);
}

KTI_EXPORT int
execl(const char *path, const char *arg, ...)
{
	char *argv[EXEC_MAXARGS];
	va_list ap;
	int r;

	va_start(ap, arg);
	r = exec_list(arg, ap, argv);
	va_end(ap);
	return (r != 0 ? r : execve(path, argv, environ));
}

KTI_EXPORT int
execlp(const char *file, const char *arg, ...)
{
	char *argv[EXEC_MAXARGS];
	va_list ap;
	int r;

	va_start(ap, arg);
	r = exec_list(arg, ap, argv);
	va_end(ap);
	return (r != 0 ? r : execvpe(file, argv, environ));
}

KTI_EXPORT int
execle(const char *path, const char *arg, ...)
{
	char *argv[EXEC_MAXARGS], *const *envp;
	va_list ap;
	int r;

	va_start(ap, arg);
	r = exec_list(arg, ap, argv);
	envp = va_arg(ap, char *const *);	/* after the NULL */
	va_end(ap);
	return (r != 0 ? r : execve(path, argv, envp));
}
