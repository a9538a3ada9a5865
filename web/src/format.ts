// Pure formatting helpers (unit-tested): every missing figure is shown as a dash, never as 0.

export const DASH = "–";

export function num(value: number | string | null | undefined, digits = 2): string {
  if (value === null || value === undefined || value === "") return DASH;
  const n = typeof value === "string" ? Number(value) : value;
  if (!Number.isFinite(n)) return DASH;
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function usd(value: number | string | null | undefined): string {
  const text = num(value, 2);
  return text === DASH ? text : `${text} USD`;
}

export function pct(value: number | string | null | undefined, digits = 2): string {
  const text = num(value, digits);
  return text === DASH ? text : `${text} %`;
}

export function prob(value: number | null | undefined): string {
  return num(value, 2);
}

/** A price with enough significant digits for sub-cent coins. */
export function price(value: number | string | null | undefined): string {
  if (value === null || value === undefined || value === "") return DASH;
  const n = typeof value === "string" ? Number(value) : value;
  if (!Number.isFinite(n)) return DASH;
  const digits = Math.abs(n) >= 100 ? 2 : Math.abs(n) >= 1 ? 4 : 6;
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 2 });
}

export function when(value: string | null | undefined): string {
  if (!value) return DASH;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return DASH;
  return d.toISOString().replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z");
}

export function day(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return DASH;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return DASH;
  return d.toISOString().slice(0, 10);
}

/** A readable label for a snake_case key. */
export function label(key: string): string {
  const spaced = key.replace(/_/g, " ");
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

export function isCoinId(value: string): boolean {
  return /^[a-z0-9][a-z0-9._-]{0,63}$/.test(value);
}
