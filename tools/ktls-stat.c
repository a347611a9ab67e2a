/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ktls-stat: the kern.ipc.tls.* nodes of processes that use ktls, summed
 * over processes, printed as sysctl(8) prints them.
 *
 * It speaks only the control protocol (docs/control.md) and links nothing
 * of ktls: each process answers on the abstract AF_UNIX socket
 * "@ktls.<pid>", found in /proc/net/unix.  Even the list of names comes
 * from the processes, so a ktls-stat older than the library still prints
 * every node.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctlclient.h"

#define NODE_MAX	256		/* nodes kept; more are ignored */
#define NAME_MAX_LEN	128
#define ANSWER_MAX	(64 * 1024)
#define GET_REQUEST	KTLS_CTL_GET "\n"
#define ERR_PREFIX	KTLS_CTL_ERR " "

struct node {
	char		name[NAME_MAX_LEN];
	uint64_t	v;
	bool		tunable;	/* a setting: show the largest, not a sum */
	bool		printed;	/* JSON: each key once */
};

struct nodes {
	struct node	n[NODE_MAX];
	int		count;
};

static const char *progname = "ktls-stat";

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s [-hj] [-p pid] [name ...]\n", progname);
}

static bool
valid_name(const char *s)
{
	if (*s == '\0' || strlen(s) >= NAME_MAX_LEN)
		return (false);
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' &&
		    *s != '-')
			return (false);
	return (true);
}

/* A decimal number, digits only (no sign, no blanks), fitting 64 bits. */
static bool
parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!isdigit((unsigned char)*s))
		return (false);
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return (false);
	*v = x;
	return (true);
}

/*
 * Parse an answer: lines "name value [kind]" then "END", or one line
 * "ERR reason" (ktls_ctl.h).  Anything else is a broken answer; so is one cut short.
 */
static enum ctl_status
parse_answer(char *buf, struct nodes *out)
{
	char *line, *next, *name, *value, *kind, *save;
	uint64_t v;

	out->count = 0;
	for (line = buf; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) == NULL)
			return (CTL_BROKEN);	/* no END: cut short */
		*next++ = '\0';
		if (strcmp(line, KTLS_CTL_END) == 0)
			return (CTL_OK);
		if (strncmp(line, ERR_PREFIX, sizeof(ERR_PREFIX) - 1) == 0)
			return (strcmp(line + sizeof(ERR_PREFIX) - 1,
			    ktls_ctl_errname(EACCES)) == 0 ? CTL_EACCES :
			    CTL_BROKEN);
		name = strtok_r(line, " ", &save);
		value = strtok_r(NULL, " ", &save);
		kind = strtok_r(NULL, " ", &save);
		if (name == NULL || value == NULL || !valid_name(name) ||
		    !parse_u64(value, &v))
			return (CTL_BROKEN);
		if (out->count == NODE_MAX)
			continue;
		snprintf(out->n[out->count].name, NAME_MAX_LEN, "%s", name);
		out->n[out->count].v = v;
		out->n[out->count].tunable = kind != NULL &&
		    strcmp(kind, KTLS_CTL_TUNABLE) == 0;
		out->count++;
	}
	return (CTL_BROKEN);
}

/* Ask process pid for its nodes (bounded by CTL_PEER_MS). */
static enum ctl_status
ask(pid_t pid, struct nodes *out)
{
	enum ctl_status st;
	char *buf;

	if ((st = ctl_exchange(pid, GET_REQUEST, &buf, ANSWER_MAX)) != CTL_OK)
		return (st);
	st = parse_answer(buf, out);
	free(buf);
	return (st);
}

static struct node *
find(struct nodes *all, const char *name)
{
	for (int i = 0; i < all->count; i++)
		if (strcmp(all->n[i].name, name) == 0)
			return (&all->n[i]);
	return (NULL);
}

/*
 * Add one process's answer: counts are summed (saturating, never
 * wrapping); a tunable shows its value when all processes agree, else the
 * largest.  Names keep the order in which they were first seen.
 */
