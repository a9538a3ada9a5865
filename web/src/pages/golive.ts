import { request } from "../api";
import { badge, empty, generic, h, section, table } from "../dom";
import { label, num, when } from "../format";
import type { GoLiveResponse } from "../types";

const fmt = (n: number) => num(n, Number.isInteger(n) ? 0 : 3);

export async function goLivePage(): Promise<HTMLElement> {
  const data = await request<GoLiveResponse>("/api/v1/golive");
  const active = data.active;
  return h(
    "div",
    {},
    section(
      "Current stage",
      active
        ? h(
            "p",
            { id: "golive-stage" },
            badge(String(active["stage"] ?? "?"), "stage"),
            ` run ${String(active["run_id"] ?? "?")}, version ${String(active["version"] ?? "?")}, ${String(active["trading_mode"] ?? "")}, risk budget ${num(Number(active["risk_budget_fraction"]), 3)}`,
          )
        : empty("No go-live run has started: trading runs at full paper size.", "cst golive start (locally) or the go-live state machine starts one."),
      data.live_version ? h("p", {}, "Live version: ", generic(data.live_version, fmt)) : null,
    ),
    section(
      "SLO gates",
      table(
        ["objective", "threshold"],
        Object.entries(data.thresholds).map(([k, v]) => [label(k), fmt(v)]),
        { id: "slo-gates" },
      ),
    ),
    section(
      "Runs",
      data.runs.length
        ? data.runs.map((r) =>
            h(
              "article",
              { class: "run" },
              h("h3", {}, `${String(r["run_id"])} — ${String(r["status"])} (${String(r["stage"])})`),
              h("p", {}, String(r["reason"] ?? ""), ` · started ${when(String(r["started_at"] ?? ""))}`),
              generic(r["transitions"], fmt),
            ),
          )
        : empty("No go-live runs recorded."),
    ),
    section(
      "SLO evaluations",
      data.evaluations.length
        ? data.evaluations.map((e) =>
            h(
              "article",
              { class: "evaluation" },
              h("h3", {}, `${String(e["run_id"])} ${String(e["stage"])}: `, badge(e["passed"] ? "passed" : "failed")),
              h("p", {}, String(e["summary"] ?? "")),
              generic(e["results"], fmt),
            ),
          )
        : empty("No SLO evaluation yet: each stage is evaluated when its window ends."),
    ),
  );
}
