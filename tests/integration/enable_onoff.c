/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kern.ipc.tls.enable is off by default (EOPNOTSUPP) and KTLS_ENABLE=1 in
 * the environment, or the sysctl, turns it on.  The environment is read
 * in a re-exec of this program (CHILD_ARG), which reports through its exit
 * status.  (Common parts: enable_common.h.)
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enable_common.h"

extern char **environ;

#define CHILD_ARG	"--child-report-enable"

/* The tests run with KTLS_ENABLE=0: off, as FreeBSD boots. */
CASE(case_off_by_default,
    "kern.ipc.tls.enable is 0 under KTLS_ENABLE=0: enable gives "
    "EOPNOTSUPP (IPv4, IPv6), socket stays plain")
{
	struct fx_keys k;
	int v = -1, fds[2];
	size_t len = sizeof(v);

	CHECK(ktls_sysctl_get("kern.ipc.tls.enable", &v, &len) == 0);
	CHECK(len == sizeof(int));
	CHECK(v == 0);
	for (size_t f = 0; f < NELEM(families); f++) {
		fx_keys_init(&k, suite(f ? GCM13 : GCM12), 0);
		REQUIRE(fx_tcp_pair(families[f], fds) == 0, );
		CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EOPNOTSUPP);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
		CHECK(fx_sysctl_u64(ACTIVE) == 0);
		CHECK(fx_sysctl_u64(OFFLOAD) == 0);
		/* Refused, so the socket is an ordinary one. */
		check_plain(fds[0], fds[1], 11 + (uint32_t)f);
		close(fds[0]);
		close(fds[1]);
	}
}

/* Setting it to 1 lets the same call through; the records decrypt. */
CASE(case_sysctl_turns_on,
    "kern.ipc.tls.enable set to 1: enable works, records decrypt "
    "(IPv4, IPv6)")
{
	static const size_t w[] = { 100 }, want[] = { 100 };
	struct fx_keys k;
	int fds[2];

	CHECK(fx_sysctl_set_int("kern.ipc.tls.enable", 1) == 0);
	CHECK(fx_sysctl_int("kern.ipc.tls.enable") == 1);
	for (size_t f = 0; f < NELEM(families); f++) {
		fx_keys_init(&k, suite(f ? GCM13 : GCM12), 5);
		REQUIRE(fx_tcp_pair(families[f], fds) == 0, );
		CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
		CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
		send_verify(fds, &k.en, w, 1, want, 1, 21);
	}
}

/* And back to 0: new enables are refused again; then on for the rest. */
CASE(case_sysctl_turns_off,
    "kern.ipc.tls.enable set back to 0: EOPNOTSUPP again, then 1 "
    "again works")
{
	struct fx_keys k;
	int fds[2];

	settle();
	CHECK(fx_sysctl_set_int("kern.ipc.tls.enable", 0) == 0);
	CHECK(fx_sysctl_int("kern.ipc.tls.enable") == 0);
	fx_keys_init(&k, suite(CHACHA13), 0);
	REQUIRE(fx_tcp_pair(AF_INET, fds) == 0, );
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == EOPNOTSUPP);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_NONE);
	CHECK(fx_sysctl_u64(ACTIVE) == 0);
	check_plain(fds[0], fds[1], 31);
	CHECK(fx_sysctl_set_int("kern.ipc.tls.enable", 1) == 0);
	CHECK(fx_sysctl_int("kern.ipc.tls.enable") == 1);
	CHECK(enable_err(fds[0], &k.en, sizeof(k.en)) == 0);
	CHECK(mode_of(fds[0]) == TCP_TLS_MODE_SW);
	CHECK(ktls_close(fds[0]) == 0);
	close(fds[1]);
}

/*
 * The child's side of the re-exec: report kern.ipc.tls.enable, and whether
 * enabling a loopback socket works, through the exit status:
 * 40 + 2 * value + (enable succeeded).  Anything else is an error.
 */
static int
child_report_enable(void)
{
	struct fx_keys k;
	int v = -1, fds[2], e;
	size_t len = sizeof(v);

	fx_watchdog(30);
	if (ktls_sysctl_get("kern.ipc.tls.enable", &v, &len) != 0 ||
	    len != sizeof(int) || (v != 0 && v != 1))
		return (2);
	fx_keys_init(&k, suite(GCM12), 0);
	if (fx_tcp_pair(AF_INET, fds) != 0)
		return (3);
	e = enable_err(fds[0], &k.en, sizeof(k.en));
	if (e != 0 && e != EOPNOTSUPP)
		return (4);
	/* The setting and the behaviour must agree. */
	if ((e == 0) != (v == 1))
		return (5);
	return (40 + 2 * v + (e == 0));
}

/*
 * Run this very binary again with KTLS_ENABLE set to value (NULL: unset),
 * everything else in the environment as it is; its exit status, or -1.
 */
static int
spawn_child(const char *value)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { (char *)"enable_onoff", (char *)CHILD_ARG, NULL };
	char var[64], **envp;
	size_t n = 0, m = 0;
	pid_t pid;
	int st, r;

	while (environ[n] != NULL)
		n++;
	if ((envp = calloc(n + 2, sizeof(*envp))) == NULL)
		return (-1);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "KTLS_ENABLE=", 12) != 0)
			envp[m++] = environ[i];
	if (value != NULL) {
		snprintf(var, sizeof(var), "KTLS_ENABLE=%s", value);
		envp[m++] = var;
	}
	envp[m] = NULL;
	/* Its watchdog message, if any, must not mix with our TAP stream. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	r = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	if (r != 0)
		return (-1);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return (-1);
	return (WEXITSTATUS(st));
}

/* The child's verdict for each KTLS_ENABLE (NULL: unset). */
static const struct {
	const char	*value;
	int		want;		/* its exit status */
	const char	*name;
} env_cases[] = {
	{ "1", 43, "re-exec with KTLS_ENABLE=1: the child reads 1 and can "
	    "enable" },
	{ "0", 40, "re-exec with KTLS_ENABLE=0: the child reads 0, "
	    "EOPNOTSUPP" },
	{ NULL, 40, "re-exec without KTLS_ENABLE: off by default" },
};

static void
case_env(const char *value, int want, const char *name)
{
	int st = spawn_child(value);

	if (st != want)
		tap_diag("child with KTLS_ENABLE=%s exited %d, want %d",
		    value != NULL ? value : "(unset)", st, want);
	CHECK(st == want);
	tap_result("%s", name);
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], CHILD_ARG) == 0)
		return (child_report_enable());

	/* Off: the cases here turn it on and off themselves. */
	enable_begin(false);
	case_off_by_default();
	case_sysctl_turns_on();
	case_sysctl_turns_off();
	for (size_t i = 0; i < NELEM(env_cases); i++)
		case_env(env_cases[i].value, env_cases[i].want,
		    env_cases[i].name);
	return (tap_done());
}
