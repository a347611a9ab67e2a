#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Runs a test program on one CPU only (the first this shell may use), as
# a server pinned with taskset or nginx's worker_cpu_affinity is: the
# engine then starts no worker and the writer encrypts its own records.
cpu=$(python3 -c 'import os; print(min(os.sched_getaffinity(0)))')
exec taskset -c "$cpu" "$@"
