/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ktls-switch against a live connection, in a guest whose kernel has kTLS
 * (tests/kernel/guest.py puts the tool in /t).  This program holds a
 * software session (IPv4 and IPv6), writes, then runs `ktls-switch -i
 * laddr lport faddr fport` on it, as an operator would: the tool finds
 * this process through its control socket and the session moves to the
 * kernel while the program goes on writing.  The peer decrypts one
 * continuous record stream.  Then `-l -a` lists it as ifnet, and `-s`
 * (back to software) fails with the documented error.
 * On a kernel without kTLS it skips.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "linux_tls.h"		/* TCP_ULP where libc has none */
#include "tap.h"

#define TOOL		"/t/ktls-switch"
#define CHUNK		(256 * 1024)

/* The socket's own and its peer's address, as ktls-switch wants them. */
static void
endpoints(int fd, char *laddr, int *lport, char *faddr, int *fport)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	getsockname(fd, (struct sockaddr *)&a, &len);
	if (a.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&a;

		inet_ntop(AF_INET, &s->sin_addr, laddr, INET6_ADDRSTRLEN);
		*lport = ntohs(s->sin_port);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a;

		inet_ntop(AF_INET6, &s->sin6_addr, laddr, INET6_ADDRSTRLEN);
		*lport = ntohs(s->sin6_port);
	}
	len = sizeof(a);
	getpeername(fd, (struct sockaddr *)&a, &len);
	if (a.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&a;

		inet_ntop(AF_INET, &s->sin_addr, faddr, INET6_ADDRSTRLEN);
		*fport = ntohs(s->sin_port);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a;

		inet_ntop(AF_INET6, &s->sin6_addr, faddr, INET6_ADDRSTRLEN);
		*fport = ntohs(s->sin6_port);
	}
}

/* Run the tool; its exit status, its output (stdout and stderr) in out. */
static int
tool(char *out, size_t size, const char *args)
{
	char cmd[512];
	FILE *p;
	size_t n = 0;
	int st;

	snprintf(cmd, sizeof(cmd), TOOL " %s 2>&1", args);
	if ((p = popen(cmd, "r")) == NULL)
		return (-1);
	while (n + 1 < size && fgets(out + n, (int)(size - n), p) != NULL)
		n += strlen(out + n);
	out[n] = '\0';
	st = pclose(p);
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static int
mode_of(int fd)
{
	int mode = -1;
	socklen_t len = sizeof(mode);

	if (ktls_getsockopt(fd, IPPROTO_TCP, TCP_TXTLS_MODE, &mode, &len) != 0)
		return (-1);
	return (mode);
}

static void
case_switch(int family, const char *sname, const uint8_t *data)
{
	uint64_t to_ifnet = fx_sysctl_u64("kern.ipc.tls.stats.switch_to_ifnet");
	char laddr[INET6_ADDRSTRLEN], faddr[INET6_ADDRSTRLEN];
	char args[256], out[4096];
	struct fx_keys k;
	struct fx_rx rx = { 0 };
	size_t sent = 0;
	int fds[2], lport = 0, fport = 0, rc;

	REQUIRE(fx_enabled_pair(family, sname, 77, &k, fds) == 0, );
	REQUIRE(fx_rx_start(&rx, fds[1], &k.en, false) == 0, );
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	for (int i = 0; i < 4; i++, sent += CHUNK)
		CHECK(ktls_write(fds[0], data + sent, CHUNK) == CHUNK);
	endpoints(fds[0], laddr, &lport, faddr, &fport);
	snprintf(args, sizeof(args), "-i %s %d %s %d", laddr, lport, faddr,
	    fport);
	rc = tool(out, sizeof(out), args);
	tap_diag("ktls-switch %s: exit %d: %s", args, rc, out);
	CHECK(rc == 0 && strstr(out, "switched") != NULL);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	CHECK(fx_sysctl_u64("kern.ipc.tls.stats.switch_to_ifnet") ==
	    to_ifnet + 1);
	/* The program goes on writing: now the kernel frames it. */
	for (int i = 0; i < 4; i++, sent += CHUNK)
		CHECK(ktls_write(fds[0], data + sent, CHUNK) == CHUNK);
	rc = tool(out, sizeof(out), "-l -a");
	CHECK(rc == 0 && strstr(out, "ifnet") != NULL);
	snprintf(args, sizeof(args), "-s %s %d %s %d", laddr, lport, faddr,
	    fport);
	rc = tool(out, sizeof(out), args);
	tap_diag("ktls-switch %s: exit %d: %s", args, rc, out);
	CHECK(rc == 1 && strstr(out, "not supported") != NULL);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_IFNET);
	CHECK(ktls_close(fds[0]) == 0);
	CHECK(fx_rx_finish(&rx, 60000));
	if (rx.dec_failed)
		tap_diag("decrypt: %s", rx.dec_error);
	CHECK(!rx.dec_failed && rx.read_errno == 0);
	CHECK(rx.bytes == sent);
	CHECK(rx.hash == fx_fnv1a(FX_FNV_INIT, data, sent));
	for (size_t i = 1; i < rx.nrecs; i++)
		if (rx.recs[i].seq != rx.recs[i - 1].seq + 1) {
			tap_diag("record %zu: sequence %llu after %llu", i,
			    (unsigned long long)rx.recs[i].seq,
			    (unsigned long long)rx.recs[i - 1].seq);
			CHECK(false);
			break;
		}
	CHECK(rx.nrecs > 0 && rx.recs[0].seq == 77);
	close(fds[1]);
	fx_rx_free(&rx);
}

int
main(void)
{
	uint8_t *data;
	int fds[2], r, e, on = 1;

	fx_watchdog(120);
	if (fx_tcp_pair(AF_INET, fds) != 0) {
		printf("Bail out! no loopback TCP connection\n");
		return (1);
	}
	r = setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", 3);
	e = errno;
	close(fds[0]);
	close(fds[1]);
	if (r != 0 && e == ENOENT) {
		printf("1..0 # SKIP no kernel TLS\n");
		return (0);
	}
	ktls_sysctl_set("kern.ipc.tls.enable", &on, sizeof(on));
	data = malloc(8 * CHUNK);
	fx_pattern(data, 8 * CHUNK, 5);
	case_switch(AF_INET, "TLS1.3-AES-128-GCM", data);
	tap_result("ktls-switch -i on a live IPv4 TLS 1.3 session: switched, "
	    "listed as ifnet, -s refused; one continuous valid stream");
	case_switch(AF_INET6, "TLS1.2-CHACHA20-POLY1305", data);
	tap_result("the same on IPv6, TLS 1.2 CHACHA20-POLY1305");
	free(data);
	return (tap_done());
}
