/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ktls's kernel mode (FreeBSD's "ifnet TLS": here the session handed to
 * Linux's own kernel TLS), run in a guest kernel that has kTLS
 * (tests/kernel/guest.py).
 *
 * (a) For each AEAD suite of TLS 1.2 and 1.3, with
 *     kern.ipc.tls.ifnet.permitted 1: TCP_TXTLS_ENABLE puts the session in
 *     the kernel (TCP_TXTLS_MODE reads IFNET, getsockopt(SOL_TLS, TLS_TX)
 *     on the socket shows the key and the first sequence number, the
 *     ifnet gauge and /proc/net/tls_stat count it); write, writev, send,
 *     sendmsg with a record type (FreeBSD's level IPPROTO_TCP) and
 *     sendfile then go to the kernel: the peer decrypts them with the
 *     tests' own decryptor (tlsdec) to the exact plaintext and types,
 *     sequence numbers consecutive from the first, and ktls itself
 *     encrypts no record; after close the gauges drop back.
 * (b) A live switch for each suite: a software session (permitted 0) is
 *     given a write of more than 1 MiB and a sendfile of 2 MiB, then, with
 *     the peer held, non-blocking writes until EAGAIN, so that ktls holds
 *     records it cannot send yet (measured: the kernel socket's byte count
 *     from TCP_INFO against the software records' wire bytes); then the
 *     peer reads again and TCP_TXTLS_MODE = IFNET: it returns 0, the kernel
 *     continues at the next sequence number with the same key, more
 *     writes and a sendfile go to the kernel; the peer sees one valid
 *     record stream, sequence consecutive across the switch, plaintext
 *     exact; kern.ipc.tls.stats.switch_to_ifnet grows by one.
 * (c) IFNET -> SW is refused with EOPNOTSUPP (Linux cannot give a session
 *     back), the mode stays IFNET, switch_failed grows; a mode other than
 *     SW or IFNET is EINVAL; a suite Linux lacks (CBC) stays in software.
 * (d) /proc/net/tls_stat: TlsCurrTxSw moves with the ifnet gauges while
 *     sessions are open, and TlsTxSw grows by exactly the sessions ktls
 *     put in the kernel during the program.
 *
 * The peer reads on its own thread; only liveness is bounded
 * (no timing is asserted).  On a kernel without kTLS (TCP_ULP "tls" fails
 * with ENOENT) it skips.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>	/* struct tcp_info with tcpi_bytes_sent */
#include <linux/tls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ktls.h>

#include "fixture.h"
#include "linux_info.h"
#include "tap.h"
#include "tlsdec.h"

#define RX_MS		60000	/* liveness bound for a peer to reach EOF */
#define GAUGE_MS	5000	/* ... for a gauge to settle after close */
#define WDATA_LEN	(4 << 20)
#define FILE_LEN	(3 << 20)

/*
 * A suite (by its fx_suites name; ls, its Linux form, set by
 * suites_init()) and how it is enabled (see test_oracle.c for the iv
 * forms).
 */
struct ksuite {
	const char	*name;
	bool		freebsd_iv;	/* TLS 1.2 GCM: 4-byte salt */
	uint64_t	seq;		/* first record */
	uint64_t	nonce;		/* TLS 1.2 GCM, Linux form: first nonce */
	const char	*gauge;		/* kern.ipc.tls.ifnet.* */
	const char	*sw_gauge;	/* kern.ipc.tls.sw.* */
	size_t		overhead;	/* wire bytes a record adds */
	struct fx_lsuite ls;		/* { 0 } here, set by suites_init() */
};

static struct ksuite suites[] = {
	{ "TLS1.2-AES-128-GCM", true, 0x0102030405060708ULL, 0,
	    "kern.ipc.tls.ifnet.gcm", "kern.ipc.tls.sw.gcm", 29, { 0 } },
	{ "TLS1.2-AES-256-GCM", false, 5, 0x1122334455667788ULL,
	    "kern.ipc.tls.ifnet.gcm", "kern.ipc.tls.sw.gcm", 29, { 0 } },
	{ "TLS1.2-CHACHA20-POLY1305", false, 1, 0,
	    "kern.ipc.tls.ifnet.chacha20", "kern.ipc.tls.sw.chacha20", 21,
	    { 0 } },
	{ "TLS1.3-AES-128-GCM", false, 0, 0,
	    "kern.ipc.tls.ifnet.gcm", "kern.ipc.tls.sw.gcm", 22, { 0 } },
	{ "TLS1.3-AES-256-GCM", false, 0xfffffff0ULL, 0,
	    "kern.ipc.tls.ifnet.gcm", "kern.ipc.tls.sw.gcm", 22, { 0 } },
	{ "TLS1.3-CHACHA20-POLY1305", false, 1000, 0,
	    "kern.ipc.tls.ifnet.chacha20", "kern.ipc.tls.sw.chacha20", 22,
	    { 0 } },
};
#define NSUITES	((int)(sizeof(suites) / sizeof(suites[0])))

static void
suites_init(void)
{
	for (int i = 0; i < NSUITES; i++)
		suites[i].ls = fx_lsuite_by_name(suites[i].name);
}

struct kkeys {
	uint8_t			key[32], iv[12];
	struct tls_enable	en;
	uint64_t		nonce_off;	/* TLS 1.2 GCM: nonce - seq */
};

static void
be64enc(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
be64dec(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (v);
}

static void
kkeys_init(struct kkeys *k, const struct ksuite *s, int salt)
{
	memset(k, 0, sizeof(*k));
	for (int j = 0; j < 32; j++)
		k->key[j] = (uint8_t)(0x17 * salt + 5 * j + 1);
	for (int j = 0; j < 12; j++)
		k->iv[j] = (uint8_t)(0xe1 - 7 * salt + 3 * j);
	if (s->ls.version == TLS_1_2_VERSION && s->ls.l->salt_len != 0 &&
	    !s->freebsd_iv) {
		be64enc(k->iv + 4, s->nonce);
		k->nonce_off = s->nonce - s->seq;
	}
	k->en.cipher_key = k->key;
	k->en.cipher_key_len = (int)s->ls.l->key_len;
	k->en.iv = k->iv;
	k->en.iv_len = s->freebsd_iv ? 4 : 12;
	k->en.cipher_algorithm = s->ls.l->algorithm;
	k->en.tls_vmajor = TLS_MAJOR_VER_ONE;
	k->en.tls_vminor = s->ls.version == TLS_1_3_VERSION ?
	    TLS_MINOR_VER_THREE : TLS_MINOR_VER_TWO;
	be64enc(k->en.rec_seq, s->seq);
}

/* A counter of /proc/net/tls_stat, or -1. */
static long long
tls_stat(const char *name)
{
	char line[256], key[128];
	long long v, found = -1;
	FILE *f;

	if ((f = fopen("/proc/net/tls_stat", "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%127s %lld", key, &v) == 2 &&
		    strcmp(key, name) == 0)
			found = v;
	fclose(f);
	return (found);
}

static int
mode_of(int fd)
{
	int mode = -1;
	socklen_t len = sizeof(mode);

	if (ktls_getsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &mode, &len) != 0)
		return (-errno - 1000);
	return (mode);
}

static int
set_mode(int fd, int mode)
{
	return (ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &mode,
	    sizeof(mode)));
}

/* The next record's sequence number as ktls_get_tx() says, or -1. */
static int64_t
next_seq(int fd)
{
	struct ktls_tx_info ti;
	int64_t seq;

	if (ktls_get_tx(fd, &ti) != 0) {
		tap_diag("ktls_get_tx: %s", strerror(errno));
		return (-1);
	}
	seq = (int64_t)be64dec(ti.rec_seq);
	explicit_bzero(&ti, sizeof(ti));
	return (seq);
}

/*
 * What the kernel holds for the socket (libc's getsockopt on the
 * application's descriptor: the same socket ktls hands down): the suite
 * and key given, the next sequence number expected, for TLS 1.2 GCM the
 * explicit nonce that continues the session's.  False with a diagnostic.
 */
static bool
kernel_holds(int fd, const struct ksuite *s, const struct kkeys *k,
    uint64_t seq)
{
	union ktls_linux_crypto_info ci;
	socklen_t len = s->ls.l->size;
	const uint8_t *key, *rs, *iv;
	bool ok = true;

	memset(&ci, 0, sizeof(ci));
	if (getsockopt(fd, SOL_TLS, TLS_TX, &ci, &len) != 0) {
		tap_diag("getsockopt(SOL_TLS, TLS_TX): %s", strerror(errno));
		return (false);
	}
	switch (s->ls.l->cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		key = ci.g128.key; rs = ci.g128.rec_seq; iv = ci.g128.iv;
		break;
	case TLS_CIPHER_AES_GCM_256:
		key = ci.g256.key; rs = ci.g256.rec_seq; iv = ci.g256.iv;
		break;
	default:
		key = ci.chacha.key; rs = ci.chacha.rec_seq; iv = ci.chacha.iv;
		break;
	}
	if (ci.info.version != s->ls.version ||
	    ci.info.cipher_type != s->ls.l->cipher_type) {
		tap_diag("kernel: version %#x cipher %u, expected %#x %u",
		    ci.info.version, ci.info.cipher_type, s->ls.version,
		    s->ls.l->cipher_type);
		ok = false;
	}
	if (memcmp(key, k->key, s->ls.l->key_len) != 0) {
		tap_diag("kernel: not the key given");
		ok = false;
	}
	if (be64dec(rs) != seq) {
		tap_diag("kernel: next sequence %llu, expected %llu",
		    (unsigned long long)be64dec(rs), (unsigned long long)seq);
		ok = false;
	}
	if (s->ls.l->salt_len != 0 && memcmp(s->ls.l->cipher_type ==
	    TLS_CIPHER_AES_GCM_256 ? ci.g256.salt : ci.g128.salt, k->iv,
	    4) != 0) {
		tap_diag("kernel: not the salt given");
		ok = false;
	}
	if (s->ls.version == TLS_1_2_VERSION && s->ls.l->salt_len != 0) {
		if (be64dec(iv) != seq + k->nonce_off) {
			tap_diag("kernel: explicit nonce %016llx, expected "
			    "%016llx", (unsigned long long)be64dec(iv),
			    (unsigned long long)(seq + k->nonce_off));
			ok = false;
		}
	} else if (memcmp(iv, k->iv + s->ls.l->salt_len,
	    12 - s->ls.l->salt_len) != 0) {
		tap_diag("kernel: not the IV given");
		ok = false;
	}
	explicit_bzero(&ci, sizeof(ci));
	return (ok);
}

/* What the peer must decrypt: the calls' payloads and types, in order. */
struct expect {
	struct {
		uint8_t		type;
		const uint8_t	*p;
		size_t		len;
	}		m[512];
	int		n;
	size_t		bytes;
};

static void
expect_add(struct expect *x, uint8_t type, const uint8_t *p, size_t len)
{
	if (x->n == 512)
		abort();
	x->m[x->n].type = type;
	x->m[x->n].p = p;
	x->m[x->n].len = len;
	x->n++;
	x->bytes += len;
}

/*
 * The peer's records against the calls: every record of one call's type
 * and bytes (a record never spans two calls here: no MSG_MORE), all of
 * them in order, sequence numbers consecutive from seq0.
 */
static bool
verify(const struct fx_rx *rx, const struct expect *x, uint64_t seq0)
{
	int mi = 0;
	size_t mo = 0;

	if (rx->dec_failed) {
		tap_diag("tlsdec: %s (after %zu records, %llu wire bytes)",
		    rx->dec_error, rx->nrecs, (unsigned long long)rx->wire);
		return (false);
	}
	if (rx->read_errno != 0) {
		tap_diag("read: %s", strerror(rx->read_errno));
		return (false);
	}
	if (tlsdec_pending(rx->dec) != 0) {
		tap_diag("%zu bytes after the last whole record",
		    tlsdec_pending(rx->dec));
		return (false);
	}
	for (size_t i = 0; i < rx->nrecs; i++) {
		const struct fx_rec *r = &rx->recs[i];

		if (r->seq != seq0 + i) {
			tap_diag("record %zu has sequence %llu, expected %llu",
			    i, (unsigned long long)r->seq,
			    (unsigned long long)(seq0 + i));
			return (false);
		}
		if (mi == x->n) {
			tap_diag("record %zu (type %u, %zu bytes) after the "
			    "last call's data", i, r->type, r->len);
			return (false);
		}
		if (r->type != x->m[mi].type || r->len == 0 ||
		    r->len > x->m[mi].len - mo ||
		    memcmp(r->data, x->m[mi].p + mo, r->len) != 0) {
			tap_diag("record %zu (seq %llu, type %u, %zu bytes) "
			    "is not call %d's data at %zu (type %u, %zu "
			    "bytes)%s", i, (unsigned long long)r->seq,
			    r->type, r->len, mi, mo, x->m[mi].type,
			    x->m[mi].len, r->type == x->m[mi].type &&
			    r->len <= x->m[mi].len - mo ?
			    ": the plaintext differs" : "");
			return (false);
		}
		mo += r->len;
		if (mo == x->m[mi].len) {
			mi++;
			mo = 0;
		}
	}
	if (mi != x->n) {
		tap_diag("the stream ends in call %d of %d (%zu of %zu "
		    "plaintext bytes)", mi, x->n, rx->bytes, x->bytes);
		return (false);
	}
	if (tlsdec_nonmin_padded(rx->dec) != 0) {
		tap_diag("%llu records padded",
		    (unsigned long long)tlsdec_nonmin_padded(rx->dec));
		return (false);
	}
	return (true);
}

static uint8_t *wdata, *fdata;
static int ffd = -1;
static int installed;		/* sessions this program saw go to the kernel */

/* Calls through ktls, each checked to take every byte. */
static bool
k_write(int fd, struct expect *x, const uint8_t *p, size_t len)
{
	ssize_t r = ktls_write(fd, p, len);

	if (r != (ssize_t)len) {
		tap_diag("ktls_write(%zu): %zd (%s)", len, r,
		    r < 0 ? strerror(errno) : "short");
		return (false);
	}
	expect_add(x, TLS_RLTYPE_APP, p, len);
	return (true);
}

static bool
k_send(int fd, struct expect *x, const uint8_t *p, size_t len)
{
	ssize_t r = ktls_send(fd, p, len, MSG_NOSIGNAL);

	if (r != (ssize_t)len) {
		tap_diag("ktls_send(%zu): %zd (%s)", len, r,
		    r < 0 ? strerror(errno) : "short");
		return (false);
	}
	expect_add(x, TLS_RLTYPE_APP, p, len);
	return (true);
}

static bool
k_writev(int fd, struct expect *x, const uint8_t *p, const size_t *lens,
    int n)
{
	struct iovec iov[8];
	size_t total = 0;
	ssize_t r;

	for (int i = 0; i < n; i++) {
		iov[i].iov_base = (void *)(p + total);
		iov[i].iov_len = lens[i];
		total += lens[i];
	}
	if ((r = ktls_writev(fd, iov, n)) != (ssize_t)total) {
		tap_diag("ktls_writev(%zu): %zd (%s)", total, r,
		    r < 0 ? strerror(errno) : "short");
		return (false);
	}
	expect_add(x, TLS_RLTYPE_APP, p, total);
	return (true);
}

/* sendmsg with FreeBSD's record-type message, level IPPROTO_TCP. */
static bool
k_typed(int fd, struct expect *x, uint8_t type, const uint8_t *p, size_t len)
{
	union {
		struct cmsghdr	h;
		uint8_t		b[CMSG_SPACE(1)];
	} cm;
	struct iovec iov = { (void *)p, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *c;
	ssize_t r;

	memset(&cm, 0, sizeof(cm));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = IPPROTO_TCP;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(c) = type;
	if ((r = ktls_sendmsg(fd, &msg, 0)) != (ssize_t)len) {
		tap_diag("ktls_sendmsg(type %u, %zu): %zd (%s)", type, len, r,
		    r < 0 ? strerror(errno) : "short");
		return (false);
	}
	expect_add(x, type, p, len);
	return (true);
}

/* sendfile of the test file; off < 0: through the file offset (NULL). */
static bool
k_sendfile(int fd, struct expect *x, off_t off, size_t len)
{
	off_t o = off, pos = 0;
	ssize_t r;

	if (off < 0) {
		pos = lseek(ffd, 0, SEEK_CUR);
		r = ktls_sendfile(fd, ffd, NULL, len);
	} else {
		r = ktls_sendfile(fd, ffd, &o, len);
	}
	if (r != (ssize_t)len) {
		tap_diag("ktls_sendfile(%lld, %zu): %zd (%s)", (long long)off,
		    len, r, r < 0 ? strerror(errno) : "short");
		return (false);
	}
	if (off >= 0 && o != off + (off_t)len) {
		tap_diag("ktls_sendfile: *offset %lld, expected %lld",
		    (long long)o, (long long)(off + (off_t)len));
		return (false);
	}
	if (off < 0 && lseek(ffd, 0, SEEK_CUR) != pos + (off_t)len) {
		tap_diag("ktls_sendfile(NULL): the file offset did not move "
		    "by %zu", len);
		return (false);
	}
	expect_add(x, TLS_RLTYPE_APP, fdata + (off < 0 ? pos : off), len);
	return (true);
}

/* Poll a condition on the gauges for a while (a liveness bound). */
#define SETTLE(cond) do {						\
	for (int t_ = 0; t_ < GAUGE_MS / 10 && !(cond); t_++)		\
		fx_sleep_ms(10);					\
} while (0)

/* (a) A session enabled straight into the kernel. */
static void
case_enable_ifnet(const struct ksuite *s, int si)
{
	struct kkeys k;
	struct expect x = { .n = 0 };
	struct fx_rx rx = { .stall_ms = 0 };	/* fx_rx_start keeps stall_ms */
	uint64_t g0, sw0, rec0, g1 = 0, sw1 = 0, rec1;
	long long tx0, cur0, tx1 = -1, cur1 = -1;
	int fds[2], mode;
	bool rx_on = false, ok = true;
	const size_t lens[3] = { 1, 9000, 30000 };
	size_t wo = 0;

	kkeys_init(&k, s, si);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 1) == 0);
	g0 = fx_sysctl_u64(s->gauge);
	sw0 = fx_sysctl_u64(s->sw_gauge);
	rec0 = fx_sysctl_u64("kern.ipc.tls.stats.tx_records");
	tx0 = tls_stat("TlsTxSw");
	cur0 = tls_stat("TlsCurrTxSw");
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	if (ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) != 0) {
		tap_diag("TCP_TXTLS_ENABLE: %s", strerror(errno));
		tap_case_failed = 1;
		tap_result("%s: enabled with ifnet.permitted 1", s->name);
		close(fds[0]);
		close(fds[1]);
		return;
	}
	mode = mode_of(fds[0]);
	if (mode != TCP_TLS_MODE_IFNET) {
		tap_diag("TCP_TXTLS_MODE is %d, not IFNET (%d)", mode,
		    TCP_TLS_MODE_IFNET);
		tap_case_failed = 1;
	} else {
		installed++;
	}
	CHECK(kernel_holds(fds[0], s, &k, s->seq));
	g1 = fx_sysctl_u64(s->gauge);
	sw1 = fx_sysctl_u64(s->sw_gauge);
	tx1 = tls_stat("TlsTxSw");
	cur1 = tls_stat("TlsCurrTxSw");
	CHECK(g1 == g0 + 1);
	CHECK(sw1 == sw0);
	CHECK(tx1 == tx0 + 1);
	CHECK(cur1 == cur0 + 1);
	tap_diag("%s: mode %d; %s %llu -> %llu, %s %llu -> %llu, TlsTxSw "
	    "%lld -> %lld, TlsCurrTxSw %lld -> %lld", s->name, mode,
	    s->gauge, (unsigned long long)g0, (unsigned long long)g1,
	    s->sw_gauge, (unsigned long long)sw0, (unsigned long long)sw1,
	    tx0, tx1, cur0, cur1);
	tap_result("%s: ifnet.permitted 1: TCP_TXTLS_ENABLE puts the session in "
	    "the kernel (mode IFNET, TLS_TX holds key/IV/sequence %llu, %s +1, "
	    "TlsTxSw +1, TlsCurrTxSw +1)", s->name,
	    (unsigned long long)s->seq, s->gauge);

	/* The calls, all through ktls, to the kernel. */
	if (fx_rx_start(&rx, fds[1], &k.en, true) != 0) {
		tap_diag("receiver: %s", strerror(errno));
		ok = false;
	} else {
		rx_on = true;
	}
	ok = ok && k_write(fds[0], &x, wdata + wo, 1);
	wo += 1;
	ok = ok && k_write(fds[0], &x, wdata + wo, 100000);
	wo += 100000;
	ok = ok && k_writev(fds[0], &x, wdata + wo, lens, 3);
	wo += 39001;
	ok = ok && k_send(fds[0], &x, wdata + wo, 5000);
	wo += 5000;
	ok = ok && k_typed(fds[0], &x, TLS_RLTYPE_ALERT, wdata + wo, 2);
	wo += 2;
	ok = ok && k_typed(fds[0], &x, TLS_RLTYPE_HANDSHAKE, wdata + wo, 20000);
	wo += 20000;
	ok = ok && k_sendfile(fds[0], &x, 4097, 300000);
	lseek(ffd, 1000, SEEK_SET);
	ok = ok && k_sendfile(fds[0], &x, -1, 5000);
	ok = ok && k_write(fds[0], &x, wdata + wo, 1);
	wo += 1;
	if (!ok)
		tap_case_failed = 1;
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	int64_t seqn = next_seq(fds[0]);
	rec1 = fx_sysctl_u64("kern.ipc.tls.stats.tx_records");
	if (rec1 != rec0) {
		tap_diag("ktls encrypted %llu records itself",
		    (unsigned long long)(rec1 - rec0));
		tap_case_failed = 1;
	}
	CHECK(ktls_close(fds[0]) == 0);
	if (rx_on) {
		if (!fx_rx_finish(&rx, RX_MS))
			tap_case_failed = 1;
		if (!verify(&rx, &x, s->seq))
			tap_case_failed = 1;
		if (seqn < 0 || (uint64_t)seqn != s->seq + rx.nrecs) {
			tap_diag("ktls_get_tx before close: next sequence "
			    "%lld; the peer got %zu records from %llu",
			    (long long)seqn, rx.nrecs,
			    (unsigned long long)s->seq);
			tap_case_failed = 1;
		}
	}
	tap_result("%s: kernel mode: write, writev, send, sendmsg (types 21, "
	    "22), sendfile decrypt to the exact plaintext and types (%zu "
	    "records from sequence %llu, %zu bytes), none encrypted by ktls",
	    s->name, rx_on ? rx.nrecs : 0, (unsigned long long)s->seq,
	    x.bytes);
	if (rx_on)
		fx_rx_free(&rx);
	close(fds[1]);

	/* The session is gone: its gauge and the kernel's count drop. */
	SETTLE(fx_sysctl_u64(s->gauge) == g0 &&
	    tls_stat("TlsCurrTxSw") == cur0);
	g1 = fx_sysctl_u64(s->gauge);
	cur1 = tls_stat("TlsCurrTxSw");
	if (g1 != g0 || cur1 != cur0) {
		tap_diag("after close: %s %llu (was %llu), TlsCurrTxSw %lld "
		    "(was %lld)", s->gauge, (unsigned long long)g1,
		    (unsigned long long)g0, cur1, cur0);
		tap_case_failed = 1;
	}
	tap_result("%s: after close %s and TlsCurrTxSw are back to %llu and "
	    "%lld", s->name, s->gauge, (unsigned long long)g0, cur0);
}

