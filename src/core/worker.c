/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Workers: the "KTLS" kernel process of FreeBSD.  One thread per CPU the
 * process may run on (none when that is one CPU: the writer encrypts),
 * each with its own cache-line aligned queue of records.  A session is pinned to
 * one worker, so its records are encrypted one at a time in sequence order
 * (which TLS 1.0's chained IV needs, and which keeps the ready records of a
 * socket a prefix of its queue).  The worker takes its whole list under the
 * lock and works on it unlocked; enqueuers signal it only when it sleeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ktls.h"
#include "ktls_int.h"

struct ktls_wq {
	pthread_mutex_t		mtx;
	pthread_cond_t		cv;
	struct ktls_record	*head, *tail;
	bool			running;
} __attribute__((aligned(64)));

static struct ktls_wq *wqs;
static unsigned int nwq;
/*
 * The process may run on one CPU only (taskset, nginx's
 * worker_cpu_affinity): a worker could only take turns with the writer
 * on that CPU, and every handoff would cost two context switches and a
 * contended so->mtx (measured, 1 GiB sendfile on one CPU: a fifth of the
 * server's CPU time in finish_task_switch).  Then no worker is started
 * and the writer encrypts its own records (ktls_enqueue()).
 */
static bool wq_inline;
static bool wq_started;
static unsigned int wq_ncpu;		/* CPUs the process may run on */

/*
 * With workers, who encrypts a socket's next records when nothing of it
 * is with its worker: KTLS_WORKERS at load time.  "auto" (the default):
 * the writer while the machine is busy (the 1-minute load average at
 * least the process's CPUs less a half, looked at once a second), the
 * worker otherwise.  With every CPU busy a worker only takes turns with
 * the writers at the cost of the handoffs (measured, 2 nginx workers on
 * 2 CPUs, 64 KiB responses: 0.99x stock's CPU per request through the
 * workers, 1.48x by the writers); with a CPU to spare it encrypts while
 * the writer goes on.  "workers": always the worker; "writer": always
 * the writer (both for tests and for operators who know their load).
 */
enum { WQ_AUTO, WQ_WORKERS, WQ_WRITER };
static int wq_policy = WQ_AUTO;
static _Atomic uint64_t wq_load_ns;	/* when the load was looked at */
static _Atomic bool wq_busy;

__attribute__((constructor)) static void
wq_load_env(void)
{
	const char *e = getenv("KTLS_WORKERS");

	if (e == NULL || strcmp(e, "auto") == 0)
		return;
	if (strcmp(e, "workers") == 0)
		wq_policy = WQ_WORKERS;
	else if (strcmp(e, "writer") == 0)
		wq_policy = WQ_WRITER;
	else
		fprintf(stderr, "ktls: KTLS_WORKERS=%s is none of auto, "
		    "workers, writer: auto\n", e);
}

/*
 * The 1-minute load average, or -1.  Not getloadavg(): libc's close()
 * inside it would be trapped by the guard, and the caller holds so->mtx
 * (a trapped call under an engine lock is what the lock order forbids).
 */
static double
wq_loadavg(void)
{
	char buf[64];
	ssize_t n;
	int fd;

	if ((fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC)) < 0)
		return (-1);
	n = ktls_sys.read(fd, buf, sizeof(buf) - 1);
	ktls_sys.close(fd);
	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	return (strtod(buf, NULL));
}

/* Is the machine busy (WQ_AUTO)?  Looked at once a second at most. */
static bool
wq_machine_busy(void)
{
	struct timespec ts;
	uint64_t now, then;
	double la;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	then = atomic_load_explicit(&wq_load_ns, memory_order_relaxed);
	if (now - then >= 1000000000u && atomic_compare_exchange_strong(
	    &wq_load_ns, &then, now) && (la = wq_loadavg()) >= 0)
		atomic_store_explicit(&wq_busy, la >= (double)wq_ncpu - 0.5,
		    memory_order_relaxed);
	return (atomic_load_explicit(&wq_busy, memory_order_relaxed));
}

/*
 * The writer encrypts first..last itself: there is no worker, or the
 * policy says so and nothing of the socket is with the worker (at_worker
 * 0: every record queued before is ready, the worker is done with this
 * session, and so->mtx, held, keeps it so).
 */
