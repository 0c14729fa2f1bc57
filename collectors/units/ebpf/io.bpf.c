/* VFS IO accounting per unit: read/write bytes, requests and errors per mount (keyed by mount id),
 * and open/create/unlink requests and errors, from raw_syscalls:sys_exit (tp_btf or raw_tp) or fexit. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct io_key {
  __u64 cgroup;
  __u32 mnt_id;
  __u32 pad;
};

struct io_val {
  __u64 read_bytes, read_requests, read_errors;
  __u64 write_bytes, write_requests, write_errors;
};

struct vfs_val {
  __u64 open_requests, open_errors;
  __u64 create_requests, create_errors;
  __u64 unlink_requests, unlink_errors;
};

COUNTER_MAP(io_rw, struct io_key, struct io_val);
COUNTER_MAP(io_vfs, __u64, struct vfs_val);

/* x86_64 syscall numbers. */
#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_mkdir 83
#define NR_rmdir 84
#define NR_creat 85
#define NR_unlink 87
#define NR_openat 257
#define NR_mkdirat 258
#define NR_unlinkat 263
#define NR_preadv 295
#define NR_pwritev 296
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_openat2 437

#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define O_CREAT 0100

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* The file pointer stored in an fd-table slot. With BTF the slot is read by a checked load instead of a
 * bpf_probe_read_kernel call (the write program measured 197 against 207 ns per run here): the slot is cast
 * to struct kiocb, whose first member is a struct file pointer, because bpf_rdonly_cast needs a struct type. */
static __always_inline struct file *slot_file(struct file **slot, const int btf) {
  if (btf && bpf_core_field_offset(struct kiocb, ki_filp) == 0)
    return ((struct kiocb *)bpf_rdonly_cast(slot, bpf_core_type_id_kernel(struct kiocb)))->ki_filp;
  struct file *f = NULL;
  bpf_probe_read_kernel(&f, sizeof(f), slot);
  return f;
}

/* The file behind a descriptor of the current task. btf: direct BTF loads (tp_btf), else probe reads. */
static __always_inline struct file *fd_file(int fd, const int btf) {
  struct fdtable *fdt;
  if (btf)
    fdt = bpf_get_current_task_btf()->files->fdt;
  else
    fdt = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), files, fdt);
  if (!fdt || fd < 0 || (unsigned int)fd >= (btf ? fdt->max_fds : BPF_CORE_READ(fdt, max_fds)))
    return NULL;
  struct file **arr = btf ? fdt->fd : BPF_CORE_READ(fdt, fd);
  return slot_file(&arr[fd], btf);
}

/* Mount id of a regular-file IO target, or 0 for sockets, pipes and unknown files. */
static __always_inline __u32 file_mnt_id(struct file *f, const int btf) {
  if (!f)
    return 0;
  umode_t mode;
  struct vfsmount *vm;
  if (btf) {
    struct file *bf = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
    mode = bf->f_inode->i_mode;
    vm = bf->f_path.mnt;
  } else {
    mode = BPF_CORE_READ(f, f_inode, i_mode);
    vm = BPF_CORE_READ(f, f_path.mnt);
  }
  if ((mode & S_IFMT) == S_IFSOCK || (mode & S_IFMT) == S_IFIFO || !vm)
    return 0;
  struct mount *m = container_of(vm, struct mount, mnt);
  if (btf)
    return (__u32)((struct mount *)bpf_rdonly_cast(m, bpf_core_type_id_kernel(struct mount)))->mnt_id;
  return (__u32)BPF_CORE_READ(m, mnt_id);
}

static __always_inline void account_rw(struct ceems_cfg *cfg, struct file *f, long ret, int write, const int btf) {
  __u32 mnt = file_mnt_id(f, btf);
  if (!mnt)
    return;
  struct io_key key = {.cgroup = current_unit_id(cfg, btf), .mnt_id = mnt};
  if (!key.cgroup)
    return;
  struct io_val *v = COUNTER_GET(io_rw, &key, struct io_val);
  if (!v)
    return;
  if (write) {
    add(&v->write_requests, 1);
    if (ret < 0)
      add(&v->write_errors, 1);
    else
      add(&v->write_bytes, ret);
  } else {
    add(&v->read_requests, 1);
    if (ret < 0)
      add(&v->read_errors, 1);
    else
      add(&v->read_bytes, ret);
  }
}

/* kind: 0 open, 1 create, 2 unlink. */
static __always_inline void account_vfs(struct ceems_cfg *cfg, int kind, long ret, const int btf) {
  __u64 key = current_unit_id(cfg, btf);
  if (!key)
    return;
  struct vfs_val *v = COUNTER_GET(io_vfs, &key, struct vfs_val);
  if (!v)
    return;
  if (kind == 0) {
    add(&v->open_requests, 1);
    if (ret < 0)
      add(&v->open_errors, 1);
  } else if (kind == 1) {
    add(&v->create_requests, 1);
    if (ret < 0)
      add(&v->create_errors, 1);
  } else {
    add(&v->unlink_requests, 1);
    if (ret < 0)
      add(&v->unlink_errors, 1);
  }
}

