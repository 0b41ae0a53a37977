//! Per-service counters and the signatures being worked on, for `/api/queue/status`; also how
//! a duplicate delivery of a job already running is recognised.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::Serialize;

use crate::domain::{Service, Signature};

/// Per-service counters and the signatures being worked on, for `/api/queue/status`.
#[derive(Default)]
pub struct Activity {
    inner: Mutex<BTreeMap<Service, ServiceActivity>>,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceActivity {
    pub active_signatures: BTreeSet<Signature>,
    pub completed: u64,
    pub failed: u64,
}

impl Activity {
    fn with<T>(&self, service: Service, f: impl FnOnce(&mut ServiceActivity) -> T) -> T {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(guard.entry(service).or_default())
    }

    /// Marks `sig` active; false when another worker already holds it.
    pub(super) fn begin(&self, sig: Signature) -> bool {
        self.with(sig.service(), |a| a.active_signatures.insert(sig))
    }

    pub(super) fn end(&self, sig: Signature, outcome: Option<bool>) {
        self.with(sig.service(), |a| {
            a.active_signatures.remove(&sig);
            match outcome {
                Some(true) => a.completed += 1,
                Some(false) => a.failed += 1,
                None => {}
            }
        });
    }

    pub fn snapshot(&self, service: Service) -> ServiceActivity {
        self.with(service, |a| a.clone())
    }

    /// Number of jobs being worked on right now, across services.
    pub fn busy(&self) -> usize {
        Service::ALL
            .iter()
            .map(|s| self.with(*s, |a| a.active_signatures.len()))
            .sum()
    }
}
