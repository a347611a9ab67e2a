/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fault injection, for the tests (tests/integration/test_faults.c): a site
 * can be told to fail its next calls, as if malloc() returned NULL or the
 * crypto backend failed.  Off unless a test arms a site; an unarmed site
 * costs one relaxed load.  Not reachable from the public API.
 */
#include "ktls_int.h"

static _Atomic int64_t kf_skip[KF__COUNT];	/* calls left to pass first */
static _Atomic int64_t kf_fail[KF__COUNT];	/* then fail this many (-1: all) */
static _Atomic uint64_t kf_hits[KF__COUNT];

void
ktls_fault_set(enum ktls_fault_site site, int64_t skip, int64_t fail)
{
	atomic_store(&kf_fail[site], 0);
	atomic_store(&kf_skip[site], skip);
	atomic_store(&kf_fail[site], fail);
}

uint64_t
ktls_fault_hits(enum ktls_fault_site site)
{
	return (atomic_load(&kf_hits[site]));
}

bool
ktls_fault_hit(enum ktls_fault_site site)
{
	int64_t f;

	if (atomic_load_explicit(&kf_fail[site], memory_order_relaxed) == 0)
		return (false);
	if (atomic_fetch_sub(&kf_skip[site], 1) > 0)
		return (false);
	f = atomic_load(&kf_fail[site]);
	while (f > 0 &&
	    !atomic_compare_exchange_weak(&kf_fail[site], &f, f - 1))
		;
	if (f == 0)
		return (false);
	atomic_fetch_add(&kf_hits[site], 1);
	return (true);
}