static bool
wq_writer_encrypts(const struct ktls_record *first)
{
	if (wq_inline)
		return (true);
	if (wq_policy == WQ_WORKERS ||
	    (wq_policy == WQ_AUTO && !wq_machine_busy()))
		return (false);
	return (first->so->at_worker == 0);
}
static _Atomic unsigned int wq_next;
static pthread_mutex_t wq_start_mtx = PTHREAD_MUTEX_INITIALIZER;

static size_t
pages_of(const struct ktls_record *r)
{
	return ((r->len + 4095) / 4096);
}

/*
 * The writer encrypts the framed records now (no worker, or see
 * wq_writer_encrypts()), in order, under so->mtx (which keeps it the
 * socket's only encrypter), and sends what is ready.
 */
static void
enqueue_inline(struct ktls_record *first)
{
	struct ktls_sock *so = first->so;
	struct ktls_record *r, *next;
	int error;

	for (r = first; r != NULL; r = next) {
		next = r->wnext;
		r->wnext = NULL;
		/* Invariant 1: a socket that failed sends nothing more. */
		error = atomic_load_explicit(&so->dead, memory_order_relaxed) ?
		    0 : ktls_encrypt(r);
		if (error != 0)
			ktls_sock_fail(so, -error, true);
		atomic_store_explicit(&r->ready, true, memory_order_release);
	}
	ktls_sock_txo(so)->flush(so);
}

void
ktls_enqueue(struct ktls_record *first, struct ktls_record *last,
    unsigned int n)
{
	struct ktls_wq *wq;
	size_t pages = 0;

	if (wq_writer_encrypts(first)) {
		enqueue_inline(first);
		return;
	}
	first->so->at_worker += n;	/* so->mtx held */
	wq = &wqs[first->so->worker];

	for (struct ktls_record *r = first; r != NULL; r = r->wnext)
		pages += pages_of(r);
	ktls_counter_add(KC_SW_TX_INQUEUE, n);
	ktls_counter_add(KC_SW_TX_PENDING, (int64_t)pages);

	pthread_mutex_lock(&wq->mtx);
	if (wq->tail != NULL)
		wq->tail->wnext = first;
	else
		wq->head = first;
	wq->tail = last;
	if (!wq->running)
		pthread_cond_signal(&wq->cv);
	pthread_mutex_unlock(&wq->mtx);
}

