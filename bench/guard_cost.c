/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * guard_cost: what the guard (src/core/guard.c, invariant 7) costs a
 * system call that it does not need to see: nanoseconds per call on
 * descriptors that are never enabled, and on the enabled socket itself.
 *
 * The guard is a process-wide state (installed at the first enable, never
 * removed), so each configuration is a process of its own, started by
 * bench/run.py:
 *
 *   plain          no interposer (libc's calls as they are);
 *   preload        LD_PRELOAD=libktls-preload.so KTLS_ENABLE=1, nothing
 *                  enabled: the interposer's price alone, no filter;
 *   guard_on       the same with --enable: TLS TX enabled (Linux's kTLS
 *                  API, as a program without ktls makes it) on one
 *                  loopback TCP socket first, so the filter is on;
 *   guard_off      the same with KTLS_GUARD=0 (the engine's measurement
 *                  switch): enabled, no filter.
 *
 * The calls, each of 1 byte:
 *
 *   write_devnull     write(2) to /dev/null: the interposer's write, which
 *                     passes the call on (from the engine's system-call
 *                     page once the guard is up: the filter lets it go);
 *   syscall_devnull   syscall(SYS_write) to /dev/null: libc's code, so
 *                     trapped once the guard is up (SIGSYS, the handler
 *                     makes the call, sigreturn);
 *   stdio_devnull     fputs + fflush on a FILE on /dev/null: libc's
 *                     internal write, trapped the same way;
 *   write_unix        write(2) to a never-enabled AF_UNIX stream socket
 *                     (a socket: the engine looks it up like any fd);
 *   getppid           getppid(2) through syscall(2), outside the write
 *                     family: what the filter costs every other call;
 *   fstat_devnull     fstat(2) of /dev/null (see below);
 *   write_enabled     write(2) on the enabled socket (--enable only): the
 *                     engine makes a record and sends it;
 *   syscall_enabled   syscall(SYS_write) on it: trapped, completed by the
 *                     engine (with KTLS_GUARD=0 the byte would go out in
 *                     plaintext: only the probe is made, and reported).
 *
 * Each is timed in batches after one warm-up batch: wall time
 * (CLOCK_MONOTONIC, a vDSO call: no system call of its own) and the
 * process's CPU time (every thread), per call; the JSON has the median,
 * min and max over the batches.  Socket batches fit in the socket's buffer
 * (the never-enabled peer is drained between batches, untimed), so that no
 * call blocks.  On the enabled socket the batch ends when the peer has read
 * every record: back-to-back writes go to the engine's worker thread
 * (src/core/api.c, sock_send_inline()), whose encryption and send belong
 * to the call's price; bench/run.py pins the process to one CPU, so that
 * this is one CPU's work.  A probe call first checks what reaches the
 * peer: a TLS 1.3 record (23 bytes for 1 byte of data) means the call went
 * through the engine.
 *
 * fstat_devnull, fstat(2) of /dev/null, is there to read the others by:
 * the engine's write-family lookup makes one the first time it meets a
 * descriptor number after a session exists (src/core/sock.c,
 * ktls_sock_lookup_tx()), and no more until the number is closed.
 *
 * /proc/self/status "Seccomp:" (2: a filter is on, 0: none) is read before
 * the enable and before the timings: bench/run.py checks it against the
 * configuration.
 *
 * Only libc's names are called (not linked with libktls: with the
 * interposer loaded it would be a second engine in the process).
 *
 * usage: guard_cost [--enable] [--batches N] [--calls N] [--case NAME]
 *   --case NAME: time that call only (under perf, say).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "linux_tls.h"		/* SOL_TLS, TCP_ULP where libc has none */

/* A TLS 1.3 record of 1 byte: header 5, data 1, inner type 1, tag 16. */
#define REC_BYTES	23
/* Calls per batch on the enabled socket: their records (~6 KiB in all)
 * fit the peer's receive buffer many times over. */
