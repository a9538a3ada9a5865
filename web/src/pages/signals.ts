import { request } from "../api";
import { badge, empty, h, section, table } from "../dom";
import { num, price, prob } from "../format";
import type { Signal, SignalsResponse, Vote } from "../types";

function votes(list: Vote[] | undefined): HTMLElement {
  if (!list || list.length === 0) {
    return h("p", { class: "muted" }, "This scan did not keep the agents' individual votes.");
  }
  return table(
    ["agent", "vote", "probability", "confidence", "reasons"],
    list.map((v) => [
      v.agent,
      v.abstain_reason ? badge("abstained", "abstain") : badge("voted", "hold"),
      v.abstain_reason ? "–" : prob(v.probability),
      v.abstain_reason ? "–" : prob(v.confidence),
      v.abstain_reason ?? v.reasons.join(" · "),
    ]),
    { class: "votes" },
  );
}

function row(s: Signal): HTMLElement[] {
  const details = h(
    "tr",
    { class: "details", hidden: true },
    h("td", { colspan: 7 }, h("p", {}, s.reasons.join(" · ")), votes(s.votes)),
  );
  const toggle = h("button", { class: "link", type: "button", "aria-expanded": "false" }, "votes");
  toggle.addEventListener("click", () => {
    details.hidden = !details.hidden;
    toggle.setAttribute("aria-expanded", String(!details.hidden));
  });
  const main = h(
    "tr",
    { "data-symbol": s.symbol, "data-action": s.action },
    h("td", {}, String(s.rank)),
    h("td", {}, h("a", { href: `#/coin/${encodeURIComponent(s.symbol)}` }, s.symbol)),
    h("td", { class: "num" }, num(s.score, 3)),
    h("td", { class: "num" }, prob(s.confidence)),
    h("td", {}, badge(s.action)),
    h("td", {}, s.order_status ? badge(s.order_status, "status") : "–", " ", price(s.price)),
    h("td", {}, toggle),
  );
  return [main, details];
}

export async function signalsPage(): Promise<HTMLElement> {
  const data = await request<SignalsResponse>("/api/v1/signals?limit=1000");
  if (!data.asof || data.signals.length === 0) {
    return section(
      "Signals",
      empty(
        "No decisions yet: no scan has published signals.",
        "The daily scan publishes them (locally: cst scan --asof YYYY-MM-DD, or make demo).",
      ),
    );
  }
  const buys = data.signals.filter((s) => s.action === "buy").length;
  return h(
    "div",
    {},
    section(
      `Signals as of ${data.asof}`,
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "model version"),
        h("dd", { id: "model-version" }, data.model_version ?? "not recorded by this scan"),
        h("dt", {}, "confidence"),
        h("dd", {}, data.decision_basis ?? "–"),
        h("dt", {}, "universe"),
        h("dd", {}, `${data.universe ?? "–"} coins, ${data.excluded_by_quality ?? "–"} excluded by the quality gate`),
        h("dt", {}, "decisions"),
        h("dd", {}, `${buys} BUY of ${data.count} ranked`),
      ),
    ),
    section(
      "Ranked coins",
      h(
        "table",
        { id: "signals-table" },
        h(
          "thead",
          {},
          h("tr", {}, ["#", "coin", "score", "confidence", "action", "order · price", ""].map((x) => h("th", {}, x))),
        ),
        h("tbody", {}, data.signals.flatMap(row)),
      ),
    ),
  );
}
