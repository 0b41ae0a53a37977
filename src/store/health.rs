//! Whether redb can be written: a flag shared by every `Store` clone. A failed write
//! transaction marks the store degraded and the next committed one clears it, so the service
//! recovers by itself once the disk takes writes again; `/readyz`, `/metrics` and the GET
//! bypass read it. Tests (and `--demo`) can also make writes fail on purpose.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shared write health of one database (see the module docs).
#[derive(Debug, Default)]
pub struct StoreHealth {
    degraded: AtomicBool,
    /// Write transactions asked for, committed or not (this database's share of the
    /// process-wide `dota_store_writes_total`).
    writes: AtomicU64,
    /// A write failed on I/O: redb must be reopened before it takes another write.
    needs_reopen: AtomicBool,
    /// Test-only fault switch: while true every write fails before it begins.
    #[cfg(any(test, feature = "fixture-upstream"))]
    fail_writes: AtomicBool,
}

impl StoreHealth {
    /// Write transactions asked of this database so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub(super) fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// True from a failed write until the next committed one.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Records the outcome of a write transaction; logs only the transitions, so a full disk
    /// under load does not flood the log.
    pub(super) fn record(&self, ok: bool, err: Option<&dyn std::fmt::Display>, io: bool) {
        let was = self.degraded.swap(!ok, Ordering::Relaxed);
        if ok {
            self.needs_reopen.store(false, Ordering::Relaxed);
        } else if io {
            self.needs_reopen.store(true, Ordering::Relaxed);
        }
        match (was, ok, err) {
            (false, false, Some(err)) => {
                tracing::error!(%err, "redb writes fail: the store is degraded, serving reads and bypassing it")
            }
            (true, true, _) => tracing::info!("redb writes work again: the store is healthy"),
            _ => {}
        }
    }

    pub(super) fn needs_reopen(&self) -> bool {
        self.needs_reopen.load(Ordering::Relaxed)
    }

    /// Makes every write fail (true) or work again (false).
    #[cfg(any(test, feature = "fixture-upstream"))]
    pub fn set_fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::Relaxed);
    }

    pub(super) fn fail_writes(&self) -> bool {
        #[cfg(any(test, feature = "fixture-upstream"))]
        {
            self.fail_writes.load(Ordering::Relaxed)
        }
        #[cfg(not(any(test, feature = "fixture-upstream")))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_degrades_and_the_next_commit_heals() {
        let health = StoreHealth::default();
        assert!(!health.degraded());
        health.record(false, Some(&"disk full"), true);
        assert!(health.degraded());
        assert!(health.needs_reopen());
        health.record(true, None, false);
        assert!(!health.degraded());
        assert!(!health.needs_reopen());
    }
}
