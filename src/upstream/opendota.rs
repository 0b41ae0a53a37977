//! OpenDota API calls: builds each endpoint's URL, adds the optional API key, and checks that
//! a body parses into what the caller needs before it is stored (an unreadable body must never
//! reach the cache).

use bytes::Bytes;
use serde_json::Value;

use super::client::{Request, UpstreamClient};
use super::error::UpstreamError;
use crate::domain::{MatchId, PlayerId, Service};

/// Parsed OpenDota matches exceed 1 MB; 32 MB leaves room while bounding memory per job.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// An OpenDota API key. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Option<Self> {
        let key = key.trim().to_string();
        (!key.is_empty()).then_some(Self(key))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// OpenDota client bound to a base URL (`https://api.opendota.com/api` or a fixture).
#[derive(Clone)]
pub struct OpenDota {
    client: UpstreamClient,
    base_url: String,
    api_key: Option<ApiKey>,
}

/// A match body with what the pipeline needs from it.
pub struct MatchBody {
    pub raw: Bytes,
    /// Players with a public account; anonymous ones (`account_id: null`) are left out.
    pub players: Vec<PlayerId>,
}

impl OpenDota {
    pub fn new(client: UpstreamClient, base_url: &str, api_key: Option<ApiKey>) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
        }
    }

    /// GET `{base}/{path}` and check that the body is JSON.
    pub async fn get_json(&self, path: &str) -> Result<(Bytes, Value), UpstreamError> {
        let query = self
            .api_key
            .iter()
            .map(|k| ("api_key", k.0.clone()))
            .collect();
        let raw = self
            .client
            .get(Request {
                service: Service::OpenDota,
                url: format!("{}/{}", self.base_url, path),
                query,
                max_bytes: MAX_BODY_BYTES,
            })
            .await?;
        let value = serde_json::from_slice(&raw).map_err(|e| UpstreamError::Unreadable {
            service: Service::OpenDota,
            reason: e.to_string(),
        })?;
        Ok((raw, value))
    }

    /// `/matches/{id}`: must be an object with this `match_id` and a `players` array.
    pub async fn get_match(&self, id: MatchId) -> Result<MatchBody, UpstreamError> {
        let (raw, value) = self.get_json(&format!("matches/{id}")).await?;
        let unreadable = |reason: &str| UpstreamError::Unreadable {
            service: Service::OpenDota,
            reason: reason.to_string(),
        };
        if value.get("match_id").and_then(Value::as_u64) != Some(id.get()) {
            return Err(unreadable("match body lacks the requested match_id"));
        }
        let players = value
            .get("players")
            .and_then(Value::as_array)
            .ok_or_else(|| unreadable("match body has no players array"))?;
        let mut ids: Vec<PlayerId> = players
            .iter()
            .filter_map(|p| p.get("account_id").and_then(Value::as_u64))
            .filter_map(PlayerId::new)
            .collect();
        ids.sort();
        ids.dedup();
        Ok(MatchBody { raw, players: ids })
    }

    /// `/players/{id}`: must be an object with a `profile` (OpenDota answers unknown accounts
    /// with `{"profile": null}` style bodies; those are treated as not found).
    pub async fn get_player(&self, id: PlayerId) -> Result<Bytes, UpstreamError> {
        let (raw, value) = self.get_json(&format!("players/{id}")).await?;
        if !value.is_object() {
            return Err(UpstreamError::Unreadable {
                service: Service::OpenDota,
                reason: "player body is not an object".to_string(),
            });
        }
        if value.get("profile").is_none_or(Value::is_null) {
            return Err(UpstreamError::NotFound {
                service: Service::OpenDota,
            });
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_debug_is_redacted() {
        let key = ApiKey::new("secret-123".into()).unwrap();
        assert!(!format!("{key:?}").contains("secret"));
    }
}
