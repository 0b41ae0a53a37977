"use client";

/**
 * `<QueueStatusIndicator serviceNames showDetails compact />`: the queue status as the replaced
 * system's dashboards showed it ("opendota: 3 active requests"), polled with
 * {@link useQueueStatus}. Plain semantic markup, no CSS framework: a labelled `<section>`,
 * a polite live region (`role="status"`) so screen readers hear changes without focus moving,
 * `aria-busy` while loading, and errors as `role="alert"`. Style it through the `dota-queue-*`
 * class names and `data-` attributes.
 */
import { useId } from "react";
import type { Schemas } from "../resources.js";
import { useQueueStatus } from "./hooks.js";

export interface QueueStatusIndicatorProps {
  /** Services to show, in this order; default every service the status lists. */
  serviceNames?: string[];
  /** Also show queue, retries, counters and rate budget per service. Default false. */
  showDetails?: boolean;
  /** One line, no heading. Default false. */
  compact?: boolean;
  /** Milliseconds between polls. Default 2000. */
  pollingInterval?: number;
  /** Heading (and accessible name). Default "Queue status". */
  title?: string;
}

/** "3 active requests", "1 active request". */
export function activeRequests(n: number): string {
  return `${n} active ${n === 1 ? "request" : "requests"}`;
}

function Details({ service }: { service: Schemas["ServiceStatus"] }) {
  const budget = service.budget;
  return (
    <dl className="dota-queue-details">
      <dt>Queued</dt>
      <dd>{service.queued}</dd>
      <dt>Awaiting retry or ack</dt>
      <dd>{service.unacked}</dd>
      <dt>Completed</dt>
      <dd>{service.completed}</dd>
      <dt>Failed</dt>
      <dd>{service.failed}</dd>
      {budget && (
        <>
          <dt>Calls left this minute</dt>
          <dd>
            {budget.remainingMinute} of {budget.limitPerMinute}
            {budget.scope === "cluster" && <> (every instance)</>}
          </dd>
          {budget.day && (
            <>
              <dt>Calls left today</dt>
              <dd>
                {budget.day.remaining} of {budget.day.limit}
                {budget.day.remaining === 0 && <> (spent, resets {budget.day.resetsAt})</>}
              </dd>
            </>
          )}
        </>
      )}
    </dl>
  );
}

export function QueueStatusIndicator({
  serviceNames,
  showDetails = false,
  compact = false,
  pollingInterval = 2000,
  title = "Queue status",
}: QueueStatusIndicatorProps) {
  const { status, isLoading, error } = useQueueStatus({ pollingInterval });
  const headingId = useId();
  const services = status?.services ?? {};
  const names = serviceNames ?? Object.keys(services);
  const line = (name: string) => {
    const s = services[name];
    return s ? `${name}: ${activeRequests(s.activeSignatures)}` : `${name}: unknown`;
  };
  return (
    <section
      className="dota-queue-status"
      aria-labelledby={compact ? undefined : headingId}
      aria-label={compact ? title : undefined}
      aria-busy={isLoading}
      data-compact={compact ? "" : undefined}
    >
      {!compact && <h2 id={headingId}>{title}</h2>}
      {error && <p role="alert">Queue status unavailable: {error.message}</p>}
      <div role="status">
        {isLoading && <span>Loading queue status…</span>}
        {status && compact && <p className="dota-queue-line">{names.map(line).join(" · ")}</p>}
        {status && !compact && (
          <ul className="dota-queue-services">
            {names.map((name) => {
              const s = services[name];
              return (
                <li key={name} data-service={name} data-processing={s?.processing ? "" : undefined}>
                  <span>{line(name)}</span>
                  {showDetails && s && <Details service={s} />}
                </li>
              );
            })}
          </ul>
        )}
      </div>
    </section>
  );
}
