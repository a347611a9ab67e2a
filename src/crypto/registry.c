/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The backend registry: backends sorted by priority; a session goes to the
 * first one whose try() accepts it.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "backend.h"

#define KTLS_MAX_BACKENDS	8

static const struct ktls_backend *backends[KTLS_MAX_BACKENDS];
static unsigned int nbackends;
static pthread_mutex_t reg_mtx = PTHREAD_MUTEX_INITIALIZER;

int
ktls_backend_register(const struct ktls_backend *be)
{
	unsigned int i;

	if (be->init != NULL)
		be->init();
	pthread_mutex_lock(&reg_mtx);
	if (nbackends == KTLS_MAX_BACKENDS) {
		pthread_mutex_unlock(&reg_mtx);
		return (-ENOSPC);
	}
	for (i = nbackends; i > 0 && backends[i - 1]->prio < be->prio; i--)
		backends[i] = backends[i - 1];
	backends[i] = be;
	nbackends++;
	pthread_mutex_unlock(&reg_mtx);
	return (0);
}

const struct ktls_backend *
ktls_backend_get(unsigned int idx)
{
	return (idx < nbackends ? backends[idx] : NULL);
}

/*
 * Pick the backend for a session; `only', when not NULL, restricts the
 * choice to the backend of that name (KTLS_BACKEND, tests).
 */
int
ktls_backend_select(const struct ktls_crypto_params *p,
    const struct ktls_backend **bep, struct ktls_cctx **ctxp, const char *only)
{
	for (unsigned int i = 0; i < nbackends; i++) {
		const struct ktls_backend *be = backends[i];

		if (only != NULL && *only != '\0' && strcmp(only, be->name) != 0)
			continue;
		if (be->try(p, ctxp) == 0) {
			*bep = be;
			return (0);
		}
	}
	return (-EOPNOTSUPP);
}
