/* BENCHMARK ONLY, never loaded by the collector: empty programs (return 0) on exactly the io object's per-syscall
 * exit tracepoints and the net object's tp_btf hooks, so scripts/bench_ebpf.ts can measure the attach floor. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Same SEC() as io.bpf.c's io_tp_<name> (attached the same way: perf_event on the tracepoint id). */
#define TP_EMPTY(name)                                                                                       \
  SEC("tracepoint/syscalls/sys_exit_" #name)                                                                 \
  int floor_tp_##name(void *ctx) { return 0; }

TP_EMPTY(read)
TP_EMPTY(pread64)
TP_EMPTY(readv)
TP_EMPTY(preadv)
TP_EMPTY(preadv2)
TP_EMPTY(write)
TP_EMPTY(pwrite64)
TP_EMPTY(writev)
TP_EMPTY(pwritev)
TP_EMPTY(pwritev2)
TP_EMPTY(open)
TP_EMPTY(openat)
TP_EMPTY(openat2)
TP_EMPTY(creat)
TP_EMPTY(mkdir)
TP_EMPTY(mkdirat)
TP_EMPTY(unlink)
TP_EMPTY(unlinkat)
TP_EMPTY(rmdir)

/* Same SEC() and arguments as net.bpf.c's tp_btf programs. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(floor_net_send_btf, struct sock *sk, int ret, int flags) { return 0; }

SEC("tp_btf/sock_recv_length")
int BPF_PROG(floor_net_recv_btf, struct sock *sk, int ret, int flags) { return 0; }

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(floor_net_retrans_btf, const struct sock *sk, const struct sk_buff *skb) { return 0; }
