/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tlsdec: an independent TLS record decryptor for the tests.
 *
 * It shares no code with the engine: it is written from the RFCs straight
 * against OpenSSL's EVP interface and reads only <ktls.h> for struct
 * tls_enable and the CRYPTO_* and TLS_* numbers, so a bug in the engine's
 * framing, nonce, AAD, MAC or padding cannot hide behind the same bug here.
 *
 * Feed it the bytes read from the TCP stream in any chunking; it splits
 * them into records, checks every header strictly (version, length limits,
 * sequence), decrypts and authenticates each record, and queues the
 * plaintexts with their content types.  The first bad record stops it:
 * tlsdec_feed() returns -1 then and on every later call, and
 * tlsdec_error() says why.  Records decrypted before that remain queued.
 */
#ifndef KTLS_TLSDEC_H
#define KTLS_TLSDEC_H

#include <stddef.h>
#include <stdint.h>

#include <ktls.h>

struct tlsdec;

/*
 * A decryptor for the records sent under en (keys are copied).  NULL if
 * the parameters are not a suite FreeBSD's KTLS transmits, or on no memory.
 */
struct tlsdec *tlsdec_new(const struct tls_enable *en);
/* Take len more bytes of the stream.  0, or -1 on a bad record. */
int	tlsdec_feed(struct tlsdec *d, const void *buf, size_t len);
/*
 * Pop the oldest decrypted record: 1 with its content type (the inner type
 * for TLS 1.3), sequence number and plaintext (malloc'd, the caller frees
 * it; never NULL, even for an empty record); 0 if none is queued.  Any of
 * the out pointers may be NULL.
 */
int	tlsdec_next(struct tlsdec *d, uint8_t *type, uint64_t *seq,
	    uint8_t **data, size_t *len);
/* Why the stream was rejected, or NULL while it has not been. */
const char *tlsdec_error(const struct tlsdec *d);
/* Bytes buffered that do not yet make a whole record. */
size_t	tlsdec_pending(const struct tlsdec *d);
/* The sequence number the next record must carry. */
uint64_t tlsdec_next_seq(const struct tlsdec *d);
/* Records decrypted so far (popped or not). */
uint64_t tlsdec_records(const struct tlsdec *d);
/*
 * Legal records padded beyond the minimum (CBC padding longer than needed
 * to fill the block, TLS 1.3 zero padding).  A sender that pads minimally,
 * as FreeBSD's KTLS does, leaves this 0.
 */
uint64_t tlsdec_nonmin_padded(const struct tlsdec *d);
/* Wipe the keys and free everything, queued records included. */
void	tlsdec_free(struct tlsdec *d);

#endif /* KTLS_TLSDEC_H */
