/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fork() with a session active.  The parent goes on as before.  The child
 * cannot use the inherited session (its keys were wiped; sharing it would
 * reuse nonces): writes there fail with EPIPE and put nothing on the wire.
 * New sessions in the child work (the engine's threads restart), and the
 * child's counters start from zero.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"

/* The child's checks, reported through its exit status (bit per check). */
static int __attribute__((unused))	/* not in a TSan build */
child(int inherited)
{
	const struct fx_suite *s = &fx_suites[3];
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t buf[40000];
	uint64_t active;
	int fds[2], bad = 0;

	/* Counters are this process's own. */
	active = fx_sysctl_u64("kern.ipc.tls.stats.active");
	if (active != 0)
		bad |= 1;
	errno = 0;
	if (ktls_send(inherited, "clear", 5, MSG_NOSIGNAL) != -1 ||
	    errno != EPIPE)
		bad |= 2;
	if (ktls_close(inherited) != 0)
		bad |= 4;

	fx_pattern(buf, sizeof(buf), 5);
	fx_keys_init(&k, s, 0);
	if (fx_tcp_pair(AF_INET, fds) != 0 ||
	    ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) != 0 || fx_rx_start(&rx, fds[1], &k.en, true) != 0)
		return (8);
	if (ktls_write(fds[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		bad |= 16;
	/* The inherited session, closed above, counted in the parent only. */
	uint64_t gcm = fx_sysctl_u64("kern.ipc.tls.sw.gcm");
	active = fx_sysctl_u64("kern.ipc.tls.stats.active");
	if (active != 1 || gcm != 1)
		bad |= 64;
	ktls_close(fds[0]);
	fx_rx_join(&rx);
	size_t got;
	uint8_t *all = fx_rx_appdata(&rx, &got);
	if (rx.dec_failed || got != sizeof(buf) || memcmp(all, buf, got) != 0)
		bad |= 32;
	free(all);
	return (bad);
}

/*
 * The engine's threads take no signal: a process-directed one must reach
 * the application's threads (nginx's master waits in sigsuspend()).
 */
static void
case_thread_signals(void)
{
	const int sigs[] = { SIGHUP, SIGINT, SIGPIPE, SIGALRM, SIGTERM,
	    SIGCHLD, SIGUSR1, SIGUSR2, SIGIO };
	char path[300], line[256], comm[32];
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int nktls = 0;

	REQUIRE(d != NULL, );
	while ((e = readdir(d)) != NULL) {
		FILE *f;
		unsigned long long blk = 0;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
		    e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		comm[0] = '\0';
		(void)!fgets(comm, sizeof(comm), f);
		fclose(f);
		if (strncmp(comm, "ktls-", 5) != 0)
			continue;
		nktls++;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status",
		    e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "SigBlk: %llx", &blk) == 1)
				break;
		fclose(f);
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			CHECK(blk & (1ULL << (sigs[i] - 1)));
	}
	closedir(d);
	CHECK(nktls >= 2);	/* workers, poller (and aio, control) */
	tap_result("the engine's %d threads block every signal", nktls);
}

int
main(void)
{
	const struct fx_suite *s = &fx_suites[0];
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	uint8_t buf[100000];
	int fds[2], status;
	pid_t pid;

	fx_watchdog(120);
	fx_enable_ktls();
	fx_pattern(buf, sizeof(buf), 11);
	fx_keys_init(&k, s, 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, tap_done());
	REQUIRE(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) == 0, tap_done());
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, tap_done());
	CHECK(ktls_write(fds[0], buf, 50000) == 50000);

#ifdef __SANITIZE_THREAD__
	/*
	 * ThreadSanitizer cannot run a child of a multi-threaded fork that
	 * starts threads ("dup thread with used id"): the child's part is
	 * for the other builds.
	 */
	tap_skip("ThreadSanitizer: no threads after a multi-threaded fork",
	    "fork: the child cannot write on the inherited session");
	tap_skip("ThreadSanitizer: no threads after a multi-threaded fork",
	    "fork: a new session in the child works");
	(void)pid;
	(void)status;
#else
	pid = fx_fork();
	if (pid == 0) {
		close(fds[1]);
		_exit(child(fds[0]));
	}
	REQUIRE(pid > 0, tap_done());
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		tap_diag("child checks failed: mask %#x", WEXITSTATUS(status));
	CHECK((WEXITSTATUS(status) & 0x7) == 0);
	tap_result("fork: the child cannot write on the inherited session "
	    "(EPIPE, nothing on the wire), its counters start at zero");
	CHECK((WEXITSTATUS(status) & 0x78) == 0);
	tap_result("fork: a new session in the child works (threads restart) "
	    "and is counted once");
#endif

	/* The parent goes on; the stream has only the parent's records. */
	CHECK(ktls_write(fds[0], buf + 50000, 50000) == 50000);
	CHECK(ktls_close(fds[0]) == 0);
	fx_rx_join(&rx);
	size_t got;
	uint8_t *all = fx_rx_appdata(&rx, &got);
	CHECK(!rx.dec_failed);
	CHECK(got == sizeof(buf) && memcmp(all, buf, got) == 0);
	free(all);
	fx_rx_free(&rx);
	close(fds[1]);
	tap_result("fork: the parent's stream is intact, nothing from the "
	    "child in it");
	case_thread_signals();
	return (tap_done());
}
