/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Kernel mode, FreeBSD's "ifnet TLS" on Linux: the session handed down to
 * the kernel's own TLS (TCP_ULP "tls" + SOL_TLS/TLS_TX with the next
 * record's sequence number).
 */
#include <errno.h>

#include "ktls.h"
#include "../core/ktls_int.h"

int
ktls_sock_mode(struct ktls_sock *so)
{
	return (atomic_load(&so->mode));
}

int
ktls_sock_set_mode(struct ktls_sock *so, int mode)
{
	if (mode != TCP_TLS_MODE_SW && mode != TCP_TLS_MODE_IFNET)
		return (-EINVAL);
	if (mode == atomic_load(&so->mode))
		return (0);
	return (-EOPNOTSUPP);
}
