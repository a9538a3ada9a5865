// The REST API client. The API key lives in sessionStorage only (gone when the tab closes),
// is sent as the x-api-key header and never put in a URL.

const KEY_ITEM = "cst-api-key";
const OPERATOR_ITEM = "cst-operator-authorization";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly kind: "unreachable" | "forbidden" | "not-found" | "invalid" | "server" | "no-key",
    readonly status: number | null,
  ) {
    super(message);
  }
}

let apiBase = "";

export async function loadConfig(fetchImpl: typeof fetch = fetch): Promise<string> {
  try {
    const response = await fetchImpl("./config.json", { cache: "no-store" });
    if (response.ok) {
      const config = (await response.json()) as { apiBase?: unknown };
      if (typeof config.apiBase === "string") apiBase = config.apiBase.replace(/\/+$/, "");
    }
  } catch {
    apiBase = "";
  }
  return apiBase;
}

export function apiOrigin(): string {
  return apiBase || window.location.origin;
}

export function getKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function setKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key.trim());
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY_ITEM);
  sessionStorage.removeItem(OPERATOR_ITEM);
}

export function getOperatorAuthorization(): string | null {
  return sessionStorage.getItem(OPERATOR_ITEM);
}

export function setOperatorAuthorization(value: string): void {
  sessionStorage.setItem(OPERATOR_ITEM, value.trim());
}

/** A one-line, plain-words explanation of an HTTP failure. */
export function explain(status: number, body: unknown, path: string): ApiError {
  const message =
    body && typeof body === "object" && "message" in body
      ? String((body as { message: unknown }).message)
      : "";
  if (status === 403) {
    if (message === "Missing Authentication Token") {
      return new ApiError(
        "This action needs operator authorization (IAM SigV4 on AWS): the API refused the unsigned call.",
        "forbidden",
        status,
      );
    }
    return new ApiError(
      "The API refused the API key (403 Forbidden): sign in again with a valid x-api-key.",
      "forbidden",
      status,
    );
  }
  if (status === 404) {
    return new ApiError(message || `Nothing found at ${path}.`, "not-found", status);
  }
  if (status === 422) {
    const detail =
      body && typeof body === "object" && "detail" in body
        ? (body as { detail: { loc: unknown[]; msg: string }[] }).detail
        : [];
    const text = detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ");
    return new ApiError(`The API rejected the request: ${text || "invalid input"}.`, "invalid", status);
  }
  if (status === 503) {
    return new ApiError(
      `A dependency of the API is unavailable (503)${message ? `: ${message}` : ""}. Try again shortly.`,
      "server",
      status,
    );
  }
  return new ApiError(
    `The API answered ${status}${message ? `: ${message}` : ""}.`,
    "server",
    status,
  );
}

export async function request<T>(
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
  fetchImpl: typeof fetch = fetch,
): Promise<T> {
  const key = getKey();
  if (!key) {
    throw new ApiError("No API key in this session: enter your x-api-key to load data.", "no-key", null);
  }
  const headers: Record<string, string> = { "x-api-key": key, Accept: "application/json" };
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  Object.assign(headers, init.headers ?? {});
  let response: Response;
  try {
    response = await fetchImpl(`${apiBase}${path}`, {
      method: init.method ?? "GET",
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(
      `The API at ${apiOrigin()} is not reachable: is it running (locally: cst api serve)?`,
      "unreachable",
      null,
    );
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw explain(response.status, body, path);
  return body as T;
}
