/* SPDX-License-Identifier: GPL-2.0 */
#ifndef WSAUDIT_LINKREAP_H
#define WSAUDIT_LINKREAP_H

#include <bpf/libbpf.h>

/*
 * BPF links destroyed off the caller's thread.  The kernel unregisters a uprobe synchronously,
 * waiting out an RCU grace period of tracing tasks: 40-85 ms a link on a 6.18 kernel.  A
 * process's dozen links destroyed inline at its exit held the collector's loop for a second,
 * long enough for the records of every followed process to outlive their writers.  One
 * thread is enough: the kernel runs the unregistrations one after the other whatever the
 * number of threads closing (8 threads took the time of one).
 */
struct linkreap;

/* A reaper with its own thread, or NULL with errno (links are then destroyed inline). */
struct linkreap *linkreap_new(void);
/* Hands link over (NULL is ignored); destroyed inline when no reaper or no memory. */
void linkreap_put(struct linkreap *r, struct bpf_link *link);
/* Destroys every link still pending, then the reaper. */
void linkreap_free(struct linkreap *r);

#endif
