/**
 * `createClient` against the live service (test/global-setup.ts): the polling rules of
 * `request()` (Retry-After, If-None-Match/304, failures, a team import's progress, abort) and
 * the typed calls. Each test uses resources no other test of the run requests first.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createClient, FailedError, isComplete, type Progress } from "../src/index.js";
import { baseUrl, recordingFetch, sleep, upstreamFault } from "./helpers.js";

/** Demo data: a match of league 16500, which no team import of these tests touches. */
const MATCH = 7943846706;
/** Another one, for the abort test. */
const ABORTED_MATCH = 7943875314;

describe("request()", () => {
  const { fetch, calls } = recordingFetch();
  const client = createClient({ baseUrl: baseUrl(), fetch });

  it("goes queued → ready, with no more GETs than the Retry-After values allow", async () => {
    const started = Date.now();
    const body = await client.request({ kind: "match", id: MATCH });
    const elapsed = Date.now() - started;

    expect(body.match_id).toBe(MATCH);
    const [post, ...gets] = calls;
    expect(post).toMatchObject({ method: "POST", path: `/api/matches/${MATCH}`, status: 202 });
    expect(gets.length).toBeGreaterThan(0);
    expect(gets.every((c) => c.method === "GET")).toBe(true);
    expect(gets.at(-1)?.status).toBe(200);
    // Every request after a 202 waited at least that 202's Retry-After.
    for (let i = 1; i < calls.length; i++) {
      const previous = calls[i - 1]!;
      if (previous.status !== 202) continue;
      const waitMs = Number(previous.retryAfter) * 1000;
      expect(waitMs).toBeGreaterThan(0);
      expect(calls[i]!.sentAt - previous.sentAt).toBeGreaterThanOrEqual(waitMs - 20);
    }
    // Hence the GET count is bounded by the time taken over the shortest Retry-After.
    const shortest = Math.min(...calls.filter((c) => c.status === 202).map((c) => Number(c.retryAfter) * 1000));
    expect(gets.length).toBeLessThanOrEqual(Math.floor(elapsed / shortest));
  });

  it("answers a second request from a 304", async () => {
    calls.length = 0;
    const first = await client.request({ kind: "match", id: MATCH });
    expect(calls.map((c) => [c.method, c.status])).toEqual([
      ["POST", 200],
      ["GET", 304],
    ]);
    expect(calls[1]!.ifNoneMatch).toMatch(/^"/);
    expect(first.match_id).toBe(MATCH);
  });

  it("rejects an unknown match with a FailedError that carries retryAt", async () => {
    const error = await client.request({ kind: "match", id: 123 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FailedError);
    const failed = error as FailedError;
    expect(failed.status).toBe(404);
    expect(failed.error).toMatch(/no such resource/);
    expect(failed.signature).toBe("match:123");
    expect(failed.retryAt.getTime()).toBeGreaterThan(Date.now());
  });

  it("reports a team import's rising progress and ends with the complete view", async () => {
    // Frost Giants: one Dotabuff page, so its record is stored at once; one of its four
    // matches fails four times upstream first (retried with backoff, ~4 s), so the first
    // progress poll (after the POST's Retry-After) sees the import part-way.
    await upstreamFault("/opendota/matches/7930724122", 500, 4);
    const seen: Progress[] = [];
    const view = await client.request(
      { kind: "team", teamId: 9517693, leagueId: 16435 },
      { onProgress: (p) => seen.push(p), progressIntervalMs: 100 },
    );

    expect(view.teamId).toBe("9517693");
    expect(view.matchIds).toHaveLength(4);
    expect(isComplete(view.progress)).toBe(true);
    expect(view.progress.matchesReady).toBe(4);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    const done = seen.map((p) => p.matchesReady + p.playersReady);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(done[0]!).toBeLessThan(done.at(-1)!);
    expect(isComplete(seen[0]!)).toBe(false);
    expect(isComplete(seen.at(-1)!)).toBe(true);
  });

  it("stops polling when aborted: no request follows the abort", async () => {
    calls.length = 0;
    const controller = new AbortController();
    const pending = client.request({ kind: "match", id: ABORTED_MATCH }, { signal: controller.signal });
    await sleep(300);
    controller.abort();
    const abortedAt = Date.now();
    const error = await pending.catch((e: unknown) => e);
    expect((error as Error).name).toBe("AbortError");
    // The POST was answered 202 (Retry-After 2 s): without the abort a GET would follow.
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: "POST", status: 202 });
    await sleep(2500);
    expect(calls.filter((c) => c.sentAt >= abortedAt)).toEqual([]);
  });
});

describe("typed calls", () => {
  const client = createClient({ baseUrl: baseUrl() });

  it("queueStatus() reports every service's active requests as a number", async () => {
    const status = await client.queueStatus();
    expect(Object.keys(status.services).sort()).toEqual(["dotabuff", "opendota", "steam", "stratz"]);
    for (const service of Object.values(status.services)) {
      expect(typeof service.activeSignatures).toBe("number");
    }
  });

  it("invalidate() reports what it dropped", async () => {
    await client.request({ kind: "match", id: MATCH });
    const result = await client.invalidate([{ type: "matches", id: String(MATCH) }, { type: "heroes", id: "1" }]);
    expect(result.invalidated).toEqual([{ type: "matches", id: String(MATCH), invalidated: 1 }]);
    expect(result.errors).toHaveLength(1);
    // Invalidated: the next POST queues a refetch, and request() still ends ready.
    const again = await client.request({ kind: "match", id: MATCH });
    expect(again.match_id).toBe(MATCH);
  });

  it("serves the document it was generated from", async () => {
    const { data } = await client.api.GET("/api/openapi.json");
    const committed: unknown = JSON.parse(readFileSync(new URL("../openapi.json", import.meta.url), "utf8"));
    expect(data).toEqual(committed);
  });
});
