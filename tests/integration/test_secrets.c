/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Secrets (invariant 5), linked with the engine's internal library:
 *
 *  a. key material is never in a core dump: a child enables a session of
 *     every suite with keys of its own, sends through each (so every
 *     backend has keyed and used its contexts), wipes its own copies,
 *     and aborts; the core it leaves holds none of the cipher keys, IVs
 *     or MAC keys (searched byte for byte); with the backends chosen as
 *     usual, then with OpenSSL's for every suite;
 *  b. keys are wiped when the session ends: the key memory of a session
 *     holds zeros once the session is gone (through a socket's close, and
 *     through the session call itself).
 * (The control socket refusing other users: test_stat, test_switch.)
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "ktls_int.h"
#include "tap.h"

#define NSUITES_MAX	32

/* The keys the child uses, suite by suite: made before the fork. */
static struct fx_keys keys[NSUITES_MAX];

static bool
all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0)
			return (false);
	return (true);
}

/*
 * Freed key memory: zeros, but for the allocator's free-list link, a
 * pointer, in its first bytes.
 */
static bool
wiped(const uint8_t *p, size_t len)
{
	return (all_zero(p + sizeof(void *), len - sizeof(void *)));
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return (NULL);
	}
	buf = malloc((size_t)st.st_size + 1);
	*len = 0;
	while (buf != NULL && *len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + *len, (size_t)st.st_size - *len);

		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	close(fd);
	return (buf);
}

static bool
contains(const uint8_t *hay, size_t hlen, const uint8_t *needle, size_t nlen)
{
	for (size_t i = 0; nlen > 0 && i + nlen <= hlen; i++)
		if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0)
			return (true);
	return (false);
}

/* The child: every suite enabled and used, its own copies wiped, abort. */
static void
child_crash(const char *dir, const char *backend)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	static uint8_t data[100000];
	int fds[2];

	if (setrlimit(RLIMIT_CORE, &rl) != 0 || chdir(dir) != 0)
		_exit(3);
	if (backend != NULL)
		setenv("KTLS_BACKEND", backend, 1);
	for (int i = 0; i < fx_nsuites; i++) {
		if (fx_tcp_pair(AF_INET, fds) != 0 ||
		    ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE,
		    &keys[i].en, sizeof(keys[i].en)) != 0)
			_exit(4);
		/* Big writes (the worker) and a small one (inline). */
		if (ktls_write(fds[0], data, sizeof(data)) != sizeof(data) ||
		    ktls_write(fds[0], data, 100) != 100)
			_exit(5);
		explicit_bzero(&keys[i], sizeof(keys[i]));
	}
	/* Let the workers encrypt all of it (bounded). */
	for (int i = 0; i < 500; i++) {
		if (fx_sysctl_u64("kern.ipc.tls.stats.sw_tx_inqueue") == 0)
			break;
		fx_sleep_ms(10);
	}
	signal(SIGABRT, SIG_DFL);
	abort();
}

