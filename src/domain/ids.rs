//! Typed IDs for OpenDota/Dotabuff entities. Each is a positive integer that fits in `u64`;
//! parsing rejects signs, zero, non-digits and anything longer than 19 digits with an [`IdError`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid ID. The message is shown to API clients verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be a positive integer, got an empty value")]
    Empty { what: &'static str },
    #[error("{what} must be a positive integer, got {value:?}")]
    NotANumber { what: &'static str, value: String },
    #[error("{what} must be a positive integer, got 0")]
    Zero { what: &'static str },
    #[error("{what} is too large: {value:?}")]
    TooLarge { what: &'static str, value: String },
}

/// Longest accepted decimal representation; `u64::MAX` has 20 digits, IDs in Dota are far shorter.
const MAX_DIGITS: usize = 19;

fn parse_positive(what: &'static str, raw: &str) -> Result<u64, IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty { what });
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::NotANumber {
            what,
            value: truncate_for_message(raw),
        });
    }
    if raw.len() > MAX_DIGITS {
        return Err(IdError::TooLarge {
            what,
            value: truncate_for_message(raw),
        });
    }
    match raw.parse::<u64>() {
        Ok(0) => Err(IdError::Zero { what }),
        Ok(v) => Ok(v),
        Err(_) => Err(IdError::TooLarge {
            what,
            value: truncate_for_message(raw),
        }),
    }
}

/// Echoing a 5 MB path segment back in an error body helps nobody.
fn truncate_for_message(raw: &str) -> String {
    raw.chars().take(40).collect()
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u64);

        impl $name {
            /// Builds the ID from a number known to come from a trusted source (upstream JSON).
            /// Returns `None` for 0, which upstreams use as "no such entity".
            pub fn new(value: u64) -> Option<Self> {
                (value != 0).then_some(Self(value))
            }

            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(raw: &str) -> Result<Self, IdError> {
                parse_positive($what, raw).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        /// Serialized as a JSON string: match IDs exceed JavaScript's safe integers soon enough.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        /// Accepts a JSON string or a number.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Num(u64),
                    Str(String),
                }
                match Raw::deserialize(d)? {
                    Raw::Num(n) => Self::new(n)
                        .ok_or_else(|| serde::de::Error::custom(IdError::Zero { what: $what })),
                    Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
                }
            }
        }
    };
}

typed_id!(
    /// An OpenDota/Dota 2 match ID.
    MatchId,
    "match id"
);
typed_id!(
    /// A Steam32 account ID as OpenDota uses it.
    PlayerId,
    "player id"
);
typed_id!(
    /// A Dota 2 team ID (shared by Dotabuff and OpenDota).
    TeamId,
    "team id"
);
typed_id!(
    /// A Dota 2 league (tournament ticket) ID.
    LeagueId,
    "league id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_positive_integers() {
        assert_eq!("8054301932".parse::<MatchId>().unwrap().get(), 8054301932);
    }

    #[test]
    fn rejects_what_the_api_must_reject() {
        for bad in [
            "",
            "abc",
            "-1",
            "0",
            "+5",
            "1.5",
            " 1",
            "123456789012345678901234567890",
        ] {
            assert!(
                bad.parse::<MatchId>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn serializes_as_string_and_reads_both_forms() {
        let id: PlayerId = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"42\"");
        let id: PlayerId = serde_json::from_str("42").unwrap();
        assert_eq!(id.get(), 42);
        assert!(serde_json::from_str::<PlayerId>("0").is_err());
    }
}
