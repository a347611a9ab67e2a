/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ktls-switch: switch live TLS connections between software mode (ktls's
 * workers encrypt) and kernel mode (the session handed to Linux's kTLS,
 * FreeBSD's "ifnet TLS"), with the syntax of FreeBSD's switch_tls(8):
 *
 *	ktls-switch [-i | -s] laddr lport faddr fport
 *	ktls-switch [-i | -s] laddr:lport faddr:fport	(also [v6addr]:port)
 *	ktls-switch [-i | -s] laddr.lport faddr.fport
 *	ktls-switch [-l | -i | -s] -a
 *
 * On FreeBSD the kernel owns every connection; here each process owns its
 * own, so ktls-switch asks every process that uses ktls for its list
 * (LIST on "@ktls.<pid>", docs/control.md) and sends the switch (MODE) to
 * the owner.  It speaks only the control protocol and links nothing of
 * ktls.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlclient.h"

#define LIST_MAX	(64 * 1024 * 1024)	/* one process's LIST answer */
#define MODE_ANSWER_MAX	(KTLS_CTL_LINE_MAX + 1)	/* one line, a NUL */
#define LIST_REQUEST	KTLS_CTL_LIST "\n"
#define OK_ANSWER	KTLS_CTL_OK "\n"
#define ERR_PREFIX	KTLS_CTL_ERR " "
#define ERR_PREFIX_LEN	(sizeof(ERR_PREFIX) - 1)

/*
 * A TCP endpoint, compared as the server compares them: an IPv4-mapped
 * IPv6 address is its IPv4 address; scope ids are not compared.
 */
struct ep {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];
	uint16_t	port;
	char		str[INET6_ADDRSTRLEN];	/* numeric, no port */
};

/* One enabled connection, as its process listed it. */
struct conn {
	pid_t		pid;
	struct ep	l, f;
	char		mode[16];	/* "sw", "ifnet" */
	char		suite[64];
};

struct conns {
	struct conn	*v;
	size_t		n, cap;
};

static const char *progname = "ktls-switch";

static void
usage(FILE *f)
{
	fprintf(f,
"usage: %s [-i | -s] local-address local-port foreign-address foreign-port\n"
"       %s [-i | -s] local-address:local-port foreign-address:foreign-port\n"
"       %s [-i | -s] local-address.local-port foreign-address.foreign-port\n"
"       %s [-l | -i | -s] -a\n",
	    progname, progname, progname, progname);
}

static void
ep_set(struct ep *ep, int family, const void *addr, uint16_t port)
{
	const uint8_t *a = addr;

	memset(ep, 0, sizeof(*ep));
	if (family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
		family = AF_INET;
		a += 12;
	}
	ep->family = family;
	memcpy(ep->addr, a, family == AF_INET ? 4 : 16);
	ep->port = port;
	if (inet_ntop(family, ep->addr, ep->str, sizeof(ep->str)) == NULL)
		snprintf(ep->str, sizeof(ep->str), "?");
}

static bool
ep_from_sa(const struct sockaddr *sa, struct ep *ep)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		ep_set(ep, AF_INET, &sin->sin_addr, ntohs(sin->sin_port));
		return (true);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		ep_set(ep, AF_INET6, &sin6->sin6_addr,
		    ntohs(sin6->sin6_port));
		return (true);
	}
	return (false);
}

/* A numeric address and a decimal port as the server sends them. */
static bool
ep_parse(const char *addr, const char *port, struct ep *ep)
{
	uint8_t a[16];
	unsigned long p = 0;
	size_t len = strlen(port);

	if (len == 0 || len > 5)
		return (false);
	for (size_t i = 0; i < len; i++) {
		if (port[i] < '0' || port[i] > '9')
			return (false);
		p = p * 10 + (unsigned long)(port[i] - '0');
	}
	if (p > 65535)
		return (false);
	if (inet_pton(AF_INET, addr, a) == 1)
		ep_set(ep, AF_INET, a, (uint16_t)p);
	else if (inet_pton(AF_INET6, addr, a) == 1)
		ep_set(ep, AF_INET6, a, (uint16_t)p);
	else
		return (false);
	return (true);
}

