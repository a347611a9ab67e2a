/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tlsdec: the tests' own TLS record decryptor (see tlsdec.h).
 *
 * Written from the RFCs against OpenSSL's EVP interface, deliberately
 * without a line of the engine: record formats are those of RFC 2246
 * (TLS 1.0), RFC 4346 (TLS 1.1), RFC 5246 (TLS 1.2), RFC 5288 (AES-GCM for
 * TLS 1.2), RFC 7905 (ChaCha20-Poly1305) and RFC 8446 (TLS 1.3).
 */
#include "tlsdec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define HDR_LEN		5
#define MAX_PLAIN	16384		/* 2^14: RFC 5246 6.2.1, RFC 8446 5.1 */
#define MAX_CIPHER12	(MAX_PLAIN + 2048) /* RFC 5246 6.2.3 */
#define MAX_CIPHER13	(MAX_PLAIN + 256)  /* RFC 8446 5.2 */
#define TAG_LEN		16
#define AES_BLOCK	16
#define MAX_MAC		48

enum tlsdec_kind {
	K_GCM12,	/* RFC 5288: salt || explicit nonce */
	K_CHACHA12,	/* RFC 7905: iv ^ seq, TLS 1.2 AAD */
	K_AEAD13,	/* RFC 8446 5.2: iv ^ seq, header as AAD, inner type */
	K_CBC,		/* RFC 5246 6.2.3.2: MAC, pad, encrypt */
};

struct tlsdec_rec {
	struct tlsdec_rec *next;
	uint64_t	seq;
	uint8_t		*data;
	size_t		len;
	uint8_t		type;
};

struct tlsdec {
	enum tlsdec_kind kind;
	uint8_t		vminor;
	const EVP_CIPHER *cipher;
	const EVP_MD	*md;
	size_t		maclen;
	size_t		keylen;
	size_t		ivlen;
	uint8_t		key[32];
	uint8_t		iv[16];
	uint8_t		mackey[MAX_MAC];

	/* CBC state across records. */
	uint8_t		chain[AES_BLOCK];	/* TLS 1.0: next IV */
	uint8_t		prev_eiv[AES_BLOCK];	/* 1.1+: last explicit IV */
	uint8_t		prev_last[AES_BLOCK];	/* last ciphertext block */
	int		have_prev;

	uint64_t	seq;
	int		seq_done;	/* the last sequence number was used */
	uint64_t	nonce_off;	/* TLS 1.2 GCM: explicit = seq + this */
	uint64_t	nrecords;
	uint64_t	nonmin;

	uint8_t		*buf;		/* bytes not yet a whole record */
	size_t		buflen;
	size_t		bufcap;

	struct tlsdec_rec *head;
	struct tlsdec_rec **tailp;

	int		failed;
	char		err[200];
};

static void
fail(struct tlsdec *d, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(d->err, sizeof(d->err), "record %llu (seq %llu): %s",
	    (unsigned long long)d->nrecords, (unsigned long long)d->seq, msg);
	d->failed = 1;
}

