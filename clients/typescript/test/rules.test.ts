/** The pure rules under the polling loop: Retry-After parsing, completeness, the feed's URL. */
import { describe, expect, it } from "vitest";
import { isComplete, MIN_POLL_MS, retryAfterMs, type Progress } from "../src/index.js";
import { wsUrl } from "../src/live.js";

const progress = (p: Partial<Progress>): Progress => ({
  matchesReady: 0,
  matchesTotal: 0,
  playersReady: 0,
  playersTotal: 0,
  failed: 0,
  waitingForBudget: false,
  ...p,
});

describe("retryAfterMs", () => {
  it("reads seconds and HTTP dates, never below the floor", () => {
    expect(retryAfterMs("2", 5000)).toBe(2000);
    expect(retryAfterMs(" 10 ", 5000)).toBe(10_000);
    expect(retryAfterMs("0", 5000)).toBe(MIN_POLL_MS);
    const inFive = new Date(Date.now() + 5000).toUTCString();
    expect(retryAfterMs(inFive, 1000)).toBeGreaterThan(3000);
    expect(retryAfterMs("Thu, 01 Jan 1970 00:00:00 GMT", 1000)).toBe(MIN_POLL_MS);
  });

  it("falls back when absent or unreadable", () => {
    expect(retryAfterMs(null, 1500)).toBe(1500);
    expect(retryAfterMs("soon", 1500)).toBe(1500);
    expect(retryAfterMs(null, 0)).toBe(MIN_POLL_MS);
  });
});

describe("isComplete", () => {
  it("counts ready and failed matches and players against the totals", () => {
    expect(isComplete(progress({}))).toBe(true);
    expect(isComplete(progress({ matchesTotal: 2, matchesReady: 1 }))).toBe(false);
    expect(isComplete(progress({ matchesTotal: 2, matchesReady: 1, failed: 1 }))).toBe(true);
    expect(isComplete(progress({ matchesTotal: 1, matchesReady: 1, playersTotal: 10, playersReady: 9 }))).toBe(false);
    expect(isComplete(progress({ matchesTotal: 1, matchesReady: 1, playersTotal: 10, playersReady: 9, failed: 1 }))).toBe(true);
  });
});

describe("wsUrl", () => {
  it("maps http(s) to ws(s) and appends /api/ws", () => {
    expect(wsUrl("http://127.0.0.1:8080")).toBe("ws://127.0.0.1:8080/api/ws");
    expect(wsUrl("https://dota.example/")).toBe("wss://dota.example/api/ws");
    expect(wsUrl("https://dota.example/orchestrator")).toBe("wss://dota.example/orchestrator/api/ws");
  });
});
