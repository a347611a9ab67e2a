/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The client side of the control protocol (docs/control.md), shared by
 * ktls-stat and ktls-switch.  Like the tools, it links nothing of ktls:
 * processes are found in /proc/net/unix and spoken to over their abstract
 * socket "@ktls.<pid>".  The protocol (endpoint, verbs, keywords, line
 * lengths, errno names) is src/proto/ktls_ctl.h, the engine's too.
 */
#ifndef KTLS_CTLCLIENT_H
#define KTLS_CTLCLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "ktls_ctl.h"

#define CTL_PEER_MS	3000		/* one process's whole exchange */

/* What asking one process gave. */
enum ctl_status {
	CTL_OK,			/* an answer: the server closed after it */
	CTL_EACCES,		/* refused us: another user */
	CTL_GONE,		/* nobody listens under that pid (any more) */
	CTL_IMPOSTOR,		/* the name is held by another process */
	CTL_BROKEN,		/* no answer in time, or an I/O error */
};

/*
 * The pids that listen on "@ktls.<pid>" (ktls_ctl_proc_pid()), sorted, each once (malloc'd;
 * NULL with *np 0 when there is none or /proc/net/unix cannot be read,
 * which is reported on stderr under progname).
 */
pid_t	*ctl_discover(const char *progname, size_t *np);

/*
 * One exchange with process pid: send request (a line, with its "\n"),
 * read the answer until the server closes, all within CTL_PEER_MS.  At
 * most max - 1 bytes are kept.  On CTL_OK *answer is the NUL-terminated
 * answer (malloc'd, the caller frees it), else NULL.  An answer "ERR
 * EACCES" (KTLS_CTL_ERR_EACCES) is CTL_EACCES.
 */
enum ctl_status ctl_exchange(pid_t pid, const char *request, char **answer,
	    size_t max);

/* A short text for a status other than CTL_OK. */
const char *ctl_status_text(enum ctl_status st);

#endif /* KTLS_CTLCLIENT_H */
