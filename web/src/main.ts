import "./style.css";
import { ApiError, apiOrigin, clearSession, getKey, loadConfig, setKey } from "./api";
import { empty, h } from "./dom";
import { isCoinId } from "./format";
import { coinPage } from "./pages/coin";
import { goLivePage } from "./pages/golive";
import { modelsPage } from "./pages/models";
import { portfolioPage } from "./pages/portfolio";
import { riskPage } from "./pages/risk";
import { signalsPage } from "./pages/signals";

const app = document.getElementById("app") as HTMLElement;
const sessionBox = document.getElementById("session") as HTMLElement;
let generation = 0;

function renderSession(): void {
  if (getKey()) {
    const out = h("button", { type: "button", id: "sign-out" }, "Sign out");
    out.addEventListener("click", () => {
      clearSession();
      renderSession();
      void route();
    });
    sessionBox.replaceChildren(h("span", { class: "muted" }, `API ${apiOrigin()}`), out);
  } else {
    sessionBox.replaceChildren();
  }
}

function signIn(message?: string): HTMLElement {
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true, placeholder: "x-api-key" });
  const form = h(
    "form",
    { id: "sign-in", class: "card" },
    h("h2", {}, "Sign in"),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("p", {}, "Enter the API key (x-api-key). It stays in this browser tab's session only and is sent to ", apiOrigin(), "."),
    input,
    h("button", { type: "submit", class: "primary" }, "Open the dashboard"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    setKey(input.value);
    renderSession();
    void route();
  });
  return form;
}

function failure(err: unknown): HTMLElement {
  if (err instanceof ApiError) {
    if (err.kind === "no-key" || err.kind === "forbidden") {
      if (err.kind === "forbidden") clearSession();
      renderSession();
      return signIn(err.kind === "forbidden" ? err.message : undefined);
    }
    return h("div", { class: "card error-card", role: "alert" }, empty(err.message, err.kind === "unreachable" ? "Start it with: cst api serve (it prints the address and the key)." : undefined));
  }
  return h("div", { class: "card error-card", role: "alert" }, empty(`The page failed: ${(err as Error).message ?? String(err)}`));
}

async function route(): Promise<void> {
  const mine = ++generation;
  const hash = window.location.hash.replace(/^#\/?/, "") || "signals";
  const [page, arg] = hash.split("/", 2);
  for (const a of document.querySelectorAll<HTMLAnchorElement>("#nav a")) {
    a.classList.toggle("active", a.dataset["page"] === page);
  }
  document.title = `CryptoSmartTrader — ${page}`;
  app.setAttribute("aria-busy", "true");
  let view: HTMLElement;
  try {
    if (!getKey()) {
      view = signIn();
    } else if (page === "signals") view = await signalsPage();
    else if (page === "portfolio") view = await portfolioPage();
    else if (page === "risk") view = await riskPage(() => void route());
    else if (page === "golive") view = await goLivePage();
    else if (page === "models") view = await modelsPage();
    else if (page === "coin" && arg && isCoinId(decodeURIComponent(arg))) view = await coinPage(decodeURIComponent(arg));
    else view = h("div", { class: "card" }, empty(`There is no page “${hash}”.`, "Use the menu above."));
  } catch (err) {
    view = failure(err);
  }
  if (mine !== generation) return; // a newer navigation won
  app.replaceChildren(view);
  app.setAttribute("aria-busy", "false");
  app.dataset["page"] = page ?? "";
  app.dataset["rendered"] = String(performance.now());
}

document.getElementById("coin-search")?.addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("coin-input") as HTMLInputElement;
  const id = input.value.trim().toLowerCase();
  if (id) window.location.hash = `#/coin/${encodeURIComponent(id)}`;
});

window.addEventListener("hashchange", () => void route());
void loadConfig().then(() => {
  renderSession();
  void route();
});
