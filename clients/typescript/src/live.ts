/**
 * `client.live()`: follows the service's WebSocket (`/api/ws`). On every (re)connect it sends
 * the subscription (`{"subscribe":{"kinds","ids","status"}}`, the filters the server takes) and
 * reads the `history` message the server sends first (its last 50 ready/failed events). The
 * history fills what was missed while disconnected, and every event is delivered once: the
 * keys of the last {@link SEEN_EVENTS} delivered events are kept and repeats are dropped.
 *
 * The server filters only what follows the subscription; the history and anything sent before
 * the subscription arrived are unfiltered, so the same filter is applied here too.
 *
 * Reconnects back off exponentially with jitter ({@link LiveOptions.initialBackoffMs} doubling
 * up to {@link LiveOptions.maxBackoffMs}); the delay resets once a connection delivers its
 * history. A close with code 1003 (the server refused our message) is not retried.
 */
import type { Id, Schemas } from "./resources.js";

/** Delivered event keys remembered to drop repeats: more than the server's history (50). */
export const SEEN_EVENTS = 1000;

/** The subscription, as the server takes it. Empty or absent lists mean all. */
export interface LiveFilter {
  kinds?: Schemas["Kind"][];
  ids?: Id[];
  /** Queue status messages (`onStatus`); default true. */
  status?: boolean;
  /** Deliver the server's recent events on the first connect; default true. (After a reconnect the missed ones are always delivered.) */
  history?: boolean;
}

export type LiveEvent =
  | { type: "ready"; event: Schemas["ReadyEvent"] }
  | { type: "failed"; event: Schemas["FailedEvent"] };

export type LiveConnection = "connecting" | "open" | "closed";

export interface LiveOptions {
  onEvent?: (event: LiveEvent) => void;
  onStatus?: (status: Schemas["QueueStatus"]) => void;
  onConnection?: (state: LiveConnection) => void;
  /** A problem that stops the feed for good (the server refused the subscription). */
  onError?: (error: Error) => void;
  /** First reconnect delay (ms). Default 500. */
  initialBackoffMs?: number;
  /** Longest reconnect delay (ms). Default 30000. */
  maxBackoffMs?: number;
}

export interface LiveFeed {
  /** Closes the socket and stops reconnecting. */
  close(): void;
  readonly state: LiveConnection;
}

/**
 * What the feed needs of a WebSocket: the browser's, or `ws` in Node. The handlers' event
 * parameters are `any` because each implementation declares its own event classes, and a
 * handler property only accepts handlers for a type it can pass; the feed reads `data` of a
 * message and `code`/`reason` of a close, which both have.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

type ServerMessage =
  | { type: "history"; events: LiveEvent[] }
  | { type: "status"; status: Schemas["QueueStatus"] }
  | LiveEvent;

function eventKey(e: LiveEvent): string {
  const at = e.type === "ready" ? e.event.fetchedAt : e.event.failedAt;
  return `${e.type}|${e.event.signature}|${at}`;
}

/** The feed's URL: `baseUrl` (absolute, or relative to the page) with `ws:`/`wss:` and `/api/ws`. */
export function wsUrl(baseUrl: string): string {
  const page = (globalThis as { location?: { href: string } }).location?.href;
  const url = new URL(`${baseUrl.replace(/\/+$/, "")}/api/ws`, page);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export function openLive(
  baseUrl: string,
  filter: LiveFilter,
  options: LiveOptions,
  Ctor?: new (url: string) => WebSocketLike,
): LiveFeed {
  const WebSocketImpl =
    Ctor ?? (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!WebSocketImpl) {
    throw new Error("no WebSocket available: pass createClient({ WebSocket }) (e.g. from the `ws` package)");
  }
  const url = wsUrl(baseUrl);
  const kinds = new Set<string>(filter.kinds ?? []);
  const ids = new Set((filter.ids ?? []).map(String));
  const wantStatus = filter.status ?? true;
  const subscribe = JSON.stringify({
    subscribe: { kinds: [...kinds], ids: [...ids], status: wantStatus },
  });
  const initial = options.initialBackoffMs ?? 500;
  const max = options.maxBackoffMs ?? 30_000;

  const seen = new Set<string>();
  const seenOrder: string[] = [];
  let firstHistory = true;
  let attempt = 0;
  let socket: WebSocketLike | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let state: LiveConnection = "closed";

  const setState = (next: LiveConnection) => {
    if (next !== state) {
      state = next;
      options.onConnection?.(next);
    }
  };

  const admits = (e: LiveEvent) =>
    (kinds.size === 0 || kinds.has(e.event.kind)) && (ids.size === 0 || ids.has(e.event.id));

  /** Remembers `e`; false when it was delivered (or skipped) before. */
  const remember = (e: LiveEvent) => {
    const key = eventKey(e);
    if (seen.has(key)) return false;
    seen.add(key);
    seenOrder.push(key);
    if (seenOrder.length > SEEN_EVENTS) seen.delete(seenOrder.shift() as string);
    return true;
  };

  const deliver = (e: LiveEvent) => {
    if (admits(e) && remember(e)) options.onEvent?.(e);
  };

  const onMessage = (data: unknown) => {
    let message: ServerMessage;
    try {
      message = JSON.parse(typeof data === "string" ? data : String(data)) as ServerMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case "history":
        attempt = 0;
        if (firstHistory && filter.history === false) {
          // Not delivered, but remembered: a reconnect must not deliver them either.
          message.events.forEach(remember);
        } else {
          message.events.forEach(deliver);
        }
        firstHistory = false;
        break;
      case "status":
        if (wantStatus) options.onStatus?.(message.status);
        break;
      case "ready":
      case "failed":
        deliver(message);
        break;
    }
  };

  const connect = () => {
    timer = undefined;
    if (stopped) return;
    setState("connecting");
    const ws = new WebSocketImpl(url);
    socket = ws;
    ws.onopen = () => {
      if (socket !== ws) return;
      ws.send(subscribe);
      setState("open");
    };
    ws.onmessage = (event: { data: unknown }) => {
      if (socket === ws) onMessage(event.data);
    };
    ws.onerror = () => {
      // A close follows; reconnecting is decided there.
    };
    ws.onclose = (event: { code: number; reason: string }) => {
      if (socket !== ws) return;
      socket = undefined;
      setState("closed");
      if (stopped) return;
      if (event.code === 1003) {
        stopped = true;
        options.onError?.(new Error(`the server refused the subscription: ${event.reason}`));
        return;
      }
      const base = Math.min(max, initial * 2 ** attempt);
      attempt += 1;
      timer = setTimeout(connect, base / 2 + Math.random() * (base / 2));
    };
  };

  connect();
  return {
    close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const ws = socket;
      socket = undefined;
      ws?.close(1000, "client closed");
      setState("closed");
    },
    get state() {
      return state;
    },
  };
}
