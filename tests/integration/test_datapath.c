/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Every suite x IPv4/IPv6: a real loopback TCP connection, the sender
 * enables ktls with FreeBSD's struct tls_enable and writes with write,
 * writev, sendmsg (application data and a custom record type), sendfile
 * and aio_write; the receiver decrypts with tlsdec (OpenSSL EVP, no code
 * shared with the engine) and every record's type, sequence number,
 * length and byte is checked.
 */
#include <aio.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "tap.h"

struct expect {
	uint8_t		type;
	size_t		len;
};

struct plan {
	struct expect	rec[64];
	int		n;
	uint8_t		*data;		/* all plaintext, in order */
	size_t		len, cap;
};

static void
plan_add(struct plan *p, uint8_t type, const uint8_t *buf, size_t len)
{
	/* Records of at most 16384 bytes, in the order written. */
	for (size_t off = 0; off < len; off += 16384) {
		size_t n = len - off < 16384 ? len - off : 16384;

		p->rec[p->n].type = type;
		p->rec[p->n].len = n;
		p->n++;
	}
	if (p->len + len > p->cap) {
		p->cap = (p->len + len) * 2;
		p->data = realloc(p->data, p->cap);
	}
	if (len > 0)
		memcpy(p->data + p->len, buf, len);
	p->len += len;
}

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = ktls_write(fd, buf, len);

		if (n <= 0)
			return (-1);
		buf += n;
		len -= (size_t)n;
	}
	return (0);
}

