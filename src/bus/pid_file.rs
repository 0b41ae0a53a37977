//! The embedded nats-server's PID file, `<store_dir>/nats-server.pid`, and what start-up does
//! with a server an earlier run left behind. Written by [`super::embedded`] after every spawn
//! (restarts included), removed on a clean stop, read at the next start.
//!
//! A left-over server holds the client port and the JetStream store, so the new one could not
//! start. It is stopped, not adopted: an adopted server is not our child, so we could neither
//! supervise it (wait for its exit, restart it) nor tie it to our lifetime, and the next crash
//! would orphan it again. A restart of nats-server costs well under a second and JetStream
//! keeps its messages across it. A PID is trusted only when `/proc/<pid>/cmdline` shows a
//! nats-server started with `-sd <this store dir>`: a PID reused by an unrelated process (or by
//! a nats-server of another data dir) is never signalled.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// File name of the PID file inside the store dir.
pub const PID_FILE: &str = "nats-server.pid";
/// How long a left-over server gets to exit after SIGKILL before start-up gives up.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often start-up looks whether a signalled server is gone.
const POLL: Duration = Duration::from_millis(50);

/// A left-over server that could not be stopped. The operator has to step in.
#[derive(Debug, thiserror::Error)]
pub enum LeftoverServerError {
    #[error(
        "nats-server {pid}, left running on {store} by an earlier run, cannot be signalled ({source}); stop it by hand"
    )]
    Signal {
        pid: u32,
        store: PathBuf,
        source: Errno,
    },
    #[error(
        "nats-server {pid}, left running on {store} by an earlier run, did not exit after SIGKILL; stop it by hand"
    )]
    StillRunning { pid: u32, store: PathBuf },
}

/// What the PID file says about the server that was started last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerRecord {
    pub pid: u32,
    /// Client port, for the log line when the server is found left over.
    pub port: u16,
}

/// The PID file of one store dir.
#[derive(Debug, Clone)]
pub struct PidFile {
    store_dir: PathBuf,
    path: PathBuf,
}

impl PidFile {
    /// The PID file of `store_dir`, which must be the exact path given to nats-server `-sd`.
    pub fn new(store_dir: &Path) -> Self {
        Self {
            store_dir: store_dir.to_path_buf(),
            path: store_dir.join(PID_FILE),
        }
    }

    /// Records `record`. The PID stands alone on the first line, as in any PID file, so
    /// `kill $(head -1 nats-server.pid)` works; the port follows. Written to a temp file and
    /// renamed, so a crash mid-write never leaves half a PID behind.
    pub fn record(&self, record: ServerRecord) -> io::Result<()> {
        let tmp = self.path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{}\nport={}\n", record.pid, record.port))?;
        std::fs::rename(&tmp, &self.path)
    }

    /// The last recorded server, if the file exists and parses.
    pub fn read(&self) -> Option<ServerRecord> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let port = lines
            .find_map(|l| l.strip_prefix("port="))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        Some(ServerRecord { pid, port })
    }

    /// Removes the file (a clean stop, or a stale record).
    pub fn remove(&self) {
        if let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(%err, path = %self.path.display(), "could not remove the nats-server PID file");
        }
    }

    /// Stops a server an earlier run left running on this store dir (SIGTERM, up to
    /// `term_timeout` to flush and exit, then SIGKILL) and removes a stale record. Returns the
    /// PID of the server it stopped.
    pub async fn stop_leftover(
        &self,
        term_timeout: Duration,
    ) -> Result<Option<u32>, LeftoverServerError> {
        let Some(record) = self.read() else {
            self.remove();
            return Ok(None);
        };
        if !self.is_our_server(record.pid) {
            tracing::debug!(pid = record.pid, "stale nats-server PID file; removing it");
            self.remove();
            return Ok(None);
        }
        tracing::warn!(
            pid = record.pid,
            port = record.port,
            store = %self.store_dir.display(),
            "a nats-server from an earlier run is still running on this store; stopping it"
        );
        self.signal(record.pid, Signal::SIGTERM)?;
        if !self.wait_gone(record.pid, term_timeout).await {
            tracing::warn!(
                pid = record.pid,
                "left-over nats-server ignored SIGTERM; killing it"
            );
            self.signal(record.pid, Signal::SIGKILL)?;
            if !self.wait_gone(record.pid, KILL_TIMEOUT).await {
                return Err(LeftoverServerError::StillRunning {
                    pid: record.pid,
                    store: self.store_dir.clone(),
                });
            }
        }
        self.remove();
        Ok(Some(record.pid))
    }

    /// True when `pid` is a live nats-server whose `-sd` is this store dir. A zombie (exited,
    /// not yet reaped: it holds no port) has an empty cmdline and does not count.
    pub fn is_our_server(&self, pid: u32) -> bool {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        is_server_for(&cmdline, &self.store_dir)
    }

    fn signal(&self, pid: u32, signal: Signal) -> Result<(), LeftoverServerError> {
        let Ok(raw) = i32::try_from(pid) else {
            return Ok(());
        };
        match kill(Pid::from_raw(raw), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(source) => Err(LeftoverServerError::Signal {
                pid,
                store: self.store_dir.clone(),
                source,
            }),
        }
    }

    async fn wait_gone(&self, pid: u32, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.is_our_server(pid) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
        true
    }
}

