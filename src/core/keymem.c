/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Memory for key material (invariant 5 of DESIGN.md): its own pages,
 * locked so they never reach swap, excluded from core dumps, wiped with
 * explicit_bzero before they are returned.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ktls_int.h"

static size_t
keymem_size(size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return ((len + pg - 1) / pg * pg);
}

void *
ktls_keymem_alloc(size_t len)
{
	size_t sz = keymem_size(len);
	void *p;

	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return (NULL);
	/* Not in a core dump; not inherited by a fork()ed child. */
	if (madvise(p, sz, MADV_DONTDUMP) != 0 ||
	    madvise(p, sz, MADV_WIPEONFORK) != 0) {
		munmap(p, sz);
		return (NULL);
	}
	/*
	 * Locking can fail under a small RLIMIT_MEMLOCK; the pages are still
	 * kept out of dumps and wiped, so go on rather than refuse TLS.
	 */
	(void)mlock(p, sz);
	return (p);
}

void
ktls_keymem_free(void *p, size_t len)
{
	size_t sz = keymem_size(len);

	if (p == NULL)
		return;
	explicit_bzero(p, sz);
	munlock(p, sz);
	munmap(p, sz);
}