#define ENABLED_CALLS	256
/* The peer's wait for a batch's records, and for a probe's (a record on
 * loopback takes microseconds; the probe waits to tell 1 byte from 23). */
#define PEER_WAIT_MS	5000
#define PROBE_WAIT_MS	1000

static void
die(const char *what)
{
	fprintf(stderr, "guard_cost: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
fail(const char *what)
{
	fprintf(stderr, "guard_cost: %s\n", what);
	exit(1);
}

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/* A /proc/self/status field as a number; -1 when absent. */
static long
status_field(const char *field)
{
	char line[256];
	size_t fl = strlen(field);
	FILE *f = fopen("/proc/self/status", "re");
	long v = -1;

	if (f == NULL)
		die("/proc/self/status");
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return (v);
}

/* Whether the interposer is mapped (LD_PRELOAD may name it and fail). */
static bool
preload_mapped(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	bool found = false;

	if (f == NULL)
		die("/proc/self/maps");
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, "libktls-preload") != NULL;
	fclose(f);
	return (found);
}

/* ---------------------------------------------------------- the calls */

struct ctx {
	int	devnull;
	FILE	*fnull;
	int	unix_w, unix_r;
	int	tls_fd, tls_peer;
};

typedef bool (*op_fn)(struct ctx *);

static bool
op_write_devnull(struct ctx *c)
{
	return (write(c->devnull, "x", 1) == 1);
}

static bool
op_syscall_devnull(struct ctx *c)
{
	return (syscall(SYS_write, c->devnull, "x", 1) == 1);
}

static bool
op_stdio_devnull(struct ctx *c)
{
	return (fputs("x", c->fnull) >= 0 && fflush(c->fnull) == 0);
}

static bool
op_write_unix(struct ctx *c)
{
	return (write(c->unix_w, "x", 1) == 1);
}

static bool
op_getppid(struct ctx *c)
{
	(void)c;
	return (syscall(SYS_getppid) > 0);
}

static bool
op_fstat_devnull(struct ctx *c)
{
	struct stat st;

	return (fstat(c->devnull, &st) == 0);
}

static bool
op_write_enabled(struct ctx *c)
{
	return (write(c->tls_fd, "x", 1) == 1);
}

static bool
op_syscall_enabled(struct ctx *c)
{
	return (syscall(SYS_write, c->tls_fd, "x", 1) == 1);
}

/* Empties a never-enabled socket's peer (non-blocking). */
static void
drain_unix(struct ctx *c)
{
	char buf[65536];

	while (read(c->unix_r, buf, sizeof(buf)) > 0)
		;
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		die("read (AF_UNIX peer)");
}

/*
 * Reads want bytes from the enabled socket's peer (at most wait_ms
 * without progress); the first n bytes read in *first.
 */
static size_t
read_peer(struct ctx *c, size_t want, uint8_t *first, size_t n, int wait_ms)
{
	uint8_t buf[65536];
	size_t got = 0;

	while (got < want) {
		struct pollfd pfd = { .fd = c->tls_peer, .events = POLLIN };
		ssize_t k;

		if (poll(&pfd, 1, wait_ms) <= 0)
			break;
		k = read(c->tls_peer, buf, sizeof(buf));
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			break;
		if (first != NULL && got < n)
			memcpy(first + got, buf,
			    (size_t)k < n - got ? (size_t)k : n - got);
		got += (size_t)k;
	}
	return (got);
}

struct tcase {
	const char	*name;
	const char	*what;
	op_fn		 op;
	int		 calls;		/* per batch */
	void		(*drain)(struct ctx *);
	bool		 enabled;	/* on the enabled socket */
	/* results */
	bool		 ran;
	const char	*skipped;
	size_t		 probe_bytes;	/* what one call put on the wire */
	struct stat3 {
		double	med, min, max;
	}		 wall, cpu;	/* ns per call */
	double		*ns, *cpu_ns;	/* each batch's */
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return ((x > y) - (x < y));
}

/*
 * One batch of t->calls calls: wall and CPU ns per call.  A never-enabled
 * socket's drain is not timed; the enabled socket's peer reading every
 * record is (see the top).
 */
static void
batch(struct ctx *c, struct tcase *t, double *wall, double *cpu)
{
	uint64_t w0, c0, w1, c1;

	c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	w0 = clock_ns(CLOCK_MONOTONIC);
	for (int i = 0; i < t->calls; i++)
		if (!t->op(c)) {
			fprintf(stderr, "guard_cost: %s: call %d of a batch "
			    "failed: %s\n", t->name, i, strerror(errno));
			exit(1);
		}
	if (t->enabled) {
		size_t want = (size_t)t->calls * t->probe_bytes;
		size_t got = read_peer(c, want, NULL, 0, PEER_WAIT_MS);

		if (got != want) {
			fprintf(stderr, "guard_cost: %s: the peer got %zu "
			    "bytes of a batch, want %zu\n", t->name, got,
			    want);
			exit(1);
		}
	}
	w1 = clock_ns(CLOCK_MONOTONIC);
	c1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	if (t->drain != NULL)
		t->drain(c);
	*wall = (double)(w1 - w0) / t->calls;
	*cpu = (double)(c1 - c0) / t->calls;
}

static struct stat3
stat3(double *v, int n)
{
	struct stat3 r;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	r.min = v[0];
	r.max = v[n - 1];
	r.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return (r);
}

/*
 * One call on the enabled socket, and what reached the peer: a TLS 1.3
 * application-data record of 1 byte (17 03 03 00 12, 23 bytes), or
 * plaintext (1 byte: the call bypassed the engine).  Returns whether it
 * was a record.
 */
static bool
probe(struct ctx *c, struct tcase *t)
{
	static const uint8_t hdr[5] = { 0x17, 0x03, 0x03, 0x00, 0x12 };
	uint8_t first[REC_BYTES];

	if (!t->op(c))
		die(t->name);
	/* A record, or 1 byte and then nothing until the timeout. */
	t->probe_bytes = read_peer(c, REC_BYTES, first, sizeof(first),
	    PROBE_WAIT_MS);
	if (t->probe_bytes == REC_BYTES && memcmp(first, hdr, 5) == 0)
		return (true);
	if (t->probe_bytes == 1 && first[0] == 'x')
		t->skipped = "plaintext on the wire (1 byte, no record): the "
		    "call bypassed the engine; not timed";
	else
		t->skipped = "the peer got neither a record nor the plaintext"
		    " byte; not timed";
	return (false);
}

static void
run_case(struct ctx *c, struct tcase *t, int batches)
{
	double w, u;

	if (t->enabled && !probe(c, t))
		return;
	t->ns = calloc((size_t)batches, sizeof(*t->ns));
	t->cpu_ns = calloc((size_t)batches, sizeof(*t->cpu_ns));
	if (t->ns == NULL || t->cpu_ns == NULL)
		die("calloc");
	batch(c, t, &w, &u);			/* warm-up, not counted */
	for (int i = 0; i < batches; i++)
		batch(c, t, &t->ns[i], &t->cpu_ns[i]);
	t->wall = stat3(t->ns, batches);
	t->cpu = stat3(t->cpu_ns, batches);
	t->ran = true;
}

/* ------------------------------------------------------------ set-up */

/*
 * A never-enabled AF_UNIX stream pair, the writing end non-blocking (a
 * full buffer is an error, never a wait).  Returns how many 1-byte writes
 * its buffer holds: each is an skb of its own, so the default buffer
 * holds only a few hundred; SO_SNDBUFFORCE (as root) raises that.
 */
static int
unix_pair(struct ctx *c)
{
	int sv[2], big = 64 << 20, cap = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		die("socketpair");
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &big,
	    sizeof(big)) != 0)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big,
		    sizeof(big));
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(sv[1], F_SETFL, O_NONBLOCK) != 0)
		die("fcntl");
	c->unix_w = sv[0];
	c->unix_r = sv[1];
	while (cap < 1000000 && write(c->unix_w, "x", 1) == 1)
		cap++;
	if (errno != EAGAIN && errno != EWOULDBLOCK && cap < 1000000)
		die("write (AF_UNIX)");
	drain_unix(c);
	return (cap);
}

