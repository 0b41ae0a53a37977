/**
 * `client.live()` against the live service's WebSocket: the server-side filter, queue status
 * messages, and a reconnect after the connection drops that delivers what was missed (from the
 * server's history) and nothing twice.
 */
import { describe, expect, it } from "vitest";
import { createClient, type LiveConnection, type LiveEvent, type QueueStatus } from "../src/index.js";
import { baseUrl, sleep, until, WebSocket } from "./helpers.js";

/** A `ws` WebSocket the test can reach, to cut the connection as a network would. */
const sockets: WebSocket[] = [];
class TrackedWebSocket extends WebSocket {
  constructor(url: string) {
    super(url);
    sockets.push(this);
  }
}

describe("live()", () => {
  it("follows the feed with the server's filters, reconnects, and resumes without duplicates", async () => {
    const client = createClient({ baseUrl: baseUrl(), WebSocket: TrackedWebSocket });
    const events: LiveEvent[] = [];
    const statuses: QueueStatus[] = [];
    const states: LiveConnection[] = [];
    const feed = client.live(
      { kinds: ["player-stats"], ids: [310000101, "310000102"] },
      {
        onEvent: (e) => events.push(e),
        onStatus: (s) => statuses.push(s),
        onConnection: (s) => states.push(s),
        // Long enough that the second fetch below lands while the feed is disconnected.
        initialBackoffMs: 3000,
      },
    );
    try {
      await until(() => feed.state === "open", 10_000, "the socket to open");
      await until(() => statuses.length > 0, 10_000, "a status message");
      expect(typeof statuses[0]!.services.opendota?.activeSignatures).toBe("number");

      // Other kinds and other ids are not delivered.
      await client.request({ kind: "player", id: 310000101 });
      await client.request({ kind: "player-stats", id: 310000101 });
      await until(() => events.length >= 1, 10_000, "the first event");

      // The connection drops; a stats fetch completes while it is down.
      sockets[0]!.terminate();
      await until(() => feed.state !== "open", 5_000, "the drop to be noticed");
      await client.request({ kind: "player-stats", id: 310000102 });

      // The reconnect's history carries both events: the missed one is delivered, the one
      // already delivered is not delivered again.
      await until(() => events.length >= 2, 20_000, "the missed event after reconnecting");
      await until(() => sockets.length === 2 && feed.state === "open", 10_000, "the reconnect");
      await sleep(500);
      expect(events.map((e) => `${e.type} ${e.event.signature}`)).toEqual([
        "ready player-stats:310000101",
        "ready player-stats:310000102",
      ]);
      expect(states.filter((s) => s === "open")).toHaveLength(2);
    } finally {
      feed.close();
    }
    expect(feed.state).toBe("closed");
  });
});
