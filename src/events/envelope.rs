//! The CloudEvents 1.0 envelope of a ready or failed event, in binary content mode (the
//! CloudEvents NATS protocol binding): the attributes travel as NATS headers `ce-*` and the body
//! stays the event JSON of [`crate::bus::wire`]. Also the webhook event names
//! (`match.ready`, `team.failed`, ...) that the same type maps to. Made by [`super::announce_ready`]
//! and [`super::announce_failed`]; read back by the SSE and WebSocket relays and the webhook
//! dispatcher ([`Envelope::from_headers`]).

use async_nats::HeaderMap;

use crate::domain::{ResourceKind, Signature};

/// `ce-specversion`.
pub const SPEC_VERSION: &str = "1.0";
/// `ce-source`: this service, as a URI reference.
pub const SOURCE: &str = "/dota-orchestrator";
/// Prefix of every `ce-type`: `com.dota-orchestrator.<kind>.<ready|failed>`.
pub const TYPE_PREFIX: &str = "com.dota-orchestrator";
/// The content type of every event body.
pub const CONTENT_TYPE: &str = "application/json";
/// Header names, lower case as the binding writes them.
pub const H_SPEC_VERSION: &str = "ce-specversion";
pub const H_ID: &str = "ce-id";
pub const H_SOURCE: &str = "ce-source";
pub const H_TYPE: &str = "ce-type";
pub const H_TIME: &str = "ce-time";
pub const H_SUBJECT: &str = "ce-subject";
pub const H_CONTENT_TYPE: &str = "content-type";
/// JetStream's de-duplication header; carries the same value as `ce-id`.
pub const H_MSG_ID: &str = "Nats-Msg-Id";

/// Whether an event announces a stored resource or a permanent failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Ready,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 2] = [Outcome::Ready, Outcome::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ready => "ready",
            Outcome::Failed => "failed",
        }
    }
}

/// A webhook event name: `<kind>.<outcome>`, e.g. `team.ready`, `player-stats.failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName {
    pub kind: ResourceKind,
    pub outcome: Outcome,
}

impl EventName {
    /// Every name, in a stable order (kinds, then outcomes).
    pub fn all() -> impl Iterator<Item = EventName> {
        ResourceKind::ALL
            .into_iter()
            .flat_map(|kind| Outcome::ALL.map(|outcome| EventName { kind, outcome }))
    }

    /// `match.ready`.
    pub fn as_string(self) -> String {
        format!("{}.{}", self.kind.as_str(), self.outcome.as_str())
    }

    /// `com.dota-orchestrator.match.ready`.
    pub fn ce_type(self) -> String {
        format!("{TYPE_PREFIX}.{}", self.as_string())
    }

    /// Reads `match.ready`; `None` for anything else.
    pub fn parse(text: &str) -> Option<EventName> {
        EventName::all().find(|name| name.as_string() == text)
    }

    /// Reads a `ce-type`.
    pub fn from_ce_type(ce_type: &str) -> Option<EventName> {
        ce_type
            .strip_prefix(TYPE_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(EventName::parse)
    }
}

/// The CloudEvents attributes of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `<outcome>:<signature>@<unix ms of the fetch or failure>`: the same event always has the
    /// same ID, whichever instance publishes it, so JetStream stores it once and webhook
    /// receivers can de-duplicate on it.
    pub id: String,
    pub name: EventName,
    /// RFC 3339 time of the fetch (ready) or the failure.
    pub time: String,
    /// The resource signature, e.g. `match:7930696222`.
    pub subject: String,
}

impl Envelope {
    /// The envelope of `outcome` for `signature` at `at_ms` (fetch or failure time).
    pub fn new(outcome: Outcome, signature: Signature, at_ms: i64) -> Self {
        let time = chrono::DateTime::from_timestamp_millis(at_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Envelope {
            id: format!("{}:{signature}@{at_ms}", outcome.as_str()),
            name: EventName {
                kind: signature.kind(),
                outcome,
            },
            time,
            subject: signature.to_string(),
        }
    }

    /// The NATS headers of binary content mode, plus `Nats-Msg-Id`.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in self.attributes() {
            headers.insert(name, value.as_str());
        }
        headers.insert(H_MSG_ID, self.id.as_str());
        headers
    }

    /// `(header, value)` of every CloudEvents attribute and the content type; the webhook
    /// delivery sends the same as HTTP headers.
    pub fn attributes(&self) -> [(&'static str, String); 7] {
        [
            (H_SPEC_VERSION, SPEC_VERSION.to_string()),
            (H_ID, self.id.clone()),
            (H_SOURCE, SOURCE.to_string()),
            (H_TYPE, self.name.ce_type()),
            (H_TIME, self.time.clone()),
            (H_SUBJECT, self.subject.clone()),
            (H_CONTENT_TYPE, CONTENT_TYPE.to_string()),
        ]
    }

    /// Reads the envelope back from a message's headers; `None` when one is missing or the
    /// type is not ours (a message published by an older version, or by someone else).
    pub fn from_headers(headers: &HeaderMap) -> Option<Envelope> {
        let get = |name: &str| headers.get(name).map(|v| v.as_str().to_string());
        Some(Envelope {
            id: get(H_ID)?,
            name: EventName::from_ce_type(&get(H_TYPE)?)?,
            time: get(H_TIME)?,
            subject: get(H_SUBJECT)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LeagueId, MatchId, TeamId};

    #[test]
    fn an_envelope_round_trips_through_its_headers() {
        let sig = Signature::Team(TeamId::new(9).unwrap(), LeagueId::new(16435).unwrap());
        let env = Envelope::new(Outcome::Ready, sig, 1_764_000_000_123);
        assert_eq!(env.id, "ready:team:9:16435@1764000000123");
        assert_eq!(env.name.ce_type(), "com.dota-orchestrator.team.ready");
        assert_eq!(env.time, "2025-11-24T16:00:00.123Z");
        let headers = env.headers();
        assert_eq!(headers.get(H_MSG_ID).unwrap().as_str(), env.id);
        assert_eq!(headers.get(H_SPEC_VERSION).unwrap().as_str(), "1.0");
        assert_eq!(Envelope::from_headers(&headers), Some(env));
    }

    #[test]
    fn event_names_cover_every_kind_and_outcome() {
        assert_eq!(EventName::all().count(), 10);
        let name = EventName::parse("player-stats.failed").unwrap();
        assert_eq!(name.kind, ResourceKind::PlayerStats);
        assert_eq!(name.outcome, Outcome::Failed);
        assert_eq!(EventName::from_ce_type(&name.ce_type()), Some(name));
        for bad in ["match", "match.done", "hero.ready", "", "match.ready.x"] {
            assert_eq!(EventName::parse(bad), None, "{bad}");
        }
        let sig = Signature::Match(MatchId::new(1).unwrap());
        assert_eq!(
            Envelope::new(Outcome::Failed, sig, 0).id,
            "failed:match:1@0"
        );
    }
}
