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
 *
 * "stat_peer switch" (test_switch.py): three sessions in one process, on
 * 127.0.0.1 (SUITE), on ::1 (SUITE6) and on an AF_INET6 socket connected
 * to 127.0.0.1 through its IPv4-mapped address (SUITE), SWITCH_BYTES sent
 * on each.  Prints one line per session,
 *	conn <v4|v6|mapped> <laddr> <lport> <faddr> <fport> <suite>
 * (the sending side's view, as inet_ntop prints it), then "ready <pid>".
 * Then each line "send" on stdin sends SWITCH_BYTES more on every session
 * and answers "sent" (or "send failed: ...").  At end of stdin it closes
 * the sessions, checks that each receiver decrypted exactly what was sent
 * (tlsdec, the test's own decryptor), prints "verified <bytes>" and exits
 * 0, else exits 1.
 */
#include <arpa/inet.h>
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
#define SUITE6		"TLS1.2-AES-256-GCM"
#define SWITCH_BYTES	20000

struct peer {
	struct fx_keys	k;
	struct fx_rx	rx;
	int		fds[2];
};

/* A counter, 0 if it cannot be read (the wait below then goes on). */
static uint64_t
counter(const char *name)
{
	uint64_t v = fx_sysctl_u64(name);

	return (v == UINT64_MAX ? 0 : v);
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

/*
 * fds[0]: an AF_INET6 socket connected to a 127.0.0.1 listener through
 * ::ffff:127.0.0.1, fds[1] the accepted side.  0 or -1.
 */
static int
mapped_pair(int fds[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	socklen_t len = sizeof(sin);
	int l, c = -1, a = -1, off = 0;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) != 0)
		goto out;
	if ((c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto out;
	setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	sin6.sin6_port = sin.sin_port;
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	if (connect(c, (struct sockaddr *)&sin6, sizeof(sin6)) != 0 ||
	    (a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
		goto out;
	close(l);
	fds[0] = c;
	fds[1] = a;
	return (0);
out:
	if (c >= 0)
		close(c);
	close(l);
	return (-1);
}

struct sw_sess {
	const char	*kind;		/* v4, v6, mapped */
	const char	*suite;
	struct fx_keys	k;
	struct fx_rx	rx;
	int		fds[2];
	size_t		sent;
	uint64_t	hash;		/* FNV-1a of what was sent */
};

static int
sw_send(struct sw_sess *s, uint32_t seed)
{
	static uint8_t buf[SWITCH_BYTES];
	size_t off = 0;
	ssize_t n;

	fx_pattern(buf, sizeof(buf), seed);
	while (off < sizeof(buf)) {
		if ((n = ktls_write(s->fds[0], buf + off, sizeof(buf) - off)) <
		    0) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		off += (size_t)n;
	}
	s->hash = fx_fnv1a(s->hash, buf, sizeof(buf));
	s->sent += sizeof(buf);
	return (0);
}

static void
sw_print(const struct sw_sess *s)
{
	struct sockaddr_storage l, f;
	socklen_t ll = sizeof(l), fl = sizeof(f);
	char la[INET6_ADDRSTRLEN] = "?", fa[INET6_ADDRSTRLEN] = "?";
	unsigned int lp = 0, fp = 0;

	getsockname(s->fds[0], (struct sockaddr *)&l, &ll);
	getpeername(s->fds[0], (struct sockaddr *)&f, &fl);
	if (l.ss_family == AF_INET) {
		struct sockaddr_in *a = (void *)&l, *b = (void *)&f;

		inet_ntop(AF_INET, &a->sin_addr, la, sizeof(la));
		inet_ntop(AF_INET, &b->sin_addr, fa, sizeof(fa));
		lp = ntohs(a->sin_port);
		fp = ntohs(b->sin_port);
	} else {
		struct sockaddr_in6 *a = (void *)&l, *b = (void *)&f;

		inet_ntop(AF_INET6, &a->sin6_addr, la, sizeof(la));
		inet_ntop(AF_INET6, &b->sin6_addr, fa, sizeof(fa));
		lp = ntohs(a->sin6_port);
		fp = ntohs(b->sin6_port);
	}
	printf("conn %s %s %u %s %u %s\n", s->kind, la, lp, fa, fp, s->suite);
}

/* "stat_peer switch": see the comment at the top. */
static int
switch_main(void)
{
	struct sw_sess ss[3] = {
		{ .kind = "v4", .suite = SUITE },
		{ .kind = "v6", .suite = SUITE6 },
		{ .kind = "mapped", .suite = SUITE },
	};
	char line[64];
	uint32_t seed = 11;
	int bad = 0, error;
	size_t total = 0;

	for (int i = 0; i < 3; i++) {
		struct sw_sess *s = &ss[i];

		s->hash = FX_FNV_INIT;
		if (i == 2) {
			fx_keys_init(&s->k, fx_suite_by_name(s->suite), 0);
			error = mapped_pair(s->fds) != 0 ? -1 :
			    ktls_setsockopt(s->fds[0], IPPROTO_TCP,
			    TCP_TXTLS_ENABLE, &s->k.en, sizeof(s->k.en));
		} else
			error = fx_enabled_pair(i == 0 ? AF_INET : AF_INET6,
			    s->suite, 0, &s->k, s->fds);
		if (error != 0) {
			fprintf(stderr, "stat_peer: enable %s: %s\n", s->kind,
			    strerror(errno));
			return (1);
		}
		if (fx_rx_start(&s->rx, s->fds[1], &s->k.en, false) != 0 ||
		    sw_send(s, seed++) != 0) {
			fprintf(stderr, "stat_peer: send %s: %s\n", s->kind,
			    strerror(errno));
			return (1);
		}
		sw_print(s);
	}
	printf("ready %ld\n", (long)getpid());
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (strcmp(line, "send\n") != 0)
			continue;
		error = 0;
		for (int i = 0; i < 3 && error == 0; i++)
			if ((error = sw_send(&ss[i], seed++)) != 0)
				printf("send failed: %s: %s\n", ss[i].kind,
				    strerror(errno));
		if (error == 0)
			printf("sent\n");
		fflush(stdout);
	}

	for (int i = 0; i < 3; i++) {
		struct sw_sess *s = &ss[i];

		ktls_close(s->fds[0]);
		if (!fx_rx_finish(&s->rx, 20000) || s->rx.dec_failed ||
		    s->rx.bytes != s->sent || s->rx.hash != s->hash) {
			fprintf(stderr, "stat_peer: %s: received %zu of %zu "
			    "bytes%s%s\n", s->kind, s->rx.bytes, s->sent,
			    s->rx.dec_failed ? ", decryption failed: " : "",
			    s->rx.dec_failed ? s->rx.dec_error : "");
			bad = 1;
		}
		total += s->rx.bytes;
		close(s->fds[1]);
		fx_rx_free(&s->rx);
	}
	if (bad)
		return (1);
	printf("verified %zu\n", total);
	fflush(stdout);
	return (0);
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
	if (argc > 1 && strcmp(argv[1], "switch") == 0)
		return (switch_main());
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
	if ((pid = fx_fork()) < 0)
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
