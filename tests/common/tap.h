/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A minimal TAP producer.  Every test program prints "ok N - name",
 * "not ok N - name" or "ok N - name # SKIP why" per case and a final
 * "1..N"; tests/run.py adds them up for `make test`.
 */
#ifndef KTLS_TAP_H
#define KTLS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed, tap_case_failed;

static inline void
tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Check inside a case: records the failure with its location, goes on. */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		tap_diag("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); \
		tap_case_failed = 1;					\
	}								\
} while (0)
/* Check that stops the case (the function returns its value). */
#define REQUIRE(cond, ret) do {						\
	if (!(cond)) {							\
		tap_diag("%s:%d: required: %s", __FILE__, __LINE__, #cond); \
		tap_case_failed = 1;					\
		return ret;						\
	}								\
} while (0)

static inline void
tap_result(const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", tap_case_failed ? "not ok" : "ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	tap_failed += tap_case_failed;
	tap_case_failed = 0;
}

static inline void
tap_skip(const char *why, const char *fmt, ...)
{
	va_list ap;

	printf("ok %d - ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
	fflush(stdout);
}

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return (tap_failed ? 1 : 0);
}

#endif /* KTLS_TAP_H */