static void
be64enc(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
be64dec(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (v);
}

/*
 * Content types a record may carry: RFC 5246 6.2.1 (20..23) and the
 * heartbeat type of RFC 6520 (24).  Anything else from a sender is a bug.
 */
static int
type_ok(unsigned int t)
{
	return (t >= TLS_RLTYPE_CHANGE_CIPHER_SPEC && t <= 24);
}

struct tlsdec *
tlsdec_new(const struct tls_enable *en)
{
	struct tlsdec *d;
	const EVP_CIPHER *c = NULL;
	const EVP_MD *md = NULL;
	enum tlsdec_kind kind;
	size_t maclen = 0, ivlen;
	int k16;

	if (en == NULL || en->flags != 0 || en->cipher_key == NULL ||
	    en->tls_vmajor != TLS_MAJOR_VER_ONE ||
	    en->tls_vminor < TLS_MINOR_VER_ZERO ||
	    en->tls_vminor > TLS_MINOR_VER_THREE)
		return (NULL);
	if (en->cipher_key_len != 16 && en->cipher_key_len != 32)
		return (NULL);
	k16 = en->cipher_key_len == 16;
	ivlen = en->iv_len < 0 ? 0 : (size_t)en->iv_len;

	switch (en->cipher_algorithm) {
	case CRYPTO_AES_NIST_GCM_16:
		/* AES-GCM exists from TLS 1.2 on (RFC 5288). */
		if (en->tls_vminor == TLS_MINOR_VER_TWO) {
			kind = K_GCM12;
			/* FreeBSD: the salt; Linux: salt || first explicit. */
			if (ivlen != 4 && ivlen != 12)
				return (NULL);
		} else if (en->tls_vminor == TLS_MINOR_VER_THREE) {
			kind = K_AEAD13;
			if (ivlen != 12)
				return (NULL);
		} else
			return (NULL);
		c = k16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
		break;
	case CRYPTO_CHACHA20_POLY1305:
		/* RFC 7905: TLS 1.2 and later, 256-bit key, 96-bit IV. */
		if (en->cipher_key_len != 32 || ivlen != 12)
			return (NULL);
		if (en->tls_vminor == TLS_MINOR_VER_TWO)
			kind = K_CHACHA12;
		else if (en->tls_vminor == TLS_MINOR_VER_THREE)
			kind = K_AEAD13;
		else
			return (NULL);
		c = EVP_chacha20_poly1305();
		break;
	case CRYPTO_AES_CBC:
		/* TLS 1.3 has no CBC (RFC 8446 5.2). */
		if (en->tls_vminor == TLS_MINOR_VER_THREE)
			return (NULL);
		kind = K_CBC;
		/*
		 * TLS 1.0 needs the implicit first IV; 1.1 and 1.2 send
		 * their own in every record, so an IV there is ignored.
		 */
		if (en->tls_vminor == TLS_MINOR_VER_ZERO ? ivlen != 16 :
		    (ivlen != 0 && ivlen != 16))
			return (NULL);
		c = k16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
		switch (en->auth_algorithm) {
		case CRYPTO_SHA1_HMAC:
			md = EVP_sha1();
			maclen = 20;
			break;
		case CRYPTO_SHA2_256_HMAC:
		case CRYPTO_SHA2_384_HMAC:
			/* SHA-2 MACs are TLS 1.2 suites (RFC 5246 A.5). */
			if (en->tls_vminor != TLS_MINOR_VER_TWO)
				return (NULL);
			if (en->auth_algorithm == CRYPTO_SHA2_256_HMAC) {
				md = EVP_sha256();
				maclen = 32;
			} else {
				md = EVP_sha384();
				maclen = 48;
			}
			break;
		default:
			return (NULL);
		}
		/* The MAC key is as long as the MAC (RFC 5246 6.3). */
		if (en->auth_key == NULL || en->auth_key_len < 0 ||
		    (size_t)en->auth_key_len != maclen)
			return (NULL);
		break;
	default:
		return (NULL);
	}
	if (kind != K_CBC && (en->auth_algorithm != 0 ||
	    en->auth_key_len != 0))
		return (NULL);
	if (ivlen > 0 && en->iv == NULL)
		return (NULL);

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return (NULL);
	d->kind = kind;
	d->vminor = en->tls_vminor;
	d->cipher = c;
	d->md = md;
	d->maclen = maclen;
	d->keylen = (size_t)en->cipher_key_len;
	memcpy(d->key, en->cipher_key, d->keylen);
	d->ivlen = ivlen;
	if (ivlen > 0)
		memcpy(d->iv, en->iv, ivlen);
	if (maclen > 0)
		memcpy(d->mackey, en->auth_key, maclen);
	if (kind == K_CBC && d->vminor == TLS_MINOR_VER_ZERO)
		memcpy(d->chain, d->iv, AES_BLOCK);
	d->seq = be64dec(en->rec_seq);
	if (kind == K_GCM12 && ivlen == 12)
		d->nonce_off = be64dec(en->iv + 4) - d->seq;
	d->tailp = &d->head;
	return (d);
}

/* RFC 7905 section 2, RFC 8446 section 5.3: iv XOR left-padded seq. */
static void
xor_nonce(const struct tlsdec *d, uint8_t nonce[12])
{
	uint8_t s[8];

	be64enc(s, d->seq);
	memcpy(nonce, d->iv, 12);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= s[i];
}

/*
 * One AEAD open.  out must have room for ctlen bytes.  0, or -1 when the
 * tag does not verify (or EVP fails, which the caller cannot tell apart
 * and need not).
 */
static int
aead_open(const struct tlsdec *d, const uint8_t nonce[12], const uint8_t *aad,
    size_t aadlen, const uint8_t *ct, size_t ctlen, const uint8_t *tag,
    uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	int n, ok = 0;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return (-1);
	if (EVP_DecryptInit_ex(ctx, d->cipher, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, d->key, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto out;
	if (ctlen > 0 &&
	    (EVP_DecryptUpdate(ctx, out, &n, ct, (int)ctlen) != 1 ||
	    (size_t)n != ctlen))
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN,
	    (void *)(uintptr_t)tag) != 1)
		goto out;
	ok = EVP_DecryptFinal_ex(ctx, out + ctlen, &n) == 1;
out:
	EVP_CIPHER_CTX_free(ctx);
	return (ok ? 0 : -1);
}

static int
cbc_decrypt(const struct tlsdec *d, const uint8_t iv[AES_BLOCK],
    const uint8_t *ct, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	int n, m, ok = 0;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return (-1);
	if (EVP_DecryptInit_ex(ctx, d->cipher, NULL, d->key, iv) == 1 &&
	    EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	    EVP_DecryptUpdate(ctx, out, &n, ct, (int)len) == 1 &&
	    EVP_DecryptFinal_ex(ctx, out + n, &m) == 1 &&
	    (size_t)(n + m) == len)
		ok = 1;
	EVP_CIPHER_CTX_free(ctx);
	return (ok ? 0 : -1);
}

/*
 * Header checks that need only the 5 header bytes, so that a broken
 * header is reported at once instead of waiting for up to 64k of bytes
 * that may never come.
 */
static int
check_header(struct tlsdec *d, const uint8_t *h)
{
	unsigned int type = h[0], len = (unsigned int)h[3] << 8 | h[4];
	unsigned int vminor, min, max;

	if (d->kind == K_AEAD13) {
		/* RFC 8446 5.2: opaque_type 23, legacy_record_version 3,3. */
		if (type != TLS_RLTYPE_APP) {
			fail(d, "outer content type %u, TLS 1.3 wants 23", type);
			return (-1);
		}
		vminor = TLS_MINOR_VER_TWO;
	} else {
		if (!type_ok(type)) {
			fail(d, "unknown content type %u", type);
			return (-1);
		}
		vminor = d->vminor;
	}
	if (h[1] != TLS_MAJOR_VER_ONE || h[2] != vminor) {
		fail(d, "header version %u.%u, expected 3.%u", h[1], h[2],
		    vminor);
		return (-1);
	}
	switch (d->kind) {
	case K_GCM12:
		min = 8 + TAG_LEN;
		max = min + MAX_PLAIN;
		break;
	case K_CHACHA12:
		min = TAG_LEN;
		max = min + MAX_PLAIN;
		break;
	case K_AEAD13:
		/*
		 * The inner plaintext holds at least the type byte and at
		 * most 2^14 + 1 bytes (RFC 8446 5.4).
		 */
		min = 1 + TAG_LEN;
		max = MAX_PLAIN + 1 + TAG_LEN;
		break;
	default:
		/* At least one block of MAC and padding length byte. */
		min = (unsigned int)((d->maclen + 1 + AES_BLOCK - 1) /
		    AES_BLOCK * AES_BLOCK);
		if (d->vminor != TLS_MINOR_VER_ZERO)
			min += AES_BLOCK;
		max = MAX_CIPHER12;
		break;
	}
	if (len < min || len > max) {
		fail(d, "record length %u outside [%u, %u]", len, min, max);
		return (-1);
	}
	if (d->kind == K_CBC && len % AES_BLOCK != 0) {
		fail(d, "record length %u not a multiple of the block", len);
		return (-1);
	}
	/* RFC 5246 6.1, RFC 8446 5.3: sequence numbers never wrap. */
	if (d->seq_done) {
		fail(d, "record after sequence number 2^64-1");
		return (-1);
	}
	return (0);
}

/* RFC 5246 6.2.1, RFC 8446 5.4: only application data may be empty. */
static int
check_content(struct tlsdec *d, unsigned int type, size_t len)
{
	if (!type_ok(type)) {
		fail(d, "unknown content type %u", type);
		return (-1);
	}
	if (len == 0 && type != TLS_RLTYPE_APP) {
		fail(d, "zero-length record of type %u", type);
		return (-1);
	}
	if (len > MAX_PLAIN) {
		fail(d, "content length %zu exceeds 2^14", len);
		return (-1);
	}
	return (0);
}

static int
open_aead(struct tlsdec *d, const uint8_t *rec, size_t len, uint8_t **outp,
    size_t *outlenp, unsigned int *typep)
{
	uint8_t nonce[12], aad[13], *out;
	const uint8_t *ct;
	size_t ctlen, aadlen, n;
	unsigned int type = rec[0];

	if (d->kind == K_GCM12) {
		/*
		 * RFC 5288 3: nonce = salt(4) || explicit(8).  The explicit
		 * part is free in the RFC, but FreeBSD sends the sequence
		 * number, and Linux the first explicit nonce of its
		 * crypto_info plus the records sent since; anything else is
		 * a sender bug (and a repeated one would be fatal to GCM).
		 */
		if (be64dec(rec + HDR_LEN) != d->seq + d->nonce_off) {
			fail(d, "explicit nonce %016llx is not the sequence "
			    "number", (unsigned long long)be64dec(rec +
			    HDR_LEN));
			return (-1);
		}
		memcpy(nonce, d->iv, 4);
		memcpy(nonce + 4, rec + HDR_LEN, 8);
		ct = rec + HDR_LEN + 8;
		ctlen = len - 8 - TAG_LEN;
	} else {
		xor_nonce(d, nonce);
		ct = rec + HDR_LEN;
		ctlen = len - TAG_LEN;
	}
	if (d->kind == K_AEAD13) {
		/* RFC 8446 5.2: the additional data is the record header. */
		memcpy(aad, rec, HDR_LEN);
		aadlen = HDR_LEN;
	} else {
		/*
		 * RFC 5246 6.2.3.3: seq_num || type || version || length,
		 * the length being that of the plaintext.
		 */
		if (check_content(d, type, ctlen) != 0)
			return (-1);
		be64enc(aad, d->seq);
		aad[8] = (uint8_t)type;
		aad[9] = TLS_MAJOR_VER_ONE;
		aad[10] = TLS_MINOR_VER_TWO;
		aad[11] = (uint8_t)(ctlen >> 8);
		aad[12] = (uint8_t)ctlen;
		aadlen = 13;
	}
	if ((out = malloc(ctlen + 1)) == NULL) {
		fail(d, "out of memory");
		return (-1);
	}
	if (aead_open(d, nonce, aad, aadlen, ct, ctlen, ct + ctlen,
	    out) != 0) {
		free(out);
		fail(d, "AEAD tag does not verify (authentication failed)");
		return (-1);
	}
	n = ctlen;
	if (d->kind == K_AEAD13) {
		/*
		 * RFC 8446 5.4: strip the zero padding; the last non-zero
		 * byte is the real content type, and there must be one.
		 */
		while (n > 0 && out[n - 1] == 0)
			n--;
		if (n == 0) {
			free(out);
			fail(d, "inner plaintext has no content type");
			return (-1);
		}
		if (n != ctlen)
			d->nonmin++;
		type = out[--n];
		if (check_content(d, type, n) != 0) {
			free(out);
			return (-1);
		}
	}
	*outp = out;
	*outlenp = n;
	*typep = type;
	return (0);
}

static int
open_cbc(struct tlsdec *d, const uint8_t *rec, size_t len, uint8_t **outp,
    size_t *outlenp, unsigned int *typep)
{
	uint8_t mac[EVP_MAX_MD_SIZE], *buf, *pt;
	const uint8_t *iv, *ct;
	size_t ctlen, padlen, n, minpad;
	unsigned int maclen, type = rec[0];

	if (d->vminor == TLS_MINOR_VER_ZERO) {
		/* RFC 2246 6.2.3.2: the IV is the previous CBC residue. */
		iv = d->chain;
		ct = rec + HDR_LEN;
		ctlen = len;
	} else {
		/*
		 * RFC 4346 6.2.3.2: an explicit IV, which must be
		 * unpredictable.  A sender that reuses the previous IV, or
		 * chains from the previous record's last block as TLS 1.0
		 * does, is wrong (the latter is the weakness 1.1 fixed).
		 */
		iv = rec + HDR_LEN;
		ct = iv + AES_BLOCK;
		ctlen = len - AES_BLOCK;
		if (d->have_prev &&
		    (memcmp(iv, d->prev_eiv, AES_BLOCK) == 0 ||
		    memcmp(iv, d->prev_last, AES_BLOCK) == 0)) {
			fail(d, "explicit IV repeats or chains from the "
			    "previous record");
			return (-1);
		}
	}
	/* 13 bytes in front for the MAC's pseudo-header. */
	if ((buf = malloc(13 + ctlen)) == NULL) {
		fail(d, "out of memory");
		return (-1);
	}
	pt = buf + 13;
	if (cbc_decrypt(d, iv, ct, ctlen, pt) != 0) {
		free(buf);
		fail(d, "CBC decryption failed");
		return (-1);
	}
	/*
	 * RFC 5246 6.2.3.2: content || MAC || padding || padding_length,
	 * each padding byte equal to padding_length.
	 */
	padlen = pt[ctlen - 1];
	if (padlen + 1 + d->maclen > ctlen) {
		free(buf);
		fail(d, "bad padding length %zu", padlen);
		return (-1);
	}
	for (size_t i = ctlen - 1 - padlen; i < ctlen - 1; i++) {
		if (pt[i] != padlen) {
			free(buf);
			fail(d, "bad padding byte at %zu", i);
			return (-1);
		}
	}
	n = ctlen - 1 - padlen - d->maclen;
	if (check_content(d, type, n) != 0) {
		free(buf);
		return (-1);
	}
	/* RFC 5246 6.2.3.1: HMAC(seq || type || version || length || data). */
	be64enc(buf, d->seq);
	buf[8] = (uint8_t)type;
	buf[9] = TLS_MAJOR_VER_ONE;
	buf[10] = d->vminor;
	buf[11] = (uint8_t)(n >> 8);
	buf[12] = (uint8_t)n;
	if (HMAC(d->md, d->mackey, (int)d->maclen, buf, 13 + n, mac,
	    &maclen) == NULL || maclen != d->maclen ||
	    CRYPTO_memcmp(mac, pt + n, maclen) != 0) {
		free(buf);
		fail(d, "bad MAC");
		return (-1);
	}
	minpad = (AES_BLOCK - (n + d->maclen + 1) % AES_BLOCK) % AES_BLOCK;
	if (padlen != minpad)
		d->nonmin++;
	/* The next record's IV (TLS 1.0), or what it must not be (1.1+). */
	if (d->vminor == TLS_MINOR_VER_ZERO)
		memcpy(d->chain, ct + ctlen - AES_BLOCK, AES_BLOCK);
	else {
		memcpy(d->prev_eiv, iv, AES_BLOCK);
		memcpy(d->prev_last, ct + ctlen - AES_BLOCK, AES_BLOCK);
		d->have_prev = 1;
	}
	memmove(buf, pt, n);
	*outp = buf;
	*outlenp = n;
	*typep = type;
	return (0);
}

/* One whole record at rec (header included). */
static int
process(struct tlsdec *d, const uint8_t *rec, size_t len)
{
	struct tlsdec_rec *r;
	uint8_t *out;
	size_t outlen;
	unsigned int type;
	int rv;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		fail(d, "out of memory");
		return (-1);
	}
	if (d->kind == K_CBC)
		rv = open_cbc(d, rec, len, &out, &outlen, &type);
	else
		rv = open_aead(d, rec, len, &out, &outlen, &type);
	if (rv != 0) {
		free(r);
		return (-1);
	}
	r->seq = d->seq;
	r->type = (uint8_t)type;
	r->data = out;
	r->len = outlen;
	*d->tailp = r;
	d->tailp = &r->next;
	d->nrecords++;
	if (d->seq == UINT64_MAX)
		d->seq_done = 1;
	else
		d->seq++;
	return (0);
}

