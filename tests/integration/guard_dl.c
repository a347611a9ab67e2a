/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A module that test_guard dlopen()s after its first enable: code mapped
 * after the guard's filter was built, making its own raw write system
 * call (no libc in the way), as a plugin or a runtime would.
 */
#include <stddef.h>
#include <sys/syscall.h>

__attribute__((visibility("default"))) long
guard_dl_write(int fd, const void *buf, size_t len)
{
	long r;

#if defined(__x86_64__)
	__asm__ volatile ("syscall"
	    : "=a" (r)
	    : "0" ((long)SYS_write), "D" ((long)fd), "S" (buf), "d" (len)
	    : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = SYS_write;
	register long x0 __asm__("x0") = fd;
	register long x1 __asm__("x1") = (long)buf;
	register long x2 __asm__("x2") = (long)len;

	__asm__ volatile ("svc #0" : "+r" (x0) : "r" (x8), "r" (x1), "r" (x2)
	    : "memory");
	r = x0;
#else
	(void)fd;
	(void)buf;
	(void)len;
	r = -38;	/* ENOSYS: the test skips */
#endif
	return (r);
}
