/* Shared definitions of the ceems eBPF programs: the per-unit cgroup key (cgroup v2 id, or the kernfs
 * id of a chosen cgroup v1 controller's directory), the run-time configuration map and small helpers. */
#ifndef CEEMS_COMMON_BPF_H
#define CEEMS_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_ENTRIES 16384

/* Counter maps: per-CPU hashes, so a counted event adds to this CPU's copy with plain (non-atomic) adds and
 * no cache line moves between CPUs; user space sums the copies. Not preallocated (memory follows the keys
 * in use, not max_entries × CPUs) and not LRU: user space deletes the keys of cgroups that are no longer
 * units (see ebpf.ts), which is how counters of ended units age out. */
#define COUNTER_MAP(name, key_t, val_t)                                                                       \
  struct {                                                                                                   \
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);                                                                  \
    __uint(max_entries, MAX_ENTRIES);                                                                        \
    __uint(map_flags, BPF_F_NO_PREALLOC);                                                                    \
    __type(key, key_t);                                                                                      \
    __type(value, val_t);                                                                                    \
  } name SEC(".maps")

/* Run-time configuration written by user space after load (index 0). */
struct ceems_cfg {
  /* 0: cgroup v2 (bpf_get_current_cgroup_id); n > 0: cgroup v1, controller n (see v1_subsys_index). */
  __u32 v1_controller;
  /* 1: read/write bytes come from fexit programs, so the syscall program skips them. */
  __u32 rw_from_fexit;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ceems_cfg);
} ceems_cfg SEC(".maps");

static __always_inline struct ceems_cfg *get_cfg(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&ceems_cfg, &zero);
}

/* Kernel index of the cgroup v1 controller user space chose, or -1. */
static __always_inline int v1_subsys_index(__u32 controller) {
  switch (controller) {
  case 1:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
    break;
  case 2:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, cpuacct_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, cpuacct_cgrp_id);
    break;
  case 3:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, cpu_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, cpu_cgrp_id);
    break;
  case 4:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, pids_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id);
    break;
  case 5:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, cpuset_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, cpuset_cgrp_id);
    break;
  case 6:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, io_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, io_cgrp_id);
    break;
  case 7:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, devices_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, devices_cgrp_id);
    break;
  case 8:
    if (bpf_core_enum_value_exists(enum cgroup_subsys_id, freezer_cgrp_id))
      return bpf_core_enum_value(enum cgroup_subsys_id, freezer_cgrp_id);
    break;
  }
  return -1;
}

/* The unit key of the current task: its cgroup directory's inode number in the configured hierarchy.
 * btf: programs with BTF access (tp_btf, tracepoint) read the cgroup v2 id with direct loads, which is
 * cheaper than the bpf_get_current_cgroup_id() helper call the others (raw_tp) make. */
static __always_inline __u64 current_unit_id(struct ceems_cfg *cfg, const int btf) {
  if (!cfg || cfg->v1_controller == 0) {
    if (btf)
      return bpf_get_current_task_btf()->cgroups->dfl_cgrp->kn->id;
    return bpf_get_current_cgroup_id();
  }
  int idx = v1_subsys_index(cfg->v1_controller);
  if (idx < 0 || idx >= CGROUP_SUBSYS_COUNT)
    return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct css_set *cset = BPF_CORE_READ(task, cgroups);
  struct cgroup_subsys_state *css = NULL;
  bpf_core_read(&css, sizeof(css), &cset->subsys[idx]);
  if (!css)
    return 0;
  return BPF_CORE_READ(css, cgroup, kn, id);
}

/* The inode number of a socket's cgroup v2 (for events that run outside the owner's context). */
static __always_inline __u64 sock_unit_id(const struct sock *sk) {
  struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
  if (!cg)
    return 0;
  return BPF_CORE_READ(cg, kn, id);
}

/* Adds to a per-CPU counter: programs run with preemption off, and a counter word is only ever written from
 * one context (process context; retransmissions, from softirq, have words of their own), so no atomics. */
static __always_inline void add(__u64 *counter, __u64 v) { *counter += v; }

/* This CPU's value of `key` in a counter map, inserting zeroes first when the key is new. */
#define COUNTER_GET(map, key, val_t)                                                                          \
  ({                                                                                                         \
    val_t *_v = bpf_map_lookup_elem(&(map), (key));                                                          \
    if (!_v) {                                                                                               \
      val_t _zero = {};                                                                                      \
      bpf_map_update_elem(&(map), (key), &_zero, BPF_NOEXIST);                                               \
      _v = bpf_map_lookup_elem(&(map), (key));                                                               \
    }                                                                                                        \
    _v;                                                                                                      \
  })

#endif