int
tlsdec_feed(struct tlsdec *d, const void *buf, size_t len)
{
	size_t off, rlen;

	if (d->failed)
		return (-1);
	if (len > 0 && d->buflen + len > d->bufcap) {
		size_t cap = d->bufcap ? d->bufcap : 4096;
		uint8_t *nb;

		while (cap < d->buflen + len)
			cap *= 2;
		if ((nb = realloc(d->buf, cap)) == NULL) {
			fail(d, "out of memory");
			return (-1);
		}
		d->buf = nb;
		d->bufcap = cap;
	}
	if (len > 0)
		memcpy(d->buf + d->buflen, buf, len);
	d->buflen += len;

	for (off = 0; d->buflen - off >= HDR_LEN; off += HDR_LEN + rlen) {
		const uint8_t *h = d->buf + off;

		if (check_header(d, h) != 0)
			return (-1);
		rlen = (size_t)h[3] << 8 | h[4];
		if (d->buflen - off < HDR_LEN + rlen)
			break;
		if (process(d, h, rlen) != 0)
			return (-1);
	}
	if (off > 0)	/* d->buf may still be NULL: nothing fed yet */
		memmove(d->buf, d->buf + off, d->buflen - off);
	d->buflen -= off;
	return (0);
}

int
tlsdec_next(struct tlsdec *d, uint8_t *type, uint64_t *seq, uint8_t **data,
    size_t *len)
{
	struct tlsdec_rec *r = d->head;

	if (r == NULL)
		return (0);
	if ((d->head = r->next) == NULL)
		d->tailp = &d->head;
	if (type != NULL)
		*type = r->type;
	if (seq != NULL)
		*seq = r->seq;
	if (len != NULL)
		*len = r->len;
	if (data != NULL)
		*data = r->data;
	else
		free(r->data);
	free(r);
	return (1);
}

const char *
tlsdec_error(const struct tlsdec *d)
{
	return (d->failed ? d->err : NULL);
}

size_t
tlsdec_pending(const struct tlsdec *d)
{
	return (d->buflen);
}

uint64_t
tlsdec_next_seq(const struct tlsdec *d)
{
	return (d->seq);
}

uint64_t
tlsdec_records(const struct tlsdec *d)
{
	return (d->nrecords);
}

uint64_t
tlsdec_nonmin_padded(const struct tlsdec *d)
{
	return (d->nonmin);
}

void
tlsdec_free(struct tlsdec *d)
{
	if (d == NULL)
		return;
	while (tlsdec_next(d, NULL, NULL, NULL, NULL) == 1)
		;
	if (d->buf != NULL) {
		OPENSSL_cleanse(d->buf, d->bufcap);
		free(d->buf);
	}
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
}
