/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idle_conns: what an idle enabled connection costs in memory.
 *
 * Opens N loopback TCP connections (127.0.0.1), enables ktls (FreeBSD
 * API, TCP_TXTLS_ENABLE, TLS 1.3 AES-128-GCM, random keys) on the
 * connecting end of each, sends nothing, and reads VmRSS from
 * /proc/self/status.  The accepted ends are held by a child process, so
 * that RLIMIT_NOFILE need only be raised to N (+ a few), and VmRSS is that
 * of the process with the enabled ends alone:
 *
 * If RLIMIT_NOFILE cannot be raised to 2N + a few (each enabled socket
 * takes two descriptors: the application's and the engine's own), N is
 * lowered to what fits, with a note on stderr.
 *
 *   base    after kern.ipc.tls.enable=1 and one warm-up enabled pair (the
 *           engine's threads and tables exist from here on);
 *   opened  after the N pairs are open (userspace holds nothing for them);
 *   after   after the N enables.
 *
 * The same run is made a second time, in a child process (this program,
 * re-executed with --no-enable), that does everything but the N enables.
 * ktls's cost per connection beyond the kernel socket is
 *
 *   ((after - base)[enabled] - (after - base)[not enabled]) / N
 *
 * usage: idle_conns [-n N] [--json] [--no-enable]     (default N = 10000)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ktls.h>

extern char **environ;

struct phase {
	long	rss_kib;	/* VmRSS */
};

struct result {
	int		n;
	bool		enabled;
	struct phase	base, opened, after;
};

static void
die(const char *what)
{
	fprintf(stderr, "idle_conns: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long
status_kib(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		die("/proc/self/status");
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return (v);
}

static void
sample(struct phase *ph)
{
	ph->rss_kib = status_kib("VmRSS");
}

static int
listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0)
		die("socket");
	(void)setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)sin, sizeof(*sin)) != 0)
		die("bind");
	if (listen(l, 4096) != 0)
		die("listen");
	if (getsockname(l, (struct sockaddr *)sin, &len) != 0)
		die("getsockname");
	return (l);
}

/*
 * A process of its own that accepts the n connections and holds the
 * accepted ends, so that this process holds only the enabled ends (and
 * needs n descriptors, not 2n).  It ends when this process does.
 */
static void
holder(int l, int n)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe");
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		close(p[1]);
		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		for (int i = 0; i < n; i++) {
			if (accept4(l, NULL, NULL, SOCK_CLOEXEC) < 0) {
				fprintf(stderr, "idle_conns: accept: %s\n",
				    strerror(errno));
				_exit(1);
			}
		}
		/* EOF when the measuring process is gone. */
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	close(l);
	/* p[1] stays open (close-on-exec) for as long as this process. */
}

/* A TCP connection to the listener (the holder accepts it). */
static int
tcp_connect(const struct sockaddr_in *sin)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) != 0)
		die("connect");
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return (fd);
}

/* TLS 1.3 AES-128-GCM with fresh random keys, FreeBSD's way. */
static void
enable(int fd)
{
	uint8_t key[16], iv[12];
	struct tls_enable en;

	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key) ||
	    getrandom(iv, sizeof(iv), 0) != (ssize_t)sizeof(iv))
		die("getrandom");
	memset(&en, 0, sizeof(en));
	en.cipher_algorithm = CRYPTO_AES_NIST_GCM_16;
	en.cipher_key = key;
	en.cipher_key_len = sizeof(key);
	en.iv = iv;
	en.iv_len = sizeof(iv);
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = TLS_MINOR_VER_THREE;
	if (ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_ENABLE, &en,
	    sizeof(en)) != 0)
		die("TCP_TXTLS_ENABLE");
	explicit_bzero(key, sizeof(key));
	explicit_bzero(iv, sizeof(iv));
}

/*
 * Each enabled socket takes two descriptors here: the application's and
 * the engine's own (it keeps the socket until its records are sent).
 * Raises RLIMIT_NOFILE to fit n connections if it can (raising the hard
 * limit needs CAP_SYS_RESOURCE), and returns the n that fits.
 */
