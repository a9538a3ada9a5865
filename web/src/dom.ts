// Tiny DOM helpers. Text always goes through textContent: nothing from the API is parsed as HTML.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(name.replace(/^on/, ""), value as EventListener);
    } else if (name === "class") {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function table(headers: string[], rows: Child[][], attrs: Attrs = {}): HTMLTableElement {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h(
      "tbody",
      {},
      rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))),
    ),
  );
}

export function section(title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** An empty state: what is missing, in words, and what produces it. */
export function empty(what: string, how?: string): HTMLElement {
  return h("div", { class: "empty", role: "status" }, h("p", {}, what), how ? h("p", { class: "how" }, how) : null);
}

export function kpi(name: string, value: string, note?: string): HTMLElement {
  return h("div", { class: "kpi" }, h("div", { class: "kpi-name" }, name), h("div", { class: "kpi-value" }, value), note ? h("div", { class: "kpi-note" }, note) : null);
}

export function badge(text: string, kind = text.toLowerCase()): HTMLElement {
  return h("span", { class: `badge badge-${kind.replace(/[^a-z0-9_-]/g, "")}` }, text);
}

/** Any JSON value as readable HTML: objects as definition lists, lists of objects as tables. */
export function generic(value: unknown, fmt: (n: number) => string): Node {
  if (value === null || value === undefined) return document.createTextNode("–");
  if (typeof value === "number") return document.createTextNode(fmt(value));
  if (typeof value !== "object") return document.createTextNode(String(value));
  if (Array.isArray(value)) {
    if (value.length === 0) return document.createTextNode("none");
    if (value.every((v) => v !== null && typeof v === "object" && !Array.isArray(v))) {
      const keys = [...new Set(value.flatMap((v) => Object.keys(v as object)))];
      return table(
        keys,
        value.map((v) => keys.map((k) => generic((v as Record<string, unknown>)[k], fmt))),
        { class: "generic" },
      );
    }
    return document.createTextNode(value.map((v) => (typeof v === "number" ? fmt(v) : String(v))).join(", "));
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return document.createTextNode("none");
  return h(
    "dl",
    { class: "generic" },
    entries.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, generic(v, fmt))]),
  );
}
