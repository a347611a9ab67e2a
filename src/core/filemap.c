/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sendfile's single pass: the worker encrypts straight from the page cache
 * (a read-only shared mapping of the file) into the record, instead of
 * copying the file into the record and encrypting it there.  Each sendfile
 * keeps a window of the file mapped; records of one sendfile are all
 * encrypted by one worker, in order, so the window needs no lock.
 *
 * A file truncated under a mapping raises SIGBUS on the pages past its new
 * end.  The copy out of the mapping runs guarded: a SIGBUS there unwinds
 * to the worker, which resets the connection (no garbage is sent) and
 * reports EIO, as the pread() path does for a file that shrank.  A SIGBUS
 * anywhere else is handled as if ktls were not there.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ktls_int.h"

#define MAP_WINDOW	(4u << 20)	/* bytes mapped at a time */

const uint8_t *
ktls_file_map(struct ktls_fileref *f, off_t off, size_t len)
{
	struct stat st;
	off_t start, end;
	void *p;

	if (f->map != NULL && off >= f->map_off &&
	    off + (off_t)len <= f->map_off + (off_t)f->map_len)
		return (f->map + (off - f->map_off));
	if (f->map != NULL) {
		munmap(f->map, f->map_len);
		f->map = NULL;
	}
	if (f->nomap)
		return (NULL);
	if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		f->nomap = true;	/* pread() it is */
		return (NULL);
	}
	/* Already shorter: let pread() find out and fail cleanly. */
	if (off + (off_t)len > st.st_size)
		return (NULL);
	start = off - off % MAP_WINDOW;
	end = start + MAP_WINDOW;
	if (end < off + (off_t)len)
		end = off + (off_t)len;
	if (end > st.st_size)
		end = st.st_size;
	p = mmap(NULL, (size_t)(end - start), PROT_READ, MAP_SHARED |
	    MAP_POPULATE, f->fd, start);
	if (p == MAP_FAILED) {
		f->nomap = true;
		return (NULL);
	}
	f->map = p;
	f->map_off = start;
	f->map_len = (size_t)(end - start);
	return (f->map + (off - start));
}

void
ktls_file_unmap(struct ktls_fileref *f)
{
	if (f->map != NULL)
		munmap(f->map, f->map_len);
	f->map = NULL;
}

static __thread sigjmp_buf bus_jmp;
static __thread volatile sig_atomic_t bus_armed;
static struct sigaction bus_old;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;

static void
bus_handler(int sig, siginfo_t *si, void *uc)
{
	if (bus_armed) {
		bus_armed = 0;
		siglongjmp(bus_jmp, 1);
	}
	/* Not ours: whatever the application had. */
	if ((bus_old.sa_flags & SA_SIGINFO) && bus_old.sa_sigaction != NULL) {
		bus_old.sa_sigaction(sig, si, uc);
	} else if (bus_old.sa_handler != SIG_DFL &&
	    bus_old.sa_handler != SIG_IGN) {
		bus_old.sa_handler(sig);
	} else {
		/* The fault repeats on return, now with the default action. */
		ktls_sys.sigaction(SIGBUS, &bus_old, NULL);
	}
}

static void
bus_install(void)
{
	struct sigaction sa = { .sa_sigaction = bus_handler,
	    .sa_flags = SA_SIGINFO | SA_ONSTACK };

	sigemptyset(&sa.sa_mask);
	ktls_sys.sigaction(SIGBUS, &sa, &bus_old);
}

/*
 * Run the backend over a source that may be a file mapping.  0, the
 * backend's error, or -EIO when the file shrank under the mapping.
 */
int
ktls_encrypt_guarded(const struct ktls_session *s, struct ktls_crypt_op *op)
{
	sigset_t bus;
	int error;

	pthread_once(&bus_once, bus_install);
	if (sigsetjmp(bus_jmp, 0) != 0) {
		/* Unwound from the handler: SIGBUS is still blocked here. */
		sigemptyset(&bus);
		sigaddset(&bus, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
		return (-EIO);
	}
	bus_armed = 1;
	error = s->be->encrypt(s->cctx, op);
	bus_armed = 0;
	return (error);
}