/*
 * (b)'s peer: reads the stream into a buffer on its own thread, and can be
 * held (it parks before its next read) so that records stay queued in the
 * engine at the moment of the switch.  Decrypted at the end.
 */
struct psink {
	int		fd;
	pthread_t	tid;
	pthread_mutex_t	mtx;
	pthread_cond_t	cv;
	uint8_t		*buf;
	size_t		len, cap;
	bool		held, parked, eof, started;
	int		err;
};

static void *
psink_main(void *arg)
{
	struct psink *p = arg;
	uint8_t *tmp = malloc(65536);
	ssize_t n;

	for (;;) {
		pthread_mutex_lock(&p->mtx);
		while (p->held) {
			p->parked = true;
			pthread_cond_broadcast(&p->cv);
			pthread_cond_wait(&p->cv, &p->mtx);
		}
		p->parked = false;
		pthread_mutex_unlock(&p->mtx);
		n = tmp != NULL ? read(p->fd, tmp, 65536) : -1;
		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&p->mtx);
		if (n > 0 && p->len + (size_t)n > p->cap) {
			size_t cap = p->cap ? p->cap : 1 << 22;
			uint8_t *nb;

			while (cap < p->len + (size_t)n)
				cap *= 2;
			if ((nb = realloc(p->buf, cap)) == NULL) {
				n = -1;
				errno = ENOMEM;
			} else {
				p->buf = nb;
				p->cap = cap;
			}
		}
		if (n > 0) {
			memcpy(p->buf + p->len, tmp, (size_t)n);
			p->len += (size_t)n;
		} else {
			p->eof = true;
			p->err = n < 0 ? errno : 0;
		}
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mtx);
		if (n <= 0)
			break;
	}
	free(tmp);
	return (NULL);
}

