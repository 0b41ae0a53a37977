//! Which stored resources the upkeep removes, decided from what was requested when: pure
//! functions over the store's contents, tested at exact instants.
//!
//! - A resource was *last used* at the latest of: its own last request (`access_v1`), when it
//!   was stored, and the last request of any stored team import that lists it (a team view
//!   shows its matches' and players' summaries, so viewing the import uses them; noting each
//!   of a 1,000-match import's 11,000 resources on every view would cost the read path
//!   dearly, so the import's own time is passed down here instead).
//! - The data of a *tracked* import (requested within `--track-days`: its record, its matches
//!   and their players) is never removed.
//! - `--retention-days`: every other resource last used longer ago goes.
//! - `--store-max-gb`: the others are offered least recently used first, and the CacheKeeper
//!   removes them in that order until the store is under its target.
//! - With `--store nats`, [`expired`]: every other resource fetched longer ago than a margin
//!   times its kind's TTL goes from the shared store, bounds or not.

use std::collections::{HashMap, HashSet};

use crate::domain::{ResourceKind, Signature};
use crate::store::Resident;
use crate::team::record::TeamRecord;
use crate::team::summary::MatchFacts;

/// When each resource was last used, and which ones are protected.
#[derive(Debug, Default)]
pub struct Usage {
    pub last_used_ms: HashMap<Signature, i64>,
    pub protected: HashSet<Signature>,
}

impl Usage {
    /// Starts from the noted requests.
    pub fn from_access(access: HashMap<Signature, i64>) -> Self {
        Self {
            last_used_ms: access,
            protected: HashSet::new(),
        }
    }

    /// Adds the requests other instances noted (the shared store's request times).
    pub fn merge(&mut self, access: HashMap<Signature, i64>) {
        for (sig, at_ms) in access {
            self.used(sig, at_ms);
        }
    }

    fn used(&mut self, sig: Signature, at_ms: i64) {
        let last = self.last_used_ms.entry(sig).or_insert(at_ms);
        *last = (*last).max(at_ms);
    }

    /// A stored team import `sig`, `record`, last requested at `at_ms`: its matches and their
    /// players (from `facts`, the stored match summaries) were used then too, and all of it is
    /// protected when the import is `tracked`.
    pub fn team(
        &mut self,
        sig: Signature,
        record: &TeamRecord,
        at_ms: i64,
        tracked: bool,
        mut facts: impl FnMut(&Signature) -> Option<MatchFacts>,
    ) {
        let mut data = vec![sig];
        for id in &record.match_ids {
            let msig = Signature::Match(*id);
            data.push(msig);
            if let Some(facts) = facts(&msig) {
                data.extend(facts.players.iter().map(|(p, _)| Signature::Player(*p)));
            }
        }
        for s in data {
            self.used(s, at_ms);
            if tracked {
                self.protected.insert(s);
            }
        }
    }

    fn last_used(&self, r: &Resident) -> i64 {
        self.last_used_ms
            .get(&r.signature)
            .copied()
            .unwrap_or(i64::MIN)
            .max(r.fetched_at_ms)
    }
}

/// What the upkeep removes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Not used within the retention: removed.
    pub dropped: Vec<Signature>,
    /// The rest of the unprotected, least recently used first: removed in order while the
    /// store is over its target.
    pub by_size: Vec<Signature>,
}

/// The plan at `now_ms` for `residents` (see the module docs).
pub fn plan(residents: &[Resident], usage: &Usage, now_ms: i64, retention_ms: Option<i64>) -> Plan {
    let cutoff = retention_ms.map(|r| now_ms.saturating_sub(r));
    let mut out = Plan::default();
    let mut rest = Vec::new();
    for r in residents {
        if usage.protected.contains(&r.signature) {
            continue;
        }
        let last = usage.last_used(r);
        if cutoff.is_some_and(|c| last < c) {
            out.dropped.push(r.signature);
        } else {
            rest.push((last, r.signature));
        }
    }
    rest.sort_unstable();
    out.by_size = rest.into_iter().map(|(_, s)| s).collect();
    out
}

