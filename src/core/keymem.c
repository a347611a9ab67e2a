/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Memory for key material (invariant 5 of DESIGN.md): pages locked so they
 * never reach swap, excluded from core dumps, wiped in a fork()ed child,
 * and every piece wiped with explicit_bzero before it is reused.
 *
 * Keys are small (a session's keys under 100 bytes, a GCM key schedule
 * under 1 KiB) and an idle connection should cost little, so pieces come
 * from slabs of such pages in a few size classes; larger requests get
 * pages of their own.  Slab pages are kept for reuse, never unmapped.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ktls_int.h"

#define KM_CHUNK	(64 * 1024)	/* slab pages mapped at a time */
#define KM_NCLASS	5		/* 128, 256, 512, 1024, 2048 bytes */
#define KM_MIN_SHIFT	7

struct km_free {
	struct km_free	*next;
};

static pthread_mutex_t km_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct km_free *km_list[KM_NCLASS];

static void *
km_map(size_t sz)
{
	void *p;

	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return (NULL);
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

static size_t
page_round(size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return ((len + pg - 1) / pg * pg);
}

/* The size class of len, or -1 for a piece of pages of its own. */
static int
km_class(size_t len)
{
	for (int c = 0; c < KM_NCLASS; c++)
		if (len <= (size_t)1 << (KM_MIN_SHIFT + c))
			return (c);
	return (-1);
}

void *
ktls_keymem_alloc(size_t len)
{
	struct km_free *f;
	size_t sz;
	uint8_t *chunk;
	int c = km_class(len);

	if (c < 0)
		return (km_map(page_round(len)));
	sz = (size_t)1 << (KM_MIN_SHIFT + c);
	pthread_mutex_lock(&km_mtx);
	if (km_list[c] == NULL && (chunk = km_map(KM_CHUNK)) != NULL) {
		/* Pieces are aligned to their size (64 at least: AVX-512). */
		for (size_t off = 0; off + sz <= KM_CHUNK; off += sz) {
			f = (struct km_free *)(chunk + off);
			f->next = km_list[c];
			km_list[c] = f;
		}
	}
	if ((f = km_list[c]) != NULL) {
		km_list[c] = f->next;
		f->next = NULL;
	}
	pthread_mutex_unlock(&km_mtx);
	return (f);
}

void
ktls_keymem_free(void *p, size_t len)
{
	struct km_free *f = p;
	int c = km_class(len);

	if (p == NULL)
		return;
	if (c < 0) {
		explicit_bzero(p, page_round(len));
		munlock(p, page_round(len));
		munmap(p, page_round(len));
		return;
	}
	explicit_bzero(p, (size_t)1 << (KM_MIN_SHIFT + c));
	pthread_mutex_lock(&km_mtx);
	f->next = km_list[c];
	km_list[c] = f;
	pthread_mutex_unlock(&km_mtx);
}

/*
 * In a fork()ed child: the lock may be held by a thread that is gone, and
 * the pages were wiped (MADV_WIPEONFORK), free lists included: start over.
 */
void
ktls_keymem_atfork_child(void)
{
	pthread_mutex_init(&km_mtx, NULL);
	memset(km_list, 0, sizeof(km_list));
}
