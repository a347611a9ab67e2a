/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The client side of the control protocol, shared by ktls-stat and
 * ktls-switch (ctlclient.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlclient.h"

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static int
cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return ((x > y) - (x < y));
}

/*
 * Accepted connections show the listener's name too: each pid is listed
 * once.
 */
pid_t *
ctl_discover(const char *progname, size_t *np)
{
	FILE *f;
	char *line = NULL, *path;
	size_t cap = 0, n = 0, alloc = 0, len;
	pid_t *pids = NULL, *p, v;

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
		if ((v = ktls_ctl_proc_pid(path + 1)) == 0)
			continue;
		if (n == alloc) {
			alloc = alloc == 0 ? 16 : alloc * 2;
			if ((p = realloc(pids, alloc * sizeof(*p))) == NULL)
				break;
			pids = p;
		}
		pids[n++] = v;
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

/*
 * The whole exchange is bounded by CTL_PEER_MS, so a process that is
 * stuck (or a socket squatted by someone who never answers) cannot hang
 * the tool.
 */
enum ctl_status
ctl_exchange(pid_t pid, const char *request, char **answer, size_t max)
{
	struct sockaddr_un sun;
	socklen_t alen;
	struct timeval tv = { .tv_sec = CTL_PEER_MS / 1000,
	    .tv_usec = CTL_PEER_MS % 1000 * 1000 };
	struct ucred uc;
	socklen_t len = sizeof(uc);
	struct pollfd pfd;
	char *buf = NULL, *nb;
	size_t got = 0, cap = 0, reqlen = strlen(request);
	int64_t deadline = now_ms() + CTL_PEER_MS;
	enum ctl_status st = CTL_BROKEN;
	ssize_t n;
	int fd, ms;

	*answer = NULL;
	alen = ktls_ctl_sockaddr(&sun, (long)pid);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (CTL_BROKEN);
	/* SO_SNDTIMEO also bounds connect() to a full backlog. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, alen) != 0) {
		st = errno == ECONNREFUSED || errno == ENOENT ? CTL_GONE :
		    CTL_BROKEN;
		goto out;
	}
	/*
	 * Anyone may bind an abstract name: believe the answer only from
	 * the process the name says, as the kernel recorded it at listen().
	 */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 ||
	    uc.pid != pid) {
		st = CTL_IMPOSTOR;
		goto out;
	}
	if (send(fd, request, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
		/* Refused at once: the server may have written ERR first. */
		if (errno != EPIPE && errno != ECONNRESET)
			goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (got + 1 >= max)
			break;
		if (cap - got < 2) {
			cap = cap == 0 ? 4096 : cap * 2;
			if (cap > max)
				cap = max;
			if ((nb = realloc(buf, cap)) == NULL)
				goto out;
			buf = nb;
		}
		if ((ms = (int)(deadline - now_ms())) <= 0)
			goto out;
		if ((n = poll(&pfd, 1, ms)) < 0 && errno != EINTR)
			goto out;
		if (n <= 0)
			continue;
		n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;	/* a reset after ERR: take what came */
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		goto out;
	buf[got] = '\0';
	if (strcmp(buf, KTLS_CTL_ERR_EACCES) == 0) {
		st = CTL_EACCES;
		goto out;
	}
	*answer = buf;
	buf = NULL;
	st = CTL_OK;
out:
	free(buf);
	close(fd);
	return (st);
}

const char *
ctl_status_text(enum ctl_status st)
{
	switch (st) {
	case CTL_EACCES:
		return ("permission denied");
	case CTL_GONE:
		return ("no ktls control socket (exited, or not using ktls)");
	case CTL_IMPOSTOR:
		return ("control socket held by another process");
	default:
		return ("no valid answer");
	}
}
