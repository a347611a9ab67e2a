/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Linux's kTLS socket API for the tests: the fx_suites rows it has and
 * their crypto_info, through src/proto/linux_tls.h, the one description
 * of the layouts (the engine's too).  Apart from fixture.h so that only
 * the tests of that API see <linux/tls.h>.
 *
 * What stays independent of linux_tls.h, so that a mistake there is not
 * shared by the test: the tests read a crypto_info back by <linux/tls.h>'s
 * named fields (test_interpose.c, test_kmode.c, test_oracle.c,
 * fuzz_linux_info.c, which also has every layout Linux has), and the
 * kernel tests hand what linux_tls.h fills to Linux itself.
 */
#ifndef KTLS_LINUX_INFO_H
#define KTLS_LINUX_INFO_H

#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "fixture.h"
#include "linux_tls.h"

/* An fx_suites row as TLS_TX takes it. */
struct fx_lsuite {
	const struct fx_suite		*fx;
	const struct ktls_linux_layout	*l;
	uint16_t			version;	/* TLS_1_x_VERSION */
};

/* Row s as a Linux suite; false if Linux kTLS has no such suite. */
static inline bool
fx_lsuite_of(struct fx_lsuite *ls, const struct fx_suite *s)
{
	ls->fx = s;
	ls->l = NULL;
	ls->version = s->vminor == TLS_MINOR_VER_THREE ? TLS_1_3_VERSION :
	    TLS_1_2_VERSION;
	if (s->linux_name != NULL)
		ls->l = ktls_linux_layout_find(0, s->cipher, s->key_len);
	return (ls->l != NULL);
}

/* The Linux suite of that fx_suites name (aborts if there is none). */
static inline struct fx_lsuite
fx_lsuite_by_name(const char *name)
{
	struct fx_lsuite ls;

	if (!fx_lsuite_of(&ls, fx_suite_by_name(name)))
		abort();
	return (ls);
}

/* The i-th Linux suite in fx_suites' order; false after the last. */
static inline bool
fx_lsuite_nth(struct fx_lsuite *ls, int i)
{
	for (int j = 0; j < fx_nsuites; j++)
		if (fx_lsuite_of(ls, &fx_suites[j]) && i-- == 0)
			return (true);
	return (false);
}

/*
 * Random keys for ls as TLS_TX's crypto_info (ci), and the same keys as
 * k's tls_enable for tlsdec: Linux's 12-byte IV (TLS 1.2 AES-GCM: salt ||
 * first explicit nonce), the first record seq.  Returns the layout's
 * size, the optlen TLS_TX wants.
 */
static inline socklen_t
fx_lsuite_keys(const struct fx_lsuite *ls, uint64_t seq,
    union ktls_linux_crypto_info *ci, struct fx_keys *k)
{
	fx_keys_init(k, ls->fx, seq);
	k->en.iv_len = 12;
	return ((socklen_t)ktls_linux_info_fill(ls->l, ci, ls->version,
	    k->key, k->iv, k->en.rec_seq));
}

#endif /* KTLS_LINUX_INFO_H */
