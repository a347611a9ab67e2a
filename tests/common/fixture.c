/* SPDX-License-Identifier: BSD-2-Clause */
#include "fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#define AEAD(n, vm, c, kl, il, ln) { n, vm, c, kl, il, 0, 0, ln }
#define CBCS(n, vm, kl, a, al) { n, vm, CRYPTO_AES_CBC, kl, 16, a, al, NULL }

const struct fx_suite fx_suites[] = {
	AEAD("TLS1.2-AES-128-GCM", TLS_MINOR_VER_TWO, CRYPTO_AES_NIST_GCM_16, 16, 4,
	    "TLS 1.2 AES-GCM-128"),
	AEAD("TLS1.2-AES-256-GCM", TLS_MINOR_VER_TWO, CRYPTO_AES_NIST_GCM_16, 32, 4,
	    "TLS 1.2 AES-GCM-256"),
	AEAD("TLS1.2-CHACHA20-POLY1305", TLS_MINOR_VER_TWO,
	    CRYPTO_CHACHA20_POLY1305, 32, 12, "TLS 1.2 CHACHA20-POLY1305"),
	AEAD("TLS1.3-AES-128-GCM", TLS_MINOR_VER_THREE, CRYPTO_AES_NIST_GCM_16, 16, 12,
	    "TLS 1.3 AES-GCM-128"),
	AEAD("TLS1.3-AES-256-GCM", TLS_MINOR_VER_THREE, CRYPTO_AES_NIST_GCM_16, 32, 12,
	    "TLS 1.3 AES-GCM-256"),
	AEAD("TLS1.3-CHACHA20-POLY1305", TLS_MINOR_VER_THREE,
	    CRYPTO_CHACHA20_POLY1305, 32, 12, "TLS 1.3 CHACHA20-POLY1305"),
	CBCS("TLS1.0-AES-128-CBC-SHA1", TLS_MINOR_VER_ZERO, 16, CRYPTO_SHA1_HMAC, 20),
	CBCS("TLS1.0-AES-256-CBC-SHA1", TLS_MINOR_VER_ZERO, 32, CRYPTO_SHA1_HMAC, 20),
	CBCS("TLS1.1-AES-128-CBC-SHA1", TLS_MINOR_VER_ONE, 16, CRYPTO_SHA1_HMAC, 20),
	CBCS("TLS1.1-AES-256-CBC-SHA1", TLS_MINOR_VER_ONE, 32, CRYPTO_SHA1_HMAC, 20),
	CBCS("TLS1.2-AES-128-CBC-SHA1", TLS_MINOR_VER_TWO, 16, CRYPTO_SHA1_HMAC, 20),
	CBCS("TLS1.2-AES-256-CBC-SHA1", TLS_MINOR_VER_TWO, 32, CRYPTO_SHA1_HMAC, 20),
	CBCS("TLS1.2-AES-128-CBC-SHA256", TLS_MINOR_VER_TWO, 16,
	    CRYPTO_SHA2_256_HMAC, 32),
	CBCS("TLS1.2-AES-256-CBC-SHA256", TLS_MINOR_VER_TWO, 32,
	    CRYPTO_SHA2_256_HMAC, 32),
	CBCS("TLS1.2-AES-128-CBC-SHA384", TLS_MINOR_VER_TWO, 16,
	    CRYPTO_SHA2_384_HMAC, 48),
	CBCS("TLS1.2-AES-256-CBC-SHA384", TLS_MINOR_VER_TWO, 32,
	    CRYPTO_SHA2_384_HMAC, 48),
};
const int fx_nsuites = sizeof(fx_suites) / sizeof(fx_suites[0]);

void
fx_keys_init(struct fx_keys *k, const struct fx_suite *s, uint64_t start_seq)
{
	memset(k, 0, sizeof(*k));
	RAND_bytes(k->key, sizeof(k->key));
	RAND_bytes(k->iv, sizeof(k->iv));
	RAND_bytes(k->auth, sizeof(k->auth));
	k->en.cipher_key = k->key;
	k->en.iv = k->iv;
	k->en.auth_key = s->auth ? k->auth : NULL;
	k->en.cipher_algorithm = s->cipher;
	k->en.cipher_key_len = s->key_len;
	k->en.iv_len = s->iv_len;
	k->en.auth_algorithm = s->auth;
	k->en.auth_key_len = s->auth_key_len;
	k->en.tls_vmajor = TLS_MAJOR_VER_ONE;
	k->en.tls_vminor = s->vminor;
	for (int i = 7; i >= 0; i--, start_seq >>= 8)
		k->en.rec_seq[i] = (uint8_t)start_seq;
}