static bool
ep_equal(const struct ep *a, const struct ep *b)
{
	return (a->family == b->family && a->port == b->port &&
	    memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0);
}

/* "laddr lport faddr fport", as FreeBSD's switch_tls prints them. */
static const char *
pair_text(const struct ep *l, const struct ep *f)
{
	static char buf[2 * INET6_ADDRSTRLEN + 32];

	snprintf(buf, sizeof(buf), "%s %u %s %u", l->str,
	    (unsigned int)l->port, f->str, (unsigned int)f->port);
	return (buf);
}

/* The process's name (/proc/<pid>/comm), or "?". */
static void
proc_name(pid_t pid, char *buf, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	buf[0] = '\0';
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(buf, (int)size, f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0] == '\0')
		snprintf(buf, size, "?");
}

static void
warn_proc(pid_t pid, const char *what)
{
	char name[64];

	proc_name(pid, name, sizeof(name));
	fprintf(stderr, "%s: pid %ld (%s): %s\n", progname, (long)pid, name,
	    what);
}

static bool
conns_add(struct conns *cs, const struct conn *c)
{
	struct conn *v;

	if (cs->n == cs->cap) {
		size_t cap = cs->cap == 0 ? 16 : cs->cap * 2;

		if ((v = realloc(cs->v, cap * sizeof(*v))) == NULL)
			return (false);
		cs->v = v;
		cs->cap = cap;
	}
	cs->v[cs->n++] = *c;
	return (true);
}

/*
 * Parse one process's LIST answer into cs: "conn" lines then "END"
 * (ktls_ctl.h).
 * Fields after the seventh and lines of other kinds are ignored (room for
 * additions).  False for an answer that is not one (cut short, ERR).
 */
static bool
parse_list(pid_t pid, char *ans, struct conns *cs)
{
	char *line, *next, *save, *tok[KTLS_CTL_LIST_FIELDS];
	struct conn c;
	int n, e;

	for (line = ans; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) == NULL)
			break;		/* cut short: no END */
		*next++ = '\0';
		if (strcmp(line, KTLS_CTL_END) == 0)
			return (true);
		if (strncmp(line, ERR_PREFIX, ERR_PREFIX_LEN) == 0) {
			e = ktls_ctl_errno(line + ERR_PREFIX_LEN);
			warn_proc(pid, e == EINVAL ?
			    "does not know LIST (an older ktls?)" :
			    e != 0 ? strerror(e) : line);
			return (false);
		}
		n = 0;
		for (char *t = strtok_r(line, " ", &save); t != NULL &&
		    n < KTLS_CTL_LIST_FIELDS; t = strtok_r(NULL, " ", &save))
			tok[n++] = t;
		if (n < KTLS_CTL_LIST_FIELDS ||
		    strcmp(tok[0], KTLS_CTL_CONN) != 0)
			continue;
		memset(&c, 0, sizeof(c));
		c.pid = pid;
		if (!ep_parse(tok[1], tok[2], &c.l) ||
		    !ep_parse(tok[3], tok[4], &c.f))
			continue;
		snprintf(c.mode, sizeof(c.mode), "%s", tok[5]);
		snprintf(c.suite, sizeof(c.suite), "%s", tok[6]);
		if (!conns_add(cs, &c)) {
			warn_proc(pid, strerror(ENOMEM));
			return (false);
		}
	}
	warn_proc(pid, ctl_status_text(CTL_BROKEN));
	return (false);
}

/*
 * Every enabled connection of every process that answers.  *complete is
 * false when a process refused (another user) or gave no valid answer:
 * its connections are not in the list.  A process that exited meanwhile
 * has none to list.  False when no process uses ktls at all.
 */
static bool
gather(struct conns *cs, bool *complete)
{
	enum ctl_status st;
	pid_t *pids;
	size_t np;
	char *ans;

	*complete = true;
	pids = ctl_discover(progname, &np);
	for (size_t i = 0; i < np; i++) {
		st = ctl_exchange(pids[i], LIST_REQUEST, &ans, LIST_MAX);
		if (st == CTL_GONE)
			continue;
		if (st != CTL_OK) {
			warn_proc(pids[i], st == CTL_EACCES ? strerror(EACCES) :
			    ctl_status_text(st));
			*complete = false;
			continue;
		}
		if (!parse_list(pids[i], ans, cs))
			*complete = false;
		free(ans);
	}
	free(pids);
	return (np > 0);
}

