import { request } from "../api";
import { lineChart, type Marker } from "../chart";
import { badge, empty, h, section, table } from "../dom";
import { day, label, num, price, when } from "../format";
import type { CoinResponse } from "../types";
import { ordersTable } from "./orders";

export async function coinPage(symbol: string): Promise<HTMLElement> {
  const data = await request<CoinResponse>(`/api/v1/coins/${encodeURIComponent(symbol)}?days=120`);
  const root = h("div", {});
  const chartHost = h("div", { class: "chart", id: "price-chart" });
  const markers: Marker[] = [];
  for (const d of data.decisions) {
    if (d.price === null) continue;
    markers.push({ t: Date.parse(d.asof) / 1000, y: d.price, kind: "decision", label: `${d.action} ${d.asof}` });
  }
  for (const o of data.orders) {
    if (!o.filled_at || o.average_price === null) continue;
    markers.push({
      t: Date.parse(o.filled_at) / 1000,
      y: Number(o.average_price),
      kind: o.side === "sell" ? "sell" : "buy",
      label: `${o.side} fill`,
    });
  }
  const p = data.position;
  root.append(
    section(
      `${data.symbol} — price (${data.timeframe}) with decisions, fills and exits`,
      data.bars.length ? chartHost : empty(data.bars_note ?? "No bars for this coin in the window."),
      h(
        "p",
        { class: "legend" },
        h("span", { class: "mark mark-decision" }, "■ decision"),
        h("span", { class: "mark mark-buy" }, "▲ buy fill"),
        h("span", { class: "mark mark-sell" }, "▼ sell fill / exit"),
      ),
    ),
    section(
      "Position",
      p
        ? table(
            ["quantity", "average price", "cost", "last price", "market value", "unrealized PnL"],
            [[num(p.quantity, 4), price(p.average_price), num(p.cost), price(p.last_price), num(p.market_value), num(p.unrealized_pnl)]],
          )
        : empty(`No open position in ${data.symbol}.`),
    ),
    section(
      "Decisions",
      data.decisions.length
        ? table(
            ["as of", "rank", "action", "score", "confidence", "order", "why"],
            data.decisions.map((d) => [
              d.asof,
              String(d.rank),
              badge(d.action),
              num(d.score, 3),
              num(d.confidence, 2),
              d.order_status ?? "–",
              d.reasons.at(-1) ?? "",
            ]),
            { id: "coin-decisions" },
          )
        : empty(`No scan ranked ${data.symbol} between ${day(data.start)} and ${day(data.end)}.`),
    ),
    section("Orders and fills", ordersTable(data.orders, `No order for ${data.symbol} yet.`)),
  );
  const featureHost = h("div", { class: "chart", id: "feature-chart" });
  const columns = data.feature_columns.slice(1);
  const select = h(
    "select",
    { "aria-label": "feature" },
    columns.map((c) => h("option", { value: c }, label(c))),
  );
  const last = data.features.at(-1);
  root.append(
    section(
      "Feature history",
      data.features.length
        ? [
            h("label", {}, "feature ", select),
            featureHost,
            last
              ? h(
                  "p",
                  { class: "muted" },
                  `latest (${day((last[0] ?? 0) as number)}): `,
                  columns.map((c, i) => `${label(c)} ${num(last[i + 1], 3)}`).join(" · "),
                )
              : null,
          ]
        : empty("No feature history: the coin has no daily bars in the window."),
    ),
  );
  requestAnimationFrame(() => {
    if (data.bars.length) {
      lineChart(
        chartHost,
        data.bars.map((b) => b.t / 1000),
        [{ label: "close", values: data.bars.map((b) => b.c) }],
        { markers, yLabel: "USDT" },
      );
    }
    if (data.features.length) {
      const draw = () => {
        featureHost.replaceChildren();
        const i = columns.indexOf(select.value) + 1;
        lineChart(
          featureHost,
          data.features.map((r) => (r[0] ?? 0) / 1000),
          [{ label: label(select.value), values: data.features.map((r) => r[i] ?? null) }],
          { height: 200 },
        );
      };
      select.addEventListener("change", draw);
      draw();
    }
  });
  root.append(h("p", { class: "muted" }, `Window ${when(data.start)} → ${when(data.end)}.`));
  return root;
}
