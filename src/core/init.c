/* SPDX-License-Identifier: BSD-2-Clause */
/* Library set-up: the system-call seam, the backends, the environment. */
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include "ktls_int.h"

extern const struct ktls_backend ktls_backend_openssl;

struct ktls_sysops ktls_sys;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/*
 * The next definition after ours: libc's, even when an LD_PRELOAD
 * interposer defines the same name.  Falls back to the linked symbol.
 */
#define SYS_RESOLVE(name) do {						\
	void *p_ = dlsym(RTLD_NEXT, #name);				\
	ktls_sys.name = p_ != NULL ? (__typeof__(ktls_sys.name))p_ : name; \
} while (0)

static void
init_once_fn(void)
{
	const char *e;

	SYS_RESOLVE(write);
	SYS_RESOLVE(writev);
	SYS_RESOLVE(send);
	SYS_RESOLVE(sendto);
	SYS_RESOLVE(sendmsg);
	SYS_RESOLVE(sendfile);
	SYS_RESOLVE(pread);
	SYS_RESOLVE(close);
	SYS_RESOLVE(shutdown);
	SYS_RESOLVE(setsockopt);
	SYS_RESOLVE(getsockopt);
	SYS_RESOLVE(fcntl);
	SYS_RESOLVE(aio_write);
	SYS_RESOLVE(aio_error);
	SYS_RESOLVE(aio_return);
	SYS_RESOLVE(aio_suspend);

	ktls_backend_register(&ktls_backend_openssl);

	/* kern.ipc.tls.enable is off by default, as on FreeBSD. */
	e = getenv("KTLS_ENABLE");
	if (e != NULL && *e != '\0' && *e != '0')
		atomic_store(&ktls_tunable_enable, 1);
}

void
ktls_init(void)
{
	pthread_once(&init_once, init_once_fn);
}
