/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tlsenc: an independent TLS record sealer for the receive tests, the
 * mirror of tlsdec.  Written from RFC 5288, 7905 and 8446 against
 * OpenSSL's EVP interface; reads only <ktls.h> (struct tls_enable, the
 * CRYPTO_* and TLS_* numbers) and shares no code with the engine, so the
 * records a test feeds the engine's receive path are not the engine's own.
 */
#ifndef KTLS_TLSENC_H
#define KTLS_TLSENC_H

#include <stddef.h>
#include <stdint.h>

#include <ktls.h>

/* The most a record can take on the wire: header, nonce, 2^14 + 1, tag. */
#define TLSENC_MAX_RECORD	(5 + 8 + 16384 + 1 + 255 + 16)

/*
 * Seal one record of type with len bytes of plaintext (len <= 16384) under
 * the AEAD suite of en, sequence number seq, into out (room for
 * TLSENC_MAX_RECORD; pt may not overlap it).  TLS 1.3: pad zero bytes after
 * the inner type (pad <= 255, and len + 1 + pad <= 16385 keeps the record
 * legal; the function does not check, so tests can make oversize ones);
 * pad must be 0 for TLS 1.2.  Returns the record's length, or 0 for a
 * suite it cannot seal (CBC, an unknown algorithm).
 */
size_t	tlsenc_seal(const struct tls_enable *en, uint64_t seq, uint8_t type,
	    const void *pt, size_t len, size_t pad, uint8_t *out);

/* Bytes a record of len plaintext bytes takes on the wire (pad 0). */
size_t	tlsenc_wire_len(const struct tls_enable *en, size_t len);

#endif /* KTLS_TLSENC_H */
