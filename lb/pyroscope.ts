// Pyroscope (Connect protocol) request bodies: reads the label selectors of SelectMergeStacktraces,
// LabelNames and LabelValues requests (protobuf or JSON) and rebuilds the body with checked selectors.

/** The Pyroscope querier methods non-admin users may call, with the fields that hold selectors. */
export const PYROSCOPE_METHODS: Record<string, { protoField: number; jsonField: string; repeated: boolean }> = {
  // querier.v1.SelectMergeStacktracesRequest: 1 profile_typeID, 2 label_selector, 3 start, 4 end, 5 max_nodes
  "/querier.v1.QuerierService/SelectMergeStacktraces": { protoField: 2, jsonField: "labelSelector", repeated: false },
  // types.v1.LabelNamesRequest: 1 matchers (repeated), 2 start, 3 end
  "/querier.v1.QuerierService/LabelNames": { protoField: 1, jsonField: "matchers", repeated: true },
  // types.v1.LabelValuesRequest: 1 name, 2 matchers (repeated), 3 start, 4 end
  "/querier.v1.QuerierService/LabelValues": { protoField: 2, jsonField: "matchers", repeated: true },
};

/** A malformed request body. */
export class BodyError extends Error {}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new BodyError("truncated varint in protobuf body");
    const byte = buf[pos++];
    result += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  throw new BodyError("varint too long in protobuf body");
}

function writeVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

/** A protobuf message split into the values of one string field and the bytes of every other field. */
interface SplitMessage {
  values: string[];
  /** The other fields, byte for byte, in their order. */
  rest: Uint8Array[];
}

/** Splits a protobuf message on length-delimited field `field` (which must hold UTF-8 strings). */
export function splitProto(buf: Uint8Array, field: number): SplitMessage {
  const values: string[] = [];
  const rest: Uint8Array[] = [];
  const dec = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [key, p1] = readVarint(buf, pos);
    pos = p1;
    const num = Math.floor(key / 8);
    const wire = key & 7;
    if (num === 0) throw new BodyError("invalid field number 0 in protobuf body");
    if (num === field && wire !== 2) throw new BodyError(`field ${field} has the wrong wire type`);
    switch (wire) {
      case 0:
        pos = readVarint(buf, pos)[1];
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const [len, p2] = readVarint(buf, pos);
        if (p2 + len > buf.length) throw new BodyError("truncated field in protobuf body");
        if (num === field) {
          try {
            values.push(dec.decode(buf.subarray(p2, p2 + len)));
          } catch {
            throw new BodyError(`field ${field} is not valid UTF-8`);
          }
        }
        pos = p2 + len;
        break;
      }
      default:
        throw new BodyError(`unsupported wire type ${wire} in protobuf body`);
    }
    if (pos > buf.length) throw new BodyError("truncated protobuf body");
    if (num !== field) rest.push(buf.subarray(start, pos));
  }
  return { values, rest };
}

/** Every value of length-delimited field `field` of a protobuf message, as UTF-8 strings. */
export function protoStrings(buf: Uint8Array, field: number): string[] {
  return splitProto(buf, field).values;
}

/** The other fields of `msg` followed by `values` as field `field`. */
function joinProto(rest: Uint8Array[], field: number, values: string[]): Uint8Array {
  const tail: number[] = [];
  for (const v of values) {
    const bytes = new TextEncoder().encode(v);
    writeVarint(tail, field * 8 + 2);
    writeVarint(tail, bytes.length);
    for (const b of bytes) tail.push(b);
  }
  const size = rest.reduce((n, r) => n + r.length, 0) + tail.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const r of rest) {
    out.set(r, at);
    at += r.length;
  }
  out.set(tail, at);
  return out;
}

/** The selectors of a request body, and how to rebuild the body around the checked, printed ones. */
export interface PyroscopeRequest {
  selectors: string[];
  /** The body to forward, with `printed` (one per selector, same order) in place of the selectors. */
  rebuild(printed: string[]): Uint8Array | string;
}

/** Reads the selectors of a Connect request body for `method` (`application/proto` or `application/json`). */
export function pyroscopeSelectors(method: string, contentType: string, body: Uint8Array): PyroscopeRequest {
  const spec = PYROSCOPE_METHODS[method];
  if (!spec) throw new BodyError(`unsupported method ${method}`);
  const ct = contentType.split(";")[0].trim().toLowerCase();
  if (ct === "application/proto" || ct === "application/protobuf") {
    const { values, rest } = splitProto(body, spec.protoField);
    if (!spec.repeated && values.length > 1) throw new BodyError(`field ${spec.protoField} given more than once`);
    return { selectors: values, rebuild: (printed) => joinProto(rest, spec.protoField, printed) };
  }
  if (ct === "application/json") {
    let msg: unknown;
    try {
      msg = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch {
      throw new BodyError("body is not valid JSON");
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) throw new BodyError("body must be an object");
    const obj = msg as Record<string, unknown>;
    const snake = spec.jsonField === "labelSelector" ? "label_selector" : spec.jsonField;
    const keys = [...new Set([spec.jsonField, snake])].filter((k) => obj[k] !== undefined && obj[k] !== null);
    if (keys.length > 1) throw new BodyError(`give only one of ${keys.join(" and ")}`);
    const key = keys[0] ?? spec.jsonField;
    const v = obj[key] ?? (spec.repeated ? [] : undefined);
    const list = v === undefined ? [] : spec.repeated ? v : [v];
    if (!Array.isArray(list) || list.some((x) => typeof x !== "string")) {
      throw new BodyError(`${key} must be ${spec.repeated ? "a list of strings" : "a string"}`);
    }
    return {
      selectors: list as string[],
      rebuild: (printed) => JSON.stringify({ ...obj, [key]: spec.repeated ? printed : printed[0] }),
    };
  }
  throw new BodyError(`unsupported content type "${ct}" (want application/proto or application/json)`);
}