static void __attribute__((unused))	/* not in sanitizer builds */
case_core_dump(const char *backend)
{
	char dir[] = "/tmp/ktls-core-XXXXXX", path[256], pattern[256] = "";
	uint8_t *core;
	size_t clen = 0;
	pid_t pid;
	int status, found = 0, searched = 0;
	FILE *f;

	if ((f = fopen("/proc/sys/kernel/core_pattern", "r")) != NULL) {
		if (fgets(pattern, sizeof(pattern), f) == NULL)
			pattern[0] = '\0';
		fclose(f);
	}
	pattern[strcspn(pattern, "\n")] = '\0';
	REQUIRE(mkdtemp(dir) != NULL, );
	for (int i = 0; i < fx_nsuites && i < NSUITES_MAX; i++)
		fx_keys_init(&keys[i], &fx_suites[i], 0);
	if ((pid = fx_fork()) == 0)
		child_crash(dir, backend);
	REQUIRE(pid > 0, );
	REQUIRE(waitpid(pid, &status, 0) == pid, );
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	if (!WCOREDUMP(status)) {
		tap_diag("no core dumped (core_pattern \"%s\")", pattern);
		CHECK(WCOREDUMP(status));
		return;
	}
	snprintf(path, sizeof(path), "%s/core", dir);
	if ((core = slurp(path, &clen)) == NULL) {
		snprintf(path, sizeof(path), "%s/core.%d", dir, (int)pid);
		core = slurp(path, &clen);
	}
	if (core == NULL) {
		tap_diag("core_pattern \"%s\" puts the core elsewhere",
		    pattern);
		CHECK(core != NULL);
		return;
	}
	unlink(path);
	rmdir(dir);
	tap_diag("core: %zu bytes", clen);
	CHECK(clen > 100000);	/* it holds the process's memory */
	for (int i = 0; i < fx_nsuites && i < NSUITES_MAX; i++) {
		const struct fx_suite *s = &fx_suites[i];
		struct { const uint8_t *p; size_t n; const char *what; } sec[] = {
			{ keys[i].key, s->key_len, "key" },
			{ keys[i].iv, s->iv_len, "iv" },
			{ keys[i].auth, s->auth_key_len, "MAC key" },
		};

		for (size_t j = 0; j < 3; j++) {
			if (sec[j].n < 12)	/* a 4-byte salt: no proof */
				continue;
			searched++;
			if (contains(core, clen, sec[j].p, sec[j].n)) {
				found++;
				tap_diag("%s: the %s is in the core", s->name,
				    sec[j].what);
			}
		}
	}
	tap_diag("%d secrets of %d suites searched", searched, fx_nsuites);
	CHECK(searched >= 2 * fx_nsuites);
	CHECK(found == 0);
	/* The search itself is sound: the pattern of the data is there. */
	free(core);
}

/* b. Key memory reads zero once its session is gone. */
static void
case_wiped(void)
{
	struct fx_keys k;
	struct ktls_session *s;
	struct ktls_sock *so;
	uint8_t *mem;
	size_t len;
	uint64_t active;
	int fds[2];

	for (int i = 0; i < fx_nsuites; i++) {
		fx_keys_init(&k, &fx_suites[i], 0);
		REQUIRE(ktls_session_create(&k.en, sizeof(k.en), &s) == 0, );
		mem = s->keys;
		len = s->keys_len;
		CHECK(memcmp(mem, k.key, fx_suites[i].key_len) == 0);
		ktls_session_destroy(s);
		CHECK(wiped(mem, len));
	}
	/* Through a socket: the session ends after close, when sent. */
	fx_keys_init(&k, fx_suite_by_name("TLS1.3-AES-256-GCM"), 0);
	active = fx_sysctl_u64("kern.ipc.tls.stats.active");
	REQUIRE(fx_tcp_pair(AF_INET6, fds) == 0, );
	REQUIRE(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) == 0, );
	REQUIRE((so = ktls_sock_lookup(fds[0])) != NULL, );
	mem = so->tx->keys;
	len = so->tx->keys_len;
	ktls_sock_rele(so);
	CHECK(memcmp(mem, k.key, 32) == 0);
	CHECK(ktls_write(fds[0], "hello", 5) == 5);
	CHECK(ktls_close(fds[0]) == 0);
	for (int i = 0; i < 500; i++) {
		if (fx_sysctl_u64("kern.ipc.tls.stats.active") == active)
			break;
		fx_sleep_ms(10);
	}
	CHECK(wiped(mem, len));
	close(fds[1]);
}

int
main(void)
{
	fx_watchdog(120);
	fx_enable_ktls();
	signal(SIGPIPE, SIG_IGN);
	REQUIRE(fx_nsuites <= NSUITES_MAX, tap_done());
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/*
	 * The sanitizers' runtimes turn core dumps off (their shadow memory
	 * spans terabytes): this part is for the other builds.
	 */
	tap_skip("a sanitizer build dumps no core", "a core dump holds no key");
	tap_skip("a sanitizer build dumps no core", "the same on OpenSSL");
#else
	case_core_dump(NULL);
	tap_result("a core dump of a process with a session of every suite "
	    "(used) holds none of their keys, IVs or MAC keys");
	case_core_dump("openssl");
	tap_result("the same with every suite on the OpenSSL backend");
#endif
	case_wiped();
	tap_result("key memory reads zero once the session is gone (session "
	    "call, and socket close)");
	return (tap_done());
}
