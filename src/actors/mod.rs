//! Actors, one per file, and who sends what to whom:
//! - HTTP handlers send `Prepare` to [`cache_keeper::CacheKeeper`] (the only redb writer) and
//!   publish the job it claimed to JetStream.
//! - [`match_fetcher::MatchFetcher`] / [`player_fetcher::PlayerFetcher`] pull jobs and send
//!   `Complete`/`Fail` to CacheKeeper, then publish the fan-out and the ready/failed event.
//!   Their upstream client waits for a grant before every call through the `upstream::budget`
//!   trait, which [`rate_limiter::LimiterBudget`] serves from [`rate_limiter::RateLimiter`]
//!   (the client never names the actor; the actor owns the budget, `upstream::budget` its
//!   rules).
//! - [`refresh_scheduler::RefreshScheduler`] (with `--auto-refresh`) sends `ClaimRefresh` to
//!   CacheKeeper for tracked team imports about to expire and publishes them as scheduled work,
//!   which the fetchers start only while `upstream::budget::reserve::SpareBudget` is open.
//! - Whatever writes a claim, a result, a failure, an invalidation, a tracked import or an
//!   announcement says so to [`store_port::StorePort`], which writes the shared store (with
//!   `--store nats`) and then CacheKeeper, in that one order.
//! - [`store_bounds::StoreUpkeep`] writes down when resources were requested and, with
//!   `--store-max-gb` or `--retention-days`, sends `Evict` and `Compact` to CacheKeeper; with
//!   `--store nats`, while it holds the upkeep's lease, it evicts from the shared store (each
//!   replica then drops the same resources, through the mirror's `Apply`).
//!
//! Start order: RateLimiter, CacheKeeper, fetchers. Stop order is the reverse: fetchers finish
//! their current job, then CacheKeeper lets go of the database.

pub mod cache_keeper;
pub mod fetcher;
pub mod league_fetcher;
pub mod league_history;
pub mod match_fetcher;
pub mod opendota_jobs;
pub mod pipeline;
pub mod player_fetcher;
pub mod player_stats_fetcher;
pub mod rate_limiter;
pub mod refresh_scheduler;
pub mod store_bounds;
pub mod store_port;
pub mod team_importer;
pub mod team_watch;
