/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The receive path's record checks (issue 13, docs/rx.md): what a header
 * says about the record behind it, and opening a whole record through the
 * session's backend, with Linux's errors (net/tls/tls_sw.c of 6.1:
 * tls_rx_msg_size(), padding_length()).  Pure: bytes in, bytes out; the
 * socket side (peek, consume, SO_RCVLOWAT) builds on these.
 */
#include <errno.h>

#include "ktls.h"
#include "ktls_int.h"

/* Bytes between the header and the plaintext, plus the tag (Linux's). */
static size_t
rx_overhead(const struct ktls_suite *s)
{
	return (s->explicit_iv_len + s->tag_len);
}

size_t
ktls_rx_min_record(const struct ktls_suite *s)
{
	/* TLS 1.3: at least the inner content type. */
	return (KTLS_HDR_LEN + rx_overhead(s) +
	    (ktls_suite_is_tls13(s) ? 1 : 0));
}

int
ktls_rx_header(const struct ktls_suite *s, const uint8_t *hdr,
    size_t *wire_len)
{
	size_t len = (size_t)hdr[3] << 8 | hdr[4];

	KASSERT(s->kind != KTLS_CBC, ("%s: CBC is never received", __func__));
	/* Linux's order: size first, then the version. */
	if (len > TLS_MAX_MSG_SIZE_V10_2 + rx_overhead(s) +
	    (ktls_suite_is_tls13(s) ? 1 : 0))
		return (-EMSGSIZE);
	if (len < rx_overhead(s))
		return (-EBADMSG);
	/* TLS 1.2 and 1.3 both say 3,3 on the wire. */
	if (hdr[1] != TLS_MAJOR_VER_ONE || hdr[2] != TLS_MINOR_VER_TWO)
		return (-EINVAL);
	*wire_len = KTLS_HDR_LEN + len;
	return (0);
}

int
ktls_rx_open(const struct ktls_session *sess, uint64_t seq, const uint8_t *rec,
    size_t rec_len, uint8_t *dst, uint8_t *type, size_t *len)
{
	const struct ktls_suite *s = sess->suite;
	struct ktls_open_op op = { .seq = seq, .rec = rec, .rec_len = rec_len,
	    .dst = dst };
	size_t n = ktls_suite_open_len(s, rec_len);
	int error;

	KASSERT(rec_len >= KTLS_HDR_LEN + rx_overhead(s),
	    ("%s: %zu bytes is no record", __func__, rec_len));
	if (sess->be->decrypt == NULL)
		return (-EOPNOTSUPP);
	if ((error = sess->be->decrypt(sess->cctx, &op)) != 0)
		return (error);
	if (!ktls_suite_is_tls13(s)) {
		*type = rec[0];
		*len = n;
		return (0);
	}
	/* RFC 8446 5.4: the type is the last non-zero byte; zeros pad. */
	while (n > 0 && dst[n - 1] == 0)
		n--;
	if (n == 0)
		return (-EBADMSG);
	*type = dst[n - 1];
	*len = n - 1;
	return (0);
}
