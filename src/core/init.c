/* SPDX-License-Identifier: BSD-2-Clause */
/* Library set-up: the system-call seam, the backends, the environment. */
#include <dlfcn.h>
#include <poll.h>
#include <fcntl.h>
#include <unistd.h>

#include "ktls_int.h"

extern const struct ktls_backend ktls_backend_openssl;
#ifdef KTLS_HAVE_IPSECMB
extern const struct ktls_backend ktls_backend_ipsecmb;
#endif
#ifdef KTLS_HAVE_VAES
extern const struct ktls_backend ktls_backend_vaes;
#endif

struct ktls_sysops ktls_sys;
_Atomic size_t ktls_unsent;
static pthread_once_t sys_once = PTHREAD_ONCE_INIT;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static _Atomic pid_t owner_pid;		/* 0: nothing set up yet */

void
ktls_owner_set(void)
{
	atomic_store(&owner_pid, getpid());
}

bool
ktls_owner(void)
{
	pid_t p = atomic_load(&owner_pid);

	return (p == 0 || getpid() == p);
}

/*
 * At exit(3), records accepted but not yet handed to the kernel would be
 * lost with the process, where the kernel would still send them
 * (invariant 3).  Wait for the queues to reach the kernel, for at most
 * KTLS_EXIT_WAIT_MS (default 30 s) if a peer stopped reading.
 */
/*
 * The environment, as it was when the library was loaded: servers such as
 * nginx clear theirs before their first connection, long before the first
 * enable.  A variable still set later wins (tests set KTLS_BACKEND).
 */
static bool env_enable;
static char env_backend[32];
static long env_exit_wait_ms = 30000;

__attribute__((constructor)) static void
ktls_load_env(void)
{
	const char *e;

	e = getenv("KTLS_ENABLE");
	/* kern.ipc.tls.enable is off by default, as on FreeBSD. */
	env_enable = e != NULL && *e != '\0' && *e != '0';
	if ((e = getenv("KTLS_BACKEND")) != NULL)
		snprintf(env_backend, sizeof(env_backend), "%s", e);
	if ((e = getenv("KTLS_EXIT_WAIT_MS")) != NULL)
		env_exit_wait_ms = atol(e);
	/* ktls-run sets 2000: its interposer calls ktls_push() on waits. */
	if ((e = getenv("KTLS_AUTOCORK_US")) != NULL && atol(e) >= 0 &&
	    atol(e) <= KTLS_AUTOCORK_MAX_US)
		atomic_store(&ktls_tunable_autocork_us, (int)atol(e));
	/*
	 * Resolve libc's calls now, before main(): resolving them later, from
	 * inside libc (setlocale() closing a file through an interposer's
	 * close(), say), would run dlsym() under libc's own locks.
	 */
	ktls_sys_init();
}

const char *
ktls_env_backend(void)
{
	const char *e = getenv("KTLS_BACKEND");

	return (e != NULL ? e : env_backend[0] != '\0' ? env_backend : NULL);
}

void
ktls_drain_all(void)
{
	const char *e = getenv("KTLS_EXIT_WAIT_MS");
	long ms = e != NULL ? atol(e) : env_exit_wait_ms;

	ktls_tx_push_all();
	while (atomic_load(&ktls_unsent) > 0 && ms-- > 0)
		usleep(1000);
}

/*
 * The next definition after ours: libc's, even when an LD_PRELOAD
 * interposer defines the same name.  Falls back to the linked symbol.
 */
#define SYS_RESOLVE(name) do {						\
	void *p_ = dlsym(RTLD_NEXT, #name);				\
	ktls_sys.name = p_ != NULL ? (__typeof__(ktls_sys.name))p_ : name; \
} while (0)

static void
ktls_atfork_child(void)
{
	ktls_owner_set();
	ktls_counters_atfork_child();
	ktls_record_atfork_child();
	ktls_keymem_atfork_child();
	ktls_workers_atfork_child();
	ktls_tx_atfork_child();
	ktls_aio_atfork_child();
	ktls_sock_atfork_child();
	ktls_control_atfork_child();
	ktls_guard_atfork_child();
}

static void
sys_once_fn(void)
{
	SYS_RESOLVE(write);
	SYS_RESOLVE(writev);
	SYS_RESOLVE(send);
	SYS_RESOLVE(sendto);
	SYS_RESOLVE(sendmsg);
	SYS_RESOLVE(sendfile);
	SYS_RESOLVE(sendmmsg);
	SYS_RESOLVE(pwrite);
	SYS_RESOLVE(pwritev2);
	SYS_RESOLVE(splice);
	SYS_RESOLVE(pread);
	SYS_RESOLVE(read);
	SYS_RESOLVE(recv);
	SYS_RESOLVE(poll);
	SYS_RESOLVE(close);
	SYS_RESOLVE(shutdown);
	SYS_RESOLVE(setsockopt);
	SYS_RESOLVE(getsockopt);
	SYS_RESOLVE(fcntl);
	SYS_RESOLVE(dup);
	SYS_RESOLVE(dup2);
	SYS_RESOLVE(dup3);
	SYS_RESOLVE(close_range);
	SYS_RESOLVE(sigaction);
	SYS_RESOLVE(aio_write);
	SYS_RESOLVE(aio_error);
	SYS_RESOLVE(aio_return);
	SYS_RESOLVE(aio_suspend);
}

/*
 * Only the system-call table: what a call on an fd ktls does not manage
 * needs.  Kept apart from ktls_init(), whose set-up (libcrypto's own) may
 * itself open and close files through an interposer's close().
 */
void
ktls_sys_init(void)
{
	pthread_once(&sys_once, sys_once_fn);
}

static void
init_once_fn(void)
{
	ktls_owner_set();
	ktls_sys_init();
	ktls_backend_register(&ktls_backend_openssl);
#ifdef KTLS_HAVE_IPSECMB
	ktls_backend_register(&ktls_backend_ipsecmb);
#endif
#ifdef KTLS_HAVE_VAES
	ktls_backend_register(&ktls_backend_vaes);
#endif
	atexit(ktls_drain_all);
	pthread_atfork(NULL, NULL, ktls_atfork_child);

	if (env_enable)
		atomic_store(&ktls_tunable_enable, 1);
}

void
ktls_init(void)
{
	pthread_once(&init_once, init_once_fn);
}
