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
/// counters cannot be reached and it has learned nothing of what the others spent in it. 0 when
/// there are more instances than calls; such an instance then makes no call until the counters
/// answer again.
pub fn share(limit: u32, live_instances: usize) -> u32 {
    let live = u32::try_from(live_instances.max(1)).unwrap_or(u32::MAX);
    limit / live
}

/// What this process last learned of one window's cluster-wide count: from a counter's total
/// or from an upstream's `Remaining` report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    /// Index of the window it concerns (0, the 1970 window, before anything was seen).
    index: u64,
    /// Calls by other instances in it: the most any report showed.
    others: u32,
    /// This process's own grants in it when the last report arrived.
    own: u32,
}

/// This process's own grants per window (every length) for one service, counted always (on the
/// counters or not), what it learned of the others' calls in the same windows, and its grants
/// on the fallback share not yet added to the counters.
///
/// While the counters cannot be reached, this process grants at most `limit / live` in a
/// window (its own calls on the counters included), and in a window where it has seen a
/// cluster-wide count (others' calls `O`, its own `S` then) at most `S + (limit - O - S) /
/// live` too: its share of what was left, so an instance that had spent little does not add a
/// whole share on top of what busier ones had spent. A window with no count seen gets the
/// plain share until the upstream's first `Remaining` report in it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalShare {
    /// In [`Window::ALL`] order.
    spent: [Count; Window::ALL.len()],
    seen: [Seen; Window::ALL.len()],
    /// Fallback grants the counters have not counted yet, per window.
    unrecorded: [Count; Window::ALL.len()],
}

impl LocalShare {
    /// Counts a grant made at `now`.
    pub fn record(&mut self, now: SystemTime) {
        for (window, count) in Window::ALL.into_iter().zip(&mut self.spent) {
            count.add_one(window.index_at(now));
        }
    }

    /// Notes that `total` calls (this process's included) were counted in the `window` holding
    /// `now`, by every instance together: a counter's total after an increment, or what the
    /// upstream reports having seen.
    pub fn saw(&mut self, window: Window, now: SystemTime, total: i64) {
        let Some(slot) = slot(window) else { return };
        let index = window.index_at(now);
        let own = self.spent[slot].used_in(index);
        let others = u32::try_from(total.saturating_sub(i64::from(own)).max(0)).unwrap_or(u32::MAX);
        let seen = &mut self.seen[slot];
        if index > seen.index {
            *seen = Seen { index, others, own };
        } else if index == seen.index {
            seen.others = seen.others.max(others);
            seen.own = seen.own.max(own);
        }
    }

    /// The most this process may have granted in `limit`'s window holding `now` while the
    /// counters are down, over `live` instances.
    fn cap(&self, window: Window, limit: u32, index: u64, live: usize) -> u32 {
        match slot(window).map(|slot| self.seen[slot]) {
            Some(seen) if seen.index == index => {
                let left = limit.saturating_sub(seen.others).saturating_sub(seen.own);
                share(limit, live).min(seen.own.saturating_add(share(left, live)))
            }
            _ => share(limit, live),
        }
    }

    /// Grants one call at `now` within this instance's share of `limits` over `live` instances,
    /// and counts it (also as not yet on the counters); or names the spent window (the
    /// shortest, when several are).
    pub fn try_take(
        &mut self,
        now: SystemTime,
        limits: &ServiceLimits,
        live: usize,
    ) -> Result<(), Window> {
        for limit in &limits.windows {
            let window = limit.window;
            let index = window.index_at(now);
            if self.spent(window).used_in(index) >= self.cap(window, limit.limit, index, live) {
                return Err(window);
            }
        }
        self.record(now);
        for (window, count) in Window::ALL.into_iter().zip(&mut self.unrecorded) {
            count.add_one(window.index_at(now));
        }
        Ok(())
    }

