//! Resource kinds and their signatures. A [`Signature`] names one fetchable resource
//! (`match:8054301932`, `player:40927904`, ...); it is the redb key, the JetStream `Nats-Msg-Id`
//! stem and the in-flight set entry, so one resource is never fetched twice at once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::{LeagueId, MatchId, PlayerId, TeamId};

/// What kind of resource a signature names. The `as_str` form appears in subjects, metrics labels
/// and API bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Match,
    Player,
    PlayerStats,
    Team,
    League,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 5] = [
        ResourceKind::Match,
        ResourceKind::Player,
        ResourceKind::PlayerStats,
        ResourceKind::Team,
        ResourceKind::League,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Match => "match",
            ResourceKind::Player => "player",
            ResourceKind::PlayerStats => "player-stats",
            ResourceKind::Team => "team",
            ResourceKind::League => "league",
        }
    }

    /// The upstream that does the work for this kind of resource.
    pub fn service(self) -> Service {
        match self {
            ResourceKind::Team => Service::Dotabuff,
            _ => Service::OpenDota,
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The upstream a call goes to; each has its own rate budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    OpenDota,
    Dotabuff,
    /// The Steam Web API (`IDOTA2Match_570`): league histories and team names.
    Steam,
    /// STRATZ's GraphQL API: league match lists.
    Stratz,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::OpenDota,
        Service::Dotabuff,
        Service::Steam,
        Service::Stratz,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::OpenDota => "opendota",
            Service::Dotabuff => "dotabuff",
            Service::Steam => "steam",
            Service::Stratz => "stratz",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is waiting on a job. Interactive jobs (a person asked for exactly this resource) are
/// pulled before bulk jobs (fan-out from a match or team import), and bulk jobs before
/// scheduled ones (the refresh of a tracked team import and its fan-out, which nobody waits
/// for), within the same rate budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Interactive,
    Bulk,
    Scheduled,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 3] = [Priority::Interactive, Priority::Bulk, Priority::Scheduled];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Bulk => "bulk",
            Priority::Scheduled => "scheduled",
        }
    }
}

/// One fetchable resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signature {
    Match(MatchId),
    Player(PlayerId),
    PlayerStats(PlayerId),
    /// A team's matches in one league.
    Team(TeamId, LeagueId),
    League(LeagueId),
}

impl Signature {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Signature::Match(_) => ResourceKind::Match,
            Signature::Player(_) => ResourceKind::Player,
            Signature::PlayerStats(_) => ResourceKind::PlayerStats,
            Signature::Team(..) => ResourceKind::Team,
            Signature::League(_) => ResourceKind::League,
        }
    }

    /// The ID part as it appears in subjects: `8054301932`, or `9517508.16435` for a team.
    pub fn subject_id(&self) -> String {
        match self {
            Signature::Match(id) => id.to_string(),
            Signature::Player(id) | Signature::PlayerStats(id) => id.to_string(),
            Signature::Team(team, league) => format!("{team}.{league}"),
            Signature::League(id) => id.to_string(),
        }
    }

    /// The upstream that does the work for this resource.
    pub fn service(&self) -> Service {
        self.kind().service()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signature::Team(team, league) => write!(f, "team:{team}:{league}"),
            other => write!(f, "{}:{}", other.kind(), other.subject_id()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a resource signature: {0:?}")]
pub struct SignatureError(String);

impl FromStr for Signature {
    type Err = SignatureError;
    fn from_str(raw: &str) -> Result<Self, SignatureError> {
        let err = || SignatureError(raw.chars().take(60).collect());
        let mut parts = raw.split(':');
        let kind = parts.next().ok_or_else(err)?;
        let first = parts.next().ok_or_else(err)?;
        let second = parts.next();
        if parts.next().is_some() {
            return Err(err());
        }
        let sig = match (kind, second) {
            ("match", None) => Signature::Match(first.parse().map_err(|_| err())?),
            ("player", None) => Signature::Player(first.parse().map_err(|_| err())?),
            ("player-stats", None) => Signature::PlayerStats(first.parse().map_err(|_| err())?),
            ("league", None) => Signature::League(first.parse().map_err(|_| err())?),
            ("team", Some(league)) => Signature::Team(
                first.parse().map_err(|_| err())?,
                league.parse().map_err(|_| err())?,
            ),
            _ => return Err(err()),
        };
        Ok(sig)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_through_their_string_form() {
        let sigs = [
            Signature::Match(MatchId::new(8054301932).unwrap()),
            Signature::Player(PlayerId::new(40927904).unwrap()),
            Signature::PlayerStats(PlayerId::new(40927904).unwrap()),
            Signature::Team(TeamId::new(9517508).unwrap(), LeagueId::new(16435).unwrap()),
            Signature::League(LeagueId::new(16435).unwrap()),
        ];
        for sig in sigs {
            let text = sig.to_string();
            assert_eq!(text.parse::<Signature>().unwrap(), sig, "{text}");
        }
        assert_eq!(sigs[0].to_string(), "match:8054301932");
        assert_eq!(sigs[3].to_string(), "team:9517508:16435");
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        for bad in ["", "match", "match:0", "match:1:2", "team:1", "nope:1"] {
            assert!(bad.parse::<Signature>().is_err(), "{bad:?}");
        }
    }
}