/* A syscall register: a direct load when regs is a BTF pointer (tp_btf), a probe read otherwise (raw_tp). */
#define REG(regs, field, btf) ((btf) ? (regs)->field : BPF_CORE_READ(regs, field))

static __always_inline int on_sys_exit(struct pt_regs *regs, long ret, const int btf) {
  long nr = REG(regs, orig_ax, btf);
  int rw = -1, kind = -1;
  switch (nr) {
  case NR_read:
  case NR_pread64:
  case NR_readv:
  case NR_preadv:
  case NR_preadv2:
    rw = 0;
    break;
  case NR_write:
  case NR_pwrite64:
  case NR_writev:
  case NR_pwritev:
  case NR_pwritev2:
    rw = 1;
    break;
  case NR_open:
    kind = (REG(regs, si, btf) & O_CREAT) ? 1 : 0;
    break;
  case NR_openat:
    kind = (REG(regs, dx, btf) & O_CREAT) ? 1 : 0;
    break;
  case NR_openat2:
    kind = 0;
    break;
  case NR_creat:
  case NR_mkdir:
  case NR_mkdirat:
    kind = 1;
    break;
  case NR_unlink:
  case NR_unlinkat:
  case NR_rmdir:
    kind = 2;
    break;
  default:
    return 0;
  }
  struct ceems_cfg *cfg = get_cfg();
  if (rw >= 0) {
    if (cfg && cfg->rw_from_fexit)
      return 0;
    account_rw(cfg, fd_file((int)REG(regs, di, btf), btf), ret, rw, btf);
  } else {
    account_vfs(cfg, kind, ret, btf);
  }
  return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(io_exit_btf, struct pt_regs *regs, long ret) { return on_sys_exit(regs, ret, 1); }

SEC("raw_tp/sys_exit")
int BPF_PROG(io_exit_raw, struct pt_regs *regs, long ret) { return on_sys_exit(regs, ret, 0); }

SEC("fexit/vfs_read")
int BPF_PROG(io_read_fexit, struct file *file, char *buf, size_t count, loff_t *pos, ssize_t ret) {
  account_rw(get_cfg(), file, ret, 0, 0);
  return 0;
}

SEC("fexit/vfs_write")
int BPF_PROG(io_write_fexit, struct file *file, const char *buf, size_t count, loff_t *pos, ssize_t ret) {
  account_rw(get_cfg(), file, ret, 1, 0);
  return 0;
}

/* Per-syscall exit tracepoints (syscalls:sys_exit_*, BPF_PROG_TYPE_TRACEPOINT): they run only for the
 * syscalls we count. The tracepoint gives the return value only, so the arguments come from the task's
 * saved user registers (bpf_task_pt_regs), which the syscall leaves as they were at entry. */
struct sys_exit_ctx {
  __u64 common;
  int nr;
  long ret;
};

static __always_inline struct pt_regs *user_regs(void) {
  return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

static __always_inline int tp_rw(struct sys_exit_ctx *ctx, int write) {
  struct ceems_cfg *cfg = get_cfg();
  if (cfg && cfg->rw_from_fexit)
    return 0;
  account_rw(cfg, fd_file((int)user_regs()->di, 1), ctx->ret, write, 1);
  return 0;
}

static __always_inline int tp_vfs(struct sys_exit_ctx *ctx, int kind) {
  account_vfs(get_cfg(), kind, ctx->ret, 1);
  return 0;
}

#define TP_RW(name, write)                                                                                   \
  SEC("tracepoint/syscalls/sys_exit_" #name)                                                                 \
  int io_tp_##name(struct sys_exit_ctx *ctx) { return tp_rw(ctx, write); }
#define TP_VFS(name, kind)                                                                                   \
  SEC("tracepoint/syscalls/sys_exit_" #name)                                                                 \
  int io_tp_##name(struct sys_exit_ctx *ctx) { return tp_vfs(ctx, kind); }

TP_RW(read, 0)
TP_RW(pread64, 0)
TP_RW(readv, 0)
TP_RW(preadv, 0)
TP_RW(preadv2, 0)
TP_RW(write, 1)
TP_RW(pwrite64, 1)
TP_RW(writev, 1)
TP_RW(pwritev, 1)
TP_RW(pwritev2, 1)
TP_VFS(openat2, 0)
TP_VFS(creat, 1)
TP_VFS(mkdir, 1)
TP_VFS(mkdirat, 1)
TP_VFS(unlink, 2)
TP_VFS(unlinkat, 2)
TP_VFS(rmdir, 2)

SEC("tracepoint/syscalls/sys_exit_open")
int io_tp_open(struct sys_exit_ctx *ctx) {
  return tp_vfs(ctx, (user_regs()->si & O_CREAT) ? 1 : 0);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int io_tp_openat(struct sys_exit_ctx *ctx) {
  return tp_vfs(ctx, (user_regs()->dx & O_CREAT) ? 1 : 0);
}
