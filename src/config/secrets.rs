//! The two secrets among the settings: the OpenDota API key and the admin token. Their `Debug`
//! never shows the value, their flags hide environment and default values in `--help`, and an
//! empty value is refused rather than quietly meaning "none" (an admin token that is empty by
//! mistake must not turn authentication off).

use std::str::FromStr;

/// An OpenDota API key. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ApiKey(
    /// Read only by the OpenDota client, which sends it as `api_key`.
    pub(crate) String,
);

impl ApiKey {
    pub fn new(key: String) -> Option<Self> {
        let key = key.trim().to_string();
        (!key.is_empty()).then_some(Self(key))
    }
}

impl FromStr for ApiKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text.to_string()).ok_or_else(empty)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The admin token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: String) -> Option<Self> {
        let token = token.trim().to_string();
        (!token.is_empty()).then_some(Self(token))
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl FromStr for AdminToken {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text.to_string()).ok_or_else(empty)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

fn empty() -> String {
    "must not be empty (leave it unset for none)".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let key: ApiKey = "secret-123".parse().unwrap();
        let token: AdminToken = "s3cret".parse().unwrap();
        assert!(!format!("{key:?} {token:?}").contains("secret"));
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn empty_secrets_are_refused_and_tokens_compare_exactly() {
        assert!(" ".parse::<ApiKey>().is_err());
        assert!("".parse::<AdminToken>().is_err());
        let token = AdminToken::new(" s3cret ".into()).unwrap();
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches("s3cret "));
    }
}
