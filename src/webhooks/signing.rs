//! Standard Webhooks v1 signatures: secrets are `whsec_` + base64 of 24 random bytes, and a
//! delivery's `webhook-signature` is `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for every
//! secret that signs at the time (two during a rotation), space-separated. The HMAC is the
//! maintained `standardwebhooks` crate's (its `http` 1.x matches ours); its `verify` checks the
//! result in the tests, the PyPI package does so independently in CI.

use base64::Engine;
use rand::RngCore;

/// Bytes of key in a new secret (192 bits; the spec asks for 24 to 64).
const SECRET_BYTES: usize = 24;

/// A new secret, `whsec_...`.
pub fn new_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The `webhook-signature` value of `body` under every secret in `secrets` (invalid secrets,
/// which the service never makes, are skipped and logged).
pub fn signature<'a>(
    secrets: impl Iterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .filter_map(|secret| {
            standardwebhooks::Webhook::new(secret)
                .and_then(|hook| hook.sign(id, timestamp, body))
                .inspect_err(|err| tracing::error!(%err, "cannot sign with a stored secret"))
                .ok()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks specification.
    #[test]
    fn signs_the_specification_test_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = signature(
            [secret].into_iter(),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn both_secrets_sign_during_a_rotation_and_each_verifies() {
        let (old, new) = (new_secret(), new_secret());
        assert!(new.starts_with("whsec_"));
        let now = chrono::Utc::now().timestamp();
        let body = br#"{"kind":"match"}"#;
        let sig = signature(
            [old.as_str(), new.as_str()].into_iter(),
            "ready:match:1@0",
            now,
            body,
        );
        assert_eq!(sig.split(' ').count(), 2);
        for secret in [&old, &new] {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert("webhook-id", "ready:match:1@0".parse().unwrap());
            headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
            headers.insert("webhook-signature", sig.parse().unwrap());
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(body, &headers)
                .unwrap();
        }
    }
}