const struct fx_suite *
fx_suite_by_name(const char *name)
{
	for (int i = 0; i < fx_nsuites; i++)
		if (strcmp(fx_suites[i].name, name) == 0)
			return (&fx_suites[i]);
	abort();
}

int
fx_connect_loopback(int s, int family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int l, a;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	}
	if ((l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	if (bind(l, (struct sockaddr *)&ss, len) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&ss, &len) != 0 ||
	    connect(s, (struct sockaddr *)&ss, len) != 0) {
		close(l);
		return (-1);
	}
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	return (a);
}

int
fx_tcp_pair(int family, int fds[2])
{
	int c, a, one = 1;

	if ((c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	if ((a = fx_connect_loopback(c, family)) < 0) {
		close(c);
		return (-1);
	}
	/* Window-based congestion control, as benchmarks want too. */
	setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fds[0] = c;
	fds[1] = a;
	return (0);
}

int
fx_enabled_pair(int family, const char *sname, uint64_t seq,
    struct fx_keys *k, int fds[2])
{
	fx_keys_init(k, fx_suite_by_name(sname), seq);
	if (fx_tcp_pair(family, fds) != 0)
		return (-1);
	if (ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k->en,
	    sizeof(k->en)) != 0) {
		close(fds[0]);
		close(fds[1]);
		return (-1);
	}
	return (0);
}

void
fx_enable_ktls(void)
{
	int on = 1;

	ktls_sysctl_set("kern.ipc.tls.enable", &on, sizeof(on));
}

/* Read name into v of exactly len bytes: 0, or -1 with a diagnostic. */
static int
sysctl_exact(const char *name, void *v, size_t len)
{
	size_t got = len;
	int e;

	if (ktls_sysctl_get(name, v, &got) == 0 && got == len)
		return (0);
	e = errno;
	printf("# ktls_sysctl_get(%s): %s (len %zu)\n", name, strerror(e),
	    got);
	fflush(stdout);
	errno = e;
	return (-1);
}

uint64_t
fx_sysctl_u64(const char *name)
{
	uint64_t v = 0;

	/* A short read would be a tunable (an int), not a counter. */
	return (sysctl_exact(name, &v, sizeof(v)) == 0 ? v : UINT64_MAX);
}

int
fx_sysctl_int(const char *name)
{
	int v = 0;

	return (sysctl_exact(name, &v, sizeof(v)) == 0 ? v : INT_MIN);
}

int
fx_sysctl_set_int(const char *name, int v)
{
	int r = ktls_sysctl_set(name, &v, sizeof(v)), e = errno;

	if (r != 0) {
		/* The caller may check errno: the diagnostic keeps it. */
		printf("# ktls_sysctl_set(%s, %d): %s\n", name, v,
		    strerror(e));
		fflush(stdout);
		errno = e;
	}
	return (r);
}

uint64_t
fx_fnv1a(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return (h);
}

void
fx_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
}

int
fx_tmpfile(size_t len, uint32_t seed)
{
	char path[] = "/tmp/ktls-test-XXXXXX";
	uint8_t *buf = malloc(len ? len : 1);
	int fd = mkstemp(path);

	if (fd < 0 || buf == NULL) {
		free(buf);
		return (-1);
	}
	unlink(path);
	fx_pattern(buf, len, seed);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n <= 0) {
			close(fd);
			free(buf);
			return (-1);
		}
		off += (size_t)n;
	}
	free(buf);
	lseek(fd, 0, SEEK_SET);
	return (fd);
}

static void
rx_drain(struct fx_rx *rx)
{
	struct fx_rec r;

	while (tlsdec_next(rx->dec, &r.type, &r.seq, &r.data, &r.len) == 1) {
		if (r.type == TLS_RLTYPE_APP) {
			rx->hash = fx_fnv1a(rx->hash, r.data, r.len);
			rx->bytes += r.len;
		}
		if (!rx->keep_data) {
			free(r.data);
			r.data = NULL;
		}
		if (rx->nrecs == rx->cap) {
			rx->cap = rx->cap ? rx->cap * 2 : 256;
			rx->recs = realloc(rx->recs, rx->cap * sizeof(r));
		}
		rx->recs[rx->nrecs++] = r;
	}
}

static void *
rx_main(void *arg)
{
	struct fx_rx *rx = arg;
	uint8_t *buf = malloc(256 * 1024);
	ssize_t n;

	if (rx->stall_ms)
		usleep(rx->stall_ms * 1000);
	for (;;) {
		n = read(rx->fd, buf, 256 * 1024);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rx->read_errno = errno;
		if (n <= 0)
			break;
		rx->wire += (uint64_t)n;
		if (!rx->dec_failed && tlsdec_feed(rx->dec, buf, (size_t)n) != 0) {
			rx->dec_failed = true;
			snprintf(rx->dec_error, sizeof(rx->dec_error), "%s",
			    tlsdec_error(rx->dec));
		}
		rx_drain(rx);
	}
	rx_drain(rx);
	free(buf);
	return (NULL);
}

