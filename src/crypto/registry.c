/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The backend registry: backends sorted by priority; a session goes to the
 * first one whose try() accepts it, a timed backend only where it wins
 * the registry's measurement for the suite.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
 * Timed backends: per (backend, suite), whether it beats the untimed
 * backend that would take the suite without it.  Measured without a lock
 * held (two first sessions may both measure; the first answer stays),
 * looked up and recorded under reg_mtx.
 */
#define KTLS_MAX_TIMED		32
static struct timed_choice {
	const struct ktls_backend	*be;
	const struct ktls_suite		*suite;
	bool				 wins;
} timed[KTLS_MAX_TIMED];
static unsigned int ntimed;

#define PROBE_BIG	16384	/* full-size records: bulk transfers */
#define PROBE_SMALL	1024	/* and small responses, the same bytes */
#define PROBE_ROUNDS	3

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/* Nanoseconds to seal 4 full-size and 64 small records, in place. */
static uint64_t
probe_time(const struct ktls_backend *be, struct ktls_cctx *c,
    const struct ktls_suite *s, uint8_t *rec)
{
	struct ktls_crypt_op op = { .type = 23, .rec = rec,
	    .src = rec + s->prefix_len };
	uint64_t t0 = now_ns();

	for (unsigned int i = 0; i < 4 + 64; i++) {
		size_t rl;

		op.seq = i;
		op.len = i < 4 ? PROBE_BIG : PROBE_SMALL;
		rl = ktls_suite_record_len(s, op.len) - KTLS_HDR_LEN;
		rec[0] = 23;
		rec[1] = 3;
		rec[2] = ktls_suite_is_tls13(s) ? 3 : s->vminor;
		rec[3] = (uint8_t)(rl >> 8);
		rec[4] = (uint8_t)rl;
		if (be->encrypt(c, &op) != 0)
			return (UINT64_MAX);
	}
	return (now_ns() - t0);
}

/* The recorded answer for be and s: 1 wins, 0 loses, -1 none yet. */
static int
timed_lookup_locked(const struct ktls_backend *be, const struct ktls_suite *s)
{
	for (unsigned int j = 0; j < ntimed; j++)
		if (timed[j].be == be && timed[j].suite == s)
			return (timed[j].wins);
	return (-1);
}

static int
timed_lookup(const struct ktls_backend *be, const struct ktls_suite *s)
{
	int r;

	pthread_mutex_lock(&reg_mtx);
	r = timed_lookup_locked(be, s);
	pthread_mutex_unlock(&reg_mtx);
	return (r);
}

/* Whether backends[i], a timed one, is faster for s. */
static bool
timed_wins(unsigned int i, const struct ktls_suite *s)
{
	/* Not secrets: the same bytes for every probe. */
	static const uint8_t pkey[64] = { 0x6b, 0x74, 0x6c, 0x73 };
	static const uint8_t piv[16] = { 0x70, 0x72, 0x6f, 0x62, 0x65 };
	const struct ktls_crypto_params p = { .suite = s, .cipher_key = pkey,
	    .iv = piv, .auth_key = pkey };
	const struct ktls_backend *be = backends[i], *other = NULL;
	struct ktls_cctx *ca = NULL, *cb = NULL;
	uint64_t ta = UINT64_MAX, tb = UINT64_MAX, t;
	uint8_t *rec = NULL;
	bool wins = false;
	int known = timed_lookup(be, s);

	if (known >= 0)
		return (known != 0);
	if (be->try(&p, &ca) != 0)
		goto out;
	for (unsigned int j = i + 1; j < nbackends && other == NULL; j++)
		if (!backends[j]->timed && backends[j]->try(&p, &cb) == 0)
			other = backends[j];
	if (other == NULL) {
		wins = true;
		goto out;
	}
	if ((rec = malloc(ktls_suite_record_len(s, PROBE_BIG))) == NULL)
		goto out;
	memset(rec, 0, ktls_suite_record_len(s, PROBE_BIG));
	for (int r = 0; r < PROBE_ROUNDS; r++) {	/* interleaved */
		if ((t = probe_time(be, ca, s, rec)) < ta)
			ta = t;
		if ((t = probe_time(other, cb, s, rec)) < tb)
			tb = t;
	}
	wins = ta < tb;
out:
	free(rec);
	if (ca != NULL)
		be->free(ca);
	if (cb != NULL)
		other->free(cb);
	pthread_mutex_lock(&reg_mtx);
	if ((known = timed_lookup_locked(be, s)) >= 0)
		wins = known != 0;
	else if (ntimed < KTLS_MAX_TIMED)
		timed[ntimed++] = (struct timed_choice){ be, s, wins };
	pthread_mutex_unlock(&reg_mtx);
	return (wins);
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

		bool named = only != NULL && *only != '\0';

		if (named && strcmp(only, be->name) != 0)
			continue;
		if (be->timed && !named && !timed_wins(i, p->suite))
			continue;
		if (be->try(p, ctxp) == 0) {
			*bep = be;
			return (0);
		}
	}
	return (-EOPNOTSUPP);
}
