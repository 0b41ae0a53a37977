/**
 * Type test (never run): uses every public function as an app would, through the package's
 * own `exports` (so the built `.d.ts` files are what is checked), and keeps deliberate misuses
 * as `// @ts-expect-error` lines. `npm test` runs `tsc --noEmit` over it: a misuse that stops
 * being a compile error fails the check (TS2578, unused directive).
 */
import {
  ApiError,
  createClient,
  FailedError,
  isComplete,
  resourceKey,
  retryAfterMs,
  type LiveEvent,
  type OrchestratorClient,
  type Progress,
  type QueueStatus,
  type TeamView,
} from "@dota-orchestrator/client";
import {
  activeRequests,
  OrchestratorProvider,
  QueueStatusIndicator,
  useLiveEvents,
  useMatch,
  useOrchestrator,
  usePlayer,
  usePlayerStats,
  useQueueStatus,
  useTeamImport,
} from "@dota-orchestrator/client/react";
import WebSocket from "ws";

export async function plainClient(): Promise<void> {
  const client: OrchestratorClient = createClient({
    baseUrl: "http://127.0.0.1:8080",
    WebSocket,
    adminToken: "secret",
    progressIntervalMs: 500,
  });
  const controller = new AbortController();

  const match = await client.request({ kind: "match", id: 7930696222 }, { signal: controller.signal });
  const matchId: unknown = match.match_id;
  const player = await client.request({ kind: "player", id: "310000101" });
  const stats = await client.request({ kind: "player-stats", id: 310000101 });
  const wins: number = stats.win;
  const league = await client.request({ kind: "league", id: 16435, queueMatches: true });
  const leagueMatches: string[] = league.matchIds;
  const view: TeamView = await client.request(
    { kind: "team", teamId: 9517508, leagueId: 16435 },
    { force: true, onProgress: (p: Progress) => console.log(p.matchesReady, p.matchesTotal) },
  );
  const done: boolean = isComplete(view.progress);

  const posted = await client.post({ kind: "match", id: 1 });
  if (posted.state === "queued") console.log(posted.retryAfterMs);
  const polled = await client.poll({ kind: "player", id: 1 });
  if (polled.state === "ready") console.log(polled.body, polled.cacheStatus, polled.notModified);
  const progress = await client.pollTeamProgress({ kind: "team", teamId: 1, leagueId: 2 });
  if (progress.state === "ready") console.log(progress.body.progress.playersReady);

  const status: QueueStatus = await client.queueStatus();
  Object.entries(status.services).map(([service, data]) => `${service}: ${data.activeSignatures} active requests`);
  const invalidated = await client.invalidate([{ type: "matches", id: "7930696222" }, { type: "teams", key: "x" }]);
  console.log(invalidated.invalidated[0]?.invalidated, invalidated.errors);

  // Everything else in the document, typed by openapi-fetch.
  const schedule = await client.api.GET("/api/refresh/schedule");
  console.log(schedule.data?.tracked[0]?.nextRefreshAt);

  const feed = client.live(
    { kinds: ["match", "player"], ids: [7930696222], status: false },
    { onEvent: (e: LiveEvent) => console.log(e.type, e.event.signature), onConnection: (s) => console.log(s) },
  );
  feed.close();

  try {
    await client.request({ kind: "match", id: 123 });
  } catch (e) {
    if (e instanceof FailedError) console.log(e.status, e.error, e.retryAt.toISOString(), e.signature);
    if (e instanceof ApiError) console.log(e.status, e.error);
  }
  console.log(matchId, player, wins, leagueMatches, done, resourceKey({ kind: "match", id: 1 }), retryAfterMs("2", 1000));

  // Deliberate misuses: each line must stay a compile error.
  // @ts-expect-error a string where the API takes a number (the poll interval)
  createClient({ baseUrl: "http://127.0.0.1:8080", progressIntervalMs: "500" });
  // @ts-expect-error a team import needs its league
  await client.request({ kind: "team", teamId: 9517508 });
  // @ts-expect-error no such resource kind
  await client.request({ kind: "hero", id: 1 });
  // @ts-expect-error activeSignatures is a count, not the list (that is activeSignaturesList)
  status.services.opendota?.activeSignatures.map((s: string) => s);
  // @ts-expect-error the generated path parameter is the ID's string form
  await client.api.GET("/api/matches/{id}", { params: { path: { id: 7930696222 } } });
  // @ts-expect-error a match body is not a team view
  const wrong: TeamView = await client.request({ kind: "match", id: 1 });
  console.log(wrong);
}

function Dashboard() {
  const { status, isLoading, error, isPolling } = useQueueStatus({ pollingInterval: 2000, enabled: true });
  const { client } = useOrchestrator();
  const team = useTeamImport(9517508, 16435, { force: false, progressIntervalMs: 1000 });
  const match = useMatch(7930696222);
  const player = usePlayer("310000101");
  const stats = usePlayerStats(310000101, { enabled: team.isComplete });
  const live = useLiveEvents({ kinds: ["match"] }, { max: 20 });
  if (isLoading) return <p>Loading…</p>;
  if (error) return <p role="alert">{error.message}</p>;
  const winRate: number | null | undefined = stats.data?.winRate;
  // @ts-expect-error a string where the hook takes a number
  useQueueStatus({ pollingInterval: "2000" });
  return (
    <main data-polling={isPolling} data-base={client.baseUrl}>
      <ul>
        {Object.entries(status?.services || {}).map(([service, data]) => (
          <li key={service}>{`${service}: ${data.activeSignatures} active requests`}</li>
        ))}
      </ul>
      <p>
        {team.state}: {team.progress?.matchesReady ?? 0}/{team.progress?.matchesTotal ?? "?"} matches,{" "}
        {team.view?.players.length ?? 0} players
      </p>
      <p>{match.state === "failed" && match.error instanceof FailedError ? `retry at ${match.error.retryAt}` : match.state}</p>
      <p>
        {String(player.data?.["profile"] ? "profile" : "")} {winRate} {activeRequests(live.events.length)}
      </p>
      <QueueStatusIndicator serviceNames={["dotabuff", "opendota"]} showDetails={true} compact={false} />
      {/* @ts-expect-error compact is a boolean */}
      <QueueStatusIndicator compact="yes" />
    </main>
  );
}

export function App() {
  return (
    <OrchestratorProvider baseUrl="http://127.0.0.1:8080">
      <Dashboard />
    </OrchestratorProvider>
  );
}
