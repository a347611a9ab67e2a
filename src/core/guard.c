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
 *   - the write-family system calls (the table in guard_bpf.c), made from code
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
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"
#include "guard_int.h"

/*
 * State, under guard_mtx except where said.  guard_on is read without it
 * (set once; a thread that misses it only takes the slower libc path).
 */
pthread_mutex_t guard_mtx = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool guard_on;
static bool guard_disabled;		/* KTLS_GUARD=0 */
bool guard_allow_uring;			/* KTLS_IO_URING=allow */
/* The process the engine's state belongs to (guard_int.h). */

static bool
guard_env_off(void)
{
	const char *e = getenv("KTLS_GUARD");

	return (e != NULL && strcmp(e, "0") == 0);
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
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2 || guard_map_gadget() != 0)
		return;
	ktls_sys_init();
	if (guard_set_handler(NULL) != 0)
		return;
	ktls_owner_set();
	guard_switch_seam();
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

static int
guard_install_locked(void)
{
	static struct range rs[MAX_RANGES];
	struct sigaction old;
	sigset_t sysset;
	int error, n;

	if (have_io_uring() && !guard_allow_uring)
		return (-EPERM);
	if (guard_gadget == NULL && (error = guard_map_gadget()) != 0)
		return (-EPERM);
	if ((n = guard_read_ranges(rs, MAX_RANGES)) < 0)
		return (-EPERM);
	/* Our handler; the application's kept. */
	if (guard_set_handler(&old) != 0)
		return (-EPERM);
	guard_keep_app_sigsys(&old);
	/* Seccomp without CAP_SYS_ADMIN needs no_new_privs. */
	error = guard_load_filter(rs, n);
	if (error == -EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		error = guard_load_filter(rs, n);
	if (error != 0) {
		ktls_sys.sigaction(SIGSYS, &old, NULL);
		return (-EPERM);
	}
	/* The enabling thread may trap at once: SIGSYS open in it. */
	sigemptyset(&sysset);
	sigaddset(&sysset, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sysset, NULL);
	guard_switch_seam();
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
	if ((n = guard_read_ranges(rs, MAX_RANGES)) > 0 &&
	    guard_load_filter(rs, n) == 0)
		ktls_counter_add(KC_GUARD_FILTERS, 1);
	pthread_mutex_unlock(&guard_mtx);
}

void
ktls_guard_atfork_child(void)
{
	pthread_mutex_init(&guard_mtx, NULL);
}
