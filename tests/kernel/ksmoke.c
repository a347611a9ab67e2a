/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Smoke test of Linux's own kernel TLS, run in a guest kernel that has it
 * (tests/kernel/guest.py): the records the kernel sends for each AEAD suite
 * of TLS 1.2 and 1.3, decrypted by the tests' independent decryptor
 * (tests/common/tlsdec.h), the record type message, the live record
 * sequence read back by getsockopt, and /proc/net/tls_stat.  This is the
 * ground the engine's kernel mode stands on: the keys and sequence it hands
 * down must give the same stream the kernel itself produces.
 *
 * On a kernel without kTLS (TCP_ULP "tls" fails with ENOENT) it skips.
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <ktls.h>

#include "fixture.h"
#include "linux_info.h"
#include "tap.h"
#include "tlsdec.h"

/* Known keys: the fields of one suite's crypto_info, as plain arrays. */
struct kkeys {
	uint8_t	key[32], salt[4], iv[12], rec_seq[8];
};

#define SMALL_MSG	"hello from the kernel's TLS"
#define BIG_LEN		20000	/* more than one record */
#define ALERT_LEN	2

static void
kkeys_init(struct kkeys *k, int i, uint64_t seq)
{
	for (int j = 0; j < 32; j++)
		k->key[j] = (uint8_t)(0x10 * i + j + 1);
	for (int j = 0; j < 4; j++)
		k->salt[j] = (uint8_t)(0xa0 + i + j);
	for (int j = 0; j < 12; j++)
		k->iv[j] = (uint8_t)(0xc0 + 3 * i + j);
	for (int j = 7; j >= 0; j--, seq >>= 8)
		k->rec_seq[j] = (uint8_t)seq;
}

/* The engine's 12-byte IV of k: salt || iv, as Linux splits it for s. */
static void
kkeys_iv(const struct fx_lsuite *s, const struct kkeys *k, uint8_t iv[12])
{
	memcpy(iv, k->salt, s->l->salt_len);
	memcpy(iv + s->l->salt_len, k->iv, s->l->iv_len);
}

/* Fields of ci, at their place in the suite's layout. */
static size_t
crypto_info_fill(union ktls_linux_crypto_info *ci, const struct fx_lsuite *s,
    const struct kkeys *k)
{
	uint8_t iv[12];

	kkeys_iv(s, k, iv);
	return (ktls_linux_info_fill(s->l, ci, s->version, k->key, iv,
	    k->rec_seq));
}

/* The same keys for tlsdec: iv is salt || iv (Linux's 12-byte form). */
static void
tls_enable_fill(struct tls_enable *en, uint8_t iv[12],
    const struct fx_lsuite *s, const struct kkeys *k)
{
	memset(en, 0, sizeof(*en));
	kkeys_iv(s, k, iv);
	en->cipher_key = k->key;
	en->cipher_key_len = s->l->key_len;
	en->iv = iv;
	en->iv_len = 12;
	en->cipher_algorithm = s->l->algorithm;
	en->tls_vmajor = TLS_MAJOR_VER_ONE;
	en->tls_vminor = s->version == TLS_1_3_VERSION ?
	    TLS_MINOR_VER_THREE : TLS_MINOR_VER_TWO;
	memcpy(en->rec_seq, k->rec_seq, 8);
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

static uint64_t
be64(const uint8_t b[8])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return (v);
}

static int suites_enabled;
static long long curr_tx_max = -1;

static bool
writeall(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			tap_diag("write: %s", strerror(errno));
			return (false);
		}
		p += n;
		len -= (size_t)n;
	}
	return (true);
}

/* A record of type `type` through the SOL_TLS control message. */
static bool
send_typed(int fd, uint8_t type, const void *buf, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(type))];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(type));
	memcpy(CMSG_DATA(cm), &type, sizeof(type));
	if (sendmsg(fd, &msg, 0) != (ssize_t)len) {
		tap_diag("sendmsg: %s", strerror(errno));
		return (false);
	}
	return (true);
}

/* Everything until EOF into d; false on a read error or a bad record. */
static bool
read_decrypt(int fd, struct tlsdec *d, size_t *wire)
{
	uint8_t buf[4096];
	struct timeval tv = { .tv_sec = 20 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*wire = 0;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tap_diag("read: %s", strerror(errno));
			return (false);
		}
		if (n == 0)
			return (true);
		*wire += (size_t)n;
		if (tlsdec_feed(d, buf, (size_t)n) != 0) {
			tap_diag("tlsdec: %s", tlsdec_error(d));
			return (false);
		}
	}
}

static int
errno_means_unsupported(int e)
{
	return (e == ENOENT || e == EINVAL || e == EOPNOTSUPP ||
	    e == ENOPROTOOPT || e == ENOPKG);
}