static int
psink_start(struct psink *p, int fd)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->tid, NULL, psink_main, p) != 0)
		return (-1);
	p->started = true;
	return (0);
}

static void
psink_hold(struct psink *p, bool hold)
{
	pthread_mutex_lock(&p->mtx);
	p->held = hold;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
}

/* Wait (bounded) until the held reader has parked. */
static bool
psink_parked(struct psink *p)
{
	bool parked;

	for (int i = 0; i < GAUGE_MS / 10; i++) {
		pthread_mutex_lock(&p->mtx);
		parked = p->parked || p->eof;
		pthread_mutex_unlock(&p->mtx);
		if (parked)
			return (true);
		fx_sleep_ms(10);
	}
	return (false);
}

/* Join at EOF; false (and the socket shut) if it does not come in time. */
static bool
psink_finish(struct psink *p, unsigned int ms)
{
	bool ok = true;

	if (!p->started)
		return (false);
	psink_hold(p, false);
	if (!fx_join_ms(p->tid, ms)) {
		tap_diag("receiver still reading after %u ms (%zu bytes)", ms,
		    p->len);
		shutdown(p->fd, SHUT_RDWR);
		pthread_join(p->tid, NULL);
		ok = false;
	}
	p->started = false;
	return (ok);
}

/* The stream, decrypted into rx (fx_rx_free() frees it). */
static void
psink_decode(const struct psink *p, const struct tls_enable *en,
    struct fx_rx *rx)
{
	struct fx_rec r;

