//! Reading the queue status, which the service serves from a background snapshot (`asOf`), and
//! waiting for the work queue to fall quiet. A test that asserts something did *not* happen
//! (no fetch, no second fetch) first waits until no service has work queued, delivered and
//! unacked, or being fetched; asserting after a fixed sleep instead lets a slow worker make
//! the test pass.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{TestApp, WAIT, wait_for};

/// When the snapshot behind a `/api/queue/status` body was taken, if the body has one.
pub fn as_of(status: &Value) -> Option<DateTime<Utc>> {
    let raw = status["asOf"].as_str()?;
    Some(DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc))
}

impl TestApp {
    /// `/api/queue/status` from a snapshot taken after this call began, so it reflects every
    /// change the test made before calling (a plain GET may show a snapshot up to a refresh
    /// older). Panics after [`WAIT`].
    pub async fn queue_status_now(&self) -> Value {
        let since = Utc::now();
        wait_for(WAIT, || self.queue_status_since(since))
            .await
            .unwrap_or_else(|| panic!("no queue status snapshot taken after {since}"))
    }

    /// The status if its snapshot was taken after `since`. `asOf` is truncated to the
    /// millisecond, so a later `asOf` means a later snapshot.
    async fn queue_status_since(&self, since: DateTime<Utc>) -> Option<Value> {
        let status: Value = self.get("/api/queue/status").await.json().await.ok()?;
        (as_of(&status)? > since).then_some(status)
    }

    /// Polls `/api/queue/status` until every service has nothing queued, nothing unacked (a
    /// job waiting out a retry delay stays unacked) and nothing in flight, in a snapshot taken
    /// after the wait began (an older one may predate the test's last request). A worker
    /// publishes a job's fan-out before it acks the job, so a drained queue means no follow-up
    /// work is pending either. Panics with the last status after [`WAIT`].
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
        let since = Utc::now();
        let last = std::sync::Mutex::new(Value::Null);
        let drained = wait_for(WAIT, || async {
            let status = self.queue_status_since(since).await?;
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
