/* SPDX-License-Identifier: BSD-2-Clause */
/* Nonces, additional data and MAC headers of TLS records, for backends. */
#include <stdint.h>
#include <string.h>

#include "backend.h"

static void
be64enc(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void
ktls_aead_nonce(const struct ktls_suite *s, const uint8_t *iv, uint64_t n,
    uint8_t nonce[12])
{
	if (s->kind == KTLS_AEAD_EXPLICIT) {
		/* RFC 5288 section 3: salt || explicit nonce. */
		memcpy(nonce, iv, 4);
		be64enc(nonce + 4, n);
		return;
	}
	/* RFC 8446 section 5.3, RFC 7905 section 2: iv ^ padded seq. */
	memcpy(nonce, iv, 12);
	for (int i = 11; i >= 4; i--, n >>= 8)
		nonce[i] ^= (uint8_t)n;
}

void
ktls_cbc_mac_header(const struct ktls_suite *s, const struct ktls_crypt_op *op,
    uint8_t hdr[13])
{
	/* RFC 5246 section 6.2.3.1: seq || type || version || length. */
	be64enc(hdr, op->seq);
	hdr[8] = op->type;
	hdr[9] = 3;
	hdr[10] = s->vminor;
	hdr[11] = (uint8_t)(op->len >> 8);
	hdr[12] = (uint8_t)op->len;
}

size_t
ktls_aead_aad(const struct ktls_suite *s, const struct ktls_crypt_op *op,
    uint8_t aad[13])
{
	if (ktls_suite_is_tls13(s)) {
		/* RFC 8446 section 5.2: the record header itself. */
		memcpy(aad, op->rec, KTLS_HDR_LEN);
		return (KTLS_HDR_LEN);
	}
	/* RFC 5246 section 6.2.3.3: same fields as the MAC header. */
	ktls_cbc_mac_header(s, op, aad);
	return (13);
}

void
ktls_aead_open_nonce(const struct ktls_suite *s, const uint8_t *iv,
    const struct ktls_open_op *op, uint8_t nonce[12])
{
	if (s->kind == KTLS_AEAD_EXPLICIT) {
		/* RFC 5288 section 3: the sender's nonce is in the record. */
		memcpy(nonce, iv, 4);
		memcpy(nonce + 4, op->rec + KTLS_HDR_LEN, 8);
		return;
	}
	ktls_aead_nonce(s, iv, op->seq, nonce);
}

size_t
ktls_aead_open_aad(const struct ktls_suite *s, const struct ktls_open_op *op,
    uint8_t aad[13])
{
	/* The sealing side's view: its header, type and plaintext length. */
	const struct ktls_crypt_op sop = { .seq = op->seq, .type = op->rec[0],
	    .rec = (uint8_t *)(uintptr_t)op->rec,
	    .len = ktls_suite_open_len(s, op->rec_len) };

	return (ktls_aead_aad(s, &sop, aad));
}
