//! Scripted faults of the fixture upstream: tests `POST /_faults` a [`FaultSpec`] to make the
//! next `count` requests of a path misbehave, and `DELETE /_faults` to clear them. Owned by the
//! request state in [`super::routes`], consulted before any file.
//!
//! A fault is one of the [`FaultKind`]s a real CDN or upstream produces: a chosen status and
//! body (the default), the file cut in half with status 200 (`truncate`), a bot-check HTML
//! page with status 200 (`html`), a connection cut after the headers (`reset`), or no answer
//! for `ms` milliseconds and then a cut (`hang`); and the refusals of the real sources: the bot
//! challenge page a CDN puts in front of Dotabuff (`challenge`: HTTP 403, "Just a moment..."),
//! Steam's refused key (`steam_forbidden`: HTTP 403 with Valve's HTML page) and Steam busy
//! (`steam_busy`: HTTP 503 with its HTML page).
//!
//! Several faults on the same path fire in the order they were added (first one until it is
//! used up, then the next), so a test can script e.g. "two 500s, then one 429".

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use warp::http::StatusCode;

/// Upper bound on scripted faults alive at once; a test adding more has a bug (usually a loop),
/// and an unbounded table would hide it behind slowly growing memory.
pub(crate) const MAX_FAULTS: usize = 1024;

/// A hang with no `ms` lasts this long: longer than any test waits, shorter than forever so a
/// stopping fixture is not held up past its grace period by a forgotten hang.
const DEFAULT_HANG: Duration = Duration::from_secs(60);

/// Body of `POST /_faults`, e.g. `{"path":"/opendota/matches/123","status":500,"count":2}` or
/// `{"path":"/opendota/matches/123","kind":"hang","ms":2000,"count":1}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// Request path to match, starting with `/`; for Dotabuff optionally with its query.
    path: String,
    /// What goes wrong; absent means `status`.
    #[serde(default)]
    kind: FaultKind,
    /// Status to answer; required for (and only for) `kind: "status"`.
    status: Option<u16>,
    /// How long a `hang` lasts before the connection is cut.
    ms: Option<u64>,
    /// How many requests to answer; absent means every request until `DELETE /_faults`.
    count: Option<u32>,
    /// Raw body to answer with `status`; absent means `{"error":"<canonical reason>"}`.
    body: Option<String>,
}

/// The misbehaviours a fault can script (`kind` in a [`FaultSpec`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    /// Answer `status` with `body`.
    #[default]
    Status,
    /// Answer 200 with the first half of the file, as a CDN that cut the body does.
    Truncate,
    /// Answer 200 with an HTML bot-check page instead of the resource.
    Html,
    /// Send the headers, then cut the connection before any body.
    Reset,
    /// Answer nothing for `ms`, then cut the connection.
    Hang,
    /// Answer 403 with a bot challenge page ("Just a moment...").
    Challenge,
    /// Answer 403 with the HTML page Steam sends for a refused key.
    SteamForbidden,
    /// Answer 503 with the HTML page Steam sends when busy.
    SteamBusy,
}

/// The challenge page a CDN answers programs with, in front of Dotabuff.
pub(crate) const CHALLENGE_PAGE: &str = "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>\
<meta http-equiv=\"refresh\" content=\"390\"></head><body><div id=\"challenge-platform\">\
<noscript>Enable JavaScript and cookies to continue</noscript></div></body></html>";
/// Steam's answer to a refused key (HTTP 403).
pub(crate) const STEAM_FORBIDDEN_PAGE: &str = "<html><head><title>Forbidden</title></head><body>\
<h1>Forbidden</h1>Access is denied. Retrying will not help. Please verify your <pre>key=</pre> parameter.\
</body></html>";
/// Steam's answer when busy (HTTP 503).
pub(crate) const STEAM_BUSY_PAGE: &str = "<html><head><title>Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>";

/// Why a fault spec was refused (answered 400 with the message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultSpecError {
    #[error("invalid fault JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("fault path must start with '/', got {0:?}")]
    Path(String),
    #[error("fault status must be an HTTP status between 100 and 999, got {0}")]
    Status(u16),
    #[error("a status fault needs a status; other kinds take none")]
    StatusKind,
    #[error("only a hang fault takes ms")]
    NotHang,
    #[error("fault count must be at least 1 (omit it for a permanent fault)")]
    ZeroCount,
    #[error("too many faults (at most {MAX_FAULTS}); DELETE /_faults first")]
    TooMany,
}