static void
merge(struct nodes *all, const struct nodes *one)
{
	struct node *d;

	for (int i = 0; i < one->count; i++) {
		const struct node *s = &one->n[i];

		if ((d = find(all, s->name)) == NULL) {
			if (all->count == NODE_MAX)
				continue;
			*(d = &all->n[all->count++]) = *s;
			continue;
		}
		if (s->tunable || d->tunable) {
			d->tunable = true;
			if (s->v > d->v)
				d->v = s->v;
		} else
			d->v = s->v > UINT64_MAX - d->v ? UINT64_MAX :
			    d->v + s->v;
	}
}

/* Does node name fall under the requested name (itself or a subtree)? */
static bool
matches(const char *want, const char *name)
{
	size_t len = strlen(want);

	return (strncmp(want, name, len) == 0 &&
	    (name[len] == '\0' || name[len] == '.'));
}

static void
print_node(struct node *d, bool json, bool *first)
{
	if (json && d->printed)
		return;
	d->printed = true;
	if (json)
		printf("%s\n  \"%s\": %" PRIu64, *first ? "" : ",", d->name,
		    d->v);
	else
		printf("%s: %" PRIu64 "\n", d->name, d->v);
	*first = false;
}

int
main(int argc, char **argv)
{
	static struct nodes all, one;
	enum ctl_status st;
	pid_t *pids = NULL, onepid;
	size_t npids = 0;
	bool json = false, first = true, bad = false;
	long v;
	char *end;
	int ch, answered = 0;

	onepid = 0;
	while ((ch = getopt(argc, argv, "hjp:")) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return (0);
		case 'j':
			json = true;
			break;
		case 'p':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg ||
			    v <= 0 || v > INT_MAX) {
				fprintf(stderr, "%s: %s: not a process id\n",
				    progname, optarg);
				return (1);
			}
			onepid = (pid_t)v;
			break;
		default:
			usage(stderr);
			return (1);
		}
	}
	argc -= optind;
	argv += optind;

	if (onepid != 0) {
		if ((st = ask(onepid, &all)) != CTL_OK) {
			fprintf(stderr, "%s: %ld: %s\n", progname,
			    (long)onepid, ctl_status_text(st));
			return (1);
		}
		answered = 1;
	} else {
		pids = ctl_discover(progname, &npids);
		for (size_t i = 0; i < npids; i++) {
			if ((st = ask(pids[i], &one)) != CTL_OK) {
				/* It may just have exited: skip, say so. */
				fprintf(stderr, "%s: %ld: %s, skipped\n",
				    progname, (long)pids[i],
				    ctl_status_text(st));
				continue;
			}
			merge(&all, &one);
			answered++;
		}
		free(pids);
	}
	if (answered == 0) {
		/* Not an error: there is nothing to count. */
		fprintf(stderr, "%s: %s\n", progname, npids == 0 ?
		    "no process uses ktls" : "no process answered");
		if (json)
			printf("{}\n");
		return (0);
	}

	/* Like sysctl(8): an unknown name is an error; check all first. */
	for (int i = 0; i < argc; i++) {
		bool known = false;

		for (int j = 0; j < all.count && !known; j++)
			known = matches(argv[i], all.n[j].name);
		if (!known) {
			fprintf(stderr, "%s: unknown oid '%s'\n", progname,
			    argv[i]);
			bad = true;
		}
	}
	if (bad)
		return (1);

	if (json)
		printf("{");
	if (argc == 0)
		for (int j = 0; j < all.count; j++)
			print_node(&all.n[j], json, &first);
	for (int i = 0; i < argc; i++)
		for (int j = 0; j < all.count; j++)
			if (matches(argv[i], all.n[j].name))
				print_node(&all.n[j], json, &first);
	if (json)
		printf("\n}\n");
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: stdout: %s\n", progname, strerror(errno));
		return (1);
	}
	return (0);
}
