/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The unit tests' random inputs: xorshift64*, reproducible from the seed
 * a test prints (KTLS_TEST_SEED=N repeats a run).  Not for keys anyone
 * relies on: test inputs only.
 */
#ifndef KTLS_TEST_RNG_H
#define KTLS_TEST_RNG_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state = 1;

static inline uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (rng_state * 0x2545f4914f6cdd1dULL);
}

static inline void
rng_fill(uint8_t *p, size_t n)
{
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t v = rng();

		memcpy(p, &v, 8);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 56);
}

/*
 * Seed from KTLS_TEST_SEED, else from the time and the pid, and print the
 * seed as a TAP comment, so that a failing run can be repeated.
 */
static inline void
rng_seed(void)
{
	const char *e = getenv("KTLS_TEST_SEED");

	rng_state = e != NULL ? strtoull(e, NULL, 0) :
	    (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	if (rng_state == 0)
		rng_state = 1;
	printf("# KTLS_TEST_SEED=%ju\n", (uintmax_t)rng_state);
	fflush(stdout);
}

#endif /* KTLS_TEST_RNG_H */
