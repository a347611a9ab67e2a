/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-core encryption speed of each crypto backend, through the backend
 * contract exactly as a worker calls it: one record at a time, in place,
 * header and trailer included in the work but only payload bytes counted;
 * then the speed at which it opens the same records (receive, out of
 * place).
 *
 *	crypto_speed [--json] [--time SEC] [--runs N]
 *
 * For every AEAD suite of TLS 1.3 and every backend that takes it, at
 * 16384-byte (full) and 1400-byte (one MSS) records: the median of N runs
 * (default 5) of SEC seconds each (default 0.3), in GB/s (10^9 bytes).
 * --json prints one object per line: {backend, suite, record, gbps}, with
 * "op": "open" on the receive rows.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ktls.h"
#include "ktls_int.h"

static const size_t rec_lens[] = { 16384, 1400 };

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return ((x > y) - (x < y));
}

/*
 * One timed run: GB/s of payload, or a negative errno.  Sealing in place
 * with the next sequence numbers, or (open) opening one record sealed
 * first, again and again, into out.
 */
static double
run(bool open, const struct ktls_backend *be, struct ktls_cctx *cctx,
    const struct ktls_suite *su, uint8_t *rec, uint8_t *out, size_t len,
    double secs, uint64_t *seq)
{
	struct ktls_crypt_op op = { .type = 23, .rec = rec,
	    .src = rec + su->prefix_len, .len = len };
	size_t rlen = ktls_suite_record_len(su, len);
	struct ktls_open_op oop = { .rec = rec, .rec_len = rlen, .dst = out };
	uint64_t n = 0;
	double t0, t;
	int error;

	rec[0] = 23;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)((rlen - KTLS_HDR_LEN) >> 8);
	rec[4] = (uint8_t)(rlen - KTLS_HDR_LEN);
	if (open) {
		op.seq = oop.seq = (*seq)++;
		if ((error = be->encrypt(cctx, &op)) != 0)
			return (error);
	}
	t0 = now();
	do {
		/* Enough records between clock reads to make them free. */
		for (int i = 0; i < 64; i++) {
			op.seq = (*seq)++;
			error = open ? be->decrypt(cctx, &oop) :
			    be->encrypt(cctx, &op);
			if (error != 0)
				return (error);
		}
		n += 64;
	} while ((t = now()) - t0 < secs);
	return ((double)n * (double)len / (t - t0) / 1e9);
}

/*
 * The median of runs timed runs of sealing (or opening) len-byte
 * records, after a warm-up one (caches, clocks, lazy set-up), printed.
 */
static void
measure(bool open, const struct ktls_backend *be, struct ktls_cctx *cctx,
    const struct ktls_suite *su, uint8_t *rec, uint8_t *out, size_t len,
    double secs, int runs, bool json, uint64_t *seq)
{
	double g[99];

	for (int r = -1; r < runs; r++) {
		double t = run(open, be, cctx, su, rec, out, len,
		    r < 0 ? 0.05 : secs, seq);

		if (r >= 0)
			g[r] = t;
	}
	qsort(g, (size_t)runs, sizeof(g[0]), cmp_double);
	if (g[0] < 0) {
		fprintf(stderr, "crypto_speed: %s %s%s: %s\n", be->name,
		    su->name, open ? " open" : "", strerror((int)-g[0]));
		return;
	}
	if (json)
		printf("{\"backend\": \"%s\", \"suite\": \"%s\", "
		    "\"record\": %zu, \"gbps\": %.3f%s}\n", be->name,
		    su->name, len, g[runs / 2], open ? ", \"op\": \"open\"" :
		    "");
	else
		printf("%-10s %-28s %7zu %8.2f%s\n", be->name, su->name, len,
		    g[runs / 2], open ? " open" : "");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	const struct ktls_suite *su;
	const struct ktls_backend *be;
	bool json = false;
	double secs = 0.3;
	int runs = 5;
	uint8_t key[32], iv[12], *rec, *out;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--time") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: crypto_speed [--json] "
			    "[--time SEC] [--runs N]\n");
			return (2);
		}
	}
	if (runs < 1 || runs > 99 || !(secs > 0)) {
		fprintf(stderr, "crypto_speed: bad --runs or --time\n");
		return (2);
	}
	ktls_init();
	/* Fixed, non-secret inputs: the speed does not depend on them. */
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(iv); i++)
		iv[i] = (uint8_t)(i * 13 + 5);
	if ((rec = calloc(1, ktls_suite_record_len(ktls_suite_get(0), 16384) +
	    KTLS_MAX_OVERHEAD)) == NULL || (out = calloc(1, 16384 + 1)) == NULL)
		return (1);
	/* Each backend's code path on this CPU, first. */
	for (unsigned int bi = 0; (be = ktls_backend_get(bi)) != NULL; bi++) {
		const char *path = be->path == NULL ? "one path" :
		    be->path() != NULL ? be->path() : "declines on this CPU";

		if (json)
			printf("{\"backend\": \"%s\", \"path\": \"%s\"}\n",
			    be->name, path);
		else
			printf("# %s: %s\n", be->name, path);
	}
	/* Which backend a session of each AEAD suite gets here. */
	for (unsigned int si = 0; (su = ktls_suite_get(si)) != NULL; si++) {
		const struct ktls_crypto_params p = { .suite = su,
		    .cipher_key = key, .iv = iv };
		const struct ktls_backend *got;
		struct ktls_cctx *cctx;

		if (su->kind == KTLS_CBC ||
		    ktls_backend_select(&p, &got, &cctx, NULL) != 0)
			continue;
		if (json)
			printf("{\"suite\": \"%s\", \"chosen\": \"%s\"}\n",
			    su->name, got->name);
		else
			printf("# %s: %s\n", su->name, got->name);
		got->free(cctx);
	}
	if (!json)
		printf("%-10s %-28s %7s %8s\n", "backend", "suite", "record",
		    "GB/s");

	for (unsigned int si = 0; (su = ktls_suite_get(si)) != NULL; si++) {
		const struct ktls_crypto_params p = { .suite = su,
		    .cipher_key = key, .iv = iv };

		if (su->kind == KTLS_CBC || !ktls_suite_is_tls13(su))
			continue;
		for (unsigned int bi = 0; (be = ktls_backend_get(bi)) != NULL;
		    bi++) {
			const struct ktls_backend *got;
			struct ktls_cctx *cctx;
			uint64_t seq = 0;

			if (ktls_backend_select(&p, &got, &cctx,
			    be->name) != 0)
				continue;	/* the backend declines it */
			/* Sealing, then opening the same records (receive). */
			for (int op = 0; op < 2; op++) {
				if (op == 1 && be->decrypt == NULL)
					break;
				for (size_t li = 0; li < sizeof(rec_lens) /
				    sizeof(rec_lens[0]); li++)
					measure(op == 1, be, cctx, su, rec,
					    out, rec_lens[li], secs, runs,
					    json, &seq);
			}
			be->free(cctx);
		}
	}
	free(rec);
	free(out);
	return (0);
}
