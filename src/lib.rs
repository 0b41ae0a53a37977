//! dota-orchestrator: keeps a Dota 2 analytics dashboard fed with OpenDota/Dotabuff data.
//!
//! Map of the system:
//! - [`domain`]: typed IDs, resource kinds and signatures.
//! - [`fixture_upstream`]: an HTTP server imitating OpenDota and Dotabuff from files, for tests,
//!   benchmarks and `--demo` mode.
pub mod domain;
pub mod fixture_upstream;
