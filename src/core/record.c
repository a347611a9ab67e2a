/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Records and sendfile file references.
 *
 * Full-size record buffers (the bulk of any large transfer) come from a
 * pool and go back to it: handing 16 KiB buffers back to malloc lets it
 * return the memory to the kernel, and every new record then pays page
 * faults and a clear of fresh pages (measured: a sixth of the CPU of an
 * nginx sendfile).  Small records use malloc, whose bins serve them well.
 */
#include "ktls.h"
#include "ktls_int.h"

#define POOL_MIN	4096	/* payloads above this use full-size buffers */
#define POOL_MAX	256	/* buffers kept: 4 MiB */
#define POOL_SIZE	(sizeof(struct ktls_record) + TLS_MAX_MSG_SIZE_V10_2 + \
			    KTLS_MAX_OVERHEAD)

static pthread_mutex_t pool_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct ktls_record *pool;	/* linked through next */
static unsigned int pool_n;

struct ktls_record *
ktls_record_alloc(size_t payload)
{
	struct ktls_record *r = NULL;
	bool pooled = payload > POOL_MIN;

	if (ktls_fault_hit(KF_RECORD_ALLOC))
		return (NULL);
	if (pooled) {
		pthread_mutex_lock(&pool_mtx);
		if ((r = pool) != NULL) {
			pool = r->next;
			pool_n--;
		}
		pthread_mutex_unlock(&pool_mtx);
	}
	if (r == NULL) {
		r = malloc(pooled ? POOL_SIZE :
		    sizeof(*r) + payload + KTLS_MAX_OVERHEAD);
		if (r == NULL)
			return (NULL);
	}
	r->next = r->wnext = NULL;
	r->so = NULL;
	r->file = NULL;
	r->sent = 0;
	r->pooled = pooled;
	atomic_init(&r->ready, false);
	return (r);
}

/* Frees r and drops its file reference; the socket reference is the
 * caller's business (see ktls_sock_unlock()). */
void
ktls_record_free(struct ktls_record *r)
{
	if (r->file != NULL)
		ktls_fileref_rele(r->file);
	if (r->pooled) {
		pthread_mutex_lock(&pool_mtx);
		if (pool_n < POOL_MAX) {
			r->next = pool;
			pool = r;
			pool_n++;
			r = NULL;
		}
		pthread_mutex_unlock(&pool_mtx);
	}
	free(r);
}

/* In a fork()ed child the lock may be held by a thread that is gone. */
void
ktls_record_atfork_child(void)
{
	pthread_mutex_init(&pool_mtx, NULL);
}

void
ktls_fileref_rele(struct ktls_fileref *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1) {
		ktls_sys.close(f->fd);
		free(f);
	}
}