	memset(rx, 0, sizeof(*rx));
	rx->wire = p->len;
	rx->read_errno = p->err;
	if ((rx->dec = tlsdec_new(en)) == NULL) {
		rx->dec_failed = true;
		snprintf(rx->dec_error, sizeof(rx->dec_error), "tlsdec_new");
		return;
	}
	if (tlsdec_feed(rx->dec, p->buf, p->len) != 0) {
		rx->dec_failed = true;
		snprintf(rx->dec_error, sizeof(rx->dec_error), "%s",
		    tlsdec_error(rx->dec));
	}
	while (tlsdec_next(rx->dec, &r.type, &r.seq, &r.data, &r.len) == 1) {
		if (rx->nrecs == rx->cap) {
			rx->cap = rx->cap ? 2 * rx->cap : 1024;
			if ((rx->recs = realloc(rx->recs, rx->cap *
			    sizeof(r))) == NULL)
				abort();
		}
		rx->recs[rx->nrecs++] = r;
		if (r.type == TLS_RLTYPE_APP)
			rx->bytes += r.len;
	}
}

static void
psink_free(struct psink *p)
{
	if (p->started)
		psink_finish(p, 1000);
	free(p->buf);
	pthread_mutex_destroy(&p->mtx);
	pthread_cond_destroy(&p->cv);
}

