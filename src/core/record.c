/* SPDX-License-Identifier: BSD-2-Clause */
/* Records and sendfile file references. */
#include "ktls_int.h"

struct ktls_record *
ktls_record_alloc(size_t payload)
{
	struct ktls_record *r;

	r = malloc(sizeof(*r) + payload + KTLS_MAX_OVERHEAD);
	if (r == NULL)
		return (NULL);
	r->next = r->wnext = NULL;
	r->so = NULL;
	r->file = NULL;
	r->sent = 0;
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
	free(r);
}

void
ktls_fileref_rele(struct ktls_fileref *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1) {
		ktls_sys.close(f->fd);
		free(f);
	}
}
