/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: the interposer's Linux kTLS uAPI
 * (src/interpose/linux_uapi.c) through its entry points kti_setsockopt()
 * and kti_getsockopt(), on a real loopback TCP pair that has the "tls" ULP
 * (attached through the same entry).
 *
 * Each input is a short program of socket option calls: TLS_TX with every
 * crypto_info layout of <linux/tls.h> (and unknown cipher types), any
 * version, exact, short, long and arbitrary lengths and any bytes;
 * getsockopt(TLS_TX) with any optlen; other SOL_TLS options; TCP_ULP
 * read back and attached again with any name.  Every optval is a heap
 * buffer of exactly optlen bytes.  When TLS_TX succeeds the crypto_info
 * must read back byte for byte, and one byte written must come out as a
 * record that tests/common/tlsdec.c decrypts with the Linux meaning of
 * the crypto_info.  The pair is then replaced.
 *
 * Input: u8 ctl (bit 0: one TCP_ULP attach with a name from the input),
 * then up to 16 operations, each an opcode byte and its operands.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "interpose.h"
#include "ktls.h"
#include "linux_tls.h"		/* SOL_TLS, TCP_ULP where libc has none */
#include "tlsdec.h"

/* What preload.c resolves with dlsym(RTLD_NEXT): here libc itself. */
struct kti_libc kti_libc = {
	.getsockopt = getsockopt,
};
_Atomic bool kti_libc_ready = true;

void
kti_libc_init(void)
{
}

/*
 * Every crypto_info of <linux/tls.h>, not linux_tls.h's table: the
 * layouts the interposer does not serve must be refused too, and the
 * sizes are Linux's own.
 */
static const struct {
	uint16_t	type;
	uint16_t	size;
} layouts[] = {
	{ TLS_CIPHER_AES_GCM_128, sizeof(struct tls12_crypto_info_aes_gcm_128) },
	{ TLS_CIPHER_AES_GCM_256, sizeof(struct tls12_crypto_info_aes_gcm_256) },
	{ TLS_CIPHER_AES_CCM_128, sizeof(struct tls12_crypto_info_aes_ccm_128) },
	{ TLS_CIPHER_CHACHA20_POLY1305,
	    sizeof(struct tls12_crypto_info_chacha20_poly1305) },
	{ TLS_CIPHER_SM4_GCM, sizeof(struct tls12_crypto_info_sm4_gcm) },
	{ TLS_CIPHER_SM4_CCM, sizeof(struct tls12_crypto_info_sm4_ccm) },
	{ TLS_CIPHER_ARIA_GCM_128, sizeof(struct tls12_crypto_info_aria_gcm_128) },
	{ TLS_CIPHER_ARIA_GCM_256, sizeof(struct tls12_crypto_info_aria_gcm_256) },
};
#define NLAYOUTS	((int)(sizeof(layouts) / sizeof(layouts[0])))

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

static uint16_t
rd16(struct reader *r)
{
	uint16_t v = rd8(r);

	return ((uint16_t)(v | rd8(r) << 8));
}

/* A heap buffer of exactly n bytes (n may be 0), filled from the input. */
static uint8_t *
buf_from(struct reader *r, size_t n)
{
	uint8_t *b = malloc(n);

	assert(b != NULL || n == 0);
	for (size_t i = 0; i < n; i++)
		b[i] = rd8(r);
	return (b);
}

static void
check_rv(const char *what, int rv)
{
	if (rv != 0 && rv != -1 && rv != KTI_PASS) {
		fprintf(stderr, "fuzz_linux_info: %s returned %d\n", what, rv);
		abort();
	}
}

static void
attach_pair(void)
{
	if (fx_tcp_pair(AF_INET, fds) != 0) {
		perror("fuzz_linux_info: loopback pair");
		abort();
	}
	if (kti_setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls",
	    sizeof("tls")) != 0) {
		perror("fuzz_linux_info: TCP_ULP tls");
		abort();
	}
}

static void
replace_pair(void)
{
	/* What the interposer's close() does. */
	kti_ulp_forget(fds[0]);
	ktls_close(fds[0]);
	close(fds[1]);
	attach_pair();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	fx_enable_ktls();
	attach_pair();
	return (0);
}

