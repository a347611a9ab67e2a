/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The control protocol (docs/control.md), described once: what the
 * engine's server (src/core/control.c) and the tools' client
 * (tools/ctlclient.c, ktls-stat, ktls-switch) both speak.
 *
 * Header-only (macros, static inline functions and their static const
 * tables) and free of the engine: the tools include it and still link
 * nothing of ktls.  Only libc is needed.
 *
 * Endpoint.  Each process that has enabled a session listens on the
 * abstract AF_UNIX stream socket "\0ktls.<pid>" (sun_path[0] NUL, then
 * "ktls." and the decimal pid, no NUL counted in the address length);
 * /proc/net/unix shows it as "@ktls.<pid>".
 *
 * Requests.  One request per connection: one line of at most
 * KTLS_CTL_LINE_MAX bytes before its "\n" (a "\r" before the "\n" is
 * ignored; EOF also ends the line), a verb and its arguments separated by
 * blanks (KTLS_CTL_BLANKS, one or more):
 *
 *	GET
 *	LIST
 *	MODE <sw|ifnet> <laddr> <lport> <faddr> <fport>
 *
 * Answers (then the server closes the connection):
 *
 *	GET	"<name> <value> <tunable|counter>" lines, then "END"
 *	LIST	"conn <laddr> <lport> <faddr> <fport> <mode> <suite>" lines,
 *		then "END"
 *	MODE	"OK"
 *	any	"ERR <errno name>" (the decimal number for an errno without
 *		a name in ktls_ctl_errnames[]), one line: the only answer
 *		to a request that failed, or to a peer of another user
 *		("ERR EACCES").
 */
#ifndef KTLS_CTL_H
#define KTLS_CTL_H

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* The endpoint: the abstract name is KTLS_CTL_NAME_PREFIX "<pid>". */
#define KTLS_CTL_NAME_PREFIX	"ktls."
/* How /proc/net/unix shows an abstract name: "@" for the leading NUL. */
#define KTLS_CTL_PROC_PREFIX	"@" KTLS_CTL_NAME_PREFIX

/* The verbs. */
#define KTLS_CTL_GET		"GET"
#define KTLS_CTL_LIST		"LIST"
#define KTLS_CTL_MODE		"MODE"

/* What separates a request's words. */
#define KTLS_CTL_BLANKS		" \t"

/* MODE's first argument, and LIST's <mode> field. */
#define KTLS_CTL_MODE_SW	"sw"
#define KTLS_CTL_MODE_IFNET	"ifnet"
/* LIST's <mode> field for modes MODE cannot ask for. */
#define KTLS_CTL_MODE_NONE	"none"
#define KTLS_CTL_MODE_TOE	"toe"
#define KTLS_CTL_MODE_UNKNOWN	"unknown"
/* MODE's arguments after the verb; LIST's fields, "conn" included. */
#define KTLS_CTL_MODE_ARGS	5
#define KTLS_CTL_LIST_FIELDS	7

/* Answer keywords. */
#define KTLS_CTL_END		"END"		/* ends GET and LIST */
#define KTLS_CTL_OK		"OK"		/* MODE done */
#define KTLS_CTL_ERR		"ERR"		/* "ERR <errno name>" */
#define KTLS_CTL_CONN		"conn"		/* a LIST line */
#define KTLS_CTL_TUNABLE	"tunable"	/* GET: a setting */
#define KTLS_CTL_COUNTER	"counter"	/* GET: a count (the default) */
/* The answer to a peer of another user, whole. */
#define KTLS_CTL_ERR_EACCES	KTLS_CTL_ERR " EACCES\n"

/*
 * Line lengths.  A request line has at most KTLS_CTL_LINE_MAX bytes
 * before its "\n" (a longer one is answered "ERR EMSGSIZE");
 * KTLS_CTL_REQ_SIZE holds one, its "\n" and a NUL.  An answer line of up
 * to KTLS_CTL_LINE_MAX bytes, its "\n" included, is always sent whole,
 * and a one-line answer (MODE's, any ERR) fits in KTLS_CTL_LINE_MAX + 1
 * bytes with a NUL.
 */
#define KTLS_CTL_LINE_MAX	255
#define KTLS_CTL_REQ_SIZE	(KTLS_CTL_LINE_MAX + 2)

/*
 * Fill *sun with the control socket address of process pid; its length
 * for bind()/connect().
 */
static inline socklen_t
ktls_ctl_sockaddr(struct sockaddr_un *sun, long pid)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* sun_path[0] stays NUL: the abstract namespace. */
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    KTLS_CTL_NAME_PREFIX "%ld", pid);
	if (n < 0)
		n = 0;
	return ((socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    (size_t)n));
}

