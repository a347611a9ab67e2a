/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Faults, each with its expected outcome, on real loopback TCP.  Linked
 * with the engine's internal library for its fault injection (fault.c):
 *
 *  a. the crypto backend fails mid-stream (worker path: big writes, and
 *     sendfile; inline path: a small write): the connection is reset, the
 *     writer gets an error, and the peer's raw bytes hold a valid record
 *     prefix and none of the known plaintext (invariant 1);
 *  b. an allocation fails at each site of the data path (records,
 *     sendfile's file reference, the poller): the call fails with ENOMEM
 *     or the connection is reset, never a crash, never a corrupt stream;
 *     a writer that retries after ENOMEM delivers every byte, exact;
 *  c. an allocation fails at each site of enable (session, key memory,
 *     socket state): ENOMEM, the socket untouched, a retry works;
 *  d. the peer resets in the middle of a sendfile: the writer's next call
 *     fails in bounded time, the session is freed;
 *  e. the peer stops reading: a non-blocking writer gets EAGAIN, the
 *     engine's memory stays bounded (RSS), and when the peer reads again
 *     every accepted byte arrives, exact;
 *  f. the peer process is killed with data queued: the writer fails in
 *     bounded time, the session is freed.
 * (Truncated files, close racing the worker with the number reused,
 * fork, signals and sequence exhaustion: test_flow, test_concurrency,
 * test_fork.)
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "ktls_int.h"
#include "tap.h"
#include "tlsdec.h"

#define KiB		1024u
#define MiB		(1024u * 1024u)

/* The plaintext: a marker every 64 bytes, which must never be on the wire. */
static const char marker[] = "KTLS-KNOWN-PLAINTEXT";
static uint8_t *plain;
#define PLAIN_LEN	(8 * MiB)

static void
make_plain(void)
{
	plain = malloc(PLAIN_LEN);
	fx_pattern(plain, PLAIN_LEN, 77);
	for (size_t off = 0; off + sizeof(marker) <= PLAIN_LEN; off += 64)
		memcpy(plain + off, marker, sizeof(marker) - 1);
}

/* Wait (at most 10 s) for kern.ipc.tls.stats.active to come back to want. */
static bool
active_back(uint64_t want)
{
	for (int i = 0; i < 1000; i++) {
		if (fx_sysctl_u64("kern.ipc.tls.stats.active") == want)
			return (true);
		fx_sleep_ms(10);
	}
	tap_diag("stats.active %llu, want %llu",
	    (unsigned long long)fx_sysctl_u64("kern.ipc.tls.stats.active"),
	    (unsigned long long)want);
	return (false);
}

/* The peer's side: every raw byte until EOF or an error. */
struct raw {
	int		fd;
	pthread_t	tid;
	uint8_t		*buf;
	size_t		len, cap;
	int		err;		/* errno of the failed read, 0 at EOF */
	unsigned int	stall_ms;	/* before the first read */
};

static void *
raw_main(void *arg)
{
	struct raw *r = arg;
	ssize_t n;

	if (r->stall_ms)
		fx_sleep_ms(r->stall_ms);
	for (;;) {
		if (r->cap - r->len < 65536) {
			r->cap = r->cap ? r->cap * 2 : MiB;
			r->buf = realloc(r->buf, r->cap);
		}
		n = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (n > 0) {
			r->len += (size_t)n;
			continue;
		}
		r->err = n < 0 ? errno : 0;
		if (n < 0 && errno == EINTR)
			continue;
		return (NULL);
	}
}

static void
raw_start(struct raw *r, int fd)
{
	r->fd = fd;
	pthread_create(&r->tid, NULL, raw_main, r);
}

static bool
raw_finish(struct raw *r)
{
	if (fx_join_ms(r->tid, 20000))
		return (true);
	shutdown(r->fd, SHUT_RDWR);
	pthread_join(r->tid, NULL);
	return (false);
}

/* No marker anywhere in the bytes the peer received. */
static bool
no_plaintext(const struct raw *r)
{
	for (size_t i = 0; i + sizeof(marker) - 1 <= r->len; i++)
		if (memcmp(r->buf + i, marker, sizeof(marker) - 1) == 0) {
			tap_diag("plaintext marker on the wire at byte %zu", i);
			return (false);
		}
	return (true);
}

/*
 * The raw bytes are whole valid records of plaintext `want' (a prefix of
 * it), in sequence from `seq', possibly cut short by the reset: the
 * number of plaintext bytes they carry.
 */
static size_t
valid_prefix(const struct raw *r, const struct tls_enable *en,
    const uint8_t *want, uint64_t seq, bool *ok)
{
	struct tlsdec *d = tlsdec_new(en);
	uint8_t type, *data;
	uint64_t s;
	size_t len, got = 0;
	int rc = 0;

	*ok = d != NULL && tlsdec_feed(d, r->buf, r->len) == 0;
	while (*ok && (rc = tlsdec_next(d, &type, &s, &data, &len)) > 0) {
		if (type != TLS_RLTYPE_APP || s != seq++ ||
		    memcmp(data, want + got, len) != 0) {
			tap_diag("record %llu: type %u, wrong data or sequence",
			    (unsigned long long)s, type);
			*ok = false;
		}
		got += len;
		free(data);
	}
	if (d != NULL && *ok && rc < 0) {
		tap_diag("decrypt: %s", tlsdec_error(d));
		*ok = false;
	}
	tlsdec_free(d);
	return (got);
}

static bool
is_conn_error(int e)
{
	return (e == EIO || e == EPIPE || e == ECONNRESET || e == EBADMSG);
}

/*
 * a. The backend fails after `skip' good records.  how: 0 big writes
 * (worker), 1 sendfile (worker), 2 small writes after a quiet spell
 * (each encrypted by the writer itself).
 */
static void
case_crypto(const char *sname, int how, int64_t skip)
{
	uint64_t failed0 = fx_sysctl_u64("kern.ipc.tls.stats.failed_crypto");
	uint64_t active0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	struct fx_keys k;
	struct raw r = { 0 };
	size_t sent = 0, got;
	ssize_t n = 0;
	off_t off = 0;
	bool ok;
	int fds[2], ffd = -1, err = 0;

	REQUIRE(fx_enabled_pair(AF_INET, sname, 1000, &k, fds) == 0, );
	if (how == 1) {
		char path[] = "/tmp/ktls-fault-XXXXXX";

		REQUIRE((ffd = mkstemp(path)) >= 0, );
		unlink(path);
		REQUIRE(write(ffd, plain, PLAIN_LEN) == (ssize_t)PLAIN_LEN, );
	}
	raw_start(&r, fds[1]);
	ktls_fault_set(KF_CRYPTO, skip, -1);
	for (int i = 0; i < 400 && sent < PLAIN_LEN; i++) {
		/*
		 * A record per call, 2 ms apart: the peer reads the good
		 * records before the reset (which drops what it has not read).
		 */
		if (how == 0) {
			fx_sleep_ms(2);
			n = ktls_send(fds[0], plain + sent, 16384, MSG_NOSIGNAL);
		} else if (how == 1) {
			fx_sleep_ms(2);
			n = ktls_sendfile(fds[0], ffd, &off, 16384);
		} else {
			fx_sleep_ms(1);		/* a quiet spell: inline */
			n = ktls_send(fds[0], plain + sent, 1000, MSG_NOSIGNAL);
		}
		if (n < 0) {
			err = errno;
			break;
		}
		sent += (size_t)n;
	}
	/* The error comes at the latest on a call after the reset. */
	for (int i = 0; err == 0 && i < 500; i++) {
		fx_sleep_ms(10);
		if (ktls_send(fds[0], plain, 100, MSG_NOSIGNAL) < 0)
			err = errno;
	}
	ktls_fault_set(KF_CRYPTO, 0, 0);
	if (!is_conn_error(err))
		tap_diag("writer's error: %s", strerror(err));
	/* The reset's reason comes first (ENOMEM), then EPIPE. */
	CHECK(err == ENOMEM || is_conn_error(err));
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(raw_finish(&r));
	CHECK(r.err == ECONNRESET);
	CHECK(no_plaintext(&r));
	got = valid_prefix(&r, &k.en, plain, 1000, &ok);
	CHECK(ok);
	/* Whole records up to the failed one, none after it. */
	CHECK(got <= (size_t)(skip + 1) * 16384);
	tap_diag("%s: %zu plaintext bytes in valid records, then the reset "
	    "(%zu wire bytes)", sname, got, r.len);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.failed_crypto") > failed0);
	CHECK(active_back(active0));
	close(fds[1]);
	if (ffd >= 0)
		close(ffd);
	free(r.buf);
}

/*
 * b. An allocation on the data path fails (`count' times, after `skip'
 * calls pass).  The writer retries after ENOMEM; the stream must then be
 * exact.  how: 0 writes, 1 sendfile.
 */
static void
case_alloc(enum ktls_fault_site site, int how, int64_t skip, int64_t count)
{
	const size_t total = 4 * MiB;
	uint64_t active0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	uint64_t hits0 = ktls_fault_hits(site);
	struct fx_keys k;
	struct raw r = { 0 };
	size_t sent = 0, got;
	off_t off = 0;
	ssize_t n;
	bool ok;
	int fds[2], ffd = -1, enomem = 0;

	REQUIRE(fx_enabled_pair(AF_INET6, "TLS1.2-AES-128-GCM", 0, &k,
	    fds) == 0, );
	if (how == 1) {
		char path[] = "/tmp/ktls-fault-XXXXXX";

		REQUIRE((ffd = mkstemp(path)) >= 0, );
		unlink(path);
		REQUIRE(write(ffd, plain, total) == (ssize_t)total, );
	}
	raw_start(&r, fds[1]);
	ktls_fault_set(site, skip, count);
	for (int i = 0; i < 100000 && sent < total; i++) {
		if (how == 1)
			n = ktls_sendfile(fds[0], ffd, &off, total - sent);
		else
			n = ktls_send(fds[0], plain + sent, total - sent >
			    100 * KiB ? 100 * KiB : total - sent, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOMEM) {
			enomem++;
			continue;
		}
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	ktls_fault_set(site, 0, 0);
	/*
	 * Every injected failure was met; a call that had taken bytes before
	 * the failure returns them (a short count), as the kernel's does, so
	 * ENOMEM is seen at most once per failure.
	 */
	if (ktls_fault_hits(site) - hits0 != (uint64_t)count || enomem > count)
		tap_diag("%llu failures injected, %d ENOMEM seen",
		    (unsigned long long)(ktls_fault_hits(site) - hits0), enomem);
	CHECK(ktls_fault_hits(site) - hits0 == (uint64_t)count);
	CHECK(enomem <= count);
	CHECK(sent == total);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(raw_finish(&r));
	got = valid_prefix(&r, &k.en, plain, 0, &ok);
	CHECK(ok && got == total && r.err == 0);
	CHECK(active_back(active0));
	close(fds[1]);
	if (ffd >= 0)
		close(ffd);
	free(r.buf);
}

/*
 * b'. The poller cannot watch a full kernel socket (the peer stalls): the
 * connection is reset rather than left hanging; the stream up to there
 * is valid, the writer gets an error.
 */
static void
case_poller(void)
{
	uint64_t active0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	struct fx_keys k;
	struct raw r = { .stall_ms = 300 };
	size_t sent = 0;
	ssize_t n;
	int fds[2], err = 0;

	REQUIRE(fx_enabled_pair(AF_INET, "TLS1.3-AES-256-GCM", 0, &k,
	    fds) == 0, );
	raw_start(&r, fds[1]);
	ktls_fault_set(KF_POLLER, 0, -1);
	/* The same 8 MiB again and again until the kernel socket is full. */
	while (sent < 64 * (size_t)PLAIN_LEN) {
		n = ktls_send(fds[0], plain + sent % PLAIN_LEN, 64 * KiB,
		    MSG_NOSIGNAL);
		if (n < 0) {
			err = errno;
			break;
		}
		sent += (size_t)n;
	}
	ktls_fault_set(KF_POLLER, 0, 0);
	tap_diag("poller faults: %llu, %zu bytes sent, %s",
	    (unsigned long long)ktls_fault_hits(KF_POLLER), sent,
	    strerror(err));
	/* The reset's reason comes first (ENOMEM), then EPIPE. */
	CHECK(err == ENOMEM || is_conn_error(err));
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(raw_finish(&r));
	CHECK(r.err == ECONNRESET);
	CHECK(active_back(active0));
	close(fds[1]);
	free(r.buf);
}

/* c. An allocation of enable fails: ENOMEM, nothing changed, retry works. */
static void
case_enable_alloc(enum ktls_fault_site site)
{
	uint64_t active0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	struct fx_keys k;
	struct raw r = { 0 };
	size_t got;
	bool ok;
	int fds[2], mode = -1;
	socklen_t len = sizeof(mode);

	fx_keys_init(&k, fx_suite_by_name("TLS1.3-CHACHA20-POLY1305"), 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	ktls_fault_set(site, 0, 1);
	errno = 0;
	CHECK(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) == -1 && errno == ENOMEM);
	ktls_fault_set(site, 0, 0);
	CHECK(ktls_getsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_MODE, &mode,
	    &len) == 0 && mode == TCP_TLS_MODE_NONE);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.active") == active0);
	CHECK(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) == 0);
	raw_start(&r, fds[1]);
	CHECK(ktls_send(fds[0], plain, 50000, MSG_NOSIGNAL) == 50000);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(raw_finish(&r));
	got = valid_prefix(&r, &k.en, plain, 0, &ok);
	CHECK(ok && got == 50000);
	CHECK(active_back(active0));
	close(fds[1]);
	free(r.buf);
}

