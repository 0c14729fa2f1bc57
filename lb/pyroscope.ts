// Pyroscope (Connect protocol) request bodies: a minimal protobuf reader and JSON handling that
// return the label selectors of SelectMergeStacktraces, LabelNames and LabelValues requests.

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

/** Every value of length-delimited field `field` of a protobuf message, as UTF-8 strings. */
export function protoStrings(buf: Uint8Array, field: number): string[] {
  const out: string[] = [];
  const dec = new TextDecoder("utf-8", { fatal: true });
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = readVarint(buf, pos);
    pos = p1;
    const num = Math.floor(key / 8);
    const wire = key & 7;
    if (num === 0) throw new BodyError("invalid field number 0 in protobuf body");
    switch (wire) {
      case 0:
        pos = readVarint(buf, pos)[1];
        if (num === field) throw new BodyError(`field ${field} has the wrong wire type`);
        break;
      case 1:
        pos += 8;
        if (num === field) throw new BodyError(`field ${field} has the wrong wire type`);
        break;
      case 5:
        pos += 4;
        if (num === field) throw new BodyError(`field ${field} has the wrong wire type`);
        break;
      case 2: {
        const [len, p2] = readVarint(buf, pos);
        if (p2 + len > buf.length) throw new BodyError("truncated field in protobuf body");
        if (num === field) {
          try {
            out.push(dec.decode(buf.subarray(p2, p2 + len)));
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
  }
  return out;
}

/** Selectors of a Connect request body for `method`, from `application/proto` or `application/json`. */
export function pyroscopeSelectors(method: string, contentType: string, body: Uint8Array): {
  selectors: string[];
  /** The body to forward (JSON is re-serialised so the backend sees exactly what was checked). */
  forwardBody: Uint8Array | string;
} {
  const spec = PYROSCOPE_METHODS[method];
  if (!spec) throw new BodyError(`unsupported method ${method}`);
  const ct = contentType.split(";")[0].trim().toLowerCase();
  if (ct === "application/proto" || ct === "application/protobuf") {
    return { selectors: protoStrings(body, spec.protoField), forwardBody: body };
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
    const values: string[] = [];
    for (const key of new Set([spec.jsonField, snake])) {
      const v = obj[key];
      if (v === undefined || v === null) continue;
      const list = spec.repeated ? v : [v];
      if (!Array.isArray(list) || list.some((x) => typeof x !== "string")) {
        throw new BodyError(`${key} must be ${spec.repeated ? "a list of strings" : "a string"}`);
      }
      values.push(...(list as string[]));
    }
    return { selectors: values, forwardBody: JSON.stringify(obj) };
  }
  throw new BodyError(`unsupported content type "${ct}" (want application/proto or application/json)`);
}
