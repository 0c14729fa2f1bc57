// Pyroscope (Connect protocol) request bodies: reads the label selectors of SelectMergeStacktraces,
// LabelNames and LabelValues requests (protobuf or JSON) and rebuilds the body with checked selectors.

/** Protobuf wire types the allowed fields use. */
const VARINT = 0;
const LEN = 2;

/** What the load balancer accepts of one Pyroscope method's request. */
interface MethodSpec {
  /** The (string) field holding label selectors, its JSON name, and whether it repeats. */
  protoField: number;
  jsonField: string;
  repeated: boolean;
  /** Every field the request may carry (number → wire type); anything else is refused, not passed on. */
  fields: Record<number, number>;
  /** Every key a JSON body may carry (protojson accepts the proto name and the JSON name). */
  jsonKeys: string[];
}

/** The Pyroscope querier methods non-admin users may call (fields from Pyroscope's querier.v1 and types.v1). */
export const PYROSCOPE_METHODS: Record<string, MethodSpec> = {
  // SelectMergeStacktracesRequest: 1 profile_typeID, 2 label_selector, 3 start, 4 end, 5 max_nodes, 6 format,
  // 7 stack_trace_selector (message), 8 profile_id_selector (repeated string)
  "/querier.v1.QuerierService/SelectMergeStacktraces": {
    protoField: 2,
    jsonField: "labelSelector",
    repeated: false,
    fields: { 1: LEN, 2: LEN, 3: VARINT, 4: VARINT, 5: VARINT, 6: VARINT, 7: LEN, 8: LEN },
    jsonKeys: [
      "profileTypeID",
      "profile_typeID",
      "labelSelector",
      "label_selector",
      "start",
      "end",
      "maxNodes",
      "max_nodes",
      "format",
      "stackTraceSelector",
      "stack_trace_selector",
      "profileIdSelector",
      "profile_id_selector",
    ],
  },
  // types.v1.LabelNamesRequest: 1 matchers (repeated), 2 start, 3 end
  "/querier.v1.QuerierService/LabelNames": {
    protoField: 1,
    jsonField: "matchers",
    repeated: true,
    fields: { 1: LEN, 2: VARINT, 3: VARINT },
    jsonKeys: ["matchers", "start", "end"],
  },
  // types.v1.LabelValuesRequest: 1 name, 2 matchers (repeated), 3 start, 4 end
  "/querier.v1.QuerierService/LabelValues": {
    protoField: 2,
    jsonField: "matchers",
    repeated: true,
    fields: { 1: LEN, 2: LEN, 3: VARINT, 4: VARINT },
    jsonKeys: ["name", "matchers", "start", "end"],
  },
};

/** The largest protobuf field number. */
const MAX_FIELD_NUMBER = (1 << 29) - 1;

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

/**
 * Splits a protobuf message of `spec` on its selector field. Every field must be one `spec` allows, with
 * its wire type, under a field number Go's decoder reads the same way (at most 5 key bytes, below 2^29):
 * a field the LB does not know is refused, never copied, so no unchecked selector reaches Pyroscope.
 */
export function splitProto(buf: Uint8Array, spec: Pick<MethodSpec, "protoField" | "fields">): SplitMessage {
  const field = spec.protoField;
  const values: string[] = [];
  const rest: Uint8Array[] = [];
  const dec = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [key, p1] = readVarint(buf, pos);
    if (p1 - pos > 5 || key > 0xffffffff) throw new BodyError("invalid field key in protobuf body");
    pos = p1;
    const num = Math.floor(key / 8);
    const wire = key & 7;
    if (num === 0 || num > MAX_FIELD_NUMBER) throw new BodyError(`invalid field number ${num} in protobuf body`);
    if (!(num in spec.fields)) throw new BodyError(`field ${num} is not accepted in this request`);
    if (spec.fields[num] !== wire) throw new BodyError(`field ${num} has the wrong wire type`);
    if (wire === VARINT) {
      pos = readVarint(buf, pos)[1];
    } else {
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
    }
    if (num !== field) rest.push(buf.subarray(start, pos));
  }
  return { values, rest };
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

/** Deepest JSON nesting accepted (Pyroscope's request messages are shallow). */
const MAX_JSON_DEPTH = 16;

/** Bracket nesting of a JSON text (strings skipped). */
function jsonDepth(body: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
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
    const { values, rest } = splitProto(body, spec);
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
    // Nested values only in stackTraceSelector, a small message: refuse deep nesting before anything recurses.
    if (jsonDepth(body) > MAX_JSON_DEPTH) throw new BodyError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) throw new BodyError("body must be an object");
    const obj = msg as Record<string, unknown>;
    const unknown = Object.keys(obj).filter((k) => !spec.jsonKeys.includes(k));
    if (unknown.length) throw new BodyError(`field ${unknown[0]} is not accepted in this request`);
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
      rebuild: (printed) => {
        try {
          return JSON.stringify({ ...obj, [key]: spec.repeated ? printed : printed[0] });
        } catch (e) {
          throw new BodyError(`body cannot be re-encoded: ${(e as Error).message}`);
        }
      },
    };
  }
  throw new BodyError(`unsupported content type "${ct}" (want application/proto or application/json)`);
}