/* A connected loopback TCP pair: *fd connects, *peer is accepted. */
static void
tcp_pair(int *fd, int *peer)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int one = 1, big = 4 << 20;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0)
		die("socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) != 0)
		die("listener");
	if ((*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	if (connect(*fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		die("connect");
	if ((*peer = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0)
		die("accept");
	close(l);
	/* As a TLS server sets it: each record leaves when it is made. */
	(void)setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Room for a batch's records whatever the autotuning does. */
	if (setsockopt(*peer, SOL_SOCKET, SO_RCVBUFFORCE, &big,
	    sizeof(big)) != 0)
		(void)setsockopt(*peer, SOL_SOCKET, SO_RCVBUF, &big,
		    sizeof(big));
}

/*
 * TLS 1.3 AES-128-GCM TX, Linux's kTLS API, random keys (nobody decrypts:
 * the peer only counts bytes), as tests/integration/test_interpose.c.
 * Under the interposer this is the process's first enable: the guard is
 * installed here.
 */
static void
enable_tls(int fd)
{
	struct tls12_crypto_info_aes_gcm_128 ci;

	memset(&ci, 0, sizeof(ci));
	ci.info.version = TLS_1_3_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	if (getrandom(ci.key, sizeof(ci.key), 0) != (ssize_t)sizeof(ci.key) ||
	    getrandom(ci.iv, sizeof(ci.iv), 0) != (ssize_t)sizeof(ci.iv) ||
	    getrandom(ci.salt, sizeof(ci.salt), 0) !=
	    (ssize_t)sizeof(ci.salt))
		die("getrandom");
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0)
		die("setsockopt(TCP_ULP, \"tls\") (not under the interposer?)");
	if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)) != 0)
		die("setsockopt(SOL_TLS, TLS_TX)");
	explicit_bzero(&ci, sizeof(ci));
}

/* -------------------------------------------------------------- JSON */

static void
json_str(const char *s)
{
	putchar('"');
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		if ((unsigned char)*s >= 0x20)
			putchar(*s);
	}
	putchar('"');
}

