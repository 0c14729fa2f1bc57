// ceems-worker-bundle sources-sha256=3307347764abf61c9767936b6aa6d62948512ca3e1689dda781dc97bc2cf55d2
// ffi/libc.ts
var SYSCALLS = {
  x86_64: {
    capget: 125n,
    capset: 126n,
    gettid: 186n
  },
  aarch64: {
    capget: 90n,
    capset: 91n,
    gettid: 178n
  }
};
var symbols = {
  prctl: {
    parameters: [
      "i32",
      "u64",
      "u64",
      "u64",
      "u64"
    ],
    result: "i32"
  },
  setgroups: {
    parameters: [
      "usize",
      "pointer"
    ],
    result: "i32"
  },
  setresgid: {
    parameters: [
      "u32",
      "u32",
      "u32"
    ],
    result: "i32"
  },
  setresuid: {
    parameters: [
      "u32",
      "u32",
      "u32"
    ],
    result: "i32"
  },
  getuid: {
    parameters: [],
    result: "u32"
  },
  geteuid: {
    parameters: [],
    result: "u32"
  },
  getgid: {
    parameters: [],
    result: "u32"
  },
  syscall2: {
    name: "syscall",
    parameters: [
      "i64",
      "buffer",
      "buffer"
    ],
    result: "i64"
  },
  syscall0: {
    name: "syscall",
    parameters: [
      "i64"
    ],
    result: "i64"
  },
  open: {
    parameters: [
      "buffer",
      "i32",
      "u32"
    ],
    result: "i32"
  },
  read: {
    parameters: [
      "i32",
      "buffer",
      "usize"
    ],
    result: "isize"
  },
  pread: {
    parameters: [
      "i32",
      "buffer",
      "usize",
      "i64"
    ],
    result: "isize"
  },
  close: {
    parameters: [
      "i32"
    ],
    result: "i32"
  },
  poll: {
    parameters: [
      "buffer",
      "u64",
      "i32"
    ],
    result: "i32"
  },
  getxattr: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "usize"
    ],
    result: "isize"
  },
  setxattr: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "usize",
      "i32"
    ],
    result: "i32"
  },
  __errno_location: {
    parameters: [],
    result: "pointer"
  },
  strerror: {
    parameters: [
      "i32"
    ],
    result: "pointer"
  }
};
var lib;
function libc() {
  if (!lib) lib = Deno.dlopen("libc.so.6", symbols).symbols;
  return lib;
}
function syscallNumbers() {
  const n = SYSCALLS[Deno.build.arch];
  if (!n) throw new Error(`unsupported architecture ${Deno.build.arch}`);
  return n;
}
var ErrnoError = class extends Error {
  call;
  errno;
  constructor(call, errno2) {
    super(`${call}: ${strerror(errno2)} (errno ${errno2})`), this.call = call, this.errno = errno2;
    this.name = "ErrnoError";
  }
  /** Node-style code for the common errno values. */
  get code() {
    return {
      1: "EPERM",
      2: "ENOENT",
      13: "EACCES",
      22: "EINVAL",
      110: "ETIMEDOUT"
    }[this.errno] ?? `E${this.errno}`;
  }
};
function errno() {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}
function strerror(e) {
  const p = libc().strerror(e);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${e}`;
}
function check(call, rc) {
  if (rc < 0) throw new ErrnoError(call, errno());
  return Number(rc);
}
function gettid() {
  return Number(libc().syscall0(syscallNumbers().gettid));
}
var O_RDONLY = 0;
var O_RDWR = 2;
var O_NONBLOCK = 2048;
var O_CLOEXEC = 524288;
function openRaw(path, flags) {
  return check(`open ${path}`, libc().open(cstr(path), flags, 0));
}
var cstr = (s) => new TextEncoder().encode(s + "\0");
function getXattr(path, name) {
  const buf = new Uint8Array(64 * 1024);
  const n = libc().getxattr(cstr(path), cstr(name), buf, BigInt(buf.length));
  if (n < 0) {
    const e = errno();
    if (e === 61) return void 0;
    throw new ErrnoError(`getxattr ${path} ${name}`, e);
  }
  return buf.slice(0, Number(n));
}
function setXattr(path, name, value) {
  check(`setxattr ${path} ${name}`, libc().setxattr(cstr(path), cstr(name), value, BigInt(value.length), 0));
}

// privilege/capset.ts
var CAP_NUMBERS = {
  cap_chown: 0,
  cap_dac_override: 1,
  cap_dac_read_search: 2,
  cap_fowner: 3,
  cap_setgid: 6,
  cap_setuid: 7,
  cap_sys_ptrace: 19,
  cap_sys_admin: 21,
  cap_sys_resource: 24,
  cap_perfmon: 38,
  cap_bpf: 39
};
var LINUX_CAPABILITY_VERSION_3 = 537396514;
function maskOf(caps) {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(CAP_NUMBERS[c]);
  return m;
}
function header() {
  const h = new Uint8Array(8);
  new DataView(h.buffer).setUint32(0, LINUX_CAPABILITY_VERSION_3, true);
  return h;
}
function capgetThread() {
  const data = new Uint8Array(24);
  check("capget", libc().syscall2(syscallNumbers().capget, header(), data));
  const dv = new DataView(data.buffer);
  const word = (i) => BigInt(dv.getUint32(i, true)) | BigInt(dv.getUint32(i + 12, true)) << 32n;
  return {
    effective: word(0),
    permitted: word(4),
    inheritable: word(8)
  };
}
function capsetThread(s) {
  const data = new Uint8Array(24);
  const dv = new DataView(data.buffer);
  const put = (i, v) => {
    dv.setUint32(i, Number(v & 0xffffffffn), true);
    dv.setUint32(i + 12, Number(v >> 32n & 0xffffffffn), true);
  };
  put(0, s.effective);
  put(4, s.permitted);
  put(8, s.inheritable);
  check("capset", libc().syscall2(syscallNumbers().capset, header(), data));
}

// privilege/acl.ts
var XATTR = "system.posix_acl_access";
var VERSION = 2;
var TAG = {
  USER_OBJ: 1,
  USER: 2,
  GROUP_OBJ: 4,
  GROUP: 8,
  MASK: 16,
  OTHER: 32
};
function decodeAcl(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 || dv.getUint32(0, true) !== VERSION) throw new Error("unsupported ACL xattr version");
  const out = [];
  for (let o = 4; o + 8 <= buf.length; o += 8) {
    out.push({
      tag: dv.getUint16(o, true),
      perm: dv.getUint16(o + 2, true),
      id: dv.getUint32(o + 4, true)
    });
  }
  return out;
}
function encodeAcl(entries) {
  const order = (t) => [
    1,
    2,
    4,
    8,
    16,
    32
  ].indexOf(t);
  const sorted = [
    ...entries
  ].sort((a, b) => order(a.tag) - order(b.tag) || a.id - b.id);
  const buf = new Uint8Array(4 + 8 * sorted.length);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, VERSION, true);
  sorted.forEach((e, i) => {
    dv.setUint16(4 + 8 * i, e.tag, true);
    dv.setUint16(6 + 8 * i, e.perm, true);
    dv.setUint32(8 + 8 * i, e.tag === TAG.USER || e.tag === TAG.GROUP ? e.id : 4294967295, true);
  });
  return buf;
}
function currentAcl(path) {
  const raw = getXattr(path, XATTR);
  if (raw) return decodeAcl(raw);
  const mode = Deno.statSync(path).mode ?? 0;
  return [
    {
      tag: TAG.USER_OBJ,
      perm: mode >> 6 & 7,
      id: 0
    },
    {
      tag: TAG.GROUP_OBJ,
      perm: mode >> 3 & 7,
      id: 0
    },
    {
      tag: TAG.OTHER,
      perm: mode & 7,
      id: 0
    }
  ];
}
function withMask(entries) {
  const rest = entries.filter((e) => e.tag !== TAG.MASK);
  const named = rest.some((e) => e.tag === TAG.USER || e.tag === TAG.GROUP);
  if (!named) return rest;
  const mask = rest.filter((e) => e.tag !== TAG.USER_OBJ && e.tag !== TAG.OTHER).reduce((m, e) => m | e.perm, 0);
  return [
    ...rest,
    {
      tag: TAG.MASK,
      perm: mask,
      id: 0
    }
  ];
}
function removeAclEntry(path, uid) {
  const acl = currentAcl(path);
  const left = acl.filter((x) => !(x.tag === TAG.USER && x.id === uid));
  if (left.length === acl.length) return;
  setXattr(path, XATTR, encodeAcl(withMask(left)));
}

// privilege/ops.ts
var decoder = new TextDecoder();
function readFileOp(path, maxBytes = 16 << 20) {
  const f = Deno.openSync(path, {
    read: true
  });
  try {
    const buf = new Uint8Array(Math.min(maxBytes, 1 << 16));
    const chunks = [];
    let total = 0;
    while (total < maxBytes) {
      const n = f.readSync(buf);
      if (n === null || n === 0) break;
      chunks.push(buf.slice(0, n));
      total += n;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    return decoder.decode(all);
  } finally {
    f.close();
  }
}
function readEnvironOp(procfs, pids) {
  const out = {};
  for (const pid of pids) {
    try {
      out[String(pid)] = readFileOp(`${procfs}/${pid}/environ`, 1 << 20).split("\0").filter((s) => s);
    } catch {
    }
  }
  return out;
}
function execOp(op) {
  const secs = Math.max(0.1, op.timeoutMs / 1e3).toFixed(1);
  const out = new Deno.Command("timeout", {
    args: [
      "-k",
      "1",
      secs,
      ...op.cmd
    ],
    uid: op.uid,
    gid: op.gid,
    env: op.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped"
  }).outputSync();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    timedOut: out.code === 124 || out.code === 137
  };
}
function openFdOp(path, write, nonblock) {
  return openRaw(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
}
function removeAclOp(uid, paths) {
  let removed = 0;
  const errors = [];
  for (const p of paths) {
    try {
      removeAclEntry(p, uid);
      removed++;
    } catch (e) {
      errors.push(e.message);
    }
  }
  if (errors.length) throw new Error(errors.join("; "));
  return removed;
}
function runOpSync(op) {
  try {
    switch (op.kind) {
      case "readFile":
        return {
          ok: true,
          value: readFileOp(op.path, op.maxBytes)
        };
      case "readEnviron":
        return {
          ok: true,
          value: readEnvironOp(op.procfs, op.pids)
        };
      case "exec":
        return {
          ok: true,
          value: execOp(op)
        };
      case "openFd":
        return {
          ok: true,
          value: openFdOp(op.path, !!op.write, !!op.nonblock)
        };
      case "removeAclEntries":
        return {
          ok: true,
          value: removeAclOp(op.uid, op.paths)
        };
    }
  } catch (e) {
    return {
      ok: false,
      error: e.message,
      code: e.code
    };
  }
}

// privilege/worker.ts
function handle(req) {
  const tid = gettid();
  const want = maskOf(req.caps);
  const start = capgetThread();
  if ((want & ~start.permitted) !== 0n) {
    const error = `security context ${req.context}: capabilities ${req.caps.join(",")} not all permitted`;
    return {
      tid,
      results: req.ops.map(() => ({
        ok: false,
        error
      })),
      raisedEffective: "0"
    };
  }
  let results;
  let raisedEffective = 0n;
  try {
    capsetThread({
      permitted: start.permitted,
      effective: want,
      inheritable: 0n
    });
    raisedEffective = capgetThread().effective;
    results = req.ops.map(runOpSync);
  } finally {
    capsetThread({
      permitted: 0n,
      effective: 0n,
      inheritable: 0n
    });
  }
  return {
    tid,
    results,
    raisedEffective: raisedEffective.toString(16)
  };
}
self.onmessage = (ev) => {
  self.postMessage(handle(ev.data));
};
