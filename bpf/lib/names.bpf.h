/* SPDX-License-Identifier: GPL-2.0 */
/* The names of the code objects a walk meets (bpf/names.bpf.c). */
#ifndef WSAUDIT_NAMES_BPF_H
#define WSAUDIT_NAMES_BPF_H

/*
 * Makes sure the collector has the names of the code object at code in process tgid: 0 when
 * a record sent before names it (now or earlier), 1 when none could be sent (counted).
 */
extern int py_code_names(const struct py_names_layout *nl, __u32 tgid, __u64 code);

/*
 * py_code_names for every frame of @e that is not a shim, marking PYF_UNNAMED those whose
 * names could not be sent.  Called once the walk is done: its states do not multiply the
 * walk's.
 */
extern int py_walk_names(const struct py_names_layout *nl, struct evt_stack *e);

#endif /* WSAUDIT_NAMES_BPF_H */