static void
suite_case1(const struct fx_lsuite *s, int i, int fds[2])
{
	union ktls_linux_crypto_info ci, back;
	struct kkeys k;
	struct tls_enable en;
	struct tlsdec *d;
	uint8_t iv[12], *big, *app, type, *data;
	const uint8_t alert[ALERT_LEN] = { 1, 0 };	/* warning, close_notify */
	uint64_t seq0 = 1000 * (uint64_t)(i + 1), seq, nrec = 0;
	size_t cilen, wire, applen = 0, len;
	socklen_t blen;
	long long curr;
	bool alert_seen = false;

	kkeys_init(&k, i, seq0);
	cilen = crypto_info_fill(&ci, s, &k);
	REQUIRE(setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", 3) == 0, );
	if (setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, (socklen_t)cilen) != 0) {
		int e = errno;

		if (errno_means_unsupported(e)) {
			tap_skip(strerror(e), "%s: TLS_TX (kernel lacks it)",
			    s->fx->name);
			return;
		}
		tap_diag("setsockopt(TLS_TX): %s", strerror(e));
		tap_case_failed = 1;
		tap_result("%s", s->fx->name);
		return;
	}
	suites_enabled++;
	if ((curr = tls_stat("TlsCurrTxSw")) > curr_tx_max)
		curr_tx_max = curr;

	big = malloc(BIG_LEN);
	REQUIRE(big != NULL, );
	fx_pattern(big, BIG_LEN, (uint32_t)i + 7);
	CHECK(writeall(fds[0], SMALL_MSG, strlen(SMALL_MSG)));
	CHECK(writeall(fds[0], big, BIG_LEN));
	CHECK(send_typed(fds[0], TLS_RLTYPE_ALERT, alert, sizeof(alert)));

	/* The live sequence, read back (what a hand-down must continue). */
	memset(&back, 0, sizeof(back));
	blen = (socklen_t)cilen;	/* Linux wants the layout's exact size */
	CHECK(getsockopt(fds[0], SOL_TLS, TLS_TX, &back, &blen) == 0);
	CHECK(blen == cilen);
	CHECK(back.info.version == s->version);
	CHECK(back.info.cipher_type == s->l->cipher_type);
	CHECK(shutdown(fds[0], SHUT_WR) == 0);

	tls_enable_fill(&en, iv, s, &k);
	if ((d = tlsdec_new(&en)) == NULL) {
		tap_diag("tlsdec_new refuses the suite's parameters");
		tap_case_failed = 1;
		free(big);
		return;
	}
	CHECK(read_decrypt(fds[1], d, &wire));
	CHECK(tlsdec_pending(d) == 0);
	CHECK(tlsdec_nonmin_padded(d) == 0);

	app = malloc(strlen(SMALL_MSG) + BIG_LEN);
	while (app != NULL && tlsdec_next(d, &type, &seq, &data, &len) == 1) {
		CHECK(seq == seq0 + nrec);
		nrec++;
		if (type == TLS_RLTYPE_APP && !alert_seen &&
		    applen + len <= strlen(SMALL_MSG) + BIG_LEN) {
			memcpy(app + applen, data, len);
			applen += len;
		} else if (type == TLS_RLTYPE_ALERT && !alert_seen &&
		    len == ALERT_LEN && memcmp(data, alert, len) == 0) {
			alert_seen = true;
		} else {
			tap_diag("unexpected record: type %u, %zu bytes",
			    type, len);
			tap_case_failed = 1;
		}
		free(data);
	}
	CHECK(app != NULL);
	CHECK(applen == strlen(SMALL_MSG) + BIG_LEN);
	if (app != NULL && applen == strlen(SMALL_MSG) + BIG_LEN) {
		CHECK(memcmp(app, SMALL_MSG, strlen(SMALL_MSG)) == 0);
		CHECK(memcmp(app + strlen(SMALL_MSG), big, BIG_LEN) == 0);
	}
	CHECK(alert_seen);
	/* One record per write at least, 16 KiB at most each. */
	CHECK(nrec >= 4);
	/* getsockopt gives the sequence of the next record to send. */
	if (be64(s->l->cipher_type == TLS_CIPHER_CHACHA20_POLY1305 ?
	    back.chacha.rec_seq : s->l->cipher_type == TLS_CIPHER_AES_GCM_256 ?
	    back.g256.rec_seq : back.g128.rec_seq) != seq0 + nrec) {
		tap_diag("getsockopt(TLS_TX) rec_seq is not %llu",
		    (unsigned long long)(seq0 + nrec));
		tap_case_failed = 1;
	}
	tap_diag("%s: %llu records, %zu bytes on the wire", s->fx->name,
	    (unsigned long long)nrec, wire);
	free(app);
	free(big);
	tlsdec_free(d);
	tap_result("%s: kernel records decrypt to what was written",
	    s->fx->name);
}

static void
suite_case(const struct fx_lsuite *s, int i)
{
	int fds[2];

	if (fx_tcp_pair(AF_INET, fds) != 0) {
		tap_diag("fx_tcp_pair: %s", strerror(errno));
		tap_case_failed = 1;
		tap_result("%s", s->fx->name);
		return;
	}
	suite_case1(s, i, fds);
	if (tap_case_failed)
		tap_result("%s: kernel records decrypt to what was written",
		    s->fx->name);
	close(fds[0]);
	close(fds[1]);
}

int
main(void)
{
	struct fx_lsuite ls;
	long long tx0, curr0, tx1;
	int fds[2], r, e;

	fx_watchdog(300);
	if (fx_tcp_pair(AF_INET, fds) != 0) {
		printf("Bail out! no loopback TCP connection: %s\n",
		    strerror(errno));
		return (1);
	}
	r = setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", 3);
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
	tap_result("setsockopt(TCP_ULP, \"tls\") on a TCP socket");

	tx0 = tls_stat("TlsTxSw");
	curr0 = tls_stat("TlsCurrTxSw");
	for (int i = 0; fx_lsuite_nth(&ls, i); i++)
		suite_case(&ls, i);

	tx1 = tls_stat("TlsTxSw");
	if (tx0 < 0 || curr0 < 0)
		tap_diag("/proc/net/tls_stat or its Tx counters are missing");
	CHECK(tx0 >= 0 && curr0 >= 0);
	tap_diag("TlsTxSw %lld -> %lld, TlsCurrTxSw %lld -> max %lld, "
	    "%d suites enabled", tx0, tx1, curr0, curr_tx_max, suites_enabled);
	CHECK(tx1 - tx0 == suites_enabled);
	CHECK(suites_enabled == 0 || curr_tx_max > curr0);
	tap_result("/proc/net/tls_stat counts the software TX sessions");
	return (tap_done());
}
