//! The sources a team import can read a league's match list from, and a chain of them in the
//! order to try (`--team-sources`). Named once here: the settings parse a [`SourceChain`], the
//! team record says which [`Source`] answered, and each source maps to the [`Service`] whose
//! budget its calls spend.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Service;

/// Where a team import's match list came from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Steam Web API `GetMatchHistory?league_id=` (every league, amateur ones included; key needed).
    Steam,
    /// STRATZ GraphQL `league { matches }` (token needed).
    Stratz,
    /// Dotabuff's team matches pages (scraped; often behind a bot challenge).
    Dotabuff,
    /// OpenDota `/teams/{id}/matches` (leagues OpenDota tracks: premium and professional).
    #[serde(rename = "opendota")]
    OpenDota,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Steam,
        Source::Stratz,
        Source::Dotabuff,
        Source::OpenDota,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Steam => "steam",
            Source::Stratz => "stratz",
            Source::Dotabuff => "dotabuff",
            Source::OpenDota => "opendota",
        }
    }

    /// The upstream whose budget this source's calls spend.
    pub fn service(self) -> Service {
        match self {
            Source::Steam => Service::Steam,
            Source::Stratz => Service::Stratz,
            Source::Dotabuff => Service::Dotabuff,
            Source::OpenDota => Service::OpenDota,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Source::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown source {text:?} (steam, stratz, dotabuff, opendota)"))
    }
}

/// Sources in the order an import tries them: non-empty, each at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChain(Vec<Source>);

impl SourceChain {
    /// `None` for an empty list; repeats are dropped (the first place counts).
    pub fn new(sources: impl IntoIterator<Item = Source>) -> Option<Self> {
        let mut chain = Vec::new();
        for source in sources {
            if !chain.contains(&source) {
                chain.push(source);
            }
        }
        (!chain.is_empty()).then_some(Self(chain))
    }

    /// A chain of one source.
    pub fn single(source: Source) -> Self {
        Self(vec![source])
    }

    pub fn sources(&self) -> &[Source] {
        &self.0
    }

    pub fn contains(&self, source: Source) -> bool {
        self.0.contains(&source)
    }
}

impl fmt::Display for SourceChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for SourceChain {
    type Err = String;

    /// A comma-separated list, e.g. `steam,dotabuff,opendota`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let sources = text
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Source::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(sources).ok_or_else(|| "name at least one source".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_parses_in_order_without_repeats() {
        let chain: SourceChain = "dotabuff, OpenDota,steam,dotabuff".parse().unwrap();
        assert_eq!(
            chain.sources(),
            [Source::Dotabuff, Source::OpenDota, Source::Steam]
        );
        assert_eq!(chain.to_string(), "dotabuff,opendota,steam");
        assert!("".parse::<SourceChain>().is_err());
        assert!("steam,valve".parse::<SourceChain>().is_err());
        assert_eq!(
            serde_json::to_string(&Source::OpenDota).unwrap(),
            "\"opendota\""
        );
    }
}
