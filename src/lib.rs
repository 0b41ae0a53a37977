//! dota-orchestrator: keeps a Dota 2 analytics dashboard fed with OpenDota/Dotabuff data.
//!
//! Map of the system:
//! - [`domain`]: typed IDs, resource kinds and signatures.
//! - [`upstream`]: upstream clients and the pure parsers of their responses.
pub mod domain;
pub mod upstream;
