/**
 * Starts the real service once for the test run: the debug binary (or `DOTA_ORCHESTRATOR_BIN`)
 * in `--demo` mode, on a free port (`--http-addr 127.0.0.1:0`, embedded nats-server on port 0),
 * with its own temp data dir, and stops it (SIGTERM, which also stops its nats-server) after.
 * Tests read its URL with `inject("baseUrl")`, and the in-process fixture upstream's with
 * `inject("fixtureUrl")` (from its start-up log line) to script upstream faults.
 * Build the binary first (`cargo build`, or `cargo test`, as CI does).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    fixtureUrl: string;
  }
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** How long the service may take to start (it starts nats-server and opens redb). */
const START_TIMEOUT_MS = 45_000;

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export default async function setup(project: TestProject) {
  const bin = process.env.DOTA_ORCHESTRATOR_BIN ?? join(root, "target/debug/dota-orchestrator");
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: build the service first (cargo build), or set DOTA_ORCHESTRATOR_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), "dota-client-test-"));
  const log = join(dir, "service.log");
  const child = spawn(
    bin,
    [
      "serve",
      "--demo",
      "--http-addr", "127.0.0.1:0",
      "--nats-port", "0",
      "--data-dir", join(dir, "data"),
      "--nats-conf", join(root, "nats.conf"),
      "--demo-dir", join(root, "fixtures/demo"),
      // Scripted upstream faults are retried within a second or two.
      "--retry-base-ms", "300",
      "--retry-max-ms", "2000",
      // Budgets no test reaches: with OpenDota's default 60 calls a calendar minute, the
      // imports of one run could wait up to a minute for the next window.
      "--opendota-rate-limit-per-min", "6000",
      "--dotabuff-rate-limit-per-min", "600",
    ],
    {
      cwd: root,
      env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1", DOTA_LOG_FORMAT: "text" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const logFile = createWriteStream(log);
  child.stderr?.pipe(logFile);

  let fixtureUrl: string | undefined;
  const fixtureSeen = new Promise<void>((res) => {
    createInterface({ input: child.stderr! }).on("line", (line) => {
      const m = /demo mode: fixture upstream.*addr=(\S+)/.exec(line);
      if (m && !fixtureUrl) {
        fixtureUrl = `http://${m[1]}`;
        res();
      }
    });
  });
  const baseUrl = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the service did not start in ${START_TIMEOUT_MS} ms; see ${log}`)), START_TIMEOUT_MS);
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`the service exited (${code}) before listening; see ${log}`));
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const prefix = "dota-orchestrator listening on ";
      if (line.startsWith(prefix)) {
        clearTimeout(timer);
        res(line.slice(prefix.length).trim());
      }
    });
  }).catch(async (e) => {
    child.kill("SIGKILL");
    throw e;
  });
  await Promise.race([fixtureSeen, new Promise((r) => setTimeout(r, 5000))]);
  if (!fixtureUrl) throw new Error(`no fixture upstream address in the service's log; see ${log}`);

  project.provide("baseUrl", baseUrl);
  project.provide("fixtureUrl", fixtureUrl);

  return async () => {
    child.kill("SIGTERM");
    if (!(await waitForExit(child, 15_000))) {
      child.kill("SIGKILL");
      await waitForExit(child, 5_000);
    }
    logFile.end();
    if (process.env.KEEP_SERVICE_LOG) {
      console.log(`service log kept in ${log}`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
