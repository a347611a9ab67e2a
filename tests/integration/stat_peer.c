/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A process for test_stat.py to look at with ktls-stat: it enables one
 * session on a loopback TCP pair (127.0.0.1), sends PEER_BYTES through it,
 * waits until the worker has encrypted them all (so the counters are
 * final), prints "ready <pid>" and keeps the session open until its stdin
 * is closed.
 *
 * "stat_peer fork": the same, then fork()s a child that enables a session
 * of its own and sends CHILD_BYTES; prints "ready <child pid>" once the
 * child is ready too.  The child must answer under its own pid with its
 * own counters, the parent under its pid with its own.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define PEER_BYTES	100000
#define CHILD_BYTES	30000
#define SUITE		"TLS1.3-AES-128-GCM"

struct peer {
	struct fx_keys	k;
	struct fx_rx	rx;
	int		fds[2];
};

static uint64_t
counter(const char *name)
{
	uint64_t v = 0;
	size_t len = sizeof(v);

	if (ktls_sysctl_get(name, &v, &len) != 0)
		return (0);
	return (v);
}

/* Enable a session, send len bytes, wait until tx_bytes reaches total. */
static int
peer_start(struct peer *p, size_t len, uint64_t total)
{
	static uint8_t buf[PEER_BYTES];
	size_t off = 0;
	ssize_t n;

	fx_pattern(buf, len, 7);
	memset(&p->rx, 0, sizeof(p->rx));
	if (fx_enabled_pair(AF_INET, SUITE, 0, &p->k, p->fds) != 0) {
		fprintf(stderr, "stat_peer: enable: %s\n", strerror(errno));
		return (-1);
	}
	if (fx_rx_start(&p->rx, p->fds[1], &p->k.en, false) != 0)
		return (-1);
	while (off < len) {
		if ((n = ktls_write(p->fds[0], buf + off, len - off)) < 0) {
			fprintf(stderr, "stat_peer: write: %s\n",
			    strerror(errno));
			return (-1);
		}
		off += (size_t)n;
	}
	/* Counted once encrypted, by the worker: wait for it (20 s at most). */
	for (int i = 0; i < 2000; i++) {
		if (counter("kern.ipc.tls.stats.tx_bytes") >= total)
			return (0);
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	fprintf(stderr, "stat_peer: tx_bytes stays at %ju\n",
	    (uintmax_t)counter("kern.ipc.tls.stats.tx_bytes"));
	return (-1);
}

static void
peer_stop(struct peer *p)
{
	ktls_close(p->fds[0]);
	fx_rx_finish(&p->rx, 10000);
	fx_rx_free(&p->rx);
}

/* Until the test closes our stdin (shared with a fork()ed child). */
static void
wait_stdin(void)
{
	char c;

	while (read(STDIN_FILENO, &c, 1) > 0 || errno == EINTR)
		errno = 0;
}

int
main(int argc, char **argv)
{
	struct peer parent, child;
	bool fork_mode = argc > 1 && strcmp(argv[1], "fork") == 0;
	int pfd[2], status;
	pid_t pid;
	char c;

	fx_watchdog(240);	/* a forgotten peer does not live forever */
	fx_enable_ktls();
	if (peer_start(&parent, PEER_BYTES, PEER_BYTES) != 0)
		return (1);
	if (!fork_mode) {
		printf("ready %ld\n", (long)getpid());
		fflush(stdout);
		wait_stdin();
		peer_stop(&parent);
		return (0);
	}

	if (pipe(pfd) != 0)
		return (1);
	fflush(stdout);
	if ((pid = fork()) < 0)
		return (1);
	if (pid == 0) {
		/* The child's counters start at zero; its session is new. */
		close(pfd[0]);
		fx_watchdog(240);
		if (peer_start(&child, CHILD_BYTES, CHILD_BYTES) != 0)
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		wait_stdin();
		peer_stop(&child);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1) {
		fprintf(stderr, "stat_peer: the child failed\n");
		waitpid(pid, &status, 0);
		return (1);
	}
	printf("ready %ld\n", (long)pid);
	fflush(stdout);
	wait_stdin();
	peer_stop(&parent);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return (1);
	return (0);
}
