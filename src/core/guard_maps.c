/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The guard's watched ranges: the executable mappings of the process
 * read from /proc/self/maps, those already covered by a filter, and the
 * loading of a filter for new ones (at install, and after dlopen() through
 * ktls_guard_refresh()).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ktls_int.h"
#include "guard_int.h"

/* The ranges the loaded filters watch, under guard_mtx. */
static struct range covered[MAX_RANGES];
static int ncovered;

static bool
is_covered(uintptr_t lo, uintptr_t hi)
{
	for (int i = 0; i < ncovered; i++)
		if (covered[i].lo <= lo && hi <= covered[i].hi)
			return (true);
	return (false);
}

/*
 * A sanitizer runtime's own system calls (its reports, LeakSanitizer's
 * stop-the-world thread, which runs with every signal blocked, where a
 * trap would kill) are not the application's: its text is not watched.
 * Only test builds (make test-asan/test-tsan) load one.
 */
static bool
sanitizer_rt(const char *line)
{
	static const char *const rt[] = { "/libasan.so", "/libtsan.so",
	    "/liblsan.so", "/libubsan.so", "/libclang_rt." };

	for (size_t i = 0; i < sizeof(rt) / sizeof(rt[0]); i++)
		if (strstr(line, rt[i]) != NULL)
			return (true);
	return (false);
}

/*
 * The executable mappings of the process not yet covered: everything but
 * the gadget page, [vdso] and [vsyscall] (no write-family call in
 * either).  Adjacent mappings merge.
 */
int
guard_read_ranges(struct range *out, int max)
{
	char line[512];
	FILE *fp;
	int n = 0;

	if ((fp = fopen("/proc/self/maps", "re")) == NULL)
		return (-errno);
	while (fgets(line, sizeof(line), fp) != NULL) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
		    perms[2] != 'x')
			continue;
		if (strstr(line, "[vdso]") != NULL ||
		    strstr(line, "[vsyscall]") != NULL || sanitizer_rt(line) ||
		    (lo <= GADGET_ADDR && GADGET_ADDR < hi) ||
		    is_covered(lo, hi))
			continue;
		if (n > 0 && out[n - 1].hi == lo) {
			out[n - 1].hi = hi;
			continue;
		}
		if (n == max) {
			n = -E2BIG;
			break;
		}
		out[n++] = (struct range){ lo, hi };
	}
	fclose(fp);
	return (n);
}

int
guard_load_filter(const struct range *rs, int n)
{
	struct sock_fprog prog;
	long r;
	int error;

	if ((error = guard_build_filter(rs, n, &prog)) != 0)
		return (error);
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_TSYNC, &prog);
	free(prog.filter);
	if (r != 0)
		return (r > 0 ? -EBUSY : -errno);	/* > 0: a thread's tid */
	for (int i = 0; i < n && ncovered < MAX_RANGES; i++)
		covered[ncovered++] = rs[i];
	return (0);
}
