import { describe, expect, it } from "vitest";
import { DASH, day, isCoinId, label, num, pct, price, usd, when } from "./format";

describe("format", () => {
  it("shows a dash, never zero, for missing or non-finite figures", () => {
    for (const missing of [null, undefined, "", Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(num(missing as number)).toBe(DASH);
      expect(usd(missing as number)).toBe(DASH);
      expect(pct(missing as number)).toBe(DASH);
      expect(price(missing as number)).toBe(DASH);
    }
  });

  it("formats money, percents and decimal strings from the API", () => {
    expect(usd("99996.3642690868310075")).toBe("99,996.36 USD");
    expect(pct(-0.0036)).toBe("-0.00 %");
    expect(num(0.8571428, 2)).toBe("0.86");
  });

  it("keeps the significant digits of sub-cent prices", () => {
    expect(price(0.23789985)).toBe("0.2379");
    expect(price(0.0000123)).toBe("0.000012");
    expect(price(19432.1)).toBe("19,432.10");
  });

  it("renders UTC instants and days", () => {
    expect(when("2022-09-29T02:10:00+00:00")).toBe("2022-09-29 02:10Z");
    expect(day(1664409600000)).toBe("2022-09-29");
    expect(when("not a date")).toBe(DASH);
  });

  it("labels keys and validates coin ids like the API", () => {
    expect(label("precision_at_k")).toBe("Precision at k");
    expect(isCoinId("bitcoin")).toBe(true);
    expect(isCoinId("BTC/USDT")).toBe(false);
    expect(isCoinId("../etc")).toBe(false);
  });
});