/* The bytes the kernel socket has taken from ktls so far, or -1. */
static long long
kernel_took(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_retrans) +
	    sizeof(ti.tcpi_bytes_retrans))
		return (-1);
	return ((long long)(ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans +
	    ti.tcpi_notsent_bytes));
}

/*
 * (b) A software session switched to the kernel with records queued: more
 * than 1 MiB in one write and 2 MiB of sendfile with the peer reading, then
 * the peer is held and non-blocking writes fill the kernel socket and
 * ktls's queue until EAGAIN (invariant 4: EAGAIN only when the kernel
 * socket is full), so ktls holds records it cannot send yet when the
 * switch is asked; the peer reads again and the switch waits for them.
 */
static void
case_switch(const struct ksuite *s, int si)
{
	struct kkeys k;
	struct expect x = { .n = 0 };
	struct fx_rx rx;
	struct psink ps;
	uint64_t sw0, fail0, rec1, rec2, sw_wire = 0;
	int64_t seq_sw, seq_k, seq_end;
	size_t wo = 0, pre_recs, filled = 0;
	long long took = -1;
	const size_t lens[2] = { 70000, 3 };
	const int sb = 256 * 1024;
	double t0, t1, t2;
	int fds[2], r, e, fl;
	bool ok = true;

	kkeys_init(&k, s, si + 10);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 0) == 0);
	sw0 = fx_sysctl_u64("kern.ipc.tls.stats.switch_to_ifnet");
	fail0 = fx_sysctl_u64("kern.ipc.tls.stats.switch_failed");
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	/* Bounded kernel buffers: the fill below stays small. */
	setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &sb, sizeof(sb));
	if (ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) != 0 || psink_start(&ps, fds[1]) != 0) {
		tap_diag("TCP_TXTLS_ENABLE or receiver: %s", strerror(errno));
		tap_case_failed = 1;
		tap_result("%s: live switch", s->name);
		close(fds[0]);
		close(fds[1]);
		return;
	}
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);

	/* Software: more than 1 MiB in one call, then 2 MiB of file. */
	t0 = fx_now_s();
	ok = ok && k_write(fds[0], &x, wdata + wo, (1 << 20) + 300000);
	wo += (1 << 20) + 300000;
	ok = ok && k_typed(fds[0], &x, TLS_RLTYPE_HANDSHAKE, wdata + wo, 50);
	wo += 50;
	ok = ok && k_write(fds[0], &x, wdata + wo, 777);
	wo += 777;
	ok = ok && k_sendfile(fds[0], &x, 5, (2 << 20) + 123);

	/* The peer held; non-blocking writes until ktls says EAGAIN. */
	psink_hold(&ps, true);
	fl = fcntl(fds[0], F_GETFL);
	CHECK(fl >= 0 && fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) == 0);
	for (int i = 0; ok && i < 256; i++) {
		ssize_t n = ktls_write(fds[0], wdata + wo, 32768);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			tap_diag("non-blocking ktls_write: %zd (%s)", n,
			    n < 0 ? strerror(errno) : "nothing");
			ok = false;
			break;
		}
		expect_add(&x, TLS_RLTYPE_APP, wdata + wo, (size_t)n);
		wo += (size_t)n;
		filled += (size_t)n;
		if (wo + 32768 > WDATA_LEN - 300000) {
			tap_diag("no EAGAIN after %zu bytes", filled);
			ok = false;
			break;
		}
	}
	CHECK(fcntl(fds[0], F_SETFL, fl) == 0);
	CHECK(psink_parked(&ps));
	seq_sw = next_seq(fds[0]);
	took = kernel_took(fds[0]);

	/* The switch: the peer reads again, the queue goes out first. */
	t1 = fx_now_s();
	psink_hold(&ps, false);
	r = set_mode(fds[0], TCP_TLS_MODE_IFNET);
	e = errno;
	t2 = fx_now_s();
	if (r != 0) {
		tap_diag("TCP_TXTLS_MODE = IFNET: %s", strerror(e));
		tap_case_failed = 1;
	} else {
		installed++;
	}
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	seq_k = next_seq(fds[0]);
	if (seq_sw < 0 || seq_k != seq_sw) {
		tap_diag("next sequence %lld before the switch, %lld after",
		    (long long)seq_sw, (long long)seq_k);
		tap_case_failed = 1;
	}
	if (r == 0 && seq_sw >= 0)
		CHECK(kernel_holds(fds[0], s, &k, (uint64_t)seq_sw));
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_to_ifnet") == sw0 + 1);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_failed") == fail0);
	pre_recs = seq_sw >= 0 ? (size_t)((uint64_t)seq_sw - s->seq) : 0;
	tap_diag("%s: %zu records made in software, %zu bytes of them "
	    "written non-blocking with the peer held (software calls %.1f s, "
	    "the switch %.1f s)", s->name, pre_recs, filled, t1 - t0,
	    t2 - t1);

	/* Kernel: more of every kind of call. */
	rec1 = fx_sysctl_u64("kern.ipc.tls.stats.tx_records");
	ok = ok && k_write(fds[0], &x, wdata + wo, 200000);
	wo += 200000;
	ok = ok && k_typed(fds[0], &x, TLS_RLTYPE_ALERT, wdata + wo, 2);
	wo += 2;
	ok = ok && k_writev(fds[0], &x, wdata + wo, lens, 2);
	wo += 70003;
	ok = ok && k_sendfile(fds[0], &x, 3, 1 << 20);
	ok = ok && k_send(fds[0], &x, wdata + wo, 10);
	wo += 10;
	if (wo > WDATA_LEN)
		abort();
	seq_end = next_seq(fds[0]);
	rec2 = fx_sysctl_u64("kern.ipc.tls.stats.tx_records");
	if (rec2 != rec1) {
		tap_diag("ktls encrypted %llu records after the switch",
		    (unsigned long long)(rec2 - rec1));
		tap_case_failed = 1;
	}
	if (!ok)
		tap_case_failed = 1;
	CHECK(ktls_close(fds[0]) == 0);
	if (!psink_finish(&ps, RX_MS))
		tap_case_failed = 1;
	tap_diag("%s: kernel calls and the peer's last bytes %.1f s", s->name,
	    fx_now_s() - t2);
	psink_decode(&ps, &k.en, &rx);
	if (!verify(&rx, &x, s->seq))
		tap_case_failed = 1;
	if (seq_end < 0 || (uint64_t)seq_end != s->seq + rx.nrecs) {
		tap_diag("next sequence %lld at the end; the peer got %zu "
		    "records from %llu", (long long)seq_end, rx.nrecs,
		    (unsigned long long)s->seq);
		tap_case_failed = 1;
	}
	/* What ktls still held when the switch was asked. */
	for (size_t i = 0; i < pre_recs && i < rx.nrecs; i++)
		sw_wire += rx.recs[i].len + s->overhead;
	tap_diag("%s: when the switch was asked the kernel socket had taken "
	    "%lld of the %llu wire bytes made in software: %lld were in "
	    "ktls's queue", s->name, took, (unsigned long long)sw_wire,
	    (long long)sw_wire - took);
	if (took < 0 || (long long)sw_wire - took <= 0) {
		tap_diag("no records were queued in ktls at the switch");
		tap_case_failed = 1;
	}
	tap_result("%s: live switch SW -> IFNET with records queued in ktls: "
	    "returns 0, mode IFNET, the kernel continues at sequence %lld "
	    "with the same key; switch_to_ifnet +1", s->name,
	    (long long)seq_sw);
	if (pre_recs > rx.nrecs)
		pre_recs = rx.nrecs;
	tap_result("%s: one record stream across the switch: %zu records "
	    "(%zu in software, %zu by the kernel), sequence consecutive from "
	    "%llu, %zu plaintext bytes exact, none encrypted by ktls after it",
	    s->name, rx.nrecs, pre_recs, rx.nrecs - pre_recs,
	    (unsigned long long)s->seq, x.bytes);
	fx_rx_free(&rx);
	psink_free(&ps);
	close(fds[1]);
}