/*
 * The Linux meaning of an accepted crypto_info, as tlsdec's tls_enable:
 * AES-GCM is salt || iv (TLS 1.2: the first explicit nonce), ChaCha20 its
 * 12-byte iv; the first record carries rec_seq.
 */
static void
check_roundtrip(const uint8_t *ci)
{
	struct tls_crypto_info info;
	struct tls_enable en;
	struct tlsdec *d;
	uint8_t iv[12], byte = 0xa5, buf[512], type, *data;
	const uint8_t *key, *seqp;
	uint64_t seq, want_seq = 0;
	size_t len;
	ssize_t n;

	memcpy(&info, ci, sizeof(info));
	memset(&en, 0, sizeof(en));
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = info.version == TLS_1_3_VERSION ? TLS_MINOR_VER_THREE :
	    TLS_MINOR_VER_TWO;
	switch (info.cipher_type) {
	case TLS_CIPHER_AES_GCM_128: {
		const struct tls12_crypto_info_aes_gcm_128 *c = (const void *)ci;

		en.cipher_algorithm = CRYPTO_AES_NIST_GCM_16;
		en.cipher_key_len = sizeof(c->key);
		key = c->key;
		memcpy(iv, c->salt, 4);
		memcpy(iv + 4, c->iv, 8);
		seqp = c->rec_seq;
		break;
	}
	case TLS_CIPHER_AES_GCM_256: {
		const struct tls12_crypto_info_aes_gcm_256 *c = (const void *)ci;

		en.cipher_algorithm = CRYPTO_AES_NIST_GCM_16;
		en.cipher_key_len = sizeof(c->key);
		key = c->key;
		memcpy(iv, c->salt, 4);
		memcpy(iv + 4, c->iv, 8);
		seqp = c->rec_seq;
		break;
	}
	case TLS_CIPHER_CHACHA20_POLY1305: {
		const struct tls12_crypto_info_chacha20_poly1305 *c =
		    (const void *)ci;

		en.cipher_algorithm = CRYPTO_CHACHA20_POLY1305;
		en.cipher_key_len = sizeof(c->key);
		key = c->key;
		memcpy(iv, c->iv, 12);
		seqp = c->rec_seq;
		break;
	}
	default:
		fprintf(stderr, "fuzz_linux_info: TLS_TX took cipher type %u\n",
		    info.cipher_type);
		abort();
	}
	en.cipher_key = key;
	en.iv = iv;
	en.iv_len = 12;
	memcpy(en.rec_seq, seqp, 8);
	for (int i = 0; i < 8; i++)
		want_seq = want_seq << 8 | seqp[i];
	if ((d = tlsdec_new(&en)) == NULL) {
		fprintf(stderr, "fuzz_linux_info: tlsdec rejects an accepted "
		    "crypto_info\n");
		abort();
	}
	if (ktls_write(fds[0], &byte, 1) != 1) {
		if (errno != EOVERFLOW) {
			fprintf(stderr, "fuzz_linux_info: write: %s\n",
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
			fprintf(stderr, "fuzz_linux_info: accepted byte never "
			    "sent\n");
			abort();
		}
		n = read(fds[1], buf, sizeof(buf));
		if (n <= 0 || tlsdec_feed(d, buf, (size_t)n) != 0) {
			fprintf(stderr, "fuzz_linux_info: peer: %s\n",
			    n <= 0 ? "EOF or error" : tlsdec_error(d));
			abort();
		}
	}
	if (type != TLS_RLTYPE_APP || seq != want_seq || len != 1 ||
	    data[0] != byte) {
		fprintf(stderr, "fuzz_linux_info: record type %u seq %llu len "
		    "%zu, wanted 23 %llu 1\n", type, (unsigned long long)seq,
		    len, (unsigned long long)want_seq);
		abort();
	}
	free(data);
	tlsdec_free(d);
}

/* setsockopt(SOL_TLS, TLS_TX): any version, cipher type and length. */
static void
op_tx_set(struct reader *r)
{
	uint8_t vsel = rd8(r), csel = rd8(r), lsel = rd8(r), *b, *back;
	struct tls_crypto_info info;
	socklen_t optlen, blen;
	int li, rv, v;

	info.version = vsel % 3 == 0 ? TLS_1_2_VERSION :
	    vsel % 3 == 1 ? TLS_1_3_VERSION : rd16(r);
	li = csel % (NLAYOUTS + 1);
	info.cipher_type = li < NLAYOUTS ? layouts[li].type : rd16(r);
	if (li == NLAYOUTS)
		li = -1;
	switch (lsel % 4) {
	case 0:		/* the layout's size */
		optlen = li >= 0 ? layouts[li].size : 40;
		break;
	case 1:		/* the header alone */
		optlen = sizeof(info);
		break;
	case 2:		/* off by a little */
		v = (li >= 0 ? layouts[li].size : 40) + (int8_t)rd8(r) % 16;
		optlen = (socklen_t)v;
		break;
	default:
		optlen = rd8(r);
		break;
	}
	b = malloc(optlen);
	assert(b != NULL || optlen == 0);
	if (optlen > 0)
		memcpy(b, &info, optlen < sizeof(info) ? optlen : sizeof(info));
	for (socklen_t i = sizeof(info); i < optlen; i++)
		b[i] = rd8(r);
	rv = kti_setsockopt(fds[0], SOL_TLS, TLS_TX, lsel & 0x80 ? NULL : b,
	    optlen);
	check_rv("setsockopt(TLS_TX)", rv);
	if (rv != 0) {
		free(b);
		return;
	}
	/* Read back, byte for byte, before anything was sent. */
	blen = optlen;
	back = malloc(blen);
	assert(back != NULL);
	if (kti_getsockopt(fds[0], SOL_TLS, TLS_TX, back, &blen) != 0 ||
	    blen != optlen || memcmp(back, b, optlen) != 0) {
		fprintf(stderr, "fuzz_linux_info: TLS_TX does not read back "
		    "(%u bytes set, %u read)\n", optlen, blen);
		abort();
	}
	free(back);
	check_roundtrip(b);
	free(b);
}

/* getsockopt at level with any optname and optlen, exact-size buffer. */
static void
op_get(struct reader *r, int level, int optname)
{
	uint8_t lsel = rd8(r), *b;
	socklen_t optlen = rd8(r), given = optlen;
	int rv;

	b = malloc(optlen);
	assert(b != NULL || optlen == 0);
	rv = kti_getsockopt(fds[0], level, optname, lsel & 1 ? NULL : b,
	    lsel & 2 ? NULL : &optlen);
	check_rv("getsockopt", rv);
	if (rv == 0 && !(lsel & 2) && optlen > given) {
		fprintf(stderr, "fuzz_linux_info: getsockopt(%d, %d) grew optlen "
		    "%u -> %u\n", level, optname, given, optlen);
		abort();
	}
	free(b);
}

/* setsockopt(SOL_TLS, any optname) or TCP_ULP with any name. */
static void
op_set(struct reader *r, int level, int optname)
{
	socklen_t optlen = rd8(r);
	uint8_t *b = buf_from(r, optlen);

	check_rv("setsockopt", kti_setsockopt(fds[0], level, optname, b,
	    optlen));
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	struct ktls_tx_info ti;
	uint8_t ctl = rd8(&r), op;

	if (ctl & 1) {
		/* The ULP is there already: EEXIST, or not "tls": pass. */
		op_set(&r, IPPROTO_TCP, TCP_ULP);
	}
	for (int i = 0; i < 16 && r.left > 0; i++) {
		op = rd8(&r);
		switch (op % 6) {
		case 0:
		case 1:
			op_tx_set(&r);
			break;
		case 2:
			op_get(&r, SOL_TLS, TLS_TX);
			break;
		case 3:
			op_get(&r, SOL_TLS, rd8(&r) % 8);
			break;
		case 4:
			op_set(&r, SOL_TLS, rd8(&r) % 8);
			break;
		default:
			op_get(&r, IPPROTO_TCP, TCP_ULP);
			break;
		}
	}
	/* Enabled (by TLS_TX, whichever way): the next input gets a new pair. */
	if (ktls_get_tx(fds[0], &ti) == 0) {
		explicit_bzero(&ti, sizeof(ti));
		replace_pair();
	}
	return (0);
}
