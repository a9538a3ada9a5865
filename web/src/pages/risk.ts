import { getOperatorAuthorization, request, setOperatorAuthorization } from "../api";
import { badge, empty, generic, h, kpi, section, table } from "../dom";
import { num, pct, usd, when } from "../format";
import type { AuditResponse, BreakersResponse, KillSwitch, RiskResponse } from "../types";

/** Two steps: a request (reason + operator authorization), then an explicit confirmation. */
function killSwitchControl(current: KillSwitch, reload: () => void): HTMLElement {
  const target = !current.on;
  const verb = target ? "Turn the kill-switch ON" : "Turn the kill-switch OFF";
  const status = h("p", { class: "status", role: "status", id: "ks-status" });
  const reason = h("input", { id: "ks-reason", name: "reason", required: true, minlength: 3, maxlength: 500, placeholder: "why (stored in the audit trail)" });
  const auth = h("input", {
    id: "ks-authorization",
    name: "authorization",
    type: "password",
    placeholder: "operator authorization",
    autocomplete: "off",
  });
  auth.value = getOperatorAuthorization() ?? "";
  const confirmBox = h(
    "div",
    { class: "confirm", id: "ks-confirm", hidden: true, role: "alertdialog", "aria-label": "confirm the kill-switch change" },
  );
  const step1 = h(
    "form",
    { class: "ks-form", id: "ks-request" },
    h("label", {}, "Reason ", reason),
    h("label", {}, "Operator authorization ", auth),
    h("button", { type: "submit", class: target ? "danger" : "primary", id: "ks-start" }, `${verb}…`),
  );
  step1.addEventListener("submit", (e) => {
    e.preventDefault();
    const why = reason.value.trim();
    if (why.replace(/\s/g, "").length < 3) {
      status.textContent = "Give a reason of at least 3 characters: it is stored in the audit trail.";
      return;
    }
    if (!auth.value.trim()) {
      status.textContent = "The kill-switch needs operator authorization (an IAM-signed call on AWS; locally any value).";
      return;
    }
    setOperatorAuthorization(auth.value);
    status.textContent = "";
    step1.hidden = true;
    const confirmButton = h("button", { type: "button", class: target ? "danger" : "primary", id: "ks-confirm-button" }, `Confirm: ${target ? "stop all new orders" : "resume trading"}`);
    const cancel = h("button", { type: "button", id: "ks-cancel" }, "Cancel");
    confirmBox.replaceChildren(
      h("p", {}, `You are about to turn the kill-switch ${target ? "ON" : "OFF"} with the reason “${why}”. This is audited with your identity.`),
      confirmButton,
      cancel,
    );
    confirmBox.hidden = false;
    cancel.addEventListener("click", () => {
      confirmBox.hidden = true;
      step1.hidden = false;
    });
    confirmButton.addEventListener("click", async () => {
      confirmButton.setAttribute("disabled", "");
      try {
        await request("/api/v1/killswitch", {
          method: "POST",
          body: { on: target, reason: why },
          headers: { Authorization: auth.value.trim() },
        });
        status.textContent = `Kill-switch turned ${target ? "ON" : "OFF"}.`;
        reload();
      } catch (err) {
        status.textContent = (err as Error).message;
        confirmBox.hidden = true;
        step1.hidden = false;
      }
    });
  });
  return h("div", {}, step1, confirmBox, status);
}

export async function riskPage(reload: () => void): Promise<HTMLElement> {
  const [risk, audit, breakers] = await Promise.all([
    request<RiskResponse>("/api/v1/risk"),
    request<AuditResponse>("/api/v1/audit?limit=50"),
    request<BreakersResponse>("/api/v1/breakers"),
  ]);
  const ks = risk.kill_switch;
  return h(
    "div",
    {},
    section(
      "RiskGuard",
      h(
        "div",
        { class: "kpis" },
        kpi("level", risk.level, `since ${when(risk.since)}`),
        kpi("orders go to", risk.venue_mode, risk.venue_mode === "live" ? "real money" : "no real money"),
        kpi("account equity", usd(risk.account_equity_usd)),
        kpi("daily PnL", pct(risk.daily_pnl_pct)),
        kpi("drawdown", pct(risk.drawdown_pct)),
        kpi("gross exposure", usd(risk.gross_exposure_usd), `${pct(risk.gross_exposure_pct)} of ${usd(risk.equity_usd)}`),
      ),
      h("p", { id: "risk-reason" }, h("strong", {}, "Why: "), risk.reason),
      risk.recent_transitions.length
        ? table(
            ["when", "from", "to", "reason", "by"],
            risk.recent_transitions.map((t) => [when(t.at), t.from_level, t.to_level, t.reason, t.actor]),
          )
        : empty("No level change recorded yet."),
    ),
    section(
      "Kill-switch",
      h(
        "p",
        { id: "ks-state" },
        badge(ks.on ? "ON" : "OFF", ks.on ? "on" : "off"),
        ` set by ${ks.actor} at ${when(ks.at)}: ${ks.reason}`,
      ),
      ks.golive_rollback
        ? h(
            "p",
            { id: "ks-rollback", class: "muted" },
            `Go-live rollback of run ${ks.golive_rollback}: held positions keep their protective sells.`,
          )
        : null,
      killSwitchControl(ks, reload),
    ),
    section(
      "Circuit breakers",
      table(
        ["breaker", "state", "last value", "thresholds", "what"],
        breakers.breakers.map((b) => [
          b.name,
          b.state,
          num(b.value, 2),
          Object.keys(b.thresholds).length ? generic(b.thresholds, (n) => num(n, 0)) : "–",
          [b.reason ?? "", b.since ? ` (since ${when(b.since)})` : ""].join(""),
        ]),
        { id: "breakers" },
      ),
    ),
    section(
      "Audit trail",
      audit.entries.length
        ? table(
            ["when", "who", "action", "why", "request"],
            audit.entries.map((e) => [
              when(e.at),
              e.actor,
              e.action,
              String(e.details["reason"] ?? ""),
              e.request_id,
            ]),
            { id: "audit" },
          )
        : empty("No state-changing call has been audited yet."),
    ),
  );
}