/* Ask the owner of c to switch it; prints the outcome. */
static bool
switch_conn(const struct conn *c, bool ifnet)
{
	enum ctl_status st;
	char req[2 * INET6_ADDRSTRLEN + 64], *ans, name[64];
	const char *what;
	int e;

	snprintf(req, sizeof(req), KTLS_CTL_MODE " %s %s\n",
	    ifnet ? KTLS_CTL_MODE_IFNET : KTLS_CTL_MODE_SW,
	    pair_text(&c->l, &c->f));
	st = ctl_exchange(c->pid, req, &ans, MODE_ANSWER_MAX);
	if (st != CTL_OK) {
		proc_name(c->pid, name, sizeof(name));
		fprintf(stderr, "%s: %s: pid %ld (%s): %s\n", progname,
		    pair_text(&c->l, &c->f), (long)c->pid, name,
		    st == CTL_EACCES ? strerror(EACCES) :
		    st == CTL_GONE ? "the process exited" :
		    "no answer in time (the switch may still complete)");
		return (false);
	}
	if (strcmp(ans, OK_ANSWER) == 0) {
		printf("%s: switched\n", pair_text(&c->l, &c->f));
		free(ans);
		return (true);
	}
	ans[strcspn(ans, "\n")] = '\0';
	if (strncmp(ans, ERR_PREFIX, ERR_PREFIX_LEN) == 0) {
		e = ktls_ctl_errno(ans + ERR_PREFIX_LEN);
		what = e == ENOENT ? "no such connection (closed meanwhile?)" :
		    e != 0 ? strerror(e) : ans + ERR_PREFIX_LEN;
	} else
		what = ctl_status_text(CTL_BROKEN);
	fprintf(stderr, "%s: %s: %s\n", progname, pair_text(&c->l, &c->f),
	    what);
	free(ans);
	return (false);
}

/*
 * The port part of "addr:port" or "addr.port": after the last ':' or
 * '.', whichever comes later (as FreeBSD's tcpdrop and switch_tls).
 */
static char *
findport(char *arg)
{
	char *dot = strrchr(arg, '.'), *colon = strrchr(arg, ':');

	if (dot == NULL)
		return (colon);
	if (colon == NULL)
		return (dot);
	return (dot < colon ? colon : dot);
}

/* host and port resolved (numeric or names); "[v6addr]" is allowed. */
static struct addrinfo *
resolve(const char *host, const char *port)
{
	const struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	struct addrinfo *res;
	char buf[256];
	size_t len = strlen(host);
	int error;

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' &&
	    len - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		host = buf;
	}
	if ((error = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "%s: getaddrinfo: %s port %s: %s\n", progname,
		    host, port, gai_strerror(error));
		return (NULL);
	}
	return (res);
}

/*
 * Switch the connection(s) named by lhost lport fhost fport: every pair
 * of their addresses in one family (as switch_tls does).
 */