struct resetter {
	int		fd;
	pthread_t	tid;
};

/* Reads 1 MiB, then resets the connection (SO_LINGER {1, 0}, close). */
static void *
resetter_main(void *arg)
{
	struct resetter *rs = arg;
	struct linger l = { 1, 0 };
	uint8_t buf[65536];
	size_t got = 0;
	ssize_t n;

	while (got < MiB && (n = read(rs->fd, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	setsockopt(rs->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(rs->fd);
	return (NULL);
}

/* d. The peer resets while a sendfile of 64 MiB is going out. */
static void
case_reset_sendfile(void)
{
	const size_t flen = 64 * MiB;
	uint64_t active0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	struct fx_keys k;
	struct resetter rs;
	off_t off = 0;
	ssize_t n;
	int fds[2], ffd, err = 0;

	REQUIRE((ffd = fx_tmpfile(flen, 3)) >= 0, );
	REQUIRE(fx_enabled_pair(AF_INET, "TLS1.2-AES-256-GCM", 0, &k,
	    fds) == 0, );
	rs.fd = fds[1];
	pthread_create(&rs.tid, NULL, resetter_main, &rs);
	/* Blocking sendfile: it returns what it queued when the reset came. */
	for (int i = 0; i < 1000 && err == 0 && (size_t)off < flen; i++) {
		n = ktls_sendfile(fds[0], ffd, &off, flen - (size_t)off);
		if (n < 0)
			err = errno;
	}
	CHECK(fx_join_ms(rs.tid, 20000));
	if (!is_conn_error(err))
		tap_diag("sendfile after the reset: %s, offset %lld",
		    strerror(err), (long long)off);
	CHECK(is_conn_error(err));
	CHECK((size_t)off < flen);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(active_back(active0));
	close(ffd);
}

static long
rss_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return (v);
}

/*
 * e. The peer stops reading for a second: a non-blocking writer fills the
 * kernel socket and the engine's queue, then gets EAGAIN; 1 s of further
 * attempts take nothing and grow nothing; then every accepted byte
 * arrives.
 */
static void
case_stalled_peer(void)
{
	uint64_t active0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	struct fx_keys k;
	struct raw r = { 0 };
	size_t sent = 0, got;
	long rss0, rss1;
	ssize_t n;
	bool ok;
	int fds[2], eagain = 0;

	REQUIRE(fx_enabled_pair(AF_INET, "TLS1.3-AES-128-GCM", 0, &k,
	    fds) == 0, );
	CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
	while ((n = ktls_send(fds[0], plain + sent, 64 * KiB,
	    MSG_NOSIGNAL)) > 0)
		sent += (size_t)n;
	CHECK(n == -1 && errno == EAGAIN);
	rss0 = rss_kib();
	for (int i = 0; i < 100; i++) {
		fx_sleep_ms(10);
		n = ktls_send(fds[0], plain + sent, 64 * KiB, MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		else if (errno == EAGAIN)
			eagain++;
	}
	rss1 = rss_kib();
	tap_diag("stalled peer: %zu bytes accepted, RSS %ld -> %ld KiB, %d "
	    "EAGAIN", sent, rss0, rss1, eagain);
	CHECK(sent < 16 * MiB);		/* kernel buffers + 512 KiB queue */
	CHECK(eagain > 0);
	CHECK(rss1 - rss0 < 2048);
	raw_start(&r, fds[1]);
	CHECK(fcntl(fds[0], F_SETFL, 0) == 0);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(raw_finish(&r));
	got = valid_prefix(&r, &k.en, plain, 0, &ok);
	CHECK(ok && got == sent && r.err == 0);
	CHECK(active_back(active0));
	close(fds[1]);
	free(r.buf);
}

/* f. The peer's process is killed (SIGKILL) with data queued for it. */
static void
case_peer_killed(void)
{
	uint64_t active0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	struct fx_keys k;
	size_t sent = 0;
	ssize_t n;
	pid_t pid;
	int fds[2], status, err = 0;
	char c;
	int sync[2];

	REQUIRE(pipe(sync) == 0, );
	REQUIRE(fx_enabled_pair(AF_INET6, "TLS1.2-CHACHA20-POLY1305", 0, &k,
	    fds) == 0, );
	if ((pid = fx_fork()) == 0) {
		/* The peer: holds the socket, reads nothing, dies. */
		close(fds[0]);
		(void)write(sync[1], "r", 1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	CHECK(read(sync[0], &c, 1) == 1);
	/* Queue more than fits: the writer blocks (SO_SNDTIMEO 200 ms). */
	struct timeval tv = { 0, 200000 };
	CHECK(setsockopt(fds[0], SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv)) == 0);
	while ((n = ktls_send(fds[0], plain + sent, 256 * KiB,
	    MSG_NOSIGNAL)) > 0 && sent < PLAIN_LEN / 2)
		sent += (size_t)n;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	tv.tv_usec = 0;
	tv.tv_sec = 0;
	CHECK(setsockopt(fds[0], SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv)) == 0);
	for (int i = 0; i < 200 && err == 0; i++) {
		if (ktls_send(fds[0], plain, 16 * KiB, MSG_NOSIGNAL) < 0)
			err = errno;
		else
			fx_sleep_ms(10);
	}
	if (!is_conn_error(err))
		tap_diag("after the peer died: %s", strerror(err));
	CHECK(is_conn_error(err));
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(active_back(active0));
	close(sync[0]);
	close(sync[1]);
}

int
main(void)
{
	static const struct {
		enum ktls_fault_site site;
		const char *name;
	} enable_sites[] = {
		{ KF_SESSION_ALLOC, "session" },
		{ KF_KEYMEM_ALLOC, "key memory" },
		{ KF_SOCK_ALLOC, "socket state" },
	};

	fx_watchdog(240);
	fx_enable_ktls();
	signal(SIGPIPE, SIG_IGN);
	make_plain();

	case_crypto("TLS1.3-AES-128-GCM", 0, 5);
	tap_result("crypto fails after 5 records, 16 KiB writes (worker): "
	    "reset, writer error, valid prefix, no plaintext on the wire");
	case_crypto("TLS1.2-CHACHA20-POLY1305", 0, 0);
	tap_result("crypto fails on the first record (worker): the same");
	case_crypto("TLS1.2-AES-128-CBC-SHA256", 1, 20);
	tap_result("crypto fails after 20 records of a sendfile (CBC): the "
	    "same");
	case_crypto("TLS1.3-AES-256-GCM", 1, 0);
	tap_result("crypto fails on the first record of a sendfile: the "
	    "same");
	case_crypto("TLS1.2-AES-256-GCM", 2, 3);
	tap_result("crypto fails on a small write encrypted by the writer "
	    "(inline): the same");

	case_alloc(KF_RECORD_ALLOC, 0, 10, 1);
	tap_result("record allocation fails once mid-stream (writes): ENOMEM, "
	    "the retry goes on, 4 MiB exact");
	case_alloc(KF_RECORD_ALLOC, 0, 0, 3);
	tap_result("record allocation fails three times at once: the same");
	case_alloc(KF_RECORD_ALLOC, 1, 7, 2);
	tap_result("record allocation fails twice mid-sendfile: the same");
	case_alloc(KF_FILEREF_ALLOC, 1, 0, 1);
	tap_result("sendfile's file reference allocation fails: ENOMEM, the "
	    "retry goes on, exact");
	case_poller();
	tap_result("the poller cannot watch a full socket: reset, writer "
	    "error, valid prefix");
	for (size_t i = 0; i < sizeof(enable_sites) / sizeof(enable_sites[0]);
	    i++) {
		case_enable_alloc(enable_sites[i].site);
		tap_result("enable: %s allocation fails: ENOMEM, socket "
		    "untouched, a retry works", enable_sites[i].name);
	}
	case_reset_sendfile();
	tap_result("peer resets mid-sendfile (64 MiB): the next call fails, "
	    "session freed");
	case_stalled_peer();
	tap_result("peer stops reading: EAGAIN, memory bounded, then every "
	    "accepted byte arrives");
	case_peer_killed();
	tap_result("peer process killed with data queued: the writer fails, "
	    "session freed");
	free(plain);
	return (tap_done());
}
