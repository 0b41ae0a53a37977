// @vitest-environment happy-dom
/**
 * The React hooks and `<QueueStatusIndicator>` in happy-dom with @testing-library/react, against
 * the same live service. Requests are counted through the client's `fetch`.
 */
import { QueryClient } from "@tanstack/react-query";
import { cleanup, render, renderHook, screen, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, FailedError } from "../src/index.js";
import {
  OrchestratorProvider,
  QueueStatusIndicator,
  useLiveEvents,
  useMatch,
  useQueueStatus,
  useTeamImport,
} from "../src/react/index.js";
import { baseUrl, recordingFetch, sleep, WebSocket } from "./helpers.js";

// The page is served from the service's origin, as behind the same-origin proxy the README
// recommends (the service sends no CORS headers, and happy-dom's fetch enforces CORS).
beforeAll(() => {
  (window as unknown as { happyDOM: { setURL(url: string): void } }).happyDOM.setURL(`${baseUrl()}/`);
});
afterEach(cleanup);

/** A provider over a recording client and a fresh cache, and the calls it records. */
function setup() {
  const { fetch, calls } = recordingFetch();
  const client = createClient({ baseUrl: baseUrl(), fetch, WebSocket, progressIntervalMs: 200 });
  const queryClient = new QueryClient();
  const wrapper = ({ children }: { children: ReactNode }) => (
    <OrchestratorProvider client={client} queryClient={queryClient}>
      {children}
    </OrchestratorProvider>
  );
  return { client, calls, wrapper, queryClient };
}

describe("useQueueStatus", () => {
  it("returns exactly { status, isLoading, error, isPolling } with activeSignatures a number", async () => {
    const { wrapper } = setup();
    const { result } = renderHook(() => useQueueStatus({ pollingInterval: 500, enabled: true }), { wrapper });
    expect(Object.keys(result.current).sort()).toEqual(["error", "isLoading", "isPolling", "status"]);
    expect(result.current.isLoading).toBe(true);
    await waitFor(() => expect(result.current.status).toBeDefined());
    expect(result.current.error).toBeNull();
    expect(result.current.isPolling).toBe(true);
    for (const data of Object.values(result.current.status!.services)) {
      expect(typeof data.activeSignatures).toBe("number");
    }
  });

  it("renders N active requests for each service, as the replaced system's guide shows it", async () => {
    function Services() {
      const { status } = useQueueStatus({ pollingInterval: 2000, enabled: true });
      return (
        <ul>
          {Object.entries(status?.services || {}).map(([service, data]) => (
            <li key={service}>{`${service}: ${data.activeSignatures} active requests`}</li>
          ))}
        </ul>
      );
    }
    const { wrapper } = setup();
    render(<Services />, { wrapper });
    const items = await screen.findAllByText(/^(dotabuff|opendota): \d+ active requests$/);
    expect(items.map((i) => i.textContent?.split(":")[0])).toEqual(["dotabuff", "opendota"]);
  });

  it("renders N active requests for each service (QueueStatusIndicator)", async () => {
    const { wrapper } = setup();
    render(<QueueStatusIndicator serviceNames={["dotabuff", "opendota"]} showDetails={true} compact={false} />, {
      wrapper,
    });
    expect(screen.getByRole("region", { name: "Queue status" })).toBeDefined();
    const items = await screen.findAllByText(/^(dotabuff|opendota): \d+ active requests?$/);
    expect(items.map((i) => i.textContent?.split(":")[0])).toEqual(["dotabuff", "opendota"]);
    expect(screen.getAllByText("Calls left this minute")).toHaveLength(2);
  });

  it("renders one line when compact", async () => {
    const { wrapper } = setup();
    render(<QueueStatusIndicator serviceNames={["opendota"]} compact={true} />, { wrapper });
    expect(await screen.findByText(/^opendota: \d+ active requests?$/)).toBeDefined();
    expect(screen.queryByRole("heading")).toBeNull();
  });
});

describe("useTeamImport", () => {
  it("follows the import to complete, then stops polling", { timeout: 60_000 }, async () => {
    const { wrapper, calls } = setup();
    const { result } = renderHook(() => useTeamImport(9517508, 16435), { wrapper });
    await waitFor(() => expect(result.current.isComplete).toBe(true), { timeout: 45_000 });
    const view = result.current.view!;
    expect(view.matchIds).toHaveLength(9);
    expect(result.current.progress?.matchesReady).toBe(9);
    expect(result.current.isPolling).toBe(false);
    expect(result.current.state).toBe("complete");

    // Every GET but the last asked for the progress only; the last one fetched the full view.
    const gets = calls.filter((c) => c.method === "GET");
    expect(gets.at(-1)?.path).toBe("/api/teams/9517508/matches?leagueId=16435");
    expect(gets.slice(0, -1).every((c) => c.path.endsWith("include=progress"))).toBe(true);
    const count = calls.length;
    // Longer than the Retry-After (2 s) and ten progress intervals: nothing more is asked.
    await sleep(2500);
    expect(calls.length).toBe(count);
  });
});

describe("useMatch", () => {
  it("polls while queued and stops once ready", async () => {
    const { wrapper, calls } = setup();
    const { result } = renderHook(() => useMatch(7954027492), { wrapper });
    await waitFor(() => expect(result.current.state).toBe("ready"), { timeout: 15_000 });
    expect(result.current.data?.match_id).toBe(7954027492);
    expect(result.current.isPolling).toBe(false);
    const count = calls.length;
    await sleep(2500);
    expect(calls.length).toBe(count);
  });

  it("stops on a failure and reports it as a FailedError", async () => {
    const { wrapper, calls } = setup();
    const { result } = renderHook(() => useMatch(124), { wrapper });
    await waitFor(() => expect(result.current.state).toBe("failed"), { timeout: 15_000 });
    expect(result.current.error).toBeInstanceOf(FailedError);
    expect((result.current.error as FailedError).retryAt.getTime()).toBeGreaterThan(Date.now());
    expect(result.current.isPolling).toBe(false);
    const count = calls.length;
    await sleep(2500);
    expect(calls.length).toBe(count);
  });
});

describe("useLiveEvents", () => {
  it("delivers the events of the subscription", async () => {
    const { wrapper, client } = setup();
    const { result } = renderHook(() => useLiveEvents({ kinds: ["player-stats"], ids: [310000103] }), { wrapper });
    await waitFor(() => expect(result.current.connection).toBe("open"));
    await client.request({ kind: "player-stats", id: 310000103 });
    await waitFor(() => expect(result.current.events).toHaveLength(1), { timeout: 10_000 });
    expect(result.current.events[0]?.event.signature).toBe("player-stats:310000103");
    await waitFor(() => expect(result.current.status).toBeDefined());
  });
});
