// Renders the cacct report as go-pretty renders CEEMS's (light box, upper-case headers wrapped at each
// column's maximum width, merged titles over a field's sub-columns, a Summary row, usage rows below), and as
// CSV, Markdown or HTML.

/** One column: its title (shared by a field's sub-columns), sub-title, width bounds and cells. */
export interface Column {
  title: string;
  sub: string;
  minW: number;
  maxW: number;
  values: string[];
  footers: string[];
}

interface Cell {
  text: string;
  start: number;
  span: number;
  center?: boolean;
  wrapAt?: number;
}

/** Breaks text into lines of at most `w` characters (hard wrap, as go-pretty's WidthMax does). */
export function hardWrap(text: string, w: number): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const chars = [...line];
    if (!chars.length) out.push("");
    for (let i = 0; i < chars.length; i += w) out.push(chars.slice(i, i + w).join(""));
  }
  return out;
}

const len = (s: string) => [...s].length;

function pad(s: string, w: number, center = false): string {
  const gap = w - len(s);
  if (gap <= 0) return s;
  if (!center) return s + " ".repeat(gap);
  const left = Math.ceil(gap / 2);
  return " ".repeat(left) + s + " ".repeat(gap - left);
}

/** Merges runs of columns with the same title into one header cell. */
function titleCells(cols: Column[]): Cell[] {
  const cells: Cell[] = [];
  for (let i = 0; i < cols.length;) {
    let j = i + 1;
    while (j < cols.length && cols[j].sub && cols[j].title === cols[i].title) j++;
    cells.push({
      text: cols[i].title.toUpperCase(),
      start: i,
      span: j - i,
      center: j - i > 1,
      wrapAt: cols[i].maxW,
    });
    i = j;
  }
  return cells;
}

/** The table as box-drawing text (the default output); `plain` leaves out the sub-title row and Summary. */
export function renderBox(cols: Column[], plain = false): string {
  const single = (texts: string[]): Cell[] => texts.map((text, i) => ({ text, start: i, span: 1 }));
  const rows: { cells: Cell[]; sepBefore: boolean }[] = [];
  rows.push({ cells: titleCells(cols), sepBefore: false });
  if (!plain) rows.push({ cells: single(cols.map((c) => c.sub.toUpperCase())), sepBefore: true });
  const nBody = cols[0]?.values.length ?? 0;
  for (let r = 0; r < nBody; r++) rows.push({ cells: single(cols.map((c) => c.values[r])), sepBefore: r === 0 });
  if (!plain) {
    rows.push({
      cells: [{ text: "Summary", start: 0, span: 1 }, { text: "", start: 1, span: cols.length - 1 }],
      sepBefore: true,
    });
  }
  const nFoot = cols[0]?.footers.length ?? 0;
  for (let r = 0; r < nFoot; r++) rows.push({ cells: single(cols.map((c) => c.footers[r])), sepBefore: true });

  // Column widths: within [minW, maxW], wide enough for every single-column cell once wrapped.
  const widths = cols.map((c) => c.minW);
  for (const row of rows) {
    for (const cell of row.cells) {
      if (cell.span !== 1) continue;
      const c = cols[cell.start];
      const longest = Math.max(0, ...hardWrap(cell.text, c.maxW).map(len));
      widths[cell.start] = Math.max(widths[cell.start], Math.min(longest, c.maxW));
    }
  }
  const cellWidth = (c: Cell) => widths.slice(c.start, c.start + c.span).reduce((a, b) => a + b, 0) + 3 * (c.span - 1);
  const starts = (cells: Cell[] | undefined) => new Set((cells ?? []).map((c) => c.start));
  const border = (above: Cell[] | undefined, below: Cell[] | undefined, [l, r]: string[]) => {
    const up = starts(above), down = starts(below);
    let s = l;
    for (let i = 0; i < widths.length; i++) {
      if (i > 0) {
        const u = up.has(i), d = down.has(i);
        s += u && d ? "┼" : d ? "┬" : u ? "┴" : "─";
      }
      s += "─".repeat(widths[i] + 2);
    }
    return s + r;
  };
  const lines: string[] = [border(undefined, rows[0].cells, ["┌", "┐"])];
  rows.forEach((row, ri) => {
    if (ri > 0 && row.sepBefore) lines.push(border(rows[ri - 1].cells, row.cells, ["├", "┤"]));
    const wrapped = row.cells.map((c) => hardWrap(c.text, Math.min(c.wrapAt ?? cellWidth(c), cellWidth(c))));
    const height = Math.max(...wrapped.map((w) => w.length));
    for (let l = 0; l < height; l++) {
      lines.push(
        "│" + row.cells.map((c, i) => ` ${pad(wrapped[i][l] ?? "", cellWidth(c), c.center)} │`).join("").trimEnd(),
      );
    }
  });
  lines.push(border(rows[rows.length - 1].cells, undefined, ["└", "┘"]));
  return lines.map((l) => l.trimEnd()).join("\n") + "\n";
}

function headerNames(cols: Column[]): string[] {
  return cols.map((c) => (c.sub ? `${c.title} ${c.sub}` : c.title).toUpperCase());
}

function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The table as CSV: one header line, the units, then the usage rows. */
export function renderCsv(cols: Column[]): string {
  const rows = [headerNames(cols)];
  for (let r = 0; r < (cols[0]?.values.length ?? 0); r++) rows.push(cols.map((c) => c.values[r]));
  for (let r = 0; r < (cols[0]?.footers.length ?? 0); r++) rows.push(cols.map((c) => c.footers[r]));
  return rows.map((r) => r.map(csvField).join(",")).join("\n") + "\n";
}

/** The table as Markdown. */
export function renderMarkdown(cols: Column[]): string {
  const esc = (v: string) => v.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const line = (cells: string[]) => `| ${cells.map(esc).join(" | ")} |`;
  const out = [line(headerNames(cols)), `|${cols.map(() => " --- |").join("")}`];
  for (let r = 0; r < (cols[0]?.values.length ?? 0); r++) out.push(line(cols.map((c) => c.values[r])));
  for (let r = 0; r < (cols[0]?.footers.length ?? 0); r++) out.push(line(cols.map((c) => c.footers[r])));
  return out.join("\n") + "\n";
}

/** The table as an HTML table (header, units in the body, usage rows in the footer). */
export function renderHtml(cols: Column[]): string {
  const esc = (v: string) =>
    v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const tr = (tag: string, cells: string[]) => `  <tr>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join("")}</tr>`;
  const out = ['<table class="cacct">', " <thead>", tr("th", headerNames(cols)), " </thead>", " <tbody>"];
  for (let r = 0; r < (cols[0]?.values.length ?? 0); r++) out.push(tr("td", cols.map((c) => c.values[r])));
  out.push(" </tbody>", " <tfoot>");
  for (let r = 0; r < (cols[0]?.footers.length ?? 0); r++) out.push(tr("td", cols.map((c) => c.footers[r])));
  out.push(" </tfoot>", "</table>");
  return out.join("\n") + "\n";
}
