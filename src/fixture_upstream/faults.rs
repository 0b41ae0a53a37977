//! Scripted faults of the fixture upstream: tests `POST /_faults` a [`FaultSpec`] to make the
//! next `count` requests of a path answer a chosen status and body, and `DELETE /_faults` to
//! clear them. Owned by the request state in [`super::routes`], consulted before any file.
//!
//! Several faults on the same path fire in the order they were added (first one until it is
//! used up, then the next), so a test can script e.g. "two 500s, then one 429".

use bytes::Bytes;
use serde::Deserialize;
use warp::http::StatusCode;

/// Upper bound on scripted faults alive at once; a test adding more has a bug (usually a loop),
/// and an unbounded table would hide it behind slowly growing memory.
pub(crate) const MAX_FAULTS: usize = 1024;

/// Body of `POST /_faults`, e.g. `{"path":"/opendota/matches/123","status":500,"count":2}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// Request path to match, starting with `/`; for Dotabuff optionally with its query.
    path: String,
    /// Status to answer.
    status: u16,
    /// How many requests to answer; absent means every request until `DELETE /_faults`.
    count: Option<u32>,
    /// Raw body to answer; absent means `{"error":"<canonical reason>"}`.
    body: Option<String>,
}

/// Why a fault spec was refused (answered 400 with the message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultSpecError {
    #[error("invalid fault JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("fault path must start with '/', got {0:?}")]
    Path(String),
    #[error("fault status must be an HTTP status between 100 and 999, got {0}")]
    Status(u16),
    #[error("fault count must be at least 1 (omit it for a permanent fault)")]
    ZeroCount,
    #[error("too many faults (at most {MAX_FAULTS}); DELETE /_faults first")]
    TooMany,
}

/// What an injected fault answers.
#[derive(Debug, Clone)]
pub(crate) struct FaultReply {
    pub(crate) status: StatusCode,
    /// `None` means the default JSON error body.
    pub(crate) body: Option<Bytes>,
}

impl FaultReply {
    pub(crate) fn is_rate_limit(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS
    }
}

#[derive(Debug)]
struct Fault {
    path: String,
    /// Requests still to answer; `None` = forever.
    remaining: Option<u32>,
    reply: FaultReply,
}

/// The live faults, in insertion order.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    faults: Vec<Fault>,
}

/// Position of a matching fault, valid until the table is next modified.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultIndex(usize);

impl FaultTable {
    /// Parses and adds a fault from the raw `POST /_faults` body.
    pub(crate) fn add(&mut self, raw: &[u8]) -> Result<(), FaultSpecError> {
        let spec: FaultSpec = serde_json::from_slice(raw)?;
        if !spec.path.starts_with('/') {
            return Err(FaultSpecError::Path(spec.path));
        }
        let status =
            StatusCode::from_u16(spec.status).map_err(|_| FaultSpecError::Status(spec.status))?;
        if spec.count == Some(0) {
            return Err(FaultSpecError::ZeroCount);
        }
        if self.faults.len() >= MAX_FAULTS {
            return Err(FaultSpecError::TooMany);
        }
        self.faults.push(Fault {
            path: spec.path,
            remaining: spec.count,
            reply: FaultReply {
                status,
                body: spec.body.map(Bytes::from),
            },
        });
        Ok(())
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }

    /// The fault that would answer a request matching `keys` (most specific key first),
    /// without using it up.
    pub(crate) fn find(&self, keys: &[String]) -> Option<(FaultIndex, FaultReply)> {
        keys.iter().find_map(|key| {
            self.faults
                .iter()
                .position(|f| &f.path == key)
                .map(|i| (FaultIndex(i), self.faults[i].reply.clone()))
        })
    }

    /// Uses up one answer of the fault at `index` (from [`FaultTable::find`] under the same lock).
    pub(crate) fn consume(&mut self, index: FaultIndex) {
        let Some(fault) = self.faults.get_mut(index.0) else {
            return;
        };
        if let Some(remaining) = &mut fault.remaining {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.faults.remove(index.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn fire(table: &mut FaultTable, k: &[&str]) -> Option<u16> {
        let (index, reply) = table.find(&keys(k))?;
        table.consume(index);
        Some(reply.status.as_u16())
    }

    #[test]
    fn counted_faults_fire_in_order_then_disappear() {
        let mut t = FaultTable::default();
        t.add(br#"{"path":"/a","status":500,"count":2}"#)
            .expect("valid");
        t.add(br#"{"path":"/a","status":429,"count":1}"#)
            .expect("valid");
        let fired: Vec<_> = (0..4).map(|_| fire(&mut t, &["/a"])).collect();
        assert_eq!(fired, [Some(500), Some(500), Some(429), None]);
    }

    #[test]
    fn permanent_faults_fire_until_cleared_and_specific_keys_win() {
        let mut t = FaultTable::default();
        t.add(br#"{"path":"/d/m","status":503}"#).expect("valid");
        t.add(br#"{"path":"/d/m?page=2","status":404,"count":1}"#)
            .expect("valid");
        assert_eq!(fire(&mut t, &["/d/m?page=2", "/d/m"]), Some(404));
        assert_eq!(fire(&mut t, &["/d/m?page=2", "/d/m"]), Some(503));
        assert_eq!(fire(&mut t, &["/d/m"]), Some(503));
        t.clear();
        assert_eq!(fire(&mut t, &["/d/m"]), None);
    }

    #[test]
    fn invalid_specs_are_refused() {
        let mut t = FaultTable::default();
        assert!(matches!(t.add(b"{"), Err(FaultSpecError::Json(_))));
        assert!(matches!(
            t.add(br#"{"path":"a","status":500}"#),
            Err(FaultSpecError::Path(_))
        ));
        assert!(matches!(
            t.add(br#"{"path":"/a","status":42}"#),
            Err(FaultSpecError::Status(42))
        ));
        assert!(matches!(
            t.add(br#"{"path":"/a","status":500,"count":0}"#),
            Err(FaultSpecError::ZeroCount)
        ));
    }
}
