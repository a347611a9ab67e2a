/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kern.ipc.tls.*: the tunables and counters, declared once in one table
 * (names and meanings as FreeBSD's sysctl declarations in uipc_ktls.c).
 *
 * Counters are per-thread slots, written only by their thread and summed
 * on read, so the data path never shares a cache line for accounting.
 * A slot is folded into `retired' when its thread exits.
 */
#include <errno.h>
#include <string.h>

#include "ktls.h"
#include "ktls_int.h"

_Atomic int ktls_tunable_enable;
_Atomic int ktls_tunable_maxlen = TLS_MAX_MSG_SIZE_V10_2;
_Atomic int ktls_tunable_autocork_us;

int
ktls_autocork_us(void)
{
	return (atomic_load_explicit(&ktls_tunable_autocork_us,
	    memory_order_relaxed));
}
_Atomic int ktls_tunable_ifnet_permitted;

enum kc_kind { KC_TUNABLE, KC_GAUGE, KC_TOTAL };

static const struct kc_desc {
	const char	*name;
	const char	*descr;
	uint8_t		kind;
	int		id;		/* enum ktls_counter, or tunable index */
} kc_table[] = {
	{ "kern.ipc.tls.enable", "Enable support for kernel TLS offload",
	    KC_TUNABLE, 0 },
	{ "kern.ipc.tls.maxlen", "Maximum TLS record size",
	    KC_TUNABLE, 1 },
	{ "kern.ipc.tls.autocork_us",
	    "Longest a small record waits for more data or a thread's wait "
	    "before it is sent, in microseconds (0: sent at once)",
	    KC_TUNABLE, 2 },
	{ "kern.ipc.tls.ifnet.permitted",
	    "Whether to permit hardware (ifnet) TLS sessions (here: Linux "
	    "kernel TLS)", KC_TUNABLE, 3 },
	{ "kern.ipc.tls.stats.threads", "Number of TLS threads in thread-pool",
	    KC_GAUGE, KC_THREADS },
	{ "kern.ipc.tls.stats.active", "Total Active TLS sessions",
	    KC_GAUGE, KC_ACTIVE },
	{ "kern.ipc.tls.stats.enable_calls",
	    "Total number of TLS enable calls made", KC_TOTAL, KC_ENABLE_CALLS },
	{ "kern.ipc.tls.stats.offload_total",
	    "Total successful TLS setups (parameters set)",
	    KC_TOTAL, KC_OFFLOAD_TOTAL },
	{ "kern.ipc.tls.stats.sw_tx_inqueue",
	    "Number of TLS records in queue to tasks for SW encryption",
	    KC_GAUGE, KC_SW_TX_INQUEUE },
	{ "kern.ipc.tls.stats.sw_tx_pending",
	    "Number of TLS 4k pages pending encryption",
	    KC_GAUGE, KC_SW_TX_PENDING },
	{ "kern.ipc.tls.stats.failed_crypto", "Total TLS crypto failures",
	    KC_TOTAL, KC_FAILED_CRYPTO },
	{ "kern.ipc.tls.stats.tx_records", "Total TLS records encrypted",
	    KC_TOTAL, KC_TX_RECORDS },
	{ "kern.ipc.tls.stats.tx_bytes",
	    "Total application payload bytes encrypted", KC_TOTAL, KC_TX_BYTES },
	{ "kern.ipc.tls.sw.gcm",
	    "Active number of software TLS sessions using AES-GCM",
	    KC_GAUGE, KC_SW_GCM },
	{ "kern.ipc.tls.sw.cbc",
	    "Active number of software TLS sessions using AES-CBC",
	    KC_GAUGE, KC_SW_CBC },
	{ "kern.ipc.tls.sw.chacha20",
	    "Active number of software TLS sessions using Chacha20-Poly1305",
	    KC_GAUGE, KC_SW_CHACHA20 },
	{ "kern.ipc.tls.ifnet.gcm",
	    "Active number of ifnet TLS sessions using AES-GCM",
	    KC_GAUGE, KC_IFNET_GCM },
	{ "kern.ipc.tls.ifnet.chacha20",
	    "Active number of ifnet TLS sessions using Chacha20-Poly1305",
	    KC_GAUGE, KC_IFNET_CHACHA20 },
	{ "kern.ipc.tls.stats.switch_to_ifnet",
	    "TLS sessions switched from SW to ifnet", KC_TOTAL,
	    KC_SWITCH_TO_IFNET },
	{ "kern.ipc.tls.stats.switch_to_sw",
	    "TLS sessions switched from ifnet to SW", KC_TOTAL,
	    KC_SWITCH_TO_SW },
	{ "kern.ipc.tls.stats.switch_failed",
	    "TLS sessions unable to switch between SW and ifnet", KC_TOTAL,
	    KC_SWITCH_FAILED },
	{ "kern.ipc.tls.guard.filters",
	    "Seccomp filters the guard installed (0: no session yet)",
	    KC_TOTAL, KC_GUARD_FILTERS },
	{ "kern.ipc.tls.guard.trapped",
	    "System calls the guard trapped and completed (write family, "
	    "descriptor table, exec)",
	    KC_TOTAL, KC_GUARD_TRAPPED },
	{ "kern.ipc.tls.guard.refused",
	    "Calls refused because they would bypass the engine",
	    KC_TOTAL, KC_GUARD_REFUSED },
};
#define KC_NDESC	(sizeof(kc_table) / sizeof(kc_table[0]))

struct kc_slot {
	struct kc_slot	*next;
	_Atomic int64_t	v[KC__COUNT];
};

static pthread_mutex_t kc_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct kc_slot *kc_slots;	/* live threads' slots */
static struct kc_slot kc_retired;	/* sums of exited threads */
static pthread_key_t kc_key;
static pthread_once_t kc_once = PTHREAD_ONCE_INIT;
static __thread struct kc_slot *kc_mine;

static void
kc_thread_exit(void *arg)
{
	struct kc_slot *s = arg, **pp;

	pthread_mutex_lock(&kc_mtx);
	for (pp = &kc_slots; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	for (int i = 0; i < KC__COUNT; i++)
		atomic_fetch_add_explicit(&kc_retired.v[i],
		    atomic_load_explicit(&s->v[i], memory_order_relaxed),
		    memory_order_relaxed);
	pthread_mutex_unlock(&kc_mtx);
	free(s);
}

static void
kc_init(void)
{
	pthread_key_create(&kc_key, kc_thread_exit);
}

static struct kc_slot *
kc_slot(void)
{
	struct kc_slot *s;

	if ((s = kc_mine) != NULL)
		return (s);
	pthread_once(&kc_once, kc_init);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return (&kc_retired);	/* shared, still atomic: correct */
	pthread_mutex_lock(&kc_mtx);
	s->next = kc_slots;
	kc_slots = s;
	pthread_mutex_unlock(&kc_mtx);
	pthread_setspecific(kc_key, s);
	kc_mine = s;
	return (s);
}

void
ktls_counter_add(enum ktls_counter c, int64_t v)
{
	/* Only this thread writes its slot: a relaxed add is enough. */
	atomic_fetch_add_explicit(&kc_slot()->v[c], v, memory_order_relaxed);
}

/*
 * For the guard's SIGSYS handler, which may run inside malloc (libc's own
 * close while it sets an arena up): the shared slot, never an allocation.
 */
void
ktls_counter_add_shared(enum ktls_counter c, int64_t v)
{
	atomic_fetch_add_explicit(&kc_retired.v[c], v, memory_order_relaxed);
}

uint64_t
ktls_counter_read(enum ktls_counter c)
{
	int64_t sum;

	pthread_mutex_lock(&kc_mtx);
	sum = atomic_load_explicit(&kc_retired.v[c], memory_order_relaxed);
	for (struct kc_slot *s = kc_slots; s != NULL; s = s->next)
		sum += atomic_load_explicit(&s->v[c], memory_order_relaxed);
	pthread_mutex_unlock(&kc_mtx);
	return (sum < 0 ? 0 : (uint64_t)sum);
}

/*
 * In a fork()ed child: a new process starts with its own counts (ktls-stat
 * sums over processes), and only the forking thread survives.
 */
void
ktls_counters_atfork_child(void)
{
	struct kc_slot *mine = kc_mine;

	pthread_mutex_init(&kc_mtx, NULL);
	kc_slots = mine;	/* other threads' slots: leaked with them */
	if (mine != NULL)
		mine->next = NULL;
	for (int i = 0; i < KC__COUNT; i++) {
		atomic_store(&kc_retired.v[i], 0);
		if (mine != NULL)
			atomic_store(&mine->v[i], 0);
	}
}

static _Atomic int *
kc_tunable(int id)
{
	static _Atomic int *const t[] = { &ktls_tunable_enable,
	    &ktls_tunable_maxlen, &ktls_tunable_autocork_us,
	    &ktls_tunable_ifnet_permitted };

	return (t[id]);
}

static const struct kc_desc *
kc_find(const char *name)
{
	if (name == NULL)
		return (NULL);
	for (size_t i = 0; i < KC_NDESC; i++)
		if (strcmp(kc_table[i].name, name) == 0)
			return (&kc_table[i]);
	return (NULL);
}

KTLS_EXPORT int
ktls_sysctl_get(const char *name, void *oldp, size_t *oldlenp)
{
	const struct kc_desc *d;
	size_t need;

	ktls_init();
	if ((d = kc_find(name)) == NULL) {
		errno = ENOENT;
		return (-1);
	}
	if (oldlenp == NULL) {
		errno = EINVAL;
		return (-1);
	}
	need = d->kind == KC_TUNABLE ? sizeof(int) : sizeof(uint64_t);
	if (oldp == NULL) {
		*oldlenp = need;
		return (0);
	}
	if (*oldlenp < need) {
		errno = ENOMEM;
		return (-1);
	}
	if (d->kind == KC_TUNABLE) {
		int v = atomic_load(kc_tunable(d->id));

		memcpy(oldp, &v, sizeof(v));
	} else {
		uint64_t v = ktls_counter_read(d->id);

		memcpy(oldp, &v, sizeof(v));
	}
	*oldlenp = need;
	return (0);
}

KTLS_EXPORT int
ktls_sysctl_set(const char *name, const void *newp, size_t newlen)
{
	const struct kc_desc *d;
	int v;

	ktls_init();
	if ((d = kc_find(name)) == NULL) {
		errno = ENOENT;
		return (-1);
	}
	if (d->kind != KC_TUNABLE) {
		errno = EPERM;
		return (-1);
	}
	if (newp == NULL || newlen != sizeof(int)) {
		errno = EINVAL;
		return (-1);
	}
	memcpy(&v, newp, sizeof(v));
	if ((d->id == 1 && (v < 1 || v > TLS_MAX_MSG_SIZE_V10_2)) ||
	    (d->id == 2 && (v < 0 || v > KTLS_AUTOCORK_MAX_US))) {
		errno = EINVAL;
		return (-1);
	}
	/* The on/off ones (enable, ifnet.permitted) store 0 or 1. */
	atomic_store(kc_tunable(d->id), d->id == 0 || d->id == 3 ? v != 0 : v);
	return (0);
}

KTLS_EXPORT const char *
ktls_sysctl_name(unsigned int idx)
{
	return (idx < KC_NDESC ? kc_table[idx].name : NULL);
}

KTLS_EXPORT const char *
ktls_sysctl_descr(const char *name)
{
	const struct kc_desc *d = kc_find(name);

	return (d != NULL ? d->descr : NULL);
}
