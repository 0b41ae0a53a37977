//! The integration suite, linked as one test binary: each module below was a test crate of its
//! own, and 18 crates meant 18 links of the whole dependency graph for every change. Every test
//! starts the real app (embedded nats-server, redb, warp) against the fixture upstream over real
//! HTTP; `common` builds it, `chromium` drives a headless browser, `tests/data` holds page
//! captures. Tests share one process, so process-wide state (the metrics recorder, the tracing
//! subscriber) is installed once and assertions on it must not depend on other tests' traffic.

mod chromium;
mod common;

mod alerts;
mod api_contract;
mod autoscaling;
mod bounded_input;
mod cluster;
mod cluster_budget_status;
mod crash_restart;
mod dashboards;
mod data_markers;
mod day_budget;
mod demo;
mod demo_data_set;
mod deploy;
mod docs;
mod embedded_nats;
mod event_stream;
mod events;
mod failures;
mod fault_mix;
mod fixture_upstream;
mod frozen_owner;
mod invalidation;
mod leagues_stats;
mod live;
mod logs;
mod nats_auth;
mod negative_cache;
mod openapi;
mod pipeline;
mod priority;
mod queue_status;
mod rate_limits;
mod read_path;
mod record_replay;
mod refresh;
mod replica_resume;
mod restart;
mod scale_out;
mod shared_bounds;
mod shared_budget;
mod shutdown;
mod slow_parse;
mod sources;
mod stalled_imports;
mod status_page;
mod store_bounds;
mod store_degraded;
mod teams;
mod throughput;
mod webhooks;
