/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: FreeBSD's TCP_TXTLS_ENABLE option parser.
 *
 * The input is a struct tls_enable, every field from the input, with its
 * key, iv and auth_key pointers into heap buffers of exactly the lengths
 * the struct declares (so ASan sees any read past them), and an optlen
 * that may be wrong.  It goes to the session parser
 * (ktls_session_create(), destroyed on success) and to
 * ktls_setsockopt(TCP_TXTLS_ENABLE) on a real loopback TCP pair.  When the
 * engine accepts, one byte is written and the record read back through
 * the independent decryptor (tests/common/tlsdec.c): the engine and tlsdec
 * must agree on what the parameters mean; then the pair is closed and a
 * new one made.
 *
 * Input layout (missing bytes read as 0):
 *   u8  ctl      bit 0/1/2: cipher_key/iv/auth_key NULL;
 *                bit 3: optlen from the input, else sizeof(struct tls_enable);
 *                bit 4: kern.ipc.tls.enable off for this call;
 *                bit 5: optval misaligned (odd address)
 *   u16 optlen   (little-endian; used when bit 3 is set)
 *   i32 cipher_algorithm, cipher_key_len, iv_len, auth_algorithm,
 *       auth_key_len, flags   (little-endian)
 *   u8  tls_vmajor, tls_vminor, rec_seq[8]
 *   key, iv and auth_key bytes, in that order (zeros when short)
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "ktls.h"
#include "ktls_int.h"
#include "tlsdec.h"

#define KEYBUF_MAX	1024	/* a declared length beyond this gets 1 KiB */

static int fds[2] = { -1, -1 };

struct reader {
	const uint8_t	*p;
	size_t		left;
};

static uint8_t
rd8(struct reader *r)
{
	uint8_t v = 0;

	if (r->left > 0) {
		v = *r->p++;
		r->left--;
	}
	return (v);
}

static uint32_t
rd32(struct reader *r)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)rd8(r) << (8 * i);
	return (v);
}

/* A buffer of exactly the declared length, filled from the input. */
static uint8_t *
keybuf(struct reader *r, int declared)
{
	size_t n = declared >= 0 && declared <= KEYBUF_MAX ? (size_t)declared :
	    KEYBUF_MAX;
	uint8_t *b = malloc(n ? n : 1);

	assert(b != NULL);
	for (size_t i = 0; i < n; i++)
		b[i] = rd8(r);
	return (b);
}

static void
new_pair(void)
{
	if (fx_tcp_pair(AF_INET, fds) != 0) {
		perror("fuzz_enable: loopback pair");
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	fx_enable_ktls();
	new_pair();
	return (0);
}

/*
 * The engine took en on fds[0]: one byte must come out as one record that
 * tlsdec, given the same parameters, decrypts to that byte.
 */
static void
check_roundtrip(const struct tls_enable *en)
{
	struct tlsdec *d = tlsdec_new(en);
	uint8_t byte = 0x5a, buf[512], type, *data;
	uint64_t seq, want_seq = 0;
	size_t len;
	ssize_t n;

	if (d == NULL) {
		fprintf(stderr, "fuzz_enable: the engine enabled parameters "
		    "tlsdec rejects\n");
		abort();
	}
	for (int i = 0; i < 8; i++)
		want_seq = want_seq << 8 | en->rec_seq[i];
	if (ktls_write(fds[0], &byte, 1) != 1) {
		/* Only a sequence space already used up may refuse. */
		if (errno != EOVERFLOW) {
			fprintf(stderr, "fuzz_enable: write: %s\n",
			    strerror(errno));
			abort();
		}
		tlsdec_free(d);
		return;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fds[1], .events = POLLIN };

		if (tlsdec_next(d, &type, &seq, &data, &len) == 1)
			break;
		if (poll(&pfd, 1, 10000) != 1) {
			fprintf(stderr, "fuzz_enable: accepted byte never "
			    "sent\n");
			abort();
		}
		n = read(fds[1], buf, sizeof(buf));
		if (n <= 0 || tlsdec_feed(d, buf, (size_t)n) != 0) {
			fprintf(stderr, "fuzz_enable: peer: %s\n",
			    n <= 0 ? "EOF or error" : tlsdec_error(d));
			abort();
		}
	}
	if (type != TLS_RLTYPE_APP || seq != want_seq || len != 1 ||
	    data[0] != byte) {
		fprintf(stderr, "fuzz_enable: record type %u seq %llu len %zu, "
		    "wanted 23 %llu 1\n", type, (unsigned long long)seq, len,
		    (unsigned long long)want_seq);
		abort();
	}
	free(data);
	tlsdec_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	struct tls_enable en;
	struct ktls_session *s;
	uint8_t ctl, *key, *iv, *auth, *optbuf;
	socklen_t optlen;
	size_t optsz;
	int on, off = 0;

	memset(&en, 0, sizeof(en));
	ctl = rd8(&r);
	optlen = rd8(&r);
	optlen |= (socklen_t)rd8(&r) << 8;
	if (!(ctl & 8))
		optlen = sizeof(en);
	en.cipher_algorithm = (int)rd32(&r);
	en.cipher_key_len = (int)rd32(&r);
	en.iv_len = (int)rd32(&r);
	en.auth_algorithm = (int)rd32(&r);
	en.auth_key_len = (int)rd32(&r);
	en.flags = (int)rd32(&r);
	en.tls_vmajor = rd8(&r);
	en.tls_vminor = rd8(&r);
	for (int i = 0; i < 8; i++)
		en.rec_seq[i] = rd8(&r);
	key = keybuf(&r, en.cipher_key_len);
	iv = keybuf(&r, en.iv_len);
	auth = keybuf(&r, en.auth_key_len);
	en.cipher_key = ctl & 1 ? NULL : key;
	en.iv = ctl & 2 ? NULL : iv;
	en.auth_key = ctl & 4 ? NULL : auth;

	/* optval: exactly optlen bytes (the struct, cut or zero-extended). */
	optsz = optlen;
	if (ctl & 32)
		off = 1;	/* malloc's alignment + 1: odd */
	optbuf = malloc(optsz + (size_t)off);
	assert(optbuf != NULL || optsz + (size_t)off == 0);
	if (optsz + (size_t)off > 0)
		memset(optbuf, 0, optsz + (size_t)off);
	if (optsz > 0)
		memcpy(optbuf + off, &en, optsz < sizeof(en) ? optsz :
		    sizeof(en));

	/* The parser alone. */
	if (ktls_session_create(optbuf + off, optlen, &s) == 0)
		ktls_session_destroy(s);

	/* The socket option on a connected TCP socket. */
	if (ctl & 16) {
		on = 0;
		ktls_sysctl_set("kern.ipc.tls.enable", &on, sizeof(on));
	}
	if (ktls_setsockopt(fds[0], IPPROTO_TCP, TCP_TXTLS_ENABLE,
	    optbuf + off, optlen) == 0) {
		assert(!(ctl & 16));
		check_roundtrip(&en);
		ktls_close(fds[0]);
		close(fds[1]);
		new_pair();
	}
	if (ctl & 16) {
		on = 1;
		ktls_sysctl_set("kern.ipc.tls.enable", &on, sizeof(on));
	}
	free(optbuf);
	free(key);
	free(iv);
	free(auth);
	return (0);
}