/// The unprotected `residents` fetched more than `factor` times their kind's TTL (`ttl_ms`)
/// before `now_ms`: past every TTL by that margin, whether requested or not (a request of an
/// entry that old fetches it again).
pub fn expired(
    residents: &[Resident],
    usage: &Usage,
    now_ms: i64,
    factor: i64,
    ttl_ms: impl Fn(ResourceKind) -> i64,
) -> Vec<Signature> {
    residents
        .iter()
        .filter(|r| !usage.protected.contains(&r.signature))
        .filter(|r| {
            let margin = ttl_ms(r.signature.kind()).saturating_mul(factor);
            r.fetched_at_ms < now_ms.saturating_sub(margin)
        })
        .map(|r| r.signature)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{LeagueId, MatchId, PlayerId, Source, TeamId};

    fn m(id: u64) -> Signature {
        Signature::Match(MatchId::new(id).unwrap())
    }

    fn p(id: u64) -> Signature {
        Signature::Player(PlayerId::new(id).unwrap())
    }

    fn resident(signature: Signature, fetched_at_ms: i64) -> Resident {
        Resident {
            signature,
            fetched_at_ms,
            bytes: 100,
        }
    }

    fn record(team: Signature, matches: &[u64]) -> TeamRecord {
        let Signature::Team(team_id, league_id) = team else {
            unreachable!()
        };
        TeamRecord {
            team_id,
            team_name: None,
            league_id,
            league_name: None,
            match_ids: matches.iter().map(|&i| MatchId::new(i).unwrap()).collect(),
            match_ids_by_league: BTreeMap::new(),
            source: Source::OpenDota,
            sources_tried: Vec::new(),
            fallback_reason: None,
            listed_matches: Vec::new(),
            pages: 0,
        }
    }

    fn facts(players: &[u64]) -> MatchFacts {
        MatchFacts {
            dire_name: None,
            dire_score: None,
            duration: None,
            match_id: None,
            radiant_name: None,
            radiant_score: None,
            radiant_win: None,
            start_time: None,
            radiant_team_id: None,
            dire_team_id: None,
            players: players
                .iter()
                .map(|&i| (PlayerId::new(i).unwrap(), true))
                .collect(),
        }
    }

    #[test]
    fn the_least_recently_used_come_first_and_requests_count_over_store_times() {
        let residents = [
            resident(m(1), 1_000),
            resident(m(2), 2_000),
            resident(m(3), 3_000),
        ];
        let usage = Usage::from_access(HashMap::from([(m(1), 5_000)]));
        let plan = plan(&residents, &usage, 10_000, None);
        assert_eq!(plan.by_size, vec![m(2), m(3), m(1)]);
        assert!(plan.dropped.is_empty());
    }

    #[test]
    fn retention_drops_what_nobody_used_since_the_cutoff() {
        let residents = [
            resident(m(1), 1_000),
            resident(m(2), 2_000),
            resident(m(3), 3_000),
        ];
        let usage = Usage::from_access(HashMap::from([(m(1), 9_000)]));
        let plan = plan(&residents, &usage, 10_000, Some(7_500));
        // Cutoff 2_500: m(2) (stored at 2_000, never requested) goes; m(1) was requested.
        assert_eq!(plan.dropped, vec![m(2)]);
        assert_eq!(plan.by_size, vec![m(3), m(1)]);
    }

    #[test]
    fn a_tracked_import_protects_its_record_matches_and_players() {
        let team = Signature::Team(TeamId::new(7).unwrap(), LeagueId::new(8).unwrap());
        let residents = [
            resident(team, 0),
            resident(m(1), 0),
            resident(p(11), 0),
            resident(m(2), 0),
        ];
        let mut usage = Usage::default();
        usage.team(team, &record(team, &[1]), 0, true, |s| {
            (*s == m(1)).then(|| facts(&[11]))
        });
        let plan = plan(&residents, &usage, 1_000_000, Some(1));
        assert_eq!(plan.dropped, vec![m(2)]);
        assert!(plan.by_size.is_empty());
    }

    #[test]
    fn an_untracked_import_passes_its_last_request_down() {
        let team = Signature::Team(TeamId::new(7).unwrap(), LeagueId::new(8).unwrap());
        let residents = [resident(m(1), 0), resident(p(11), 0), resident(m(2), 0)];
        let mut usage = Usage::default();
        usage.team(team, &record(team, &[1]), 900, false, |_| {
            Some(facts(&[11]))
        });
        let plan = plan(&residents, &usage, 1_000, Some(500));
        assert_eq!(plan.dropped, vec![m(2)]);
        assert_eq!(plan.by_size, vec![m(1), p(11)]);
    }

    #[test]
    fn entries_past_their_ttl_by_the_margin_expire_unless_protected() {
        let team = Signature::Team(TeamId::new(7).unwrap(), LeagueId::new(8).unwrap());
        let residents = [
            resident(m(1), 1_000),
            resident(m(2), 7_000),
            resident(p(11), 1_000),
            resident(m(3), 1_000),
        ];
        let mut usage = Usage::default();
        usage.team(team, &record(team, &[3]), 9_000, true, |_| None);
        // Matches live 2_000 ms, players 10_000 ms; a margin of 2: 4_000 and 20_000.
        let ttl = |k| match k {
            ResourceKind::Match => 2_000,
            _ => 10_000,
        };
        // m(1) at 1_000 < 10_000 - 4_000; m(2) is younger; the player is within its TTL; m(3)
        // is a tracked import's.
        assert_eq!(expired(&residents, &usage, 10_000, 2, ttl), vec![m(1)]);
    }
}
