import { describe, expect, it } from "vitest";
import { explain } from "./api";

describe("explain", () => {
  it("tells a wrong key from a missing operator signature", () => {
    expect(explain(403, { message: "Forbidden" }, "/api/v1/risk").message).toMatch(/refused the API key/);
    expect(explain(403, { message: "Missing Authentication Token" }, "/api/v1/killswitch").message).toMatch(
      /operator authorization/,
    );
  });

  it("passes the API's own 404 message through", () => {
    const error = explain(404, { statusCode: 404, message: "unknown symbol 'nope'" }, "/api/v1/coins/nope");
    expect(error.kind).toBe("not-found");
    expect(error.message).toBe("unknown symbol 'nope'");
  });

  it("lists validation errors without echoing the input", () => {
    const body = { statusCode: 422, detail: [{ loc: ["body", "reason"], msg: "String should have at least 3 characters" }] };
    expect(explain(422, body, "/api/v1/killswitch").message).toBe(
      "The API rejected the request: reason: String should have at least 3 characters.",
    );
  });
});
