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

/// Reads an ID from a JSON number or string in one pass. (An untagged enum of the two buffered
/// the value and built an error message for every string it met first as a number: a fifth of
/// the time of a 1,000-match team view, whose summaries hold 10,000 player IDs as strings.)
struct IdVisitor(&'static str);

impl serde::de::Visitor<'_> for IdVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} (a positive integer, or a string of one)", self.0)
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
        match n {
            0 => Err(E::custom(IdError::Zero { what: self.0 })),
            n => Ok(n),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(IdError::NotANumber {
                what: self.0,
                value: n.to_string(),
            })),
        }
    }

    fn visit_str<E: serde::de::Error>(self, raw: &str) -> Result<u64, E> {
        parse_positive(self.0, raw).map_err(E::custom)
    }
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
                d.deserialize_any(IdVisitor($what)).map(Self)
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
        for bad in ["\"0\"", "-1", "1.5", "null", "\"x\"", "[]", "\"-3\""] {
            assert!(serde_json::from_str::<PlayerId>(bad).is_err(), "{bad}");
        }
        let id: MatchId = serde_json::from_str("\"8054301932\"").unwrap();
        assert_eq!(id.get(), 8054301932);
    }
}
