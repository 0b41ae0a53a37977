//! The secrets among the settings: the OpenDota API key, the Steam Web API key, the STRATZ
//! token, the admin token and the NATS token. Their `Debug`
//! never shows the value, their flags hide environment and default values in `--help`, and an
//! empty value is refused rather than quietly meaning "none" (an admin token that is empty by
//! mistake must not turn authentication off).

use std::str::FromStr;

/// Declares a secret: a trimmed, non-empty string whose `Debug` is redacted, parsed by
/// `FromStr` (which clap uses for the flag). One rule for every secret.
macro_rules! secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(pub(crate) String);

        impl $name {
            /// `None` for an empty or blank value.
            pub fn new(value: String) -> Option<Self> {
                let value = value.trim().to_string();
                (!value.is_empty()).then_some(Self(value))
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::new(text.to_string())
                    .ok_or_else(|| "must not be empty (leave it unset for none)".to_string())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret!(
    /// An OpenDota API key; only the OpenDota client reads it, to send it as `api_key`.
    ApiKey
);

secret!(
    /// A Steam Web API key; only the Steam client reads it, to send it as `key`.
    SteamKey
);

secret!(
    /// A STRATZ API token; only the STRATZ client reads it, to send it as a bearer token.
    StratzToken
);

secret!(
    /// The admin token that the invalidation API and forced team refreshes require.
    AdminToken
);

secret!(
    /// The token the service presents to an external NATS server; only the NATS connect reads it.
    NatsToken
);

impl AdminToken {
    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let key: ApiKey = "secret-123".parse().unwrap();
        let token: AdminToken = "s3cret".parse().unwrap();
        assert_eq!(
            format!("{key:?} {token:?}"),
            "ApiKey(<redacted>) AdminToken(<redacted>)"
        );
        let steam: SteamKey = "steam-key".parse().unwrap();
        let stratz: StratzToken = "stratz-token".parse().unwrap();
        assert_eq!(
            format!("{steam:?} {stratz:?}"),
            "SteamKey(<redacted>) StratzToken(<redacted>)"
        );
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
