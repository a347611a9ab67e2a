/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: control messages given to ktls_sendmsg() on an
 * enabled socket (TLS 1.3 AES-128-GCM, enabled once).
 *
 * msg_control is a heap buffer of exactly msg_controllen bytes from the
 * input: any levels, types and cmsg_len values, truncated headers and
 * cmsg_len beyond the buffer included, so ASan sees any read past it.
 * msg_iov is 0 to 3 small iovecs.  The engine must return a count or -1
 * with an errno, never crash, and never take more than it was given.  The
 * peer is drained without blocking so that buffers never fill.
 *
 * Input: u8 flags (bit 0 MSG_MORE, bit 1 MSG_DONTWAIT, bit 2 msg_control
 * NULL with a non-zero msg_controllen, bits 4-5 iovec count), u8 bytes per
 * iovec (0..63), u16 msg_controllen (at most 4096, and at most the bytes
 * that follow), then the control bytes.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "ktls.h"

#define CONTROL_MAX	4096

static int fds[2] = { -1, -1 };
static struct fx_keys keys;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	fx_enable_ktls();
	if (fx_enabled_pair(AF_INET, "TLS1.3-AES-128-GCM", 0, &keys,
	    fds) != 0) {
		perror("fuzz_cmsg: enabled pair");
		abort();
	}
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	return (0);
}

static void
drain(void)
{
	uint8_t buf[65536];

	while (read(fds[1], buf, sizeof(buf)) > 0)
		;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t payload[64] = "fuzz_cmsg payload: 0123456789"
	    "abcdefghijklmnopqrstuvwxyz!";
	struct iovec iov[3];
	struct msghdr msg;
	uint8_t fl, *control = NULL;
	size_t ilen, clen, niov, total;
	int flags = MSG_NOSIGNAL;
	ssize_t n;

	drain();
	if (size < 4)
		return (0);
	fl = data[0];
	ilen = data[1] % 64;
	clen = (size_t)(data[2] | data[3] << 8) % (CONTROL_MAX + 1);
	data += 4;
	size -= 4;
	memset(&msg, 0, sizeof(msg));
	if (fl & 4) {
		/* A length without a buffer. */
		msg.msg_controllen = clen;
	} else {
		/* Exactly the control bytes the input has. */
		clen = size < clen ? size : clen;
		control = malloc(clen);
		assert(control != NULL || clen == 0);
		if (clen > 0)
			memcpy(control, data, clen);
		msg.msg_control = control;
		msg.msg_controllen = clen;
	}
	niov = (fl >> 4) & 3;
	for (size_t i = 0; i < niov; i++) {
		iov[i].iov_base = (void *)payload;
		iov[i].iov_len = ilen;
	}
	total = niov * ilen;
	msg.msg_iov = niov > 0 ? iov : NULL;
	msg.msg_iovlen = niov;
	if (fl & 1)
		flags |= MSG_MORE;
	if (fl & 2)
		flags |= MSG_DONTWAIT;
	errno = 0;
	n = ktls_sendmsg(fds[0], &msg, flags);
	/* Nothing here may break the connection: the peer is alive. */
	if (n < -1 || (n == -1 && (errno == 0 || errno == EPIPE ||
	    errno == ECONNRESET || errno == EOVERFLOW)) ||
	    (n >= 0 && (size_t)n > total)) {
		fprintf(stderr, "fuzz_cmsg: sendmsg returned %zd (errno %d) for "
		    "%zu bytes\n", n, errno, total);
		abort();
	}
	free(control);
	drain();
	return (0);
}