static void
json_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL)
		fputs("null", stdout);
	else
		json_str(v);
}

int
main(int argc, char **argv)
{
	int batches = 21, calls = 20000, ucap;
	bool do_enable = false;
	const char *only = NULL;
	long sc_before, sc, filters;
	struct ctx c;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--enable") == 0)
			do_enable = true;
		else if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc)
			batches = atoi(argv[++i]);
		else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc)
			calls = atoi(argv[++i]);
		else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: guard_cost [--enable] "
			    "[--batches N] [--calls N] [--case NAME]\n");
			return (2);
		}
	}
	if (batches < 1 || batches > 10000 || calls < 1 || calls > 10000000)
		fail("--batches or --calls out of range");

	memset(&c, 0, sizeof(c));
	c.tls_fd = c.tls_peer = -1;
	if ((c.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		die("/dev/null");
	if ((c.fnull = fopen("/dev/null", "we")) == NULL)
		die("fopen /dev/null");
	ucap = unix_pair(&c);
	if (ucap < 2)
		fail("the AF_UNIX socket holds no 1-byte write");

	struct tcase cases[] = {
		{ .name = "write_devnull", .op = op_write_devnull,
		    .what = "write(2) of 1 byte to /dev/null", .calls = calls },
		{ .name = "syscall_devnull", .op = op_syscall_devnull,
		    .what = "syscall(SYS_write) of 1 byte to /dev/null",
		    .calls = calls },
		{ .name = "stdio_devnull", .op = op_stdio_devnull,
		    .what = "fputs + fflush of 1 byte, FILE on /dev/null",
		    .calls = calls },
		{ .name = "write_unix", .op = op_write_unix,
		    .what = "write(2) of 1 byte to a never-enabled AF_UNIX "
		    "stream socket", .drain = drain_unix,
		    /* Half its room: a batch never meets a full buffer. */
		    .calls = calls < ucap / 2 ? calls : ucap / 2 },
		{ .name = "getppid", .op = op_getppid,
		    .what = "syscall(SYS_getppid): not a write-family call",
		    .calls = calls },
		{ .name = "fstat_devnull", .op = op_fstat_devnull,
		    .what = "fstat(2) of /dev/null: what the engine's lookup "
		    "pays once per descriptor number", .calls = calls },
		{ .name = "write_enabled", .op = op_write_enabled,
		    .what = "write(2) of 1 byte on the enabled TCP socket "
		    "(the interposer's write)", .calls = ENABLED_CALLS,
		    .enabled = true },
		{ .name = "syscall_enabled", .op = op_syscall_enabled,
		    .what = "syscall(SYS_write) of 1 byte on the enabled TCP "
		    "socket", .calls = ENABLED_CALLS, .enabled = true },
	};
	int ncases = (int)(sizeof(cases) / sizeof(cases[0]));

	sc_before = status_field("Seccomp");
	if (do_enable) {
		tcp_pair(&c.tls_fd, &c.tls_peer);
		enable_tls(c.tls_fd);
	}
	sc = status_field("Seccomp");
	filters = status_field("Seccomp_filters");

	for (int i = 0; i < ncases; i++) {
		if (cases[i].enabled && !do_enable) {
			cases[i].skipped = "no enabled socket (no --enable)";
			continue;
		}
		if (only != NULL && strcmp(only, cases[i].name) != 0) {
			cases[i].skipped = "not asked for (--case)";
			continue;
		}
		run_case(&c, &cases[i], batches);
	}

	printf("{\"enable\": %s, \"interposer_mapped\": %s, ",
	    do_enable ? "true" : "false", preload_mapped() ? "true" : "false");
	printf("\"env\": {\"KTLS_ENABLE\": ");
	json_env("KTLS_ENABLE");
	printf(", \"KTLS_GUARD\": ");
	json_env("KTLS_GUARD");
	printf(", \"KTLS_AUTOCORK_US\": ");
	json_env("KTLS_AUTOCORK_US");
	printf("}, \"seccomp_before_enable\": %ld, \"seccomp\": %ld, "
	    "\"seccomp_filters\": %ld, \"batches\": %d, \"cases\": {",
	    sc_before, sc, filters, batches);
	for (int i = 0; i < ncases; i++) {
		struct tcase *t = &cases[i];

		printf("%s\n  \"%s\": {\"what\": ", i ? "," : "", t->name);
		json_str(t->what);
		printf(", \"calls_per_batch\": %d", t->calls);
		if (t->enabled && t->probe_bytes > 0)
			printf(", \"probe_wire_bytes\": %zu", t->probe_bytes);
		if (t->ran)
			printf(", \"ns_per_call\": {\"median\": %.1f, "
			    "\"min\": %.1f, \"max\": %.1f, \"n\": %d}, "
			    "\"cpu_ns_per_call\": {\"median\": %.1f, "
			    "\"min\": %.1f, \"max\": %.1f, \"n\": %d}",
			    t->wall.med, t->wall.min, t->wall.max, batches,
			    t->cpu.med, t->cpu.min, t->cpu.max, batches);
		if (t->skipped != NULL) {
			printf(", \"skipped\": ");
			json_str(t->skipped);
		}
		putchar('}');
	}
	printf("}}\n");
	if (fflush(stdout) != 0)
		die("stdout");
	/* Every record was read by the peer: no exit drain to wait for. */
	_exit(0);
}
