/**
 * Type test (never run): the Next.js App Router example of README.md, minus the Next-only files,
 * so the README's client components compile against the published types.
 */
"use client";
import { OrchestratorProvider, QueueStatusIndicator, useTeamImport } from "@dota-orchestrator/client/react";
import type { ReactNode } from "react";

export function Providers({ children }: { children: ReactNode }) {
  return (
    <OrchestratorProvider
      baseUrl="/orchestrator"
      clientOptions={{ liveBaseUrl: process.env.NEXT_PUBLIC_ORCHESTRATOR_WS ?? "http://127.0.0.1:8080" }}
    >
      {children}
    </OrchestratorProvider>
  );
}

export function TeamImport({ teamId, leagueId }: { teamId: string; leagueId: string }) {
  const { view, progress, state, error } = useTeamImport(teamId, leagueId);
  if (error) return <p role="alert">{error.message}</p>;
  return (
    <section>
      <QueueStatusIndicator serviceNames={["dotabuff", "opendota"]} compact />
      {state !== "complete" && (
        <progress
          max={(progress?.matchesTotal ?? 0) + (progress?.playersTotal ?? 0)}
          value={(progress?.matchesReady ?? 0) + (progress?.playersReady ?? 0)}
          aria-label="Import progress"
        />
      )}
      <ul>
        {view?.matches.map((m) => (
          <li key={m.matchId ?? ""}>{m.radiantName} vs {m.direName}</li>
        ))}
      </ul>
    </section>
  );
}
