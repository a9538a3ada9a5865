import { request } from "../api";
import { lineChart } from "../chart";
import { empty, h, kpi, section, table } from "../dom";
import { num, pct, price, usd } from "../format";
import type { PortfolioResponse } from "../types";
import { ordersTable } from "./orders";

export async function portfolioPage(): Promise<HTMLElement> {
  const data = await request<PortfolioResponse>("/api/v1/portfolio");
  const t = data.tracking;
  const equityHost = h("div", { class: "chart", id: "equity-chart" });
  const ddHost = h("div", { class: "chart", id: "drawdown-chart" });
  const root = h(
    "div",
    {},
    section(
      "Account",
      h(
        "div",
        { class: "kpis" },
        kpi("equity", usd(data.equity_usd), `started at ${usd(data.starting_equity_usd)}`),
        kpi("cash", usd(data.cash_usd)),
        kpi("fees paid", usd(data.fees_usd)),
        kpi("drawdown", pct(data.drawdown_pct), `max ${pct(data.max_drawdown_pct)}`),
        kpi("tracking error", t.error_bps === null ? "–" : `${num(t.error_bps, 1)} bps`, `${t.cycles} cycle pairs vs the backtest's fills`),
        kpi("gap to backtest", t.gap_bps === null ? "–" : `${num(t.gap_bps, 1)} bps`, `fills vs decisions ${t.fill_vs_decision_bps === null ? "–" : `${num(t.fill_vs_decision_bps, 1)} bps`}`),
      ),
    ),
    section(
      "Equity curve (paper) and its backtest twin",
      data.equity.length ? [equityHost, ddHost] : empty(data.equity_note ?? "No equity recorded yet."),
    ),
    section(
      "Daily PnL",
      data.daily_pnl.length
        ? table(
            ["day (UTC)", "PnL", "PnL %"],
            data.daily_pnl.map((d) => [d.day, usd(d.pnl_usd), pct(d.pnl_pct, 3)]),
            { id: "daily-pnl" },
          )
        : empty("No daily PnL yet: it needs the equity the execution cycles record."),
    ),
    section(
      "Positions",
      data.positions.length
        ? table(
            ["coin", "quantity", "average price", "cost", "last price", "market value", "unrealized PnL"],
            data.positions.map((p) => [
              h("a", { href: `#/coin/${encodeURIComponent(p.symbol)}` }, p.symbol),
              num(p.quantity, 4),
              price(p.average_price),
              usd(p.cost),
              price(p.last_price),
              usd(p.market_value),
              usd(p.unrealized_pnl),
            ]),
            { id: "positions" },
          )
        : empty("No open positions."),
    ),
    section("Orders", h("div", { id: "orders" }, ordersTable(data.orders, "No orders yet: the scan records its decisions as orders."))),
  );
  if (data.equity.length) {
    requestAnimationFrame(() => {
      const times = data.equity.map((p) => Date.parse(p.at) / 1000);
      lineChart(
        equityHost,
        times,
        [
          { label: "equity (paper fills)", values: data.equity.map((p) => p.equity) },
          { label: "backtest fills", values: data.equity.map((p) => p.reference), dash: true },
        ],
        { yLabel: "USD" },
      );
      lineChart(ddHost, times, [{ label: "drawdown %", values: data.equity.map((p) => p.drawdown_pct), color: "#cf222e" }], {
        height: 160,
        yLabel: "%",
      });
    });
  }
  return root;
}
