//! One delivery attempt: a POST of the event JSON, exactly as published on NATS, to the
//! endpoint's URL with the Standard Webhooks headers (`webhook-id` = the event's `ce-id`, the
//! same on every attempt; `webhook-timestamp`; `webhook-signature` under every current secret)
//! and the CloudEvents HTTP binary-mode headers (`ce-*`). No redirects are followed, every
//! attempt ends after [`TIMEOUT`], and the answer's body is never read. What came of it is an
//! [`Outcome`]; `deliver` decides what follows.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use super::guard::{self, GuardedResolver};
use super::model::{DeliveryAttempt, EndpointRecord, rfc3339};
use super::signing;
use crate::events::Envelope;
use crate::events::envelope::CONTENT_TYPE as JSON;
use crate::metrics as m;

/// Idle connections kept per receiver host (as many as attempts may run at once per endpoint,
/// `deliver::PER_ENDPOINT`).
const IDLE_PER_HOST: usize = 8;
/// Each attempt's limit, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The client every delivery of an instance shares. Without `allow_private` its resolver drops
/// internal addresses (see `guard`).
pub fn client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "dota-orchestrator-webhooks/",
            env!("CARGO_PKG_VERSION")
        ))
        .pool_max_idle_per_host(IDLE_PER_HOST);
    if allow_private {
        builder.build()
    } else {
        builder
            .dns_resolver(std::sync::Arc::new(GuardedResolver))
            .build()
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered { status: u16 },
    /// A 410: the receiver wants no more.
    Gone,
    /// Another status, a timeout or a connection error.
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// The URL now leads to an internal address.
    Refused {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// One attempt at one delivery.
pub struct Attempt {
    url: String,
    webhook_id: String,
    event: String,
    /// The event's time, for the ready-to-delivered latency.
    event_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    headers: HeaderMap,
    secrets: Vec<String>,
    body: bytes::Bytes,
    number: u64,
}

impl Attempt {
    pub fn new(message: &jetstream::Message, record: &EndpointRecord, number: u64) -> Self {
        let envelope = message.headers.as_ref().and_then(Envelope::from_headers);
        let mut headers = HeaderMap::new();
        for (name, value) in envelope.iter().flat_map(Envelope::attributes) {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                headers.insert(n, v);
            }
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        Attempt {
            url: record.url.clone(),
            webhook_id: envelope.as_ref().map(|e| e.id.clone()).unwrap_or_default(),
            event: envelope
                .as_ref()
                .map(|e| e.name.as_string())
                .unwrap_or_default(),
            event_time: envelope
                .as_ref()
                .and_then(|e| chrono::DateTime::parse_from_rfc3339(&e.time).ok()),
            headers,
            secrets: record.signing_secrets(now_ms).map(str::to_string).collect(),
            body: message.payload.clone(),
            number,
        }
    }

    /// Makes the call.
    pub async fn send(&self, client: &reqwest::Client, allow_private: bool) -> (Outcome, Duration) {
        let started = Instant::now();
        let outcome = self.call(client, allow_private).await;
        let took = started.elapsed();
        metrics::histogram!(m::WEBHOOK_ATTEMPT_SECONDS).record(took.as_secs_f64());
        if matches!(outcome, Outcome::Delivered { .. })
            && let Some(time) = self.event_time
        {
            let latency = chrono::Utc::now().signed_duration_since(time);
            metrics::histogram!(m::WEBHOOK_LATENCY_SECONDS)
                .record(latency.num_milliseconds().max(0) as f64 / 1000.0);
        }
        (outcome, took)
    }

    async fn call(&self, client: &reqwest::Client, allow_private: bool) -> Outcome {
        let url = match reqwest::Url::parse(&self.url) {
            Ok(url) => url,
            Err(e) => return refused(format!("url is invalid: {e}")),
        };
        // A literal IP never reaches the guarded resolver.
        let host = url.host_str().unwrap_or_default();
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>()
            && !allow_private
            && guard::is_internal(ip)
        {
            return refused(format!("{ip} is an internal address"));
        }
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signing::signature(
            self.secrets.iter().map(String::as_str),
            &self.webhook_id,
            timestamp,
            &self.body,
        );
        let sent = client
            .post(url)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, JSON)
            .header(
                USER_AGENT,
                concat!("dota-orchestrator-webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", &self.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(self.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => Outcome::Delivered {
                status: resp.status().as_u16(),
            },
            Ok(resp) if resp.status() == reqwest::StatusCode::GONE => Outcome::Gone,
            Ok(resp) => Outcome::Failed {
                status: Some(resp.status().as_u16()),
                error: format!("the receiver answered {}", resp.status()),
                retry_after: resp.headers().get(RETRY_AFTER).and_then(retry_after),
            },
            Err(err) if is_guard_refusal(&err) => refused(chain(&err)),
            Err(err) => Outcome::Failed {
                status: None,
                error: chain(&err),
                retry_after: None,
            },
        }
    }

    /// The log line of this attempt; `label` is what `deliver` made of it.
    pub fn log_entry(&self, outcome: &Outcome, took: Duration, label: &str) -> DeliveryAttempt {
        let (status, error) = match outcome {
            Outcome::Delivered { status } => (Some(*status), None),
            Outcome::Gone => (Some(410), None),
            Outcome::Failed { status, error, .. } => (*status, Some(error.clone())),
            Outcome::Refused { error, .. } => (None, Some(error.clone())),
        };
        DeliveryAttempt {
            event_id: self.webhook_id.clone(),
            event: self.event.clone(),
            attempt: self.number,
            outcome: label.to_string(),
            status,
            error,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            at: rfc3339(chrono::Utc::now().timestamp_millis()),
        }
    }
}

fn refused(error: String) -> Outcome {
    Outcome::Refused {
        error,
        retry_after: None,
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now()).to_std().ok()?;
    Some(wait)
}

/// The error and its causes on one line (reqwest's own message is only the outermost).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_guard_refusal(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<guard::GuardError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            retry_after(&HeaderValue::from_static("120")),
            Some(Duration::from_secs(120))
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = retry_after(&HeaderValue::from_str(&later).unwrap()).unwrap();
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
    }
}
