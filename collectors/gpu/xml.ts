// A small, strict XML reader for nvidia-smi and libvirt domain documents: elements, attributes and
// text, no namespaces or entities beyond the five predefined ones. Malformed input throws.

/** One element. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const entities: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decode(s: string): string {
  return s.includes("&") ? s.replace(/&(lt|gt|amp|quot|apos);/g, (_, e) => entities[e]) : s;
}

/** Parses a document and returns its root element. */
export function parseXml(text: string): XmlElement {
  const token =
    /<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>|<!\[CDATA\[([\s\S]*?)\]\]>|<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<|([^<]+)/g;
  const root: XmlElement = { name: "#document", attrs: {}, children: [], text: "" };
  const stack: XmlElement[] = [root];
  for (const m of text.matchAll(token)) {
    const top = stack[stack.length - 1];
    if (m[0] === "<") throw new Error(`invalid XML near offset ${m.index}`);
    if (m[6] !== undefined) {
      top.text += decode(m[6]);
    } else if (m[1] !== undefined) {
      top.text += m[1];
    } else if (m[3] !== undefined) {
      if (m[2] === "/") {
        if (stack.length < 2 || top.name !== m[3]) {
          throw new Error(`invalid XML: unexpected </${m[3]}> at offset ${m.index}`);
        }
        stack.pop();
        top.text = top.text.trim();
      } else {
        const attrs: Record<string, string> = {};
        for (const a of m[4].matchAll(/([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
          attrs[a[1]] = decode(a[2] ?? a[3]);
        }
        const el: XmlElement = { name: m[3], attrs, children: [], text: "" };
        top.children.push(el);
        if (m[5] !== "/") stack.push(el);
      }
    }
  }
  if (stack.length !== 1) throw new Error(`invalid XML: <${stack[stack.length - 1].name}> not closed`);
  const elems = root.children;
  if (elems.length !== 1) throw new Error("invalid XML: expected one root element");
  return elems[0];
}

/** First child element with that name. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** All child elements with that name. */
export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Text of the element at a child path ("a/b/c"), or "". */
export function textAt(el: XmlElement | undefined, path: string): string {
  let cur = el;
  for (const p of path.split("/")) cur = child(cur, p);
  return cur?.text ?? "";
}
