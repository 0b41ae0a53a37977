//! What an endpoint is: the request that creates one ([`CreateWebhook`], parsed and checked once
//! into a [`NewEndpoint`]), the record kept in the `dota_webhooks` bucket ([`EndpointRecord`],
//! secrets included) and the views the API shows ([`WebhookView`], never a secret). Also which
//! events an endpoint takes ([`EndpointRecord::wants`]). Used by the registry, the dispatcher
//! and `http::webhooks`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{LeagueId, ResourceKind, Signature, TeamId};
use crate::events::EventName;

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A typed endpoint ID: `ep_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EndpointId(String);

impl EndpointId {
    pub fn generate() -> Self {
        EndpointId(format!("ep_{}", uuid::Uuid::new_v4().simple()))
    }

    /// Reads an ID from a path; `None` unless it has the generated shape (so it is also a safe
    /// NATS subject token and KV key).
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix("ep_")?;
        (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| EndpointId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which teams or leagues an endpoint cares about. `teamId` applies to `team.*` events only,
/// `leagueId` to `team.*` and `league.*` events (the only ones whose subject names them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    #[schema(value_type = Option<String>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<TeamId>,
    #[schema(value_type = Option<String>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub league_id: Option<LeagueId>,
}

impl Filter {
    /// Whether `signature` passes.
    pub fn admits(&self, signature: &Signature) -> bool {
        let (team, league) = match signature {
            Signature::Team(team, league) => (Some(*team), Some(*league)),
            Signature::League(league) => (None, Some(*league)),
            _ => (None, None),
        };
        self.team_id.is_none_or(|t| team == Some(t))
            && self.league_id.is_none_or(|l| league == Some(l))
    }
}

/// `POST /api/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: an http(s) URL.
    pub url: String,
    /// Event names `<kind>.<ready|failed>`, kinds `team`, `match`, `player`, `league`,
    /// `player-stats`.
    #[schema(example = json!(["team.ready", "match.failed"]))]
    pub events: Vec<String>,
    #[serde(default)]
    pub filter: Filter,
}

/// A checked [`CreateWebhook`].
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: reqwest::Url,
    pub events: Vec<EventName>,
    pub filter: Filter,
}

impl CreateWebhook {
    /// Checks the URL's form, the event names and that the filter can apply to them. Whether
    /// the URL's host is allowed is `guard`'s business.
    pub fn parse(self) -> Result<NewEndpoint, String> {
        if self.url.len() > MAX_URL_LEN {
            return Err(format!("url is over {MAX_URL_LEN} bytes"));
        }
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url is invalid: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("url must be an http(s) URL with a host".to_string());
        }
        if self.events.is_empty() {
            return Err("events must name at least one event".to_string());
        }
        let mut events = Vec::new();
        for raw in &self.events {
            let name = EventName::parse(raw).ok_or_else(|| {
                let known: Vec<String> = EventName::all().map(EventName::as_string).collect();
                format!(
                    "unknown event {:?}; known: {}",
                    raw.chars().take(40).collect::<String>(),
                    known.join(", ")
                )
            })?;
            if !events.contains(&name) {
                events.push(name);
            }
        }
        let team_only = events.iter().all(|e| e.kind == ResourceKind::Team);
        let has_league = events
            .iter()
            .all(|e| matches!(e.kind, ResourceKind::Team | ResourceKind::League));
        if self.filter.team_id.is_some() && !team_only {
            return Err("filter.teamId applies to team.* events only".to_string());
        }
        if self.filter.league_id.is_some() && !has_league {
            return Err("filter.leagueId applies to team.* and league.* events only".to_string());
        }
        Ok(NewEndpoint {
            url,
            events,
            filter: self.filter,
        })
    }
}

/// One signing secret; the previous one keeps signing until `expiresAtMs` after a rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSecret {
    /// `whsec_` + base64 of the key.
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
}

/// Why and when an endpoint stopped getting deliveries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disabled {
    /// `gone` (the receiver answered 410) or `failing` (5 days of failed deliveries).
    pub reason: String,
    pub at: String,
}