int
fx_rx_start(struct fx_rx *rx, int fd, const struct tls_enable *en,
    bool keep_data)
{
	unsigned int stall = rx->stall_ms;

	memset(rx, 0, sizeof(*rx));
	rx->stall_ms = stall;
	rx->fd = fd;
	rx->keep_data = keep_data;
	rx->hash = FX_FNV_INIT;
	if ((rx->dec = tlsdec_new(en)) == NULL)
		return (-1);
	return (pthread_create(&rx->tid, NULL, rx_main, rx) == 0 ? 0 : -1);
}

void
fx_rx_join(struct fx_rx *rx)
{
	pthread_join(rx->tid, NULL);
}

double
fx_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

void
fx_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool
fx_join_ms(pthread_t t, unsigned int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_nsec -= 1000000000L;
		ts.tv_sec++;
	}
	return (pthread_timedjoin_np(t, NULL, &ts) == 0);
}

bool
fx_rx_finish(struct fx_rx *rx, unsigned int ms)
{
	if (fx_join_ms(rx->tid, ms))
		return (true);
	printf("# receiver still reading after %u ms (%llu wire bytes)\n", ms,
	    (unsigned long long)rx->wire);
	shutdown(rx->fd, SHUT_RDWR);
	fx_rx_join(rx);
	return (false);
}

void
fx_rx_free(struct fx_rx *rx)
{
	for (size_t i = 0; i < rx->nrecs; i++)
		free(rx->recs[i].data);
	free(rx->recs);
	tlsdec_free(rx->dec);
	memset(rx, 0, sizeof(*rx));
}

uint8_t *
fx_rx_appdata(const struct fx_rx *rx, size_t *len)
{
	uint8_t *out = malloc(rx->bytes ? rx->bytes : 1);
	size_t off = 0;

	for (size_t i = 0; i < rx->nrecs; i++) {
		if (rx->recs[i].type != TLS_RLTYPE_APP)
			continue;
		memcpy(out + off, rx->recs[i].data, rx->recs[i].len);
		off += rx->recs[i].len;
	}
	*len = off;
	return (out);
}

static void
watchdog_fire(int sig)
{
	static const char msg[] = "not ok - watchdog: test hung\n1..1\n";

	(void)sig;
	(void)!write(1, msg, sizeof(msg) - 1);
	_exit(1);
}

void
fx_watchdog(unsigned int seconds)
{
	signal(SIGALRM, watchdog_fire);
	alarm(seconds);
}

#ifdef __SANITIZE_ADDRESS__
/*
 * One sample of the other threads: 1 if each sleeps (state S), with its
 * context-switch count added into *sum.
 */
static int
threads_asleep(pid_t self, unsigned long long *sum)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int asleep = 1;

	*sum = 0;
	if (d == NULL)
		return (0);
	while ((e = readdir(d)) != NULL) {
		char path[300], line[128];
		unsigned long long n;
		FILE *f;

		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status",
		    e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;	/* the thread has ended */
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "State:", 6) == 0 &&
			    strstr(line, "(sleeping)") == NULL)
				asleep = 0;
			if (sscanf(line, "voluntary_ctxt_switches: %llu",
			    &n) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %llu",
			    &n) == 1)
				*sum += n;
		}
		fclose(f);
	}
	closedir(d);
	return (asleep);
}
#endif

/*
 * GCC 12's AddressSanitizer (Debian 12) does not hold its allocator's locks
 * across fork(), as LLVM's does since version 17: a thread of the parent
 * inside malloc or free at the fork leaves a lock taken for good in the
 * child, whose first allocation of that size then waits forever.  glibc's
 * own malloc takes its locks around fork(), so a plain build has no such
 * window.  Under ASan the fork waits until the other threads have slept
 * through two samples with no context switch between them (none can hold an
 * allocator lock then), for at most 5 s.  The child arms its own watchdog:
 * a hung child would otherwise hold the test's output pipe open after the
 * parent's watchdog ended the parent.
 */
pid_t
fx_fork(void)
{
	pid_t pid;

#ifdef __SANITIZE_ADDRESS__
	pid_t self = (pid_t)syscall(SYS_gettid);
	unsigned long long a, b;

	for (int tries = 0; tries < 2500; tries++) {
		if (!threads_asleep(self, &a))
			goto again;
		usleep(1000);
		if (threads_asleep(self, &b) && a == b)
			break;
again:
		usleep(1000);
	}
#endif
	if ((pid = fork()) == 0)
		alarm(60);
	return (pid);
}
