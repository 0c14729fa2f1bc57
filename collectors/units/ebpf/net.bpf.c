/* TCP/UDP traffic per unit: egress and ingress bytes and messages from the sock_send_length and
 * sock_recv_length tracepoints (process context), retransmissions from tcp_retransmit_skb. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct net_key {
  __u64 cgroup;
  __u16 proto;
  __u16 family;
  __u32 pad;
};

struct net_val {
  __u64 ingress_bytes, ingress_packets;
  __u64 egress_bytes, egress_packets;
  __u64 retrans_bytes, retrans_packets;
};

COUNTER_MAP(net_stats, struct net_key, struct net_val);

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define MSG_PEEK 2

/* dir: 0 ingress, 1 egress (process context: the current task's unit), 2 retransmission (softirq: the
 * socket's cgroup v2). btf: sk is a BTF pointer (tp_btf), read with direct loads instead of probe reads. */
static __always_inline void account(const struct sock *sk, int dir, long bytes, const int btf) {
  if (!sk || bytes <= 0)
    return;
  __u16 family, proto;
  if (btf) {
    family = sk->__sk_common.skc_family;
    proto = sk->sk_protocol;
  } else {
    family = BPF_CORE_READ(sk, __sk_common.skc_family);
    proto = BPF_CORE_READ(sk, sk_protocol);
  }
  if ((family != AF_INET && family != AF_INET6) || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
    return;
  __u64 unit = dir == 2 ? sock_unit_id(sk) : current_unit_id(get_cfg(), btf);
  if (!unit)
    return;
  struct net_key key = {.cgroup = unit, .proto = proto, .family = family};
  struct net_val *v = COUNTER_GET(net_stats, &key, struct net_val);
  if (!v)
    return;
  if (dir == 0) {
    add(&v->ingress_bytes, bytes);
    add(&v->ingress_packets, 1);
  } else if (dir == 1) {
    add(&v->egress_bytes, bytes);
    add(&v->egress_packets, 1);
  } else {
    add(&v->retrans_bytes, bytes);
    add(&v->retrans_packets, 1);
  }
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(net_send_btf, struct sock *sk, int ret, int flags) {
  account(sk, 1, ret, 1);
  return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(net_recv_btf, struct sock *sk, int ret, int flags) {
  if (!(flags & MSG_PEEK))
    account(sk, 0, ret, 1);
  return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(net_retrans_btf, const struct sock *sk, const struct sk_buff *skb) {
  account(sk, 2, BPF_CORE_READ(skb, len), 1);
  return 0;
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(net_send_raw, struct sock *sk, int ret, int flags) {
  account(sk, 1, ret, 0);
  return 0;
}

SEC("raw_tp/sock_recv_length")
int BPF_PROG(net_recv_raw, struct sock *sk, int ret, int flags) {
  if (!(flags & MSG_PEEK))
    account(sk, 0, ret, 0);
  return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(net_retrans_raw, const struct sock *sk, const struct sk_buff *skb) {
  account(sk, 2, BPF_CORE_READ(skb, len), 0);
  return 0;
}