/* Write a little, close, and check the peer decrypts it. */
static bool
finish_session(int fd, int peer, const struct tls_enable *en, uint64_t seq0,
    size_t n)
{
	struct expect x = { .n = 0 };
	struct fx_rx rx = { .stall_ms = 0 };	/* fx_rx_start keeps stall_ms */
	bool ok;

	if (fx_rx_start(&rx, peer, en, true) != 0) {
		ktls_close(fd);
		return (false);
	}
	ok = k_write(fd, &x, wdata, n);
	ktls_close(fd);
	ok = fx_rx_finish(&rx, RX_MS) && ok;
	ok = verify(&rx, &x, seq0) && ok;
	fx_rx_free(&rx);
	return (ok);
}

/* (c) What cannot be switched. */
static void
case_refusals(void)
{
	const struct ksuite *s = &suites[3];	/* TLS1.3-AES-128-GCM */
	struct kkeys k;
	struct fx_keys fk;
	uint64_t fail0, tosw0;
	int fds[2], r, e;
	const int bad[] = { TCP_TLS_MODE_NONE, TCP_TLS_MODE_TOE, 7, -1 };

	/* Enabled in the kernel: it cannot come back. */
	kkeys_init(&k, s, 40);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 1) == 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) == 0);
	if (mode_of(fds[0]) == TCP_TLS_MODE_IFNET)
		installed++;
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	fail0 = fx_sysctl_u64("kern.ipc.tls.stats.switch_failed");
	tosw0 = fx_sysctl_u64("kern.ipc.tls.stats.switch_to_sw");
	r = set_mode(fds[0], TCP_TLS_MODE_SW);
	e = errno;
	if (r != -1 || e != EOPNOTSUPP) {
		tap_diag("IFNET -> SW: %d (%s), expected EOPNOTSUPP", r,
		    r ? strerror(e) : "success");
		tap_case_failed = 1;
	}
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_failed") == fail0 + 1);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_to_sw") == tosw0);
	tap_result("IFNET -> SW: EOPNOTSUPP, mode stays IFNET, switch_failed "
	    "+1, switch_to_sw unchanged");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = set_mode(fds[0], bad[i]);
		e = errno;
		if (r != -1 || e != EINVAL) {
			tap_diag("TCP_TXTLS_MODE = %d: %d (%s), expected "
			    "EINVAL", bad[i], r, r ? strerror(e) : "success");
			tap_case_failed = 1;
		}
	}
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	/* The mode it has already: nothing to do (FreeBSD returns 0). */
	CHECK(set_mode(fds[0], TCP_TLS_MODE_IFNET) == 0);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	CHECK(finish_session(fds[0], fds[1], &k.en, s->seq, 3000));
	close(fds[1]);
	tap_result("TCP_TXTLS_MODE 0, 3, 7, -1: EINVAL; IFNET on IFNET: 0; "
	    "mode stays IFNET and the session goes on");

	/* Switched live, then asked back: refused the same way. */
	kkeys_init(&k, s, 41);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 0) == 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) == 0);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(set_mode(fds[0], TCP_TLS_MODE_SW) == 0);	/* no-op */
	CHECK(set_mode(fds[0], TCP_TLS_MODE_IFNET) == 0);
	if (mode_of(fds[0]) == TCP_TLS_MODE_IFNET)
		installed++;
	fail0 = fx_sysctl_u64("kern.ipc.tls.stats.switch_failed");
	r = set_mode(fds[0], TCP_TLS_MODE_SW);
	e = errno;
	CHECK(r == -1 && e == EOPNOTSUPP);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_failed") == fail0 + 1);
	CHECK(finish_session(fds[0], fds[1], &k.en, s->seq, 100));
	close(fds[1]);
	tap_result("a session switched live: IFNET -> SW is EOPNOTSUPP too");

	/* A suite Linux has no kTLS for stays in software. */
	fx_keys_init(&fk, fx_suite_by_name("TLS1.2-AES-128-CBC-SHA256"), 9);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 1) == 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &fk.en,
	    sizeof(fk.en)) == 0);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	fail0 = fx_sysctl_u64("kern.ipc.tls.stats.switch_failed");
	r = set_mode(fds[0], TCP_TLS_MODE_IFNET);
	e = errno;
	if (r != -1 || e != EOPNOTSUPP) {
		tap_diag("CBC SW -> IFNET: %d (%s), expected EOPNOTSUPP", r,
		    r ? strerror(e) : "success");
		tap_case_failed = 1;
	}
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_failed") == fail0 + 1);
	CHECK(finish_session(fds[0], fds[1], &fk.en, 9, 20000));
	close(fds[1]);
	tap_result("TLS1.2-AES-128-CBC-SHA256 with ifnet.permitted 1 stays SW; "
	    "SW -> IFNET: EOPNOTSUPP, switch_failed +1; its records decrypt");
	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 0) == 0);
}