    /// Takes the fallback grants of the `window` holding `now` that the counters have not
    /// counted; the caller adds them to the counter, or gives them back with
    /// [`LocalShare::unrecorded_back`] if that failed. Those of earlier windows are dropped:
    /// their counters no longer limit anyone.
    pub fn take_unrecorded(&mut self, window: Window, now: SystemTime) -> u32 {
        slot(window).map_or(0, |slot| self.unrecorded[slot].take(window.index_at(now)))
    }

    /// Gives back `n` grants taken with [`LocalShare::take_unrecorded`] that did not reach the
    /// counter.
    pub fn unrecorded_back(&mut self, window: Window, now: SystemTime, n: u32) {
        if let Some(slot) = slot(window) {
            self.unrecorded[slot].add(window.index_at(now), n);
        }
    }

    fn spent(&self, window: Window) -> Count {
        slot(window)
            .map(|slot| self.spent[slot])
            .unwrap_or_default()
    }
}

/// `window`'s place in [`Window::ALL`].
fn slot(window: Window) -> Option<usize> {
    Window::ALL.iter().position(|w| *w == window)
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

    fn per_minute(limit: u32) -> ServiceLimits {
        ServiceLimits::burst(Service::OpenDota, &[(Window::Minute, limit)])
    }

    #[test]
    fn a_fallback_grants_a_share_of_what_was_left_not_of_the_whole_limit() {
        let limits = per_minute(10);
        let mut spent = LocalShare::default();
        // One grant of ours on the counters, which then stood at 7: the other instance spent 6.
        spent.record(at(10));
        spent.saw(Window::Minute, at(10), 7);
        // Two instances: 3 calls left, 1 of them ours (rounded down). Without what we saw, the
        // share would be 5, 4 more than our one call: 11 in the minute.
        assert_eq!(spent.try_take(at(12), &limits, 2), Ok(()));
        assert_eq!(spent.try_take(at(12), &limits, 2), Err(Window::Minute));
        // The next minute: nothing seen in it yet, the plain share.
        for _ in 0..5 {
            assert_eq!(spent.try_take(at(61), &limits, 2), Ok(()));
        }
        assert_eq!(spent.try_take(at(61), &limits, 2), Err(Window::Minute));
    }

    #[test]
    fn the_upstreams_report_tightens_a_share_granted_blind() {
        let limits = per_minute(10);
        let mut spent = LocalShare::default();
        assert_eq!(spent.try_take(at(10), &limits, 2), Ok(()));
        // The upstream has seen 9 calls this minute, ours among them: 8 were the others'.
        spent.saw(Window::Minute, at(11), 9);
        assert_eq!(spent.try_take(at(12), &limits, 2), Err(Window::Minute));
        // An older, lower report does not loosen it.
        spent.saw(Window::Minute, at(13), 3);
        assert_eq!(spent.try_take(at(14), &limits, 2), Err(Window::Minute));
        // A 429 reads as the whole limit seen: nothing more in that window, even alone.
        let mut alone = LocalShare::default();
        alone.saw(Window::Minute, at(10), 10);
        assert_eq!(alone.try_take(at(11), &limits, 1), Err(Window::Minute));
        assert_eq!(alone.try_take(at(60), &limits, 1), Ok(()));
    }

    #[test]
    fn fallback_grants_are_handed_to_the_counters_once() {
        let limits = per_minute(10);
        let mut spent = LocalShare::default();
        spent.record(at(5)); // on the counters: never handed over again
        assert_eq!(spent.try_take(at(10), &limits, 1), Ok(()));
        assert_eq!(spent.try_take(at(11), &limits, 1), Ok(()));
        assert_eq!(spent.take_unrecorded(Window::Minute, at(12)), 2);
        assert_eq!(spent.take_unrecorded(Window::Minute, at(12)), 0);
        // The counter did not answer: they are handed over next time.
        spent.unrecorded_back(Window::Minute, at(12), 2);
        assert_eq!(spent.take_unrecorded(Window::Minute, at(13)), 2);
        // Those of a past minute no longer matter to any counter that limits a call.
        assert_eq!(spent.try_take(at(14), &limits, 1), Ok(()));
        assert_eq!(spent.take_unrecorded(Window::Minute, at(60)), 0);
    }
}