/// An endpoint as stored (JSON in the `dota_webhooks` bucket, key = its ID).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRecord {
    pub id: EndpointId,
    pub url: String,
    pub events: Vec<String>,
    pub filter: Filter,
    pub created_at: String,
    pub secrets: Vec<StoredSecret>,
    #[serde(default)]
    pub disabled: Option<Disabled>,
    /// Since when every delivery has failed (cleared by a success).
    #[serde(default)]
    pub failing_since_ms: Option<i64>,
}

impl EndpointRecord {
    /// Whether this endpoint takes `name` about `signature` now.
    pub fn wants(&self, name: EventName, signature: &Signature) -> bool {
        self.disabled.is_none()
            && self.events.iter().any(|e| *e == name.as_string())
            && self.filter.admits(signature)
    }

    /// The secrets that sign a delivery at `now_ms`: the current one and any not yet expired.
    pub fn signing_secrets(&self, now_ms: i64) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at_ms.is_none_or(|at| at > now_ms))
            .map(|s| s.secret.as_str())
    }

    pub fn view(&self) -> WebhookView {
        WebhookView {
            id: self.id.to_string(),
            url: self.url.clone(),
            events: self.events.clone(),
            filter: self.filter.clone(),
            created_at: self.created_at.clone(),
            disabled: self.disabled.clone(),
            failing_since: self.failing_since_ms.map(rfc3339),
        }
    }
}

/// `201` of `POST /api/webhooks` and of `rotate-secret`: the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    pub id: String,
    /// `whsec_` + base64: verify `webhook-signature` with it (Standard Webhooks v1).
    pub secret: String,
}

/// An endpoint as the API shows it (no secrets).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub filter: Filter,
    pub created_at: String,
    /// Set once the endpoint is disabled (a 410, or 5 days of failures); nothing is delivered.
    pub disabled: Option<Disabled>,
    /// Since when every delivery failed, while they do.
    pub failing_since: Option<String>,
}

/// `GET /api/webhooks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One delivery attempt, as `GET /api/webhooks/{id}/deliveries` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// The event's `ce-id`, also its `webhook-id`.
    pub event_id: String,
    pub event: String,
    /// 1 for the first attempt.
    pub attempt: u64,
    /// `delivered`, `retrying`, `exhausted`, `gone` or `refused`.
    pub outcome: String,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: String,
}

/// `GET /api/webhooks/{id}/deliveries`: the last 100 attempts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryAttempt>,
}

/// RFC 3339 (UTC, milliseconds) of a unix-ms instant.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MatchId;

    fn create(url: &str, events: &[&str], filter: Filter) -> Result<NewEndpoint, String> {
        CreateWebhook {
            url: url.to_string(),
            events: events.iter().map(|e| e.to_string()).collect(),
            filter,
        }
        .parse()
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        assert!(create("ftp://x.test/", &["team.ready"], Filter::default()).is_err());
        assert!(create("not a url", &["team.ready"], Filter::default()).is_err());
        assert!(create("https://x.test/", &[], Filter::default()).is_err());
        assert!(create("https://x.test/", &["hero.ready"], Filter::default()).is_err());
        let team = Filter {
            team_id: TeamId::new(1),
            league_id: None,
        };
        assert!(create("https://x.test/", &["match.ready"], team.clone()).is_err());
        let ok = create("https://x.test/h", &["team.ready", "team.ready"], team).unwrap();
        assert_eq!(ok.events.len(), 1);
    }

    #[test]
    fn filters_admit_only_their_team_and_league() {
        let f = Filter {
            team_id: None,
            league_id: LeagueId::new(7),
        };
        let team = |l| Signature::Team(TeamId::new(1).unwrap(), LeagueId::new(l).unwrap());
        assert!(f.admits(&team(7)));
        assert!(!f.admits(&team(8)));
        assert!(!f.admits(&Signature::Match(MatchId::new(1).unwrap())));
        assert!(Filter::default().admits(&Signature::Match(MatchId::new(1).unwrap())));
        assert!(EndpointId::parse("ep_0123456789abcdef0123456789abcdef").is_some());
        assert!(EndpointId::parse("ep_x").is_none());
        assert!(EndpointId::parse("../etc").is_none());
    }
}
