import { badge, empty, h, table } from "../dom";
import { num, price, when } from "../format";
import type { Order } from "../types";

export function ordersTable(orders: Order[], none: string): HTMLElement {
  if (!orders.length) return empty(none);
  return table(
    ["coin", "side", "status", "quantity", "decision price", "fill price", "slippage", "fee", "status history"],
    orders.map((o) => [
      h("a", { href: `#/coin/${encodeURIComponent(o.symbol)}` }, o.symbol),
      `${o.side}${o.intent ? ` (${o.intent})` : ""}`,
      h("span", {}, badge(o.status, "status"), o.reason ? h("div", { class: "muted" }, o.reason) : null),
      num(o.filled ?? o.quantity, 4),
      price(o.reference_price),
      price(o.average_price),
      o.slippage_bps === null ? "–" : `${num(o.slippage_bps, 1)} bps`,
      num(o.fee, 4),
      h(
        "ol",
        { class: "history" },
        o.history.map((s) => h("li", {}, `${s.status} ${when(s.at)}`, s.source === "recorded" ? "" : h("span", { class: "muted" }, ` (${s.source})`))),
      ),
    ]),
    { class: "orders" },
  );
}
