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
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NODE_MAX	256		/* nodes kept; more are ignored */
#define NAME_MAX_LEN	128
#define ANSWER_MAX	(64 * 1024)
#define PEER_MS		3000		/* one process's whole exchange */

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

/* What asking one process gave. */
enum peer_status {
	PEER_OK,
	PEER_EACCES,		/* refused us: another user */
	PEER_GONE,		/* nobody listens under that pid (any more) */
	PEER_IMPOSTOR,		/* the name is held by another process */
	PEER_BROKEN,		/* no complete answer in time */
};

static const char *progname = "ktls-stat";

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s [-hj] [-p pid] [name ...]\n", progname);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
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
 * "ERR reason".  Anything else is a broken answer; so is one cut short.
 */
static enum peer_status
parse_answer(char *buf, struct nodes *out)
{
	char *line, *next, *name, *value, *kind, *save;
	uint64_t v;

	out->count = 0;
	for (line = buf; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) == NULL)
			return (PEER_BROKEN);	/* no END: cut short */
		*next++ = '\0';
		if (strcmp(line, "END") == 0)
			return (PEER_OK);
		if (strncmp(line, "ERR ", 4) == 0)
			return (strcmp(line + 4, "EACCES") == 0 ? PEER_EACCES :
			    PEER_BROKEN);
		name = strtok_r(line, " ", &save);
		value = strtok_r(NULL, " ", &save);
		kind = strtok_r(NULL, " ", &save);
		if (name == NULL || value == NULL || !valid_name(name) ||
		    !parse_u64(value, &v))
			return (PEER_BROKEN);
		if (out->count == NODE_MAX)
			continue;
		snprintf(out->n[out->count].name, NAME_MAX_LEN, "%s", name);
		out->n[out->count].v = v;
		out->n[out->count].tunable = kind != NULL &&
		    strcmp(kind, "tunable") == 0;
		out->count++;
	}
	return (PEER_BROKEN);
}

/*
 * Ask process pid.  The whole exchange is bounded by PEER_MS, so a
 * process that is stuck (or a socket squatted by someone who never
 * answers) cannot hang ktls-stat.
 */
static enum peer_status
ask(pid_t pid, struct nodes *out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = PEER_MS / 1000,
	    .tv_usec = PEER_MS % 1000 * 1000 };
	struct ucred uc;
	socklen_t len = sizeof(uc);
	struct pollfd pfd;
	static char buf[ANSWER_MAX];
	size_t got = 0;
	int64_t deadline = now_ms() + PEER_MS;
	enum peer_status st = PEER_BROKEN;
	ssize_t n;
	int fd, ms;

	n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "ktls.%ld",
	    (long)pid);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (PEER_BROKEN);
	/* SO_SNDTIMEO also bounds connect() to a full backlog. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	    (size_t)n)) != 0) {
		st = errno == ECONNREFUSED || errno == ENOENT ? PEER_GONE :
		    PEER_BROKEN;
		goto out;
	}
	/*
	 * Anyone may bind an abstract name: believe the answer only from
	 * the process the name says, as the kernel recorded it at listen().
	 */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 ||
	    uc.pid != pid) {
		st = PEER_IMPOSTOR;
		goto out;
	}
	if (send(fd, "GET\n", 4, MSG_NOSIGNAL) != 4) {
		/* Refused at once: the server may have written ERR first. */
		if (errno != EPIPE && errno != ECONNRESET)
			goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got < sizeof(buf) - 1) {
		if ((ms = (int)(deadline - now_ms())) <= 0)
			goto out;
		if ((n = poll(&pfd, 1, ms)) < 0 && errno != EINTR)
			goto out;
		if (n <= 0)
			continue;
		n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;	/* a reset after ERR: parse what came */
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	st = parse_answer(buf, out);
out:
	close(fd);
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

static int
cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return ((x > y) - (x < y));
}

/*
 * The pids of the processes that listen on "@ktls.<pid>".  Accepted
 * connections show the listener's name too: each pid is listed once.
 */
static pid_t *
discover(size_t *np)
{
	FILE *f;
	char *line = NULL, *path, *end;
	size_t cap = 0, n = 0, alloc = 0, len;
	pid_t *pids = NULL, *p;
	long v;

	*np = 0;
	if ((f = fopen("/proc/net/unix", "re")) == NULL) {
		fprintf(stderr, "%s: /proc/net/unix: %s\n", progname,
		    strerror(errno));
		return (NULL);
	}
	while (getline(&line, &cap, f) > 0) {
		len = strcspn(line, "\n");
		line[len] = '\0';
		if ((path = strrchr(line, ' ')) == NULL)
			continue;
		path++;
		if (strncmp(path, "@ktls.", 6) != 0 ||
		    !isdigit((unsigned char)path[6]))
			continue;
		errno = 0;
		v = strtol(path + 6, &end, 10);
		if (errno != 0 || *end != '\0' || v <= 0 || v > INT_MAX)
			continue;
		if (n == alloc) {
			alloc = alloc == 0 ? 16 : alloc * 2;
			if ((p = realloc(pids, alloc * sizeof(*p))) == NULL)
				break;
			pids = p;
		}
		pids[n++] = (pid_t)v;
	}
	free(line);
	fclose(f);
	if (n == 0)
		return (pids);
	qsort(pids, n, sizeof(*pids), cmp_pid);
	len = 1;
	for (size_t i = 1; i < n; i++)
		if (pids[i] != pids[len - 1])
			pids[len++] = pids[i];
	*np = len;
	return (pids);
}

static const char *
status_text(enum peer_status st)
{
	switch (st) {
	case PEER_EACCES:
		return ("permission denied");
	case PEER_GONE:
		return ("no ktls control socket (exited, or not using ktls)");
	case PEER_IMPOSTOR:
		return ("control socket held by another process");
	default:
		return ("no valid answer");
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
	enum peer_status st;
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
		if ((st = ask(onepid, &all)) != PEER_OK) {
			fprintf(stderr, "%s: %ld: %s\n", progname,
			    (long)onepid, status_text(st));
			return (1);
		}
		answered = 1;
	} else {
		pids = discover(&npids);
		for (size_t i = 0; i < npids; i++) {
			if ((st = ask(pids[i], &one)) != PEER_OK) {
				/* It may just have exited: skip, say so. */
				fprintf(stderr, "%s: %ld: %s, skipped\n",
				    progname, (long)pids[i], status_text(st));
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
