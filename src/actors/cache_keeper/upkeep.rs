//! The CacheKeeper's upkeep messages: invalidation (the API's `/api/cache/invalidate`), raw
//! page caching for the TeamImporter, and remembering announced team imports for TeamWatch.

use actix::{Handler, Message};

use super::CacheKeeper;
use crate::domain::{Signature, TeamId};
use crate::store::{Store, StoreError, now_ms};
use crate::upstream::dotabuff::Dotabuff;

/// Keep a raw upstream page (Dotabuff HTML) under `key`.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct StorePage {
    pub key: String,
    pub body: Vec<u8>,
}

/// Remember that the completion of `signature` (a team import) was announced for the stored
/// copy fetched at `fetched_at_ms`.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct MarkAnnounced {
    pub signature: Signature,
    pub fetched_at_ms: i64,
}

/// Mark stored copies stale (the invalidation API) and forget their failures. For a team,
/// every import of it (all leagues) and its cached Dotabuff pages. Made by [`Invalidate::of`],
/// which finds the teams' imports first, so the store interface knows every resource it
/// touches before it writes anything.
#[derive(Message)]
#[rtype(result = "Result<Invalidated, StoreError>")]
pub struct Invalidate {
    pub signatures: Vec<Signature>,
    /// Each team with its stored imports.
    pub teams: Vec<(TeamId, Vec<Signature>)>,
}

impl Invalidate {
    /// Invalidates `signatures` and every import of `teams` stored in `store`.
    pub fn of(
        store: &Store,
        signatures: Vec<Signature>,
        teams: Vec<TeamId>,
    ) -> Result<Self, StoreError> {
        let stored_teams = store.stored_of_kind(crate::domain::ResourceKind::Team)?;
        let teams = teams
            .into_iter()
            .map(|team| {
                let imports = stored_teams
                    .iter()
                    .filter(|s| matches!(s, Signature::Team(t, _) if *t == team))
                    .copied()
                    .collect();
                (team, imports)
            })
            .collect();
        Ok(Self { signatures, teams })
    }

    /// Every resource it marks stale and whose failure it forgets.
    pub fn resources(&self) -> impl Iterator<Item = &Signature> {
        self.signatures
            .iter()
            .chain(self.teams.iter().flat_map(|(_, imports)| imports))
    }
}

/// Per signature whether a stored copy existed; per team how many imports were invalidated.
#[derive(Debug, Clone, Default)]
pub struct Invalidated {
    pub signatures: Vec<(Signature, bool)>,
    pub teams: Vec<(TeamId, usize)>,
}

impl Handler<Invalidate> for CacheKeeper {
    type Result = Result<Invalidated, StoreError>;

    fn handle(&mut self, msg: Invalidate, _: &mut Self::Context) -> Self::Result {
        self.store.write(|tx| {
            let mut out = Invalidated::default();
            for sig in msg.signatures {
                let existed = tx.invalidate(&sig)?;
                tx.clear_failure(&sig)?;
                out.signatures.push((sig, existed));
            }
            for (team, imports) in msg.teams {
                let mut n = 0;
                for sig in &imports {
                    if tx.invalidate(sig)? {
                        n += 1;
                    }
                    tx.clear_failure(sig)?;
                }
                tx.remove_pages_with_prefix(&Dotabuff::team_pages_key_prefix(team))?;
                out.teams.push((team, n));
            }
            Ok(out)
        })
    }
}

impl Handler<StorePage> for CacheKeeper {
    type Result = Result<(), StoreError>;

    fn handle(&mut self, msg: StorePage, _: &mut Self::Context) -> Self::Result {
        self.store
            .write(|tx| tx.put_page(&msg.key, &msg.body, now_ms()))
    }
}

impl Handler<MarkAnnounced> for CacheKeeper {
    type Result = Result<(), StoreError>;

    fn handle(&mut self, msg: MarkAnnounced, _: &mut Self::Context) -> Self::Result {
        self.store
            .write(|tx| tx.put_announced(&msg.signature, msg.fetched_at_ms))
    }
}

/// An empty write transaction, sent while the store is degraded: when it commits the store is
/// healthy again even if no request writes meanwhile.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ProbeWrite;

impl Handler<ProbeWrite> for CacheKeeper {
    type Result = Result<(), StoreError>;

    fn handle(&mut self, _: ProbeWrite, _: &mut Self::Context) -> Self::Result {
        self.store.write(|_| Ok(()))
    }
}