#define FD_RESERVE	32
static int
raise_nofile(int n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n * 2 + FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit");
	if (rl.rlim_cur >= want)
		return (n);
	if (rl.rlim_max < want) {
		struct rlimit up = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return (n);
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit(RLIMIT_NOFILE)");
	if ((rlim_t)n * 2 + FD_RESERVE > want)
		n = (int)((want - FD_RESERVE) / 2);
	return (n);
}

static void
run(int n, bool do_enable, struct result *r)
{
	int one = 1, warm, l;
	struct sockaddr_in sin;
	int *fds;

	memset(r, 0, sizeof(*r));
	r->n = n;
	r->enabled = do_enable;
	l = listener(&sin);
	holder(l, n + 1);
	if (ktls_sysctl_set("kern.ipc.tls.enable", &one, sizeof(one)) != 0)
		die("kern.ipc.tls.enable");
	fds = calloc((size_t)n, sizeof(*fds));
	if (fds == NULL)
		die("calloc");
	/* Touch the array now, so that it is in base in both runs. */
	memset(fds, 0xff, (size_t)n * sizeof(*fds));
	warm = tcp_connect(&sin);
	enable(warm);
	sample(&r->base);
	for (int i = 0; i < n; i++)
		fds[i] = tcp_connect(&sin);
	sample(&r->opened);
	if (do_enable) {
		for (int i = 0; i < n; i++)
			enable(fds[i]);
	}
	sample(&r->after);
	/* Idle connections: nothing queued; leave their end to exit(). */
}

static void
print_result(const struct result *r, FILE *f)
{
	fprintf(f, "{\"n\": %d, \"enabled\": %s, "
	    "\"rss_kib\": {\"base\": %ld, \"opened\": %ld, \"after\": %ld}}",
	    r->n, r->enabled ? "true" : "false",
	    r->base.rss_kib, r->opened.rss_kib, r->after.rss_kib);
}

static int
parse_result(const char *s, struct result *r)
{
	char en[8];

	memset(r, 0, sizeof(*r));
	if (sscanf(s, "{\"n\": %d, \"enabled\": %5[a-z], "
	    "\"rss_kib\": {\"base\": %ld, \"opened\": %ld, \"after\": %ld}}",
	    &r->n, en, &r->base.rss_kib, &r->opened.rss_kib,
	    &r->after.rss_kib) != 5)
		return (-1);
	r->enabled = strcmp(en, "true") == 0;
	return (0);
}

/* This program again, with --no-enable: its result line. */
static void
run_baseline(int n, struct result *r)
{
	char narg[32], buf[1024];
	char *argv[] = { "idle_conns", "--no-enable", "-n", narg, NULL };
	int p[2], st;
	size_t got = 0;
	ssize_t k;
	pid_t pid;
	posix_spawn_file_actions_t fa;

	snprintf(narg, sizeof(narg), "%d", n);
	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	errno = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	if (errno != 0)
		die("posix_spawn");
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	while (got < sizeof(buf) - 1 &&
	    (k = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)k;
	buf[got] = '\0';
	close(p[0]);
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    parse_result(buf, r) != 0) {
		fprintf(stderr, "idle_conns: the run without enabling failed "
		    "(status %d): %s\n", st, buf);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	int n = 10000, n_asked;
	bool json = false, no_enable = false;
	struct result en, base;
	double per_en, per_base, per_conn;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--no-enable") == 0)
			no_enable = true;
		else {
			fprintf(stderr, "usage: idle_conns [-n N] [--json] "
			    "[--no-enable]\n");
			return (2);
		}
	}
	if (n < 1 || n > 1000000) {
		fprintf(stderr, "idle_conns: N out of range\n");
		return (2);
	}
	/* Before the engine's first call: it sizes its fd table from this. */
	n_asked = n;
	n = raise_nofile(n);
	if (n < n_asked && !no_enable)
		fprintf(stderr, "idle_conns: RLIMIT_NOFILE's hard limit (no "
		    "CAP_SYS_RESOURCE to raise it) fits %d enabled "
		    "connections (2 descriptors each), not %d: measuring %d\n",
		    n, n_asked, n);
	if (no_enable) {
		/* The child: one result line on stdout. */
		run(n, false, &base);
		print_result(&base, stdout);
		putchar('\n');
		fflush(stdout);
		_exit(0);	/* no exit drain needed: nothing was written */
	}
	/* The baseline first, in its own process, then this one. */
	run_baseline(n, &base);
	run(n, true, &en);
	per_en = (double)(en.after.rss_kib - en.base.rss_kib) * 1024.0 / n;
	per_base = (double)(base.after.rss_kib - base.base.rss_kib) * 1024.0 / n;
	per_conn = per_en - per_base;
	if (json) {
		printf("{\"n\": %d, \"n_requested\": %d, "
		    "\"bytes_per_conn\": %.1f, "
		    "\"bytes_per_conn_enabled_run\": %.1f, "
		    "\"bytes_per_conn_baseline_run\": %.1f, "
		    "\"enabled\": ", n, n_asked, per_conn, per_en, per_base);
		print_result(&en, stdout);
		printf(", \"baseline\": ");
		print_result(&base, stdout);
		printf("}\n");
	} else {
		printf("idle_conns: %d idle loopback TCP pairs, TLS 1.3 "
		    "AES-128-GCM enabled on one end of each\n", n);
		printf("  VmRSS KiB      base   opened    after\n");
		printf("  enabled    %8ld %8ld %8ld\n", en.base.rss_kib,
		    en.opened.rss_kib, en.after.rss_kib);
		printf("  not enabled%8ld %8ld %8ld\n", base.base.rss_kib,
		    base.opened.rss_kib, base.after.rss_kib);
		printf("  ktls per enabled connection: %.0f bytes "
		    "(%.0f - %.0f of the run without enabling)\n",
		    per_conn, per_en, per_base);
	}
	fflush(stdout);
	/* Nothing was written: don't wait for queues at exit. */
	_exit(0);
}
