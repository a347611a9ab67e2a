/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The one cipher-suite table: every (version, cipher, MAC) ktls transmits,
 * with the sizes that setup, option parsing, framing and counters need.
 */
#ifndef KTLS_SUITE_H
#define KTLS_SUITE_H

#include <stddef.h>
#include <stdint.h>

#include "counters.h"

enum ktls_suite_kind {
	KTLS_AEAD_EXPLICIT,	/* TLS 1.2 AES-GCM: salt || 8-byte explicit nonce */
	KTLS_AEAD_XOR,		/* TLS 1.2 ChaCha20, TLS 1.3: iv ^ seq */
	KTLS_CBC,		/* MAC-then-encrypt, CBC padding */
};

struct ktls_suite {
	const char	*name;		/* "TLS1.3-AES-128-GCM" */
	uint8_t		vminor;		/* TLS_MINOR_VER_* */
	int		cipher_alg;	/* CRYPTO_AES_NIST_GCM_16, ... */
	int		auth_alg;	/* CRYPTO_SHA*_HMAC, 0 for AEAD */
	uint8_t		kind;		/* enum ktls_suite_kind */
	/* The algorithms by their standard names (OpenSSL's EVP names). */
	const char	*cipher_name;	/* "AES-128-GCM" */
	const char	*mac_name;	/* "SHA256", NULL for AEAD */
	/*
	 * Linux kTLS's crypto_info layout (src/proto/linux_tls.h, the
	 * KTLS_LINUX_* index), or -1: Linux has no such suite, so neither the
	 * interposer's TLS_TX nor kernel mode takes it.
	 */
	int8_t		linux_layout;
	/* The kern.ipc.tls.sw.* and .ifnet.* gauges that count a session. */
	uint8_t		sw_counter;	/* enum ktls_counter */
	uint8_t		ifnet_counter;	/* enum ktls_counter, AEAD only */
	uint8_t		key_len;
	uint8_t		iv_len;		/* tls_enable.iv_len */
	uint8_t		mac_len;	/* HMAC key and output length */
	uint8_t		tag_len;	/* AEAD tag */
	uint8_t		explicit_iv_len; /* bytes between header and payload */
	uint8_t		prefix_len;	/* 5 + explicit_iv_len */
};

#define KTLS_HDR_LEN		5
#define KTLS_MAX_TRAILER	(16 + 48 + 16)	/* tag, or MAC + padding */
#define KTLS_MAX_OVERHEAD	(KTLS_HDR_LEN + 16 + KTLS_MAX_TRAILER)

/* The suite for these tls_enable parameters, or NULL. */
const struct ktls_suite *ktls_suite_lookup(uint8_t vminor, int cipher_alg,
	    int key_len, int auth_alg);
const struct ktls_suite *ktls_suite_get(unsigned int idx);

static inline int
ktls_suite_is_tls13(const struct ktls_suite *s)
{
	return (s->vminor == 4);
}

/* Does Linux kTLS have this suite (the interposer's TLS_TX, kernel mode)? */
static inline int
ktls_suite_in_linux(const struct ktls_suite *s)
{
	return (s->linux_layout >= 0);
}

/* Trailer bytes after the payload of a record carrying len bytes. */
static inline size_t
ktls_suite_trailer_len(const struct ktls_suite *s, size_t len)
{
	size_t n;

	if (s->kind != KTLS_CBC)
		return (ktls_suite_is_tls13(s) ? 1 : 0) + s->tag_len;
	/* MAC, then pad (content + MAC + pad + 1) to the 16-byte block. */
	n = len + s->mac_len + 1;
	return (s->mac_len + 1 + (16 - n % 16) % 16);
}

/* Whole record length on the wire. */
/* Receive: an AEAD record of rec_len bytes opens to this many bytes. */
static inline size_t
ktls_suite_open_len(const struct ktls_suite *s, size_t rec_len)
{
	return (rec_len - s->prefix_len - s->tag_len);
}

static inline size_t
ktls_suite_record_len(const struct ktls_suite *s, size_t len)
{
	return (s->prefix_len + len + ktls_suite_trailer_len(s, len));
}

#endif /* KTLS_SUITE_H */
