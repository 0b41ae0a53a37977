//! How shared records are keyed: a signature becomes a KV key by turning its `:` into `.`
//! (`match:7` → `match.7`, `team:1:2` → `team.1.2`), which KV keys allow and which reverses
//! exactly (no kind name holds a dot). Records of the data bucket carry a one-letter prefix
//! naming what they are.

use crate::domain::Signature;

/// What a key of the data bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Metadata and summary of a stored resource: the commit point of a store.
    Meta,
    /// The body (or nothing, when it is in the Object Store).
    Body,
    /// The last permanent failure.
    Failure,
    /// The fetch time of the team import last announced complete.
    Announced,
    /// When a tracked team import was last requested.
    Tracked,
}

impl Record {
    fn prefix(self) -> &'static str {
        match self {
            Record::Meta => "m",
            Record::Body => "b",
            Record::Failure => "f",
            Record::Announced => "a",
            Record::Tracked => "t",
        }
    }

    fn of_prefix(prefix: &str) -> Option<Self> {
        Some(match prefix {
            "m" => Record::Meta,
            "b" => Record::Body,
            "f" => Record::Failure,
            "a" => Record::Announced,
            "t" => Record::Tracked,
            _ => return None,
        })
    }
}

/// The key of `sig` in the claims bucket, and its base in the data bucket.
pub fn of(sig: &Signature) -> String {
    sig.to_string().replace(':', ".")
}

/// The signature of a claims-bucket key.
pub fn parse(key: &str) -> Option<Signature> {
    key.replace('.', ":").parse().ok()
}

/// The data-bucket key of `record` for `sig`.
pub fn record(record: Record, sig: &Signature) -> String {
    format!("{}.{}", record.prefix(), of(sig))
}

/// What a data-bucket key holds and for which signature.
pub fn parse_record(key: &str) -> Option<(Record, Signature)> {
    let (prefix, rest) = key.split_once('.')?;
    Some((Record::of_prefix(prefix)?, parse(rest)?))
}

/// The Object Store name of a body too large for KV.
pub fn object(sig: &Signature) -> String {
    of(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LeagueId, MatchId, PlayerId, TeamId};

    #[test]
    fn keys_reverse_exactly() {
        let sigs = [
            Signature::Match(MatchId::new(7).unwrap()),
            Signature::Player(PlayerId::new(86745912).unwrap()),
            Signature::PlayerStats(PlayerId::new(5).unwrap()),
            Signature::Team(TeamId::new(1).unwrap(), LeagueId::new(2).unwrap()),
            Signature::League(LeagueId::new(16935).unwrap()),
        ];
        for sig in sigs {
            assert_eq!(parse(&of(&sig)), Some(sig));
            for r in [
                Record::Meta,
                Record::Body,
                Record::Failure,
                Record::Announced,
                Record::Tracked,
            ] {
                assert_eq!(parse_record(&record(r, &sig)), Some((r, sig)));
            }
        }
        assert_eq!(of(&sigs[3]), "team.1.2");
        assert_eq!(record(Record::Meta, &sigs[0]), "m.match.7");
        assert_eq!(parse_record("x.match.7"), None);
        assert_eq!(parse("match.seven"), None);
    }
}
