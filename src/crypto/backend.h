/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The contract for crypto backend authors.
 *
 * A backend is a const descriptor plus a per-session context.  Backends are
 * pure: bytes in, bytes out; they never touch a socket or a file.  The core
 * asks every registered backend, highest priority first, whether it takes a
 * session (try); the first that accepts encrypts every record of it.  All
 * records of one session are encrypted by one worker thread, one at a time,
 * in sequence order, so a context needs no lock.
 */
#ifndef KTLS_BACKEND_H
#define KTLS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "suite.h"

/*
 * What a backend sees of a session: its suite and its keys.  The key
 * pointers are into the session's key memory (locked, out of core dumps,
 * wiped at the end) and stay valid as long as the backend's context:
 * invariant 5 asks backends to keep these pointers, never copies of the
 * keys or IVs in ordinary memory, and to wipe what they derive per record
 * (nonces, one-time keys) before they return.
 */
struct ktls_crypto_params {
	const struct ktls_suite *suite;
	const uint8_t	*cipher_key;	/* suite->key_len bytes */
	const uint8_t	*iv;		/* suite->iv_len bytes */
	const uint8_t	*auth_key;	/* suite->mac_len bytes, CBC only */
	/*
	 * TLS 1.2 AES-GCM: the explicit nonce of record seq is seq + nonce_off
	 * (mod 2^64).  0 with FreeBSD's layout (nonce = sequence number);
	 * Linux's crypto_info brings a first explicit nonce of its own.
	 * 0 for every other suite.
	 */
	uint64_t	nonce_off;
};

/*
 * One record to encrypt.  The core has written the 5-byte header at rec
 * (its length field already final) and reserved suite->explicit_iv_len
 * bytes after it.  The backend fills the explicit IV or nonce, writes the
 * ciphertext of src[0..len) at rec + suite->prefix_len (src may be that
 * very place: in-place encryption), then the trailer (TLS 1.3 inner type,
 * tag, or MAC and padding), ktls_suite_trailer_len(suite, len) bytes.
 */
struct ktls_crypt_op {
	uint64_t	seq;
	uint8_t		type;	/* the record's real content type */
	uint8_t		*rec;
	const uint8_t	*src;
	size_t		len;
};

/*
 * One received record to open (the receive side, issue 13): rec is the
 * whole record off the wire, rec_len bytes (header, explicit nonce,
 * ciphertext, tag), its length already checked by the core against the
 * suite (at least prefix_len + tag_len).  The backend checks the tag
 * before it releases a byte: on success it writes the plaintext,
 * ktls_suite_open_len() bytes (TLS 1.3: the inner plaintext, real
 * content type and padding included), to dst, which may be
 * rec + prefix_len (in place), and returns 0; when the tag does not
 * verify it returns -EBADMSG and dst holds nothing of the record (zeros).
 */
struct ktls_open_op {
	uint64_t	seq;
	const uint8_t	*rec;
	size_t		rec_len;
	uint8_t		*dst;
};

struct ktls_cctx;	/* a backend's own per-session context */

struct ktls_backend {
	const char	*name;
	int		prio;	/* higher is tried first */
	/*
	 * A timed backend takes a suite only where it measures faster than
	 * the untimed backend that would take it otherwise: the registry
	 * seals the same records with both, once per suite, at the first
	 * session (about a millisecond), unless KTLS_BACKEND names it.
	 */
	bool		timed;
	/* Once, at registration (may be NULL). */
	void	(*init)(void);
	/* Accept the session (0, *ctxp set) or decline it (-EOPNOTSUPP). */
	int	(*try)(const struct ktls_crypto_params *p,
		    struct ktls_cctx **ctxp);
	/* 0, or a negative errno: the record must not be sent. */
	int	(*encrypt)(struct ktls_cctx *ctx, const struct ktls_crypt_op *op);
	/*
	 * 0, -EBADMSG (forged or corrupted: nothing written), or another
	 * negative errno.  NULL, or -EOPNOTSUPP for a suite: this backend
	 * does not receive it (CBC suites are sent, never received).
	 */
	int	(*decrypt)(struct ktls_cctx *ctx, const struct ktls_open_op *op);
	/* Wipe and free the context. */
	void	(*free)(struct ktls_cctx *ctx);
	/*
	 * The code path the backend runs on this CPU ("avx512"...), or NULL
	 * when it declines every suite here (may be NULL: one path).
	 */
	const char *(*path)(void);
};

/*
 * Key memory (src/core/keymem.c): locked, left out of core dumps, wiped
 * when freed.  A backend that computes its own key schedule keeps it here.
 */
void	*ktls_keymem_alloc(size_t len);
void	ktls_keymem_free(void *p, size_t len);

/* Registry: backends in priority order. */
int	ktls_backend_register(const struct ktls_backend *be);
int	ktls_backend_select(const struct ktls_crypto_params *p,
	    const struct ktls_backend **bep, struct ktls_cctx **ctxp,
	    const char *only);
const struct ktls_backend *ktls_backend_get(unsigned int idx);

/*
 * Record-format helpers shared by backends (RFC 5246 section 6.2.3.3,
 * RFC 7905 section 2, RFC 8446 section 5.3).
 */
/*
 * The 12-byte AEAD nonce: n is the explicit nonce (TLS 1.2 GCM: salt || n)
 * or the sequence number (XOR suites: iv ^ n).
 */
void	ktls_aead_nonce(const struct ktls_suite *s, const uint8_t *iv,
	    uint64_t seq, uint8_t nonce[12]);
/* The AEAD additional data of a record; returns its length (13 or 5). */
size_t	ktls_aead_aad(const struct ktls_suite *s, const struct ktls_crypt_op *op,
	    uint8_t aad[13]);
/*
 * Receive: the 12-byte nonce of a received record (TLS 1.2 GCM: salt and
 * the record's own explicit nonce) and its additional data, from the
 * header and the plaintext length; returns the AAD's length.
 */
void	ktls_aead_open_nonce(const struct ktls_suite *s, const uint8_t *iv,
	    const struct ktls_open_op *op, uint8_t nonce[12]);
size_t	ktls_aead_open_aad(const struct ktls_suite *s,
	    const struct ktls_open_op *op, uint8_t aad[13]);
/* The MAC-then-encrypt pseudo-header seq || type || version || length. */
void	ktls_cbc_mac_header(const struct ktls_suite *s,
	    const struct ktls_crypt_op *op, uint8_t hdr[13]);

#endif /* KTLS_BACKEND_H */
