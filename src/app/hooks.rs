//! [`Hooks`]: what a test may inject into a running application besides its settings. None of
//! it is a setting (no flag, environment variable or file key); `main` passes
//! `Hooks::default()`, the integration harness its shared clock and shortened waits.

use std::time::Duration;

use crate::clock::Clock;
use crate::shared::SharedTuning;

/// Runtime hooks given to `Application::build` beside the settings.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// The wall clock of the rate windows (and of the demo fixture upstream). The system
    /// clock; tests move it to skip real waits for the next window.
    pub clock: Clock,
    /// The KV value limit and claim lease of `--store nats` (tests shorten the value limit;
    /// the lease is always `--claim-lease-secs`).
    pub shared_tuning: SharedTuning,
    /// How long JetStream waits for a sign of life from a worker holding a job before handing
    /// it to another (`None`: `bus::queue::ACK_WAIT`, 60 s). Tests of a killed instance
    /// shorten it.
    pub job_ack_wait: Option<Duration>,
    /// How long a tracked import's child stays pending with no job before TeamWatch queues it
    /// again (`None`: `actors::team_watch::REPAIR_GRACE`, 60 s). Tests of the repair shorten it.
    pub import_repair_grace: Option<Duration>,
}
