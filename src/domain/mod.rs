//! Domain vocabulary: typed IDs parsed once at the edge, resource kinds and their signatures.
//! Everything inside the service takes these types, never raw strings.

pub mod ids;
pub mod job;
pub mod resource;
pub mod source;

pub use ids::{IdError, LeagueId, MatchId, PlayerId, TeamId};
pub use job::{Fanout, Job};
pub use resource::{Priority, ResourceKind, Service, Signature, SignatureError};
pub use source::{Source, SourceChain};
