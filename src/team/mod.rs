//! Team imports: the stored team record (what the import found: match IDs per league, names,
//! source) and the read-side view built from it (progress, summaries of ready matches and
//! players). Used by the TeamImporter, the HTTP routes and the completion watcher.

pub mod record;
pub mod summary;
pub mod view;