/* (d) Every suite in the kernel at once. */
static void
case_tls_stat(void)
{
	struct kkeys k[NSUITES];
	int fds[NSUITES][2], n = 0, ngcm = 0, nchacha = 0;
	uint64_t gcm0, cha0, act0, gcm1, cha1, act1;
	long long cur0, cur1;

	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 1) == 0);
	gcm0 = fx_sysctl_u64("kern.ipc.tls.ifnet.gcm");
	cha0 = fx_sysctl_u64("kern.ipc.tls.ifnet.chacha20");
	act0 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	cur0 = tls_stat("TlsCurrTxSw");
	for (int i = 0; i < NSUITES; i++) {
		kkeys_init(&k[i], &suites[i], 50 + i);
		if (fx_tcp_pair(AF_INET, fds[i]) != 0) {
			tap_case_failed = 1;
			break;
		}
		n++;
		CHECK(ktls_setsockopt(fds[i][0], IPPROTO_TCP, TCP_TXTLS_ENABLE,
		    &k[i].en, sizeof(k[i].en)) == 0);
		if (mode_of(fds[i][0]) == TCP_TLS_MODE_IFNET) {
			installed++;
			if (suites[i].ls.l->algorithm ==
			    CRYPTO_CHACHA20_POLY1305)
				nchacha++;
			else
				ngcm++;
		}
	}
	gcm1 = fx_sysctl_u64("kern.ipc.tls.ifnet.gcm");
	cha1 = fx_sysctl_u64("kern.ipc.tls.ifnet.chacha20");
	act1 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	cur1 = tls_stat("TlsCurrTxSw");
	tap_diag("%d sessions open: ifnet.gcm %llu -> %llu, ifnet.chacha20 "
	    "%llu -> %llu, stats.active %llu -> %llu, TlsCurrTxSw %lld -> %lld",
	    n, (unsigned long long)gcm0, (unsigned long long)gcm1,
	    (unsigned long long)cha0, (unsigned long long)cha1,
	    (unsigned long long)act0, (unsigned long long)act1, cur0, cur1);
	CHECK(ngcm == 4 && nchacha == 2);
	CHECK(gcm1 - gcm0 == (uint64_t)ngcm);
	CHECK(cha1 - cha0 == (uint64_t)nchacha);
	CHECK(act1 - act0 == (uint64_t)n);
	CHECK(cur1 - cur0 == (long long)((gcm1 - gcm0) + (cha1 - cha0)));
	/* Every one works, in the kernel. */
	for (int i = 0; i < n; i++) {
		CHECK(kernel_holds(fds[i][0], &suites[i], &k[i],
		    suites[i].seq));
		CHECK(finish_session(fds[i][0], fds[i][1], &k[i].en,
		    suites[i].seq, 1000 + (size_t)i));
		close(fds[i][1]);
	}
	SETTLE(fx_sysctl_u64("kern.ipc.tls.ifnet.gcm") == gcm0 &&
	    fx_sysctl_u64("kern.ipc.tls.ifnet.chacha20") == cha0 &&
	    fx_sysctl_u64("kern.ipc.tls.stats.active") == act0 &&
	    tls_stat("TlsCurrTxSw") == cur0);
	gcm1 = fx_sysctl_u64("kern.ipc.tls.ifnet.gcm");
	cha1 = fx_sysctl_u64("kern.ipc.tls.ifnet.chacha20");
	act1 = fx_sysctl_u64("kern.ipc.tls.stats.active");
	cur1 = tls_stat("TlsCurrTxSw");
	if (gcm1 != gcm0 || cha1 != cha0 || act1 != act0 || cur1 != cur0) {
		tap_diag("after close: ifnet.gcm %llu, ifnet.chacha20 %llu, "
		    "stats.active %llu, TlsCurrTxSw %lld",
		    (unsigned long long)gcm1, (unsigned long long)cha1,
		    (unsigned long long)act1, cur1);
		tap_case_failed = 1;
	}
	CHECK(fx_sysctl_set_int("kern.ipc.tls.ifnet.permitted", 0) == 0);
	tap_result("/proc/net/tls_stat: %d sessions in the kernel at once: "
	    "TlsCurrTxSw +%d == ifnet.gcm +%d + ifnet.chacha20 +%d, "
	    "stats.active +%d; all back after close", n, ngcm + nchacha, ngcm,
	    nchacha, n);
}

