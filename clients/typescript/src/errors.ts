/**
 * The errors the client rejects with, typed by what a caller does about them:
 * - {@link FailedError}: the service tried and the resource failed for good (an upstream 404,
 *   or retries exhausted). Do not poll again before `retryAt`; a new `request()` (POST)
 *   retries at once.
 * - {@link ApiError}: any other answer that is not the resource (400 bad ID, 401 missing admin
 *   token, 503 unavailable, ...). `status` and the server's `error` text say which.
 * An abort rejects with the signal's reason (a `DOMException` named `AbortError` by default).
 */
import type { components } from "./schema.js";

type FailedBody = components["schemas"]["Failed"];

/** The resource failed permanently: `{"status":"failed","error":...,"retryAt":...}` (404 or 502). */
export class FailedError extends Error {
  override readonly name = "FailedError";
  /** HTTP status: 404 when the upstream has no such resource, 502 otherwise. */
  readonly status: number;
  /** What the last attempt saw, as the server reports it. */
  readonly error: string;
  /** When the failure expires: from then on a GET queues a new attempt (a POST retries at once). */
  readonly retryAt: Date;
  /** The resource, e.g. `match:123`. */
  readonly signature: string;

  constructor(status: number, body: FailedBody) {
    super(`${body.signature} failed (${status}): ${body.error}; retry at ${body.retryAt}`);
    this.status = status;
    this.error = body.error;
    this.retryAt = new Date(body.retryAt);
    this.signature = body.signature;
  }
}

/** Any other non-success answer; `error` is the server's `{"error": "..."}` text when it sent one. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly error: string;

  constructor(status: number, error: string) {
    super(`HTTP ${status}: ${error}`);
    this.status = status;
    this.error = error;
  }
}

/** Whether `body` is the service's failed body. */
export function isFailedBody(body: unknown): body is FailedBody {
  return (
    typeof body === "object" &&
    body !== null &&
    (body as { status?: unknown }).status === "failed" &&
    typeof (body as { retryAt?: unknown }).retryAt === "string"
  );
}

/** The `error` text of an error body, or a generic one. */
export function errorText(body: unknown, fallback: string): string {
  if (typeof body === "object" && body !== null && typeof (body as { error?: unknown }).error === "string") {
    return (body as { error: string }).error;
  }
  return fallback;
}
