/* SPDX-License-Identifier: BSD-2-Clause */
/* The engine's threads. */
#include <signal.h>

#include "ktls_int.h"

/*
 * Start a detached engine thread.  It takes no signal: a process-directed
 * signal must reach the application's threads (a server waiting in
 * sigsuspend() with the signal masked elsewhere would never see it), and
 * a thread inherits its creator's mask.  0 or a negative errno.
 */
int
ktls_thread_start(void *(*fn)(void *), void *arg, const char *name)
{
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int error;

	if ((error = pthread_attr_init(&attr)) != 0)
		return (-error);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	/* Except SIGSYS: a blocked forced signal kills (guard.c). */
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = pthread_create(&tid, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (error != 0)
		return (-error);
	pthread_setname_np(tid, name);
	return (0);
}