int
main(void)
{
	int fds[2], r, e, v = -1;
	size_t len = sizeof(v);
	long long tx0, tx1;
	double t0;

	fx_watchdog(200);
	suites_init();
	if (fx_tcp_pair(AF_INET, fds) != 0) {
		printf("Bail out! no loopback TCP connection: %s\n",
		    strerror(errno));
		return (1);
	}
	r = setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", 3);
	e = errno;
	close(fds[0]);
	close(fds[1]);
	if (r != 0 && e == ENOENT) {
		printf("1..0 # SKIP no kernel TLS\n");
		return (0);
	}
	if (r != 0)
		tap_diag("setsockopt(TCP_ULP, \"tls\"): %s", strerror(e));
	CHECK(r == 0);
	tx0 = tls_stat("TlsTxSw");
	CHECK(tx0 >= 0 && tls_stat("TlsCurrTxSw") >= 0);
	CHECK(ktls_sysctl_get("kern.ipc.tls.ifnet.permitted", &v, &len) == 0 &&
	    len == sizeof(int) && v == 0);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.enable", 1) == 0);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.autocork_us", 0) == 0);
	tap_result("kernel TLS here (/proc/net/tls_stat); "
	    "kern.ipc.tls.ifnet.permitted is 0 by default");

	wdata = malloc(WDATA_LEN);
	fdata = malloc(FILE_LEN);
	if (wdata == NULL || fdata == NULL ||
	    (ffd = fx_tmpfile(FILE_LEN, 99)) < 0) {
		printf("Bail out! no memory or no temporary file\n");
		return (1);
	}
	fx_pattern(wdata, WDATA_LEN, 98);
	fx_pattern(fdata, FILE_LEN, 99);

	t0 = fx_now_s();
	for (int i = 0; i < NSUITES; i++)
		case_enable_ifnet(&suites[i], i);
	tap_diag("(a) took %.1f s", fx_now_s() - t0);
	t0 = fx_now_s();
	for (int i = 0; i < NSUITES; i++)
		case_switch(&suites[i], i);
	tap_diag("(b) took %.1f s", fx_now_s() - t0);
	t0 = fx_now_s();
	case_refusals();
	case_tls_stat();
	tap_diag("(c), (d) took %.1f s", fx_now_s() - t0);

	tx1 = tls_stat("TlsTxSw");
	if (tx1 - tx0 != installed)
		tap_diag("TlsTxSw %lld -> %lld; ktls put %d sessions in the "
		    "kernel", tx0, tx1, installed);
	CHECK(tx1 - tx0 == installed);
	tap_result("/proc/net/tls_stat: TlsTxSw grew by exactly the %d "
	    "sessions ktls put in the kernel", installed);
	close(ffd);
	free(wdata);
	free(fdata);
	return (tap_done());
}