/*
 * The pid in a name as /proc/net/unix shows it ("@ktls.<pid>", the pid
 * decimal, digits only, nothing after it); 0 if path is not one.
 */
static inline pid_t
ktls_ctl_proc_pid(const char *path)
{
	const size_t plen = sizeof(KTLS_CTL_PROC_PREFIX) - 1;
	char *end;
	long v;

	if (strncmp(path, KTLS_CTL_PROC_PREFIX, plen) != 0 ||
	    !isdigit((unsigned char)path[plen]))
		return (0);
	errno = 0;
	v = strtol(path + plen, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0 || v > INT_MAX)
		return (0);
	return ((pid_t)v);
}

/*
 * The errno names of "ERR <name>", both directions from this one table.
 * Where two names have one value (EOPNOTSUPP and ENOTSUP on Linux), the
 * first is the one sent; both are understood.
 */
struct ktls_ctl_errname {
	int		e;
	const char	*name;
};

static const struct ktls_ctl_errname ktls_ctl_errnames[] = {
	{ EPERM, "EPERM" },		{ ENOENT, "ENOENT" },
	{ ESRCH, "ESRCH" },		{ EINTR, "EINTR" },
	{ EIO, "EIO" },			{ ENXIO, "ENXIO" },
	{ EBADF, "EBADF" },		{ EAGAIN, "EAGAIN" },
	{ ENOMEM, "ENOMEM" },		{ EACCES, "EACCES" },
	{ EFAULT, "EFAULT" },		{ EBUSY, "EBUSY" },
	{ EEXIST, "EEXIST" },		{ ENODEV, "ENODEV" },
	{ EINVAL, "EINVAL" },		{ ENFILE, "ENFILE" },
	{ EMFILE, "EMFILE" },		{ ENOSPC, "ENOSPC" },
	{ EPIPE, "EPIPE" },		{ ERANGE, "ERANGE" },
	{ ENOSYS, "ENOSYS" },		{ EOVERFLOW, "EOVERFLOW" },
	{ ENOTSOCK, "ENOTSOCK" },	{ EMSGSIZE, "EMSGSIZE" },
	{ ENOPROTOOPT, "ENOPROTOOPT" },	{ EPROTONOSUPPORT, "EPROTONOSUPPORT" },
	{ EOPNOTSUPP, "EOPNOTSUPP" },	{ ENOTSUP, "ENOTSUP" },
	{ EAFNOSUPPORT, "EAFNOSUPPORT" }, { ENETDOWN, "ENETDOWN" },
	{ ENETUNREACH, "ENETUNREACH" },	{ ECONNABORTED, "ECONNABORTED" },
	{ ECONNRESET, "ECONNRESET" },	{ ENOBUFS, "ENOBUFS" },
	{ EISCONN, "EISCONN" },		{ ENOTCONN, "ENOTCONN" },
	{ ETIMEDOUT, "ETIMEDOUT" },	{ ECONNREFUSED, "ECONNREFUSED" },
	{ EHOSTUNREACH, "EHOSTUNREACH" }, { EALREADY, "EALREADY" },
	{ EINPROGRESS, "EINPROGRESS" },
};

#define KTLS_CTL_NERRNAMES \
	(sizeof(ktls_ctl_errnames) / sizeof(ktls_ctl_errnames[0]))

/* The name sent for errno e (positive); NULL: send the number. */
static inline const char *
ktls_ctl_errname(int e)
{
	for (size_t i = 0; i < KTLS_CTL_NERRNAMES; i++)
		if (ktls_ctl_errnames[i].e == e)
			return (ktls_ctl_errnames[i].name);
	return (NULL);
}

/*
 * The errno of what follows "ERR ": a name ("EOPNOTSUPP") or a decimal
 * number (1-4095); 0 if it is neither.
 */
static inline int
ktls_ctl_errno(const char *name)
{
	char *end;
	long v;

	if (isdigit((unsigned char)*name)) {
		errno = 0;
		v = strtol(name, &end, 10);
		return (errno == 0 && *end == '\0' && v > 0 && v < 4096 ?
		    (int)v : 0);
	}
	for (size_t i = 0; i < KTLS_CTL_NERRNAMES; i++)
		if (strcmp(ktls_ctl_errnames[i].name, name) == 0)
			return (ktls_ctl_errnames[i].e);
	return (0);
}

#endif /* KTLS_CTL_H */
