//! redb table definitions, declared once. Names carry a version: a change of value encoding
//! gets a new name (`_v2`) and a migration, never a silent reinterpretation.
//! Keys are signature strings (`match:8054301932`); values are JSON records or raw bodies.

use redb::TableDefinition;

/// Signature → [`super::EntryMeta`] JSON: when the stored copy was fetched, whether it was invalidated.
pub const RESOURCE_META: TableDefinition<&str, &[u8]> = TableDefinition::new("resource_meta_v1");
/// (Signature, piece) → the body's gzip bytes (OpenDota JSON, or our team record JSON, as
/// `crate::encoding` compresses it), in pieces of at most `bodies::CHUNK` bytes: the one
/// stored form of a body. Replaces `resource_body_v1`, `resource_gzip_v1` and
/// `resource_br_v1` (plain, gzip and brotli side by side), which `super::migrate` converts.
pub const BODIES: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("body_gzip_v2");
/// Signature → a small JSON summary of a stored match or player (`crate::team::summary`), so
/// a team view is built without reading the bodies.
pub const SUMMARIES: TableDefinition<&str, &[u8]> = TableDefinition::new("summary_v1");
/// Signature → [`super::InFlight`] JSON: queued or being fetched. Survives restarts so queued
/// work is re-published after a crash and never fetched twice at once.
pub const IN_FLIGHT: TableDefinition<&str, &[u8]> = TableDefinition::new("in_flight_v1");
/// Signature → [`super::Failure`] JSON: the last attempt failed permanently. Never holds data.
pub const FAILURES: TableDefinition<&str, &[u8]> = TableDefinition::new("failures_v1");
/// Page key (`dotabuff:/esports/teams/1/matches?page=2`) → 8-byte big-endian fetch time in
/// unix ms, then the raw page. Raw upstream pages cached for re-parsing within their TTL.
pub const RAW_PAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("raw_pages_v1");
/// Signature of a team import → fetch time (unix ms) of the team record whose completion was
/// announced on `dota.ready.team.*`; a newer record is announced again when it completes.
pub const ANNOUNCED: TableDefinition<&str, i64> = TableDefinition::new("announced_v1");
/// Signature of a tracked team import → when it was last requested (unix ms). A team import
/// requested within `--track-days` is refreshed by the scheduler (`--auto-refresh`).
pub const TRACKED: TableDefinition<&str, i64> = TableDefinition::new("tracked_v1");
/// Shared bucket name (`dota_data`) → [`super::ReplicaPosition`] JSON: with `--store nats`,
/// the last revision of that bucket the replica applied, written in the transaction that
/// applied it, so a restart resumes the bucket's watch after it.
pub const REPLICA_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("replica_state_v1");

/// Signature of a stored resource → when it was last requested (unix ms), noted at most once
/// a minute per resource (see `super::access`). What `--retention-days` and `--store-max-gb`
/// evict by: the least recently requested first.
pub const ACCESS: TableDefinition<&str, i64> = TableDefinition::new("access_v1");

/// Every table holding one byte row per stored resource, keyed by its signature: what
/// removing a resource ([`super::Tx::remove_entry`]) removes, besides its [`BODIES`] pieces and
/// its [`ACCESS`] and [`ANNOUNCED`] rows. A new per-resource table goes here, and removal follows.
pub const PER_RESOURCE: [TableDefinition<&str, &[u8]>; 3] = [RESOURCE_META, SUMMARIES, FAILURES];
