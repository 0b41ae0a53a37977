//! What the HTTP side keeps for the refresh scheduler (`actors::refresh_scheduler`): its rules,
//! whether it runs, and which team imports were tracked in the last [`TRACK_RESOLUTION`], so a
//! request is written to redb at most once per that time per import and the read path stays
//! free of writes.

use std::time::Duration;

use moka::sync::Cache;

use crate::actors::refresh_scheduler::Rules;
use crate::domain::Signature;

/// How stale a tracked import's last request time may be: well under a day, the unit of
/// `--track-days`.
pub const TRACK_RESOLUTION: Duration = Duration::from_secs(60);
/// Imports remembered as recently tracked; beyond it one is simply written again.
const RECENT_CAPACITY: u64 = 100_000;

/// The scheduling rules and the recently tracked imports.
pub struct RefreshState {
    rules: Rules,
    auto_refresh: bool,
    recent: Cache<Signature, ()>,
}

impl RefreshState {
    pub fn new(rules: Rules, auto_refresh: bool) -> Self {
        Self {
            rules,
            auto_refresh,
            recent: Cache::builder()
                .max_capacity(RECENT_CAPACITY)
                .time_to_live(TRACK_RESOLUTION)
                .build(),
        }
    }

    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Whether the scheduler runs (`--auto-refresh`); imports are tracked either way.
    pub fn auto_refresh(&self) -> bool {
        self.auto_refresh
    }

    /// Whether `sig` was tracked within the last [`TRACK_RESOLUTION`].
    pub fn tracked_lately(&self, sig: &Signature) -> bool {
        self.recent.contains_key(sig)
    }

    /// `sig` was just tracked.
    pub fn remember(&self, sig: Signature) {
        self.recent.insert(sig, ());
    }

    /// `sig` is no longer tracked: the next request tracks it again.
    pub fn forget(&self, sig: &Signature) {
        self.recent.invalidate(sig);
    }
}