/* sendfile: read the record's payload from the file (page cache). */
static int
fill_from_file(struct ktls_record *r, uint8_t *dst)
{
	size_t done = 0;
	ssize_t n;

	while (done < r->len) {
		n = ktls_sys.pread(r->file->fd, dst + done, r->len - done,
		    r->file_off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (-errno);
		if (n == 0)	/* the file shrank since sendfile(): no garbage */
			return (-EIO);
		done += (size_t)n;
	}
	ktls_fileref_rele(r->file);
	r->file = NULL;
	return (0);
}

/* Encrypt one record; 0 or a negative errno (the socket must be reset). */
int
ktls_encrypt(struct ktls_record *r)
{
	struct ktls_session *s = r->so->tx;
	uint8_t *payload = r->buf + s->suite->prefix_len;
	struct ktls_crypt_op op = {
		.seq = r->seq,
		.type = r->type,
		.rec = r->buf,
		.src = payload,
		.len = r->len,
	};
	int error;

#ifdef KTLS_INVARIANTS
	/*
	 * TLS 1.0's implicit IV is the last ciphertext block of the record
	 * before: its records are encrypted strictly in sequence order,
	 * starting with the first one framed, and each once.  (Unlocked:
	 * one thread at a time encrypts a socket's records, see
	 * ktls_int.h; a second one here is a bug of that too.)
	 */
	if (s->suite->kind == KTLS_CBC && s->suite->explicit_iv_len == 0) {
		struct ktls_sock *so = r->so;

		KASSERT(so->inv_framed && (so->inv_encrypted ?
		    so->inv_last_enc != UINT64_MAX &&
		    r->seq == so->inv_last_enc + 1 :
		    r->seq == so->inv_first_seq),
		    ("%s: TLS 1.0 record seq %ju encrypted after %ju%s",
		    __func__, (uintmax_t)r->seq, (uintmax_t)so->inv_last_enc,
		    so->inv_encrypted ? "" : " (none yet)"));
		so->inv_encrypted = true;
		so->inv_last_enc = r->seq;
	}
#endif
	if (r->file != NULL && (error = fill_from_file(r, payload)) != 0)
		return (error);
	error = ktls_fault_hit(KF_CRYPTO) ? -EBADMSG :
	    s->be->encrypt(s->cctx, &op);
	if (error != 0) {
		ktls_counter_add(KC_FAILED_CRYPTO, 1);
		return (error);
	}
	ktls_counter_add(KC_TX_RECORDS, 1);
	ktls_counter_add(KC_TX_BYTES, r->len);
	return (0);
}

static void
worker_run(struct ktls_record *list)
{
	struct ktls_record *r, *next;
	struct ktls_sock *so;
	int error;

	for (r = list; r != NULL; r = next) {
		next = r->wnext;
		r->wnext = NULL;
		so = r->so;
		/* Invariant 1: a socket that failed sends nothing more. */
		error = atomic_load_explicit(&so->dead, memory_order_relaxed) ?
		    0 : ktls_encrypt(r);
		ktls_counter_add(KC_SW_TX_INQUEUE, -1);
		ktls_counter_add(KC_SW_TX_PENDING, -(int64_t)pages_of(r));

		pthread_mutex_lock(&so->mtx);
		if (error != 0)
			ktls_sock_fail(so, -error, true);
		atomic_store_explicit(&r->ready, true, memory_order_release);
		KASSERT(so->at_worker > 0, ("%s: seq %ju not counted",
		    __func__, (uintmax_t)r->seq));
		so->at_worker--;
		/* Send once per run of the same socket's records. */
		if (next == NULL || next->so != so) {
			ktls_sock_txo(so)->flush(so);
			ktls_sock_wakeup(so);
		}
		ktls_sock_unlock(so);
	}
}

static void *
worker_main(void *arg)
{
	struct ktls_wq *wq = arg;
	struct ktls_record *list;

	for (;;) {
		pthread_mutex_lock(&wq->mtx);
		while (wq->head == NULL) {
			wq->running = false;
			pthread_cond_wait(&wq->cv, &wq->mtx);
		}
		wq->running = true;
		list = wq->head;
		wq->head = wq->tail = NULL;
		pthread_mutex_unlock(&wq->mtx);
		worker_run(list);
	}
	return (NULL);
}

int
ktls_workers_start(void)
{
	struct ktls_wq *q;
	cpu_set_t set;
	long ncpu;
	int error = 0;

	pthread_mutex_lock(&wq_start_mtx);
	if (wq_started)
		goto out;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	/* One worker per CPU the process may run on. */
	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    CPU_COUNT(&set) < ncpu)
		ncpu = CPU_COUNT(&set);
	wq_ncpu = (unsigned int)ncpu;
	if (ncpu <= 1) {
		wq_inline = wq_started = true;
		goto out;
	}
	q = aligned_alloc(64, sizeof(*q) * (size_t)ncpu);
	if (q == NULL) {
		error = -ENOMEM;
		goto out;
	}
	memset(q, 0, sizeof(*q) * (size_t)ncpu);
	for (long i = 0; i < ncpu; i++) {
		pthread_mutex_init(&q[i].mtx, NULL);
		pthread_cond_init(&q[i].cv, NULL);
		q[i].running = true;
		if (ktls_thread_start(worker_main, &q[i], "ktls-worker") != 0) {
			error = i == 0 ? -EAGAIN : 0;
			ncpu = i;
			break;
		}
	}
	if (error == 0) {
		nwq = (unsigned int)ncpu;
		wqs = q;
		wq_started = true;
		ktls_counter_add(KC_THREADS, ncpu);
	}
out:
	pthread_mutex_unlock(&wq_start_mtx);
	return (error);
}

/* In a fork()ed child: the workers are gone; the first enable restarts. */
void
ktls_workers_atfork_child(void)
{
	pthread_mutex_init(&wq_start_mtx, NULL);
	wqs = NULL;	/* the parent's records in them are not ours */
	nwq = 0;
	wq_inline = wq_started = false;
}

unsigned int
ktls_worker_pick(void)
{
	return (nwq == 0 ? 0 : atomic_fetch_add(&wq_next, 1) % nwq);
}
