/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The engine's counters and gauges, by name (kern.ipc.tls.*): the table in
 * counters.c gives each its sysctl name and description.  Here so that the
 * suite table can name the gauges a session feeds.
 */
#ifndef KTLS_COUNTERS_H
#define KTLS_COUNTERS_H

enum ktls_counter {
	KC_THREADS,
	KC_ACTIVE,
	KC_ENABLE_CALLS,
	KC_OFFLOAD_TOTAL,
	KC_SW_TX_INQUEUE,
	KC_SW_TX_PENDING,
	KC_FAILED_CRYPTO,
	KC_TX_RECORDS,
	KC_TX_BYTES,
	KC_SW_GCM,
	KC_SW_CBC,
	KC_SW_CHACHA20,
	KC_IFNET_GCM,
	KC_IFNET_CHACHA20,
	KC_SWITCH_TO_IFNET,
	KC_SWITCH_TO_SW,
	KC_SWITCH_FAILED,
	KC_GUARD_FILTERS,
	KC_GUARD_TRAPPED,
	KC_GUARD_REFUSED,
	KC__COUNT
};

#endif /* KTLS_COUNTERS_H */
