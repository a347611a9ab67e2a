/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test fixture: a real TCP connection on loopback (IPv4 or IPv6), tls_enable
 * parameters with random keys for any suite, and a receiver thread that
 * reads the stream and decrypts it with tlsdec (code the engine does not
 * share).
 */
#ifndef KTLS_FIXTURE_H
#define KTLS_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <ktls.h>

#include "tlsdec.h"

/* One row of the suite matrix: what the tests enable. */
struct fx_suite {
	const char	*name;
	uint8_t		vminor;
	int		cipher;
	int		key_len;
	int		iv_len;
	int		auth;
	int		auth_key_len;
	/*
	 * The suite as Linux kTLS's TLS_TX has it (its version and
	 * TLS_CIPHER_*), in the names of the tests of that API; NULL: Linux
	 * has no such suite (CBC).  Its crypto_info: linux_info.h.
	 */
	const char	*linux_name;
};
extern const struct fx_suite fx_suites[];
extern const int fx_nsuites;

/* Key material and the struct that points into it. */
struct fx_keys {
	uint8_t			key[32], iv[16], auth[48];
	struct tls_enable	en;
};
void	fx_keys_init(struct fx_keys *k, const struct fx_suite *s,
	    uint64_t start_seq);

/* The fx_suites row of that name (aborts on an unknown one). */
const struct fx_suite *fx_suite_by_name(const char *name);

/* A connected pair: fds[0] sends (client side), fds[1] receives. */
int	fx_tcp_pair(int family, int fds[2]);
/* Connect s, a fresh socket, to a loopback listener: the accepted peer. */
int	fx_connect_loopback(int s, int family);
/* A pair whose fds[0] is enabled with fresh keys (k) for suite sname. */
int	fx_enabled_pair(int family, const char *sname, uint64_t seq,
	    struct fx_keys *k, int fds[2]);
/* Turn kern.ipc.tls.enable on (tests run with it off by default). */
void	fx_enable_ktls(void);
/*
 * kern.ipc.tls.*, for every test that reads a counter or sets a tunable.
 * fx_sysctl_u64: the uint64 counter name, or UINT64_MAX (a value no
 * counter reaches, so a check against it fails) with a "# " diagnostic
 * when it cannot be read.  fx_sysctl_set_int: ktls_sysctl_set of an int
 * tunable, 0 or -1 with a diagnostic.
 */
uint64_t fx_sysctl_u64(const char *name);
int	fx_sysctl_int(const char *name);	/* a tunable; INT_MIN: none */
int	fx_sysctl_set_int(const char *name, int v);

/* A record as the receiver decrypted it. */
struct fx_rec {
	uint8_t		type;
	uint64_t	seq;
	size_t		len;
	uint8_t		*data;
};

/* The receiving side: reads until EOF (or error), decrypting as it goes. */
struct fx_rx {
	int		fd;
	struct tlsdec	*dec;
	pthread_t	tid;
	struct fx_rec	*recs;
	size_t		nrecs, cap;
	size_t		bytes;		/* plaintext bytes */
	uint64_t	wire;		/* bytes read from the socket */
	int		read_errno;	/* errno of a failed read, 0 at EOF */
	bool		dec_failed;
	char		dec_error[256];
	unsigned int	stall_ms;	/* sleep this long before reading */
	bool		keep_data;	/* else only type/len/seq and a digest */
	uint64_t	hash;		/* FNV-1a of the app-data plaintext */
};
int	fx_rx_start(struct fx_rx *rx, int fd, const struct tls_enable *en,
	    bool keep_data);
/* Join the receiver (after the sender closed or shut down). */
void	fx_rx_join(struct fx_rx *rx);
/*
 * Join it within ms.  A receiver still reading then has its socket shut
 * down so the thread ends anyway, and the false return fails the case
 * rather than hanging it.
 */
bool	fx_rx_finish(struct fx_rx *rx, unsigned int ms);
/* CLOCK_MONOTONIC in seconds; a sleep that goes on after signals. */
double	fx_now_s(void);
void	fx_sleep_ms(unsigned int ms);
/* pthread_join within ms: true if the thread ended. */
bool	fx_join_ms(pthread_t t, unsigned int ms);
void	fx_rx_free(struct fx_rx *rx);
/* Concatenated plaintext of the application-data records (malloc'd). */
uint8_t	*fx_rx_appdata(const struct fx_rx *rx, size_t *len);

uint64_t fx_fnv1a(uint64_t h, const void *buf, size_t len);
#define FX_FNV_INIT	0xcbf29ce484222325ULL
/* Deterministic test pattern. */
void	fx_pattern(uint8_t *buf, size_t len, uint32_t seed);
/* A temporary file of len pattern bytes; returns an fd open for reading. */
int	fx_tmpfile(size_t len, uint32_t seed);

/* Fails the test (exit 1 after a diagnostic) if it runs too long. */
void	fx_watchdog(unsigned int seconds);

/*
 * fork() for a test whose process has threads (the engine's, a receiver):
 * under AddressSanitizer it first waits until every other thread sleeps,
 * and the child gets a watchdog of its own (fixture.c says why).
 */
pid_t	fx_fork(void);

#endif /* KTLS_FIXTURE_H */
