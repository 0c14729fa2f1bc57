// A child process driven line by line over stdin/stdout (a perl script), so tests can move it into a
// cgroup before it does its measured work: it prints "ready", waits for "go", works, prints "done ...".

/** A running scripted child. */
export class Workload {
  readonly child: Deno.ChildProcess;
  #lines: string[] = [];
  #buf = "";
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(script: string, args: string[], env?: Record<string, string>) {
    this.child = new Deno.Command("perl", {
      args: ["-e", script, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env,
    }).spawn();
    this.#reader = this.child.stdout.getReader();
    this.#writer = this.child.stdin.getWriter();
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Waits (at most timeoutMs) for the next line starting with `prefix` and returns it. */
  async waitLine(prefix: string, timeoutMs = 20000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const dec = new TextDecoder();
    while (true) {
      const i = this.#lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return this.#lines.splice(0, i + 1)[i];
      if (Date.now() > deadline) throw new Error(`timed out waiting for "${prefix}" from the workload`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#reader.read(),
        new Promise<null>((res) => timer = setTimeout(() => res(null), Math.max(1, deadline - Date.now()))),
      ]);
      clearTimeout(timer);
      if (r === null) continue;
      if (r.done) throw new Error(`workload exited before "${prefix}"`);
      this.#buf += dec.decode(r.value, { stream: true });
      const parts = this.#buf.split("\n");
      this.#buf = parts.pop()!;
      this.#lines.push(...parts);
    }
  }

  /** Sends one line to the child's stdin. */
  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Ends the child (closes stdin, kills it if needed) and waits for it. */
  async stop(): Promise<void> {
    try {
      await this.#writer.close();
    } catch { /* already closed */ }
    try {
      this.child.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.#reader.cancel().catch(() => {});
    await this.child.status;
  }
}
