/**
 * What the tests share: the live service's URLs, a `fetch` that records every request (method,
 * path, time, status, `Retry-After`) so tests can count them, and the WebSocket of `ws` for Node 20.
 */
import { inject } from "vitest";
import WebSocket from "ws";

export const baseUrl = () => inject("baseUrl");
export const fixtureUrl = () => inject("fixtureUrl");

export interface Call {
  method: string;
  /** Path and query. */
  path: string;
  /** When the request was sent (ms since the epoch). */
  sentAt: number;
  status: number;
  retryAfter: string | null;
  ifNoneMatch: string | null;
}

/** A fetch for `createClient({ fetch })` that records every request in `calls`. */
export function recordingFetch() {
  const calls: Call[] = [];
  // Node's own fetch, also under happy-dom: the service sends no CORS headers.
  const realFetch = globalThis.fetch;
  const fetch = async (request: Request): Promise<Response> => {
    const sentAt = Date.now();
    const response = await realFetch(request);
    const url = new URL(request.url);
    calls.push({
      method: request.method,
      path: url.pathname + url.search,
      sentAt,
      status: response.status,
      retryAfter: response.headers.get("retry-after"),
      ifNoneMatch: request.headers.get("if-none-match"),
    });
    return response;
  };
  return { fetch, calls };
}

/** Scripts the next `count` upstream answers of `path` (e.g. `/opendota/matches/1`) as HTTP `status`. */
export async function upstreamFault(path: string, status: number, count: number) {
  const r = await fetch(`${fixtureUrl()}/_faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path, status, count }),
  });
  if (!r.ok) throw new Error(`POST /_faults: ${r.status} ${await r.text()}`);
}

/** Resolves once `condition()` is true, checking every 50 ms; rejects after `ms`. */
export async function until(condition: () => boolean, ms = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { WebSocket };
