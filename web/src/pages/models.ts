import { request } from "../api";
import { badge, empty, generic, h, section, table } from "../dom";
import { day, label, num, when } from "../format";
import type { ModelsResponse } from "../types";

const fmt = (n: number) => num(n, Number.isInteger(n) ? 0 : 3);

export async function modelsPage(): Promise<HTMLElement> {
  const data = await request<ModelsResponse>("/api/v1/models");
  if (!data.versions.length) {
    return section(
      `Model registry (${data.registry}${data.group ? `, ${data.group}` : ""})`,
      empty(data.note ?? "No model registered yet.", "cst model train registers a version with its evaluation."),
    );
  }
  return h(
    "div",
    {},
    section(
      `Model registry (${data.registry}, ${data.group})`,
      table(
        ["version", "stage", "created", "trained to", "target", "features", "capital", "drift"],
        data.versions.map((v) => [
          v.label,
          badge(v.stage, "stage"),
          when(v.created_at),
          day(v.train_end),
          v.target,
          String(v.features),
          num(v.capital_fraction, 3),
          v.drift_blocked ? `blocked: ${v.drift_reason}` : "clear",
        ]),
        { id: "model-versions" },
      ),
    ),
    ...data.versions.map((v) =>
      section(
        `${v.label}: evaluation`,
        h("h3", {}, "Out of sample (pooled)"),
        generic(v.oos, fmt),
        h("h3", {}, "Per test block"),
        v.folds.length ? generic(v.folds, fmt) : empty("No per-block metrics recorded."),
        ...Object.entries(v.evaluation).map(([k, x]) => [h("h3", {}, label(k)), generic(x, fmt)]).flat(),
        h("h3", {}, "Stage history"),
        generic(v.history, fmt),
      ),
    ),
  );
}
