/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The unit tests' way to a session of one suite on one named backend, as
 * an application would ask for it (struct tls_enable, KTLS_BACKEND).
 * Include after ktls_int.h and tap.h.
 */
#ifndef KTLS_TEST_SESSION_H
#define KTLS_TEST_SESSION_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * A session of su on backend be, or NULL with *errp the engine's negative
 * errno (-EINVAL also when another backend took the suite).  iv_len as
 * tls_enable has it (12 for Linux's salt || first explicit nonce).
 */
static inline struct ktls_session *
test_session(const struct ktls_suite *su, const uint8_t *key,
    const uint8_t *iv, int iv_len, uint64_t seq, const char *be, int *errp)
{
	struct tls_enable en;
	struct ktls_session *s = NULL;

	memset(&en, 0, sizeof(en));
	en.cipher_key = key;
	en.iv = iv;
	en.cipher_algorithm = su->cipher_alg;
	en.cipher_key_len = su->key_len;
	en.iv_len = iv_len;
	en.tls_vmajor = TLS_MAJOR_VER_ONE;
	en.tls_vminor = su->vminor;
	ktls_be64enc(en.rec_seq, seq);
	setenv("KTLS_BACKEND", be, 1);
	*errp = ktls_session_create(&en, sizeof(en), &s);
	unsetenv("KTLS_BACKEND");
	if (*errp == 0 && strcmp(s->be->name, be) != 0) {
		tap_diag("%s: asked for %s, got %s", su->name, be, s->be->name);
		ktls_session_destroy(s);
		*errp = -EINVAL;
		s = NULL;
	}
	return (s);
}

#endif /* KTLS_TEST_SESSION_H */