/// True when a NUL-separated command line is `…/nats-server … -sd <store_dir> …`.
fn is_server_for(cmdline: &[u8], store_dir: &Path) -> bool {
    let args: Vec<&OsStr> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(OsStr::from_bytes)
        .collect();
    let is_nats = args
        .first()
        .and_then(|argv0| Path::new(argv0).file_name())
        .is_some_and(|name| name == "nats-server");
    is_nats
        && args
            .windows(2)
            .any(|w| w[0] == "-sd" && Path::new(w[1]) == store_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn cmdline(args: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for a in args {
            out.extend_from_slice(a.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn only_a_nats_server_on_this_store_dir_matches() {
        let store = Path::new("/data/nats");
        let ours = cmdline(&["/usr/sbin/nats-server", "-c", "n.conf", "-sd", "/data/nats"]);
        assert!(is_server_for(&ours, store));
        let other_store = cmdline(&["/usr/sbin/nats-server", "-sd", "/other/nats"]);
        assert!(!is_server_for(&other_store, store));
        let other_program = cmdline(&["/usr/bin/sleep", "-sd", "/data/nats"]);
        assert!(!is_server_for(&other_program, store));
        assert!(!is_server_for(b"", store), "a zombie's cmdline is empty");
    }

    #[test]
    fn a_record_round_trips_and_starts_with_the_bare_pid() {
        let dir = tempfile::tempdir().unwrap();
        let file = PidFile::new(dir.path());
        assert_eq!(file.read(), None);
        let record = ServerRecord {
            pid: 4321,
            port: 4223,
        };
        file.record(record).unwrap();
        assert_eq!(file.read(), Some(record));
        let text = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        assert_eq!(text.lines().next(), Some("4321"));
        file.remove();
        assert_eq!(file.read(), None);
    }

    /// Kills the child on drop so a failing test leaves nothing running.
    struct Reap(std::process::Child);

    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test]
    async fn a_pid_reused_by_another_process_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = Reap(Command::new("sleep").arg("30").spawn().unwrap());
        let file = PidFile::new(dir.path());
        file.record(ServerRecord {
            pid: other.0.id(),
            port: 1,
        })
        .unwrap();
        assert_eq!(
            file.stop_leftover(Duration::from_secs(1)).await.unwrap(),
            None
        );
        assert!(other.0.try_wait().unwrap().is_none(), "sleep still runs");
        assert_eq!(file.read(), None, "the stale record is removed");
    }

    #[tokio::test]
    async fn a_left_over_server_on_this_store_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().canonicalize().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Started directly, not through the spawner: like a server orphaned by an old build.
        let mut server = Reap(
            Command::new("/usr/sbin/nats-server")
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(&store)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pid = server.0.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nats-server listens");
            std::thread::sleep(POLL);
        }
        let file = PidFile::new(&store);
        file.record(ServerRecord { pid, port }).unwrap();
        let reaper = std::thread::spawn(move || {
            let _ = server.0.wait();
            server
        });
        assert_eq!(
            file.stop_leftover(Duration::from_secs(10)).await.unwrap(),
            Some(pid)
        );
        let server = reaper.join().unwrap();
        drop(server);
        assert!(!file.is_our_server(pid));
        assert_eq!(file.read(), None);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    }
}
