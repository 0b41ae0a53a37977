//! Query parameters, parsed once at the edge: only the keys a route allows, only valid values.

use super::reply::ApiError;
use crate::domain::LeagueId;

/// Query parameters of the resource routes. Each route says which keys it allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    pub force: bool,
    /// Leagues: also queue the league's matches.
    pub queue_matches: bool,
    /// Team imports: the league (may also come in a POST body).
    pub league_id: Option<LeagueId>,
    /// Team imports: `include=progress` asks for the progress only, not the summaries.
    pub progress_only: bool,
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(ApiError::BadRequest(format!(
            "{key} must be true or false, got {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

impl ResourceQuery {
    /// Parses `pairs`, rejecting keys not in `allowed`.
    pub fn parse(pairs: &[(String, String)], allowed: &[&str]) -> Result<Self, ApiError> {
        let mut q = Self::default();
        for (key, value) in pairs {
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {:?} (allowed: {})",
                    key.chars().take(40).collect::<String>(),
                    allowed.join(", ")
                )));
            }
            match key.as_str() {
                "force" => q.force = parse_bool(key, value)?,
                "queueMatches" => q.queue_matches = parse_bool(key, value)?,
                "include" => {
                    q.progress_only = match value.as_str() {
                        "progress" => true,
                        "all" | "" => false,
                        other => {
                            return Err(ApiError::BadRequest(format!(
                                "include must be progress or all, got {:?}",
                                other.chars().take(40).collect::<String>()
                            )));
                        }
                    }
                }
                "leagueId" => {
                    q.league_id =
                        Some(value.parse().map_err(|e: crate::domain::IdError| {
                            ApiError::BadRequest(e.to_string())
                        })?)
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn force_accepts_booleans_only() {
        let allowed = ["force"];
        assert!(
            ResourceQuery::parse(&pairs(&[("force", "true")]), &allowed)
                .unwrap()
                .force
        );
        assert!(!ResourceQuery::parse(&pairs(&[]), &allowed).unwrap().force);
        assert!(ResourceQuery::parse(&pairs(&[("force", "yes please")]), &allowed).is_err());
        assert!(ResourceQuery::parse(&pairs(&[("forse", "true")]), &allowed).is_err());
    }

    #[test]
    fn include_takes_progress_or_all() {
        let allowed = ["include"];
        let parse = |v| ResourceQuery::parse(&pairs(&[("include", v)]), &allowed);
        assert!(parse("progress").unwrap().progress_only);
        assert!(!parse("all").unwrap().progress_only);
        assert!(parse("summaries").is_err());
    }

    #[test]
    fn league_id_is_validated() {
        let allowed = ["leagueId"];
        assert!(ResourceQuery::parse(&pairs(&[("leagueId", "abc")]), &allowed).is_err());
        let q = ResourceQuery::parse(&pairs(&[("leagueId", "16435")]), &allowed).unwrap();
        assert_eq!(q.league_id.unwrap().get(), 16435);
    }
}
