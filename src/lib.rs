//! dota-orchestrator: keeps a Dota 2 analytics dashboard fed with OpenDota/Dotabuff data.
//! A warp façade answers at once; supervised actix actors do the fetching in the background,
//! exchanging jobs over NATS JetStream; results persist in redb.
//!
//! Map of the system:
//! - [`app`]: `Application::build` / `stop`, shared by `main` and the tests; start/stop order.
//! - [`clock`]: the wall clock the rate windows read, adjustable in tests.
//! - [`config`]: settings from defaults < TOML file < env < flags; the CLI.
//! - [`domain`]: typed IDs, resource kinds, priorities and signatures.
//! - [`actors`]: CacheKeeper, RateLimiter, MatchFetcher, PlayerFetcher and the job pipeline.
//! - [`events`]: the durable event stream `DOTA_EVENTS`, the CloudEvents envelope, the AsyncAPI document.
//! - [`webhooks`]: signed webhook endpoints and their durable delivery from `DOTA_EVENTS`.
//! - [`bus`]: the embedded nats-server (which binary, which version), subject names, wire types, the JetStream job queue.
//! - [`store`]: redb tables, records and reads.
//! - [`shared`]: with `--store nats`, the state every instance shares in JetStream (KV, Object
//!   Store, claims under a lease) and the watch that keeps the local redb a replica of it.
//! - [`encoding`]: entity tags and the gzip/brotli forms of stored bodies, made once.
//! - [`team`]: the team import record and its progress view.
//! - [`upstream`]: the rate-limited HTTP client, OpenDota calls, the Dotabuff page parser.
//! - [`http`]: the warp routes (one file per resource family), the API contract and its JSON
//!   errors, and the plumbing they share.
//! - [`read`]: the read model the handlers use: hot cache, queue snapshot, recent events,
//!   refresh state, the degraded-store bypass.
//! - `fixture_upstream`: the file-backed OpenDota/Dotabuff imitation for tests and `--demo`
//!   (cargo feature `fixture-upstream`, on by default).
//! - [`metrics`]: every metric name, and the Prometheus recorder.
//! - [`tasks`]: the supervisor of background tasks (one tracker, one stop token; panics are
//!   logged, counted and, for long-running loops, restarted).
pub mod actors;
pub mod app;
pub mod bus;
pub mod clock;
pub mod config;
pub mod domain;
pub mod encoding;
pub mod events;
#[cfg(feature = "fixture-upstream")]
pub mod fixture_upstream;
pub mod http;
pub mod metrics;
pub mod read;
pub mod shared;
pub mod store;
pub mod tasks;
pub mod team;
#[cfg(test)]
mod test_log;
pub mod upstream;
pub mod webhooks;
