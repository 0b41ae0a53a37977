//! Forks every embedded nats-server from one thread that lives as long as the process, with a
//! parent-death signal, so the server dies with the service even on `kill -9` or an OOM kill.
//! Used by [`super::embedded`] for the first start and for every restart by its supervisor.
//!
//! Linux delivers `PR_SET_PDEATHSIG` when the *thread* that forked the child exits, not the
//! process. A tokio worker or blocking-pool thread can exit long before the process does (the
//! blocking pool retires idle threads after seconds), which would kill a healthy server. So
//! every fork happens on [`SPAWNER_THREAD`], which is started once and never returns; requests
//! reach it over a channel and the child goes back to the caller, registered with the caller's
//! tokio runtime (the caller's `Handle` is entered around the fork).

use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::mpsc;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Name of the one thread that forks embedded servers (visible in `ps -T` and debuggers).
const SPAWNER_THREAD: &str = "nats-spawner";

/// The signal a nats-server receives when the service dies. SIGTERM, not SIGKILL: nats-server
/// then shuts JetStream down cleanly (flushes its file store and writes its indexes), so the
/// next start recovers quickly and loses nothing. A server that ignores or outlives it is
/// still caught: the next start finds it through the PID file and escalates to SIGKILL
/// (see [`super::pid_file`]).
#[cfg(target_os = "linux")]
const PARENT_DEATH_SIGNAL: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGTERM;

struct Request {
    command: Command,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// Sender to the spawner thread; `None` until the first spawn starts the thread.
static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

/// Spawns `command` on the spawner thread with the parent-death signal set. Must be called
/// from within a tokio runtime (the child is reaped by it).
pub async fn spawn_tied_to_process(mut command: Command) -> io::Result<Child> {
    tie_to_parent(&mut command);
    let (reply, answer) = oneshot::channel();
    let request = Request {
        command,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    sender()?
        .send(request)
        .map_err(|_| io::Error::other("the nats-server spawner thread has stopped"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the nats-server spawner thread dropped a request"))?
}

/// The spawner's sender, starting the thread on first use.
fn sender() -> io::Result<mpsc::Sender<Request>> {
    let mut guard = match SPAWNER.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(tx) = guard.as_ref() {
        return Ok(tx.clone());
    }
    let (tx, rx) = mpsc::channel::<Request>();
    // Never joined: the thread must outlive every child it forks, i.e. live until exit. The
    // sender kept in `SPAWNER` keeps `rx` open, so the loop never ends on its own.
    std::thread::Builder::new()
        .name(SPAWNER_THREAD.to_string())
        .spawn(move || {
            for Request {
                mut command,
                runtime,
                reply,
            } in rx
            {
                // A panic must not end this thread: every server it forked would get the
                // parent-death signal. Turn it into this one spawn's error instead.
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let _runtime = runtime.enter();
                    command.spawn()
                }))
                .unwrap_or_else(|_| Err(io::Error::other("spawning nats-server panicked")));
                // The caller may have given up waiting; its child is then killed on drop.
                let _ = reply.send(result);
            }
        })?;
    *guard = Some(tx.clone());
    Ok(tx)
}

/// Makes the child ask the kernel for [`PARENT_DEATH_SIGNAL`] when the forking thread dies.
#[cfg(target_os = "linux")]
fn tie_to_parent(command: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec and calls only prctl(2) and getppid(2),
    // both async-signal-safe; it allocates nothing (the error is built from a raw errno).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(PARENT_DEATH_SIGNAL).map_err(io::Error::from)?;
            // The parent may have died between fork and prctl; the signal would then never
            // come, so give up now (the spawn fails in a parent that no longer exists).
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Elsewhere there is no parent-death signal; the PID file check at start-up still stops a
/// server left behind by a crash.
#[cfg(not(target_os = "linux"))]
fn tie_to_parent(_command: &mut Command) {}
