/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The control socket: each process that uses ktls answers ktls-stat on
 * the abstract AF_UNIX socket "@ktls.<pid>" (see docs/control.md).
 * Being written; ktls_control_start() is called once a session exists.
 */
#include "ktls_int.h"

void
ktls_control_start(void)
{
}

void
ktls_control_atfork_child(void)
{
}
