//! dota-orchestrator: keeps a Dota 2 analytics dashboard fed with OpenDota/Dotabuff data.
//!
//! Map of the system:
//! - [`actors`]: the actix actors; for now the per-upstream `RateLimiter`.
//! - [`domain`]: typed IDs, resource kinds and signatures.
pub mod actors;
pub mod domain;