static bool
switch_named(const char *lhost, const char *lport, const char *fhost,
    const char *fport, bool ifnet)
{
	struct addrinfo *local, *foreign;
	struct pair {
		struct ep	l, f;
	} *pairs = NULL, *np, p;
	struct conns cs = { 0 };
	size_t npairs = 0, cap = 0;
	bool ok = true, complete, dup;

	if ((local = resolve(lhost, lport)) == NULL)
		return (false);
	if ((foreign = resolve(fhost, fport)) == NULL) {
		freeaddrinfo(local);
		return (false);
	}
	for (struct addrinfo *ail = local; ail != NULL; ail = ail->ai_next)
		for (struct addrinfo *aif = foreign; aif != NULL;
		    aif = aif->ai_next) {
			if (!ep_from_sa(ail->ai_addr, &p.l) ||
			    !ep_from_sa(aif->ai_addr, &p.f) ||
			    p.l.family != p.f.family)
				continue;
			dup = false;
			for (size_t i = 0; i < npairs && !dup; i++)
				dup = ep_equal(&pairs[i].l, &p.l) &&
				    ep_equal(&pairs[i].f, &p.f);
			if (dup)
				continue;
			if (npairs == cap) {
				cap = cap == 0 ? 4 : cap * 2;
				if ((np = realloc(pairs, cap * sizeof(*np))) ==
				    NULL) {
					fprintf(stderr, "%s: %s\n", progname,
					    strerror(ENOMEM));
					ok = false;
					goto out_ai;
				}
				pairs = np;
			}
			pairs[npairs++] = p;
		}
out_ai:
	freeaddrinfo(local);
	freeaddrinfo(foreign);
	if (!ok)
		goto out;
	if (npairs == 0) {
		fprintf(stderr, "%s: %s %s %s %s: different address families\n",
		    progname, lhost, lport, fhost, fport);
		ok = false;
		goto out;
	}

	gather(&cs, &complete);
	for (size_t i = 0; i < npairs; i++) {
		bool found = false;

		for (size_t j = 0; j < cs.n; j++) {
			if (!ep_equal(&cs.v[j].l, &pairs[i].l) ||
			    !ep_equal(&cs.v[j].f, &pairs[i].f))
				continue;
			found = true;
			if (!switch_conn(&cs.v[j], ifnet))
				ok = false;
		}
		if (!found) {
			fprintf(stderr, "%s: %s: no such connection using "
			    "ktls%s\n", progname,
			    pair_text(&pairs[i].l, &pairs[i].f),
			    complete ? "" : " among the processes that answered");
			ok = false;
		}
	}
out:
	free(cs.v);
	free(pairs);
	return (ok);
}

/* -a: switch (or with -l, list) every connection of every process. */
static bool
all(bool list, bool ifnet)
{
	struct conns cs = { 0 };
	char name[64];
	bool ok, any;

	any = gather(&cs, &ok);
	if (!any)
		/* Not an error: there is nothing to switch. */
		fprintf(stderr, "%s: no process uses ktls\n", progname);
	for (size_t i = 0; i < cs.n; i++) {
		const struct conn *c = &cs.v[i];

		if (list) {
			proc_name(c->pid, name, sizeof(name));
			printf("%s %s %s %ld %s\n", pair_text(&c->l, &c->f),
			    c->mode, c->suite, (long)c->pid, name);
		} else if (!switch_conn(c, ifnet))
			ok = false;
	}
	free(cs.v);
	/* A listing shows what could be seen; warnings say what could not. */
	return (list || ok);
}

int
main(int argc, char **argv)
{
	char *lport, *fport;
	bool doall = false, list = false, ifnet = false, mode_set = false;
	bool ok;
	int ch;

	/* "+": options first, as on FreeBSD; an address never starts with -. */
	while ((ch = getopt(argc, argv, "+ahils")) != -1) {
		switch (ch) {
		case 'a':
			doall = true;
			break;
		case 'h':
			usage(stdout);
			return (0);
		case 'i':
			ifnet = true;
			mode_set = true;
			break;
		case 'l':
			list = true;
			break;
		case 's':
			ifnet = false;
			mode_set = true;
			break;
		default:
			usage(stderr);
			return (2);
		}
	}
	argc -= optind;
	argv += optind;

	if (list && (mode_set || !doall)) {
		usage(stderr);
		return (2);
	}
	if (doall) {
		if (argc != 0) {
			usage(stderr);
			return (2);
		}
		ok = all(list, ifnet);
	} else if (argc == 2) {
		lport = findport(argv[0]);
		fport = findport(argv[1]);
		if (lport == NULL || lport[1] == '\0' || lport == argv[0] ||
		    fport == NULL || fport[1] == '\0' || fport == argv[1]) {
			usage(stderr);
			return (2);
		}
		*lport++ = '\0';
		*fport++ = '\0';
		ok = switch_named(argv[0], lport, argv[1], fport, ifnet);
	} else if (argc == 4)
		ok = switch_named(argv[0], argv[1], argv[2], argv[3], ifnet);
	else {
		usage(stderr);
		return (2);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: stdout: %s\n", progname, strerror(errno));
		return (1);
	}
	return (ok ? 0 : 1);
}