static void
run_suite(const struct fx_suite *s, int family, bool linux_iv)
{
	static const size_t sizes[] = { 0, 1, 16383, 16384, 16385 };
	const uint64_t start_seq = 0x0123456789abc000ULL;
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	struct plan p = { 0 };
	uint8_t *buf, type;
	size_t total = 200000, got_len;
	int fds[2], ffd;
	uint64_t rec0 = fx_sysctl_u64("kern.ipc.tls.stats.tx_records");
	uint64_t bytes0 = fx_sysctl_u64("kern.ipc.tls.stats.tx_bytes");

	buf = malloc(total);
	fx_pattern(buf, total, 7);
	fx_keys_init(&k, s, start_seq);
	/* Linux's crypto_info layout: salt || first explicit nonce. */
	if (linux_iv)
		k.en.iv_len = 12;
	REQUIRE(fx_tcp_pair(family, fds) == 0, );
	REQUIRE(ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE, &k.en,
	    sizeof(k.en)) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, true) == 0, );

	/* write(2): the record boundary sizes; 0 bytes makes no record. */
	size_t off = 0;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK(ktls_write(fds[0], buf + off, sizes[i]) ==
		    (ssize_t)sizes[i]);
		plan_add(&p, TLS_RLTYPE_APP, buf + off, sizes[i]);
		off += sizes[i];
	}

	/* writev(2): one write, records cut across the iovecs. */
	struct iovec iov[3] = {
		{ buf + off, 10 }, { buf + off + 10, 20000 },
		{ buf + off + 20010, 13000 },
	};
	CHECK(ktls_writev(fds[0], iov, 3) == 33010);
	plan_add(&p, TLS_RLTYPE_APP, buf + off, 33010);
	off += 33010;

	/* sendmsg(2) with TLS_SET_RECORD_TYPE: its own records. */
	union {
		struct cmsghdr	hdr;
		uint8_t		buf[CMSG_SPACE(1)];
	} cm;
	struct iovec miov = { buf + off, 17000 };
	struct msghdr msg = { .msg_iov = &miov, .msg_iovlen = 1,
	    .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	memset(&cm, 0, sizeof(cm));
	cm.hdr.cmsg_level = IPPROTO_TCP;
	cm.hdr.cmsg_type = TLS_SET_RECORD_TYPE;
	cm.hdr.cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(&cm.hdr) = TLS_RLTYPE_HANDSHAKE;
	CHECK(ktls_sendmsg(fds[0], &msg, 0) == 17000);
	plan_add(&p, TLS_RLTYPE_HANDSHAKE, buf + off, 17000);
	off += 17000;
	/* ... and without the control message: application data. */
	miov.iov_base = buf + off;
	miov.iov_len = 5000;
	msg.msg_control = NULL;
	msg.msg_controllen = 0;
	CHECK(ktls_sendmsg(fds[0], &msg, MSG_NOSIGNAL) == 5000);
	plan_add(&p, TLS_RLTYPE_APP, buf + off, 5000);
	off += 5000;

	/* sendfile(2): explicit offset (file offset untouched), then NULL. */
	uint8_t *fbuf = malloc(50000);
	fx_pattern(fbuf, 50000, 99);
	ffd = fx_tmpfile(50000, 99);
	off_t foff = 100;
	CHECK(ktls_sendfile(fds[0], ffd, &foff, 30000) == 30000);
	CHECK(foff == 30100);
	CHECK(lseek(ffd, 0, SEEK_CUR) == 0);
	plan_add(&p, TLS_RLTYPE_APP, fbuf + 100, 30000);
	CHECK(lseek(ffd, 49000, SEEK_SET) == 49000);
	/* Past the end: only what the file has. */
	CHECK(ktls_sendfile(fds[0], ffd, NULL, 5000) == 1000);
	CHECK(lseek(ffd, 0, SEEK_CUR) == 50000);
	CHECK(ktls_sendfile(fds[0], ffd, NULL, 5000) == 0);
	plan_add(&p, TLS_RLTYPE_APP, fbuf + 49000, 1000);
	close(ffd);	/* the engine has its own reference */

	/* aio_write(2): completes once accepted. */
	struct aiocb cb;
	const struct aiocb *list[1] = { &cb };
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = fds[0];
	cb.aio_buf = buf + off;
	cb.aio_nbytes = 40000;
	cb.aio_sigevent.sigev_notify = SIGEV_NONE;
	CHECK(ktls_aio_write(&cb) == 0);
	while (ktls_aio_error(&cb) == EINPROGRESS)
		ktls_aio_suspend(list, 1, NULL);
	CHECK(ktls_aio_error(&cb) == 0);
	CHECK(ktls_aio_return(&cb) == 40000);
	plan_add(&p, TLS_RLTYPE_APP, buf + off, 40000);
	off += 40000;

	CHECK(write_all(fds[0], buf + off, 3) == 0);
	plan_add(&p, TLS_RLTYPE_APP, buf + off, 3);

	CHECK(ktls_close(fds[0]) == 0);
	fx_rx_join(&rx);

	if (rx.dec_failed)
		tap_diag("decrypt failed: %s", rx.dec_error);
	CHECK(!rx.dec_failed);
	CHECK(rx.read_errno == 0);
	CHECK(rx.nrecs == (size_t)p.n);
	for (size_t i = 0; i < rx.nrecs && i < (size_t)p.n; i++) {
		CHECK(rx.recs[i].seq == start_seq + i);
		CHECK(rx.recs[i].type == p.rec[i].type);
		CHECK(rx.recs[i].len == p.rec[i].len);
		if (rx.recs[i].len != p.rec[i].len || rx.recs[i].type !=
		    p.rec[i].type)
			tap_diag("record %zu: type %u len %zu, want %u %zu", i,
			    rx.recs[i].type, rx.recs[i].len, p.rec[i].type,
			    p.rec[i].len);
	}
	/* Every byte, in order, across all record types. */
	uint8_t *all = malloc(p.len + 1);
	got_len = 0;
	for (size_t i = 0; i < rx.nrecs; i++) {
		if (got_len + rx.recs[i].len > p.len)
			break;
		memcpy(all + got_len, rx.recs[i].data, rx.recs[i].len);
		got_len += rx.recs[i].len;
	}
	CHECK(got_len == p.len && memcmp(all, p.data, p.len) == 0);
	(void)type;

	uint64_t rec1 = fx_sysctl_u64("kern.ipc.tls.stats.tx_records");
	uint64_t bytes1 = fx_sysctl_u64("kern.ipc.tls.stats.tx_bytes");
	CHECK(rec1 - rec0 == (uint64_t)p.n);
	CHECK(bytes1 - bytes0 == p.len);

	close(fds[1]);
	fx_rx_free(&rx);
	free(all);
	free(fbuf);
	free(p.data);
	free(buf);
}

int
main(void)
{
	fx_watchdog(300);
	fx_enable_ktls();
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;

		for (int i = 0; i < fx_nsuites; i++) {
			run_suite(&fx_suites[i], family, false);
			tap_result("%s %s: write, writev, sendmsg, sendfile, "
			    "aio_write decrypt byte-exact", fx_suites[i].name,
			    family == AF_INET ? "IPv4" : "IPv6");
		}
	}
	for (int i = 0; i < 2; i++) {
		run_suite(&fx_suites[i], AF_INET, true);
		tap_result("%s with a 12-byte iv (salt || first explicit nonce, "
		    "as Linux's crypto_info): decrypts", fx_suites[i].name);
	}
	/*
	 * One worker per CPU this process may run on; on one CPU none, and
	 * the writer encrypted every record above itself (the test runs
	 * both ways: datapath, and datapath-1cpu under taskset).
	 */
	{
		cpu_set_t set;
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
		if (CPU_COUNT(&set) < ncpu)
			ncpu = CPU_COUNT(&set);
		CHECK(fx_sysctl_u64("kern.ipc.tls.stats.threads") ==
		    (uint64_t)(ncpu > 1 ? ncpu : 0));
		tap_result("kern.ipc.tls.stats.threads: one worker per CPU the "
		    "process may use (%ld), none on one CPU", ncpu);
	}
	return (tap_done());
}