/// What an injected fault answers.
#[derive(Debug, Clone)]
pub(crate) enum FaultReply {
    Status {
        status: StatusCode,
        /// `None` means the default JSON error body.
        body: Option<Bytes>,
    },
    Truncate,
    Html,
    Reset,
    Hang(Duration),
    /// A status with an HTML body, whatever the upstream's own content type.
    Page {
        status: StatusCode,
        body: Bytes,
    },
}

impl FaultReply {
    pub(crate) fn is_rate_limit(&self) -> bool {
        matches!(self, FaultReply::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS)
    }

    /// The reply a spec describes, once its fields are known to fit its kind.
    fn from_spec(spec: &FaultSpec) -> Result<Self, FaultSpecError> {
        if spec.ms.is_some() && spec.kind != FaultKind::Hang {
            return Err(FaultSpecError::NotHang);
        }
        if spec.status.is_some() != (spec.kind == FaultKind::Status) {
            return Err(FaultSpecError::StatusKind);
        }
        Ok(match spec.kind {
            FaultKind::Status => {
                let code = spec.status.unwrap_or_default();
                FaultReply::Status {
                    status: StatusCode::from_u16(code).map_err(|_| FaultSpecError::Status(code))?,
                    body: spec.body.clone().map(Bytes::from),
                }
            }
            FaultKind::Truncate => FaultReply::Truncate,
            FaultKind::Html => FaultReply::Html,
            FaultKind::Reset => FaultReply::Reset,
            FaultKind::Hang => {
                FaultReply::Hang(spec.ms.map_or(DEFAULT_HANG, Duration::from_millis))
            }
            FaultKind::Challenge => html_status(StatusCode::FORBIDDEN, CHALLENGE_PAGE),
            FaultKind::SteamForbidden => html_status(StatusCode::FORBIDDEN, STEAM_FORBIDDEN_PAGE),
            FaultKind::SteamBusy => html_status(StatusCode::SERVICE_UNAVAILABLE, STEAM_BUSY_PAGE),
        })
    }
}

/// A status answered with an HTML page.
fn html_status(status: StatusCode, page: &'static str) -> FaultReply {
    FaultReply::Page {
        status,
        body: Bytes::from_static(page.as_bytes()),
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
        let reply = FaultReply::from_spec(&spec)?;
        if spec.count == Some(0) {
            return Err(FaultSpecError::ZeroCount);
        }
        if self.faults.len() >= MAX_FAULTS {
            return Err(FaultSpecError::TooMany);
        }
        self.faults.push(Fault {
            path: spec.path,
            remaining: spec.count,
            reply,
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
        match reply {
            FaultReply::Status { status, .. } => Some(status.as_u16()),
            // Other kinds answer 200 headers, if any.
            _ => Some(200),
        }
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
        assert!(matches!(
            t.add(br#"{"path":"/a"}"#),
            Err(FaultSpecError::StatusKind)
        ));
        assert!(matches!(
            t.add(br#"{"path":"/a","kind":"html","status":200}"#),
            Err(FaultSpecError::StatusKind)
        ));
        assert!(matches!(
            t.add(br#"{"path":"/a","kind":"reset","ms":5}"#),
            Err(FaultSpecError::NotHang)
        ));
        assert!(matches!(
            t.add(br#"{"path":"/a","kind":"explode"}"#),
            Err(FaultSpecError::Json(_))
        ));
    }

    #[test]
    fn each_kind_parses_into_its_reply() {
        let mut t = FaultTable::default();
        for spec in [
            r#"{"path":"/t","kind":"truncate"}"#,
            r#"{"path":"/h","kind":"html"}"#,
            r#"{"path":"/r","kind":"reset"}"#,
            r#"{"path":"/g","kind":"hang","ms":250}"#,
            r#"{"path":"/f","kind":"hang"}"#,
        ] {
            t.add(spec.as_bytes()).expect(spec);
        }
        let reply = |k: &str| t.find(&keys(&[k])).map(|(_, r)| format!("{r:?}"));
        assert_eq!(reply("/t").as_deref(), Some("Truncate"));
        assert_eq!(reply("/h").as_deref(), Some("Html"));
        assert_eq!(reply("/r").as_deref(), Some("Reset"));
        assert_eq!(reply("/g").as_deref(), Some("Hang(250ms)"));
        assert_eq!(reply("/f").as_deref(), Some("Hang(60s)"));
    }
}
