// A closed-loop load for the HTTP benchmarks: a number of clients, each sending its next request as soon as the
// last one is answered, for a fixed time; the completed requests per second.

/** Requests per second that `clients` concurrent loops of `request` complete in `seconds`. */
export async function closedLoopRate(
  clients: number,
  seconds: number,
  request: () => Promise<unknown>,
): Promise<number> {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      await request();
      n++;
    }
  }));
  return n / seconds;
}
