//! dota-orchestrator: keeps a Dota 2 analytics dashboard fed with OpenDota/Dotabuff data.
//!
//! Map of the system:
//! - [`domain`]: typed IDs, resource kinds and signatures.
pub mod domain;
