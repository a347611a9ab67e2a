/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The helpers of the enable_*.c programs that check nothing themselves
 * (enable_common.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "enable_common.h"

const char *const families_name[2] = { "IPv4", "IPv6" };
const int families[2] = { AF_INET, AF_INET6 };

void
enable_begin(bool on)
{
	fx_watchdog(120);
	/* Nothing the peer closes may kill us: errors are checked instead. */
	signal(SIGPIPE, SIG_IGN);
	/* The tests run with KTLS_ENABLE=0: off, as FreeBSD boots. */
	if (on)
		fx_enable_ktls();
}

const char *
family_name(int family)
{
	return (family == AF_INET6 ? "IPv6" : "IPv4");
}

const struct fx_suite *
suite(const char *name)
{
	for (int i = 0; i < fx_nsuites; i++)
		if (strcmp(fx_suites[i].name, name) == 0)
			return (&fx_suites[i]);
	fprintf(stderr, "enable: no suite %s in the fixture\n", name);
	abort();
}

/*
 * Sessions are freed by whichever thread drops the last reference, so the
 * gauges settle a little after the call that started it.
 */
uint64_t
ctr_wait(const char *name, uint64_t want, unsigned int ms)
{
	uint64_t v;

	for (unsigned int i = 0;; i++) {
		v = fx_sysctl_u64(name);
		if (v == want || i >= ms)
			return (v);
		usleep(1000);
	}
}

/*
 * Every case starts with no session left over from the one before.  If one
 * leaked (a case failed), say so once and stop waiting for it.
 */
uint64_t
settle(void)
{
	static bool leaked;
	uint64_t v = ctr_wait(ACTIVE, 0, leaked ? 0 : 5000);

	if (v != 0 && !leaked) {
		tap_diag("%llu session(s) left over: not waiting any more",
		    (unsigned long long)v);
		leaked = true;
	}
	return (v);
}

int
enable_err(int fd, const void *en, socklen_t len)
{
	int r;

	errno = 0;
	r = ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_ENABLE, en, len);
	if (r == 0)
		return (0);
	if (r != -1 || errno == 0)
		return (-1000);		/* not a system-call style failure */
	return (errno);
}

int
set_mode_err(int fd, int v)
{
	errno = 0;
	if (ktls_setsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &v,
	    sizeof(v)) == 0)
		return (0);
	return (errno != 0 ? errno : -1000);
}

int
mode_of(int fd)
{
	int mode = -1;
	socklen_t len = sizeof(mode);

	if (ktls_getsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &mode,
	    &len) != 0 || len != sizeof(mode))
		return (-1);
	return (mode);
}

int
closed_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	close(fd);
	return (fd);
}

int
read_exact(int fd, void *buf, size_t len, int ms)
{
	size_t off = 0;

	while (off < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, ms) != 1)
			return (-1);
		n = read(fd, (uint8_t *)buf + off, len - off);
		if (n <= 0)
			return (-1);
		off += (size_t)n;
	}
	return (0);
}

bool
peer_quiet(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return (poll(&p, 1, ms) == 0);
}

uint64_t
rec_seq_of(const struct tls_enable *en)
{
	uint64_t seq = 0;

	for (int i = 0; i < 8; i++)
		seq = seq << 8 | en->rec_seq[i];
	return (seq);
}
