//! Waiting for the work queue to fall quiet. A test that asserts something did *not* happen
//! (no fetch, no second fetch) first waits until no service has work queued, delivered and
//! unacked, or being fetched; asserting after a fixed sleep instead lets a slow worker make
//! the test pass.

use serde_json::Value;

use super::{TestApp, WAIT, wait_for};

impl TestApp {
    /// Polls `/api/queue/status` until every service has nothing queued, nothing unacked (a
    /// job waiting out a retry delay stays unacked) and nothing in flight. A worker publishes
    /// a job's fan-out before it acks the job, so a drained queue means no follow-up work is
    /// pending either. Panics with the last status after [`WAIT`].
    pub async fn wait_drained(&self) {
        self.wait_quiet(true).await;
    }

    /// [`Self::wait_drained`] for an app restarted on the same store: deliveries the stopped
    /// instance held stay unacked until JetStream's ack wait (a minute) and are then dropped
    /// as stale, because start-up re-queued their claims under a new generation; so unacked
    /// jobs are not waited for here.
    pub async fn wait_drained_after_restart(&self) {
        self.wait_quiet(false).await;
    }

    async fn wait_quiet(&self, count_unacked: bool) {
        let last = std::sync::Mutex::new(Value::Null);
        let drained = wait_for(WAIT, || async {
            let status: Value = self
                .get("/api/queue/status")
                .await
                .json()
                .await
                .expect("queue status JSON");
            let idle = status["services"]
                .as_object()
                .expect("services in queue status")
                .values()
                .all(|s| {
                    s["queued"] == 0 && s["inFlight"] == 0 && (!count_unacked || s["unacked"] == 0)
                });
            *last.lock().unwrap() = status;
            idle.then_some(())
        })
        .await;
        if drained.is_none() {
            panic!("queue never drained; last status: {}", last.lock().unwrap());
        }
    }
}
