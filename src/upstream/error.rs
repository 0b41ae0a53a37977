//! Upstream failures, typed by the decision they force: retry later (transient) or give up
//! now (permanent). [`UpstreamError::disposition`] is the one place that decides.
//!
//! Only the upstream's own verdict on the resource is permanent at once: a 404, or OpenDota's
//! explicit "invalid id" answer (see [`invalid_id_message`]). Everything a CDN or an overloaded
//! upstream produces now and then (a body cut short, a bot-check HTML page with status 200, a
//! reset, a timeout, a 5xx, any other 4xx) is transient: one bad answer is not a verdict, so the
//! job retries within its attempt budget and, when that runs out, reports the last answer seen.

use serde_json::Value;

use super::budget::BudgetUnavailable;
use crate::domain::Service;

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("{service} has no such resource (404)")]
    NotFound { service: Service },
    /// The upstream said the ID itself is invalid, e.g. `{"error":"invalid match_id"}`.
    #[error("{service} rejected the id: {message}")]
    InvalidId { service: Service, message: String },
    #[error("{service} answered HTTP {status}")]
    Status { service: Service, status: u16 },
    /// A bot challenge page in place of the resource (Dotabuff behind its CDN): programs are
    /// refused, so asking again soon cannot help; the caller moves on to another source.
    #[error("{service}: bot challenge (HTTP {status})")]
    Challenge { service: Service, status: u16 },
    #[error("{service} kept answering 429 (rate limit exceeded) after {tries} tries")]
    RateLimited { service: Service, tries: u32 },
    /// Connect failure, reset, timeout, or a connection cut mid-body.
    #[error("could not reach {service}: {reason}")]
    Transport { service: Service, reason: String },
    #[error("{service} sent a body larger than {limit} bytes")]
    TooLarge { service: Service, limit: usize },
    /// A 2xx answer that is not the resource: truncated or unparseable JSON, an HTML page
    /// (a bot check), or JSON of the wrong shape. Another attempt may get the real body.
    #[error("{service} sent a garbled answer: {reason}")]
    Garbled { service: Service, reason: String },
    /// A body or record that refetching cannot fix (e.g. a record that cannot be encoded, a
    /// job delivered to the wrong fetcher).
    #[error("{service} sent an unreadable body: {reason}")]
    Unreadable { service: Service, reason: String },
    #[error(transparent)]
    Limiter(#[from] BudgetUnavailable),
    /// The body was fetched but not parsed: the runtime stopped first (see
    /// [`super::off_thread`]). Only seen at shutdown, when the job is handed back.
    #[error("{service} body was not parsed: the runtime is shutting down")]
    Interrupted { service: Service },
}

/// What the job runner does with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Try again after a backoff.
    Retry,
    /// Record the failure now; retrying cannot help.
    GiveUp { not_found: bool },
}

impl UpstreamError {
    pub fn disposition(&self) -> Disposition {
        match self {
            UpstreamError::NotFound { .. } | UpstreamError::InvalidId { .. } => {
                Disposition::GiveUp { not_found: true }
            }
            // A size over the cap repeats on every attempt; an unreadable record is ours.
            UpstreamError::Unreadable { .. } | UpstreamError::TooLarge { .. } => {
                Disposition::GiveUp { not_found: false }
            }
            // Any other status, 4xx included: CDNs answer 403 to a bot check and 400 to a
            // mangled request now and then; only 404 and an explicit invalid-id answer are
            // the upstream's verdict on the resource.
            UpstreamError::Status { .. }
            | UpstreamError::Challenge { .. }
            | UpstreamError::RateLimited { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::Garbled { .. }
            | UpstreamError::Limiter(_)
            | UpstreamError::Interrupted { .. } => Disposition::Retry,
        }
    }
}

/// OpenDota's explicit answer that an ID is invalid, whatever the status (400 or 200): a JSON
/// object whose `error` starts with "invalid", e.g. `{"error":"invalid match_id"}`. Other error
/// bodies (`{"error":"Internal Server Error"}`, `{"error":"rate limit exceeded"}`) are not.
pub fn invalid_id_message(body: &[u8]) -> Option<String> {
    invalid_id_in(&serde_json::from_slice(body).ok()?)
}

/// [`invalid_id_message`] of a body already parsed (a 2xx body is parsed once, not twice).
pub fn invalid_id_in(value: &Value) -> Option<String> {
    let message = value.get("error")?.as_str()?;
    message
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("invalid")
        .then(|| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OD: Service = Service::OpenDota;

    fn garbled() -> UpstreamError {
        UpstreamError::Garbled {
            service: OD,
            reason: "EOF while parsing".into(),
        }
    }

    #[test]
    fn only_404_and_an_invalid_id_are_permanent_at_once() {
        let permanent = [
            UpstreamError::NotFound { service: OD },
            UpstreamError::InvalidId {
                service: OD,
                message: "invalid match_id".into(),
            },
        ];
        for err in permanent {
            assert_eq!(
                err.disposition(),
                Disposition::GiveUp { not_found: true },
                "{err}"
            );
        }
        let transient = [
            garbled(),
            UpstreamError::Interrupted { service: OD },
            UpstreamError::Transport {
                service: OD,
                reason: "timed out".into(),
            },
            UpstreamError::Status {
                service: OD,
                status: 500,
            },
            UpstreamError::Status {
                service: OD,
                status: 503,
            },
            UpstreamError::Status {
                service: OD,
                status: 403,
            },
            UpstreamError::Status {
                service: OD,
                status: 400,
            },
            UpstreamError::RateLimited {
                service: OD,
                tries: 5,
            },
        ];
        for err in transient {
            assert_eq!(err.disposition(), Disposition::Retry, "{err}");
        }
    }

    #[test]
    fn invalid_id_answers_are_told_from_other_error_bodies() {
        assert_eq!(
            invalid_id_message(br#"{"error":"invalid match_id"}"#).as_deref(),
            Some("invalid match_id")
        );
        assert_eq!(
            invalid_id_message(br#"{"error":"Invalid account_id"}"#).as_deref(),
            Some("Invalid account_id")
        );
        for other in [
            &br#"{"error":"Not Found"}"#[..],
            br#"{"error":"rate limit exceeded"}"#,
            br#"{"error":"Internal Server Error"}"#,
            br#"{"error":{"invalid":true}}"#,
            br#"{"match_id":1}"#,
            b"<html>invalid</html>",
            b"",
        ] {
            assert_eq!(invalid_id_message(other), None);
        }
    }
}
