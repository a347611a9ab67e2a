/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Sessions: checking a struct tls_enable against the suite table, copying
 * the keys into key memory, and choosing the backend (FreeBSD's
 * ktls_create_session() and ktls_try_sw()).
 */
#include <errno.h>
#include <string.h>

#include "ktls.h"
#include "ktls_int.h"

static int
session_check(const struct tls_enable *en, const struct ktls_suite **sp)
{
	const struct ktls_suite *s;

	if (en->flags != 0 || en->tls_vmajor != TLS_MAJOR_VER_ONE)
		return (-EINVAL);
	if (en->cipher_key == NULL || en->iv == NULL)
		return (-EINVAL);
	s = ktls_suite_lookup(en->tls_vminor, en->cipher_algorithm,
	    en->cipher_key_len, en->auth_algorithm);
	if (s == NULL)		/* unknown cipher, wrong key length, mismatch */
		return (-EINVAL);
	/*
	 * TLS 1.2 AES-GCM takes FreeBSD's 4-byte salt (the explicit nonce is
	 * the sequence number) or, as Linux's crypto_info, salt || first
	 * explicit nonce (12 bytes).
	 */
	if (en->iv_len != s->iv_len &&
	    !(s->kind == KTLS_AEAD_EXPLICIT && en->iv_len == 12))
		return (-EINVAL);
	if (s->kind == KTLS_CBC) {
		if (en->auth_key == NULL || en->auth_key_len != s->mac_len)
			return (-EINVAL);
	} else if (en->auth_key != NULL || en->auth_key_len != 0) {
		/* An AEAD suite has no separate MAC key. */
		return (-EINVAL);
	}
	*sp = s;
	return (0);
}

int
ktls_session_create(const void *optval, socklen_t optlen,
    struct ktls_session **sp)
{
	struct tls_enable en;
	const struct ktls_suite *suite;
	struct ktls_session *s;
	uint8_t *k;
	int error;

	if (optval == NULL)
		return (-EFAULT);
	if (optlen != sizeof(en))
		return (-EINVAL);
	memcpy(&en, optval, sizeof(en));
	if ((error = session_check(&en, &suite)) != 0)
		return (error);

	if (ktls_fault_hit(KF_SESSION_ALLOC) ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return (-ENOMEM);
	s->suite = suite;
	s->keys_len = suite->key_len + suite->iv_len + suite->mac_len;
	if (ktls_fault_hit(KF_KEYMEM_ALLOC) ||
	    (s->keys = ktls_keymem_alloc(s->keys_len)) == NULL) {
		error = -ENOMEM;
		goto err_session;
	}
	k = s->keys;
	memcpy(k, en.cipher_key, suite->key_len);
	memcpy(k + suite->key_len, en.iv, suite->iv_len);
	if (suite->mac_len != 0)
		memcpy(k + suite->key_len + suite->iv_len, en.auth_key,
		    suite->mac_len);
	if (en.iv_len == 12 && suite->kind == KTLS_AEAD_EXPLICIT)
		s->params.nonce_off = ktls_be64dec(en.iv + 4) -
		    ktls_be64dec(en.rec_seq);
	s->params = (struct ktls_crypto_params){
		.nonce_off = s->params.nonce_off,
		.suite = suite,
		.cipher_key = k,
		.iv = k + suite->key_len,
		.auth_key = suite->mac_len ? k + suite->key_len + suite->iv_len :
		    NULL,
	};
	error = ktls_backend_select(&s->params, &s->be, &s->cctx,
	    ktls_env_backend());
	if (error != 0)
		goto err_keys;
	*sp = s;
	return (0);

err_keys:
	ktls_keymem_free(s->keys, s->keys_len);
err_session:
	free(s);
	return (error);
}

void
ktls_session_destroy(struct ktls_session *s)
{
	if (s == NULL)
		return;
	s->be->free(s->cctx);
	ktls_keymem_free(s->keys, s->keys_len);
	free(s);
}
