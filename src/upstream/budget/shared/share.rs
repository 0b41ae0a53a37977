//! Pure rules of the shared budget, with the time passed in so each is unit-tested at exact
//! instants: which counter subjects a call at some instant increments, how an upstream's
//! `Remaining` report corrects a counter, and the fallback [`LocalShare`] (this process's grants
//! per window, capped at limit ÷ live instances while the counters cannot be reached). Only
//! [`SharedBudget`](super::SharedBudget) calls into it.

use std::time::SystemTime;

use crate::bus::subjects;
use crate::config::secrets::ApiKey;
use crate::domain::Service;
use crate::upstream::budget::limits::ServiceLimits;
use crate::upstream::budget::window::{Count, Window, seen_by_upstream};

/// Who the upstream counts our calls against: a short hash of the OpenDota API key (the key
/// itself never leaves the process), or `anonymous` (no key: OpenDota counts per IP; Dotabuff
/// always). Instances sharing a key share a budget; a key change starts a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressIdentity(String);

impl EgressIdentity {
    /// The identity of calls made without a key.
    pub fn anonymous() -> Self {
        Self("anonymous".to_string())
    }

    /// `k` + the xxh3-64 hash of `key` in hex (17 characters, one subject token); anonymous
    /// without a key. The `k` keeps a hash from ever reading as the word `anonymous`.
    pub fn of_api_key(key: Option<&ApiKey>) -> Self {
        match key {
            Some(key) => Self(format!(
                "k{:016x}",
                xxhash_rust::xxh3::xxh3_64(key.0.as_bytes())
            )),
            None => Self::anonymous(),
        }
    }

    /// The identity as it appears in counter subjects.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The counter subject of `service`'s `window` holding `now` for `identity`: the UTC day by
/// its date, shorter windows by their index.
pub fn counter_subject(
    service: Service,
    identity: &EgressIdentity,
    window: Window,
    now: SystemTime,
) -> String {
    match window {
        Window::Day => {
            let day = chrono::DateTime::<chrono::Utc>::from(now)
                .format("%Y%m%d")
                .to_string();
            subjects::budget_day(service.as_str(), identity.as_str(), &day)
        }
        Window::Minute => {
            subjects::budget_minute(service.as_str(), identity.as_str(), window.index_at(now))
        }
        Window::Second | Window::Hour => subjects::budget_window(
            service.as_str(),
            identity.as_str(),
            window.as_str(),
            window.index_at(now),
        ),
    }
}

/// How much to add to a counter standing at `counter` after the upstream reported `remaining`
/// calls left of `limit`: the upstream has seen `limit - remaining` calls (our grants that have
/// not reached it yet are not among them, so a higher counter is kept). `None`: no raise.
pub fn correction(limit: u32, remaining: i64, counter: i64) -> Option<i64> {
    let used = seen_by_upstream(limit, remaining);
    (used > counter).then(|| used - counter)
}

/// limit ÷ live instances, rounded down: the most one instance may grant in a window while the
/// counters cannot be reached. 0 when there are more instances than calls; such an instance then
/// makes no call until the counters answer again.
pub fn share(limit: u32, live_instances: usize) -> u32 {
    let live = u32::try_from(live_instances.max(1)).unwrap_or(u32::MAX);
    limit / live
}

/// This process's own grants per window (every length) for one service, counted always (on the
/// counters or not), so a fallback that starts mid-window counts what this process already spent
/// in it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalShare {
    /// In [`Window::ALL`] order.
    spent: [Count; Window::ALL.len()],
}

impl LocalShare {
    /// Counts a grant made at `now`.
    pub fn record(&mut self, now: SystemTime) {
        for (window, count) in Window::ALL.into_iter().zip(&mut self.spent) {
            count.add_one(window.index_at(now));
        }
    }

    /// Grants one call at `now` within this instance's share of `limits` over `live` instances,
    /// and counts it; or names the spent window (the shortest, when several are).
    pub fn try_take(
        &mut self,
        now: SystemTime,
        limits: &ServiceLimits,
        live: usize,
    ) -> Result<(), Window> {
        for limit in &limits.windows {
            let window = limit.window;
            if self.spent(window).used_in(window.index_at(now)) >= share(limit.limit, live) {
                return Err(window);
            }
        }
        self.record(now);
        Ok(())
    }

    fn spent(&self, window: Window) -> Count {
        let slot = Window::ALL.iter().position(|w| *w == window);
        slot.map(|slot| self.spent[slot]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::budget::window::tests::at;

    #[test]
    fn identities_hash_the_key_and_never_show_it() {
        let key: ApiKey = "secret-key-123".parse().unwrap();
        let id = EgressIdentity::of_api_key(Some(&key));
        assert_eq!(id.as_str().len(), 17);
        assert!(!id.as_str().contains("secret"));
        assert!(id.as_str()[1..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id, EgressIdentity::of_api_key(Some(&key)));
        let other: ApiKey = "secret-key-124".parse().unwrap();
        assert_ne!(id, EgressIdentity::of_api_key(Some(&other)));
        assert_eq!(EgressIdentity::of_api_key(None).as_str(), "anonymous");
    }

    #[test]
    fn subjects_name_the_calendar_minute_and_utc_day() {
        let id = EgressIdentity::anonymous();
        let now = at(10);
        assert_eq!(
            counter_subject(Service::OpenDota, &id, Window::Minute, now),
            "dota.budget.opendota.anonymous.minute.28800000"
        );
        assert_eq!(
            counter_subject(Service::OpenDota, &id, Window::Day, now),
            "dota.budget.opendota.anonymous.day.20241004"
        );
        assert_eq!(
            counter_subject(Service::Dotabuff, &id, Window::Minute, at(60)),
            "dota.budget.dotabuff.anonymous.minute.28800001"
        );
    }

    #[test]
    fn remaining_raises_a_counter_and_never_lowers_it() {
        // 10 a minute, upstream says 3 left: it saw 7.
        assert_eq!(correction(10, 3, 5), Some(2));
        assert_eq!(correction(10, 3, 7), None);
        assert_eq!(
            correction(10, 3, 9),
            None,
            "our grants may not have reached it"
        );
        assert_eq!(correction(10, -2, 10), Some(2));
        assert_eq!(correction(10, 10, 0), None);
    }

    #[test]
    fn the_fallback_share_counts_what_this_process_spent_in_the_window() {
        let limits = ServiceLimits::burst(
            Service::OpenDota,
            &[(Window::Minute, 10), (Window::Day, 100)],
        );
        assert_eq!(share(10, 3), 3);
        assert_eq!(share(10, 0), 10, "at least this instance is live");
        assert_eq!(share(2, 3), 0);

        let mut spent = LocalShare::default();
        // Two grants on the counters earlier in this minute.
        spent.record(at(10));
        spent.record(at(11));
        // Two instances: a share of 5 a minute, 2 already used.
        for _ in 0..3 {
            assert_eq!(spent.try_take(at(12), &limits, 2), Ok(()));
        }
        assert_eq!(spent.try_take(at(12), &limits, 2), Err(Window::Minute));
        // The next minute has a fresh share; the day keeps counting.
        assert_eq!(spent.try_take(at(60), &limits, 2), Ok(()));
        let tight = ServiceLimits::burst(
            Service::OpenDota,
            &[(Window::Minute, 10), (Window::Day, 12)],
        );
        assert_eq!(spent.try_take(at(61), &tight, 2), Err(Window::Day));
    }
}
