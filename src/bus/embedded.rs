//! The embedded message bus: starts `nats-server -c nats.conf` as a child process on its own
//! loopback port, waits until it answers `/healthz`, restarts it if it dies and stops it on
//! shutdown. Used by `Application::build` when no `--nats-url` is given. The binary is the
//! first of at least [`MIN_EMBEDDED`] that [`server_bin::find`] sees (Debian's 2.9 will do).
//!
//! The server never outlives the service: it is forked with a parent-death signal (see
//! [`super::spawner`]), and its PID is recorded in the store dir so that the next start stops
//! a server left behind anyway (see [`super::pid_file`]) instead of failing on a taken port.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::pid_file::{LeftoverServerError, PidFile, ServerRecord};
use super::server_bin::{self, ServerBinError};
use super::server_version::MIN_EMBEDDED;
use super::spawner::spawn_tied_to_process;

/// How long a fresh nats-server gets to answer `/healthz` before start-up fails.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping nats-server gets to flush JetStream before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Start attempts when a probed-free port is taken before nats-server binds it.
const PORT_ATTEMPTS: u32 = 5;
/// First and largest pause between restarts of a server that keeps dying.
const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(200);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Errors starting the embedded server. Each message says what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedNatsError {
    /// No nats-server of at least [`MIN_EMBEDDED`]: the message lists what was looked at.
    #[error("{0}; or pass --nats-url to use an existing server")]
    Binary(#[from] ServerBinError),
    #[error("nats config file {0} does not exist (pass --nats-conf)")]
    ConfigMissing(PathBuf),
    #[error(
        "port {port} on 127.0.0.1 is already taken by another process; choose another with --nats-port (0 picks a free one) or pass --nats-url to join that server"
    )]
    PortTaken { port: u16 },
    #[error("could not create the NATS store directory {path}: {source}")]
    StoreDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not start nats-server: {0}")]
    Spawn(std::io::Error),
    #[error(transparent)]
    Leftover(#[from] LeftoverServerError),
    #[error("nats-server did not become healthy within {secs}s; last log lines:\n{log_tail}")]
    NotReady { secs: u64, log_tail: String },
}

/// Where and how to run the embedded server.
#[derive(Debug, Clone)]
pub struct EmbeddedNatsConfig {
    /// `nats.conf` with JetStream, payload and loopback settings.
    pub conf: PathBuf,
    /// JetStream store (the server adds `jetstream/` below it) and the server log.
    pub store_dir: PathBuf,
    /// Client port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

/// A running, supervised nats-server child.
pub struct EmbeddedNats {
    url: String,
    restarts: Arc<AtomicU64>,
    /// Process ID of the current nats-server child (changes on restart).
    pid: Arc<AtomicU32>,
    shutdown: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct Launch {
    binary: PathBuf,
    conf: PathBuf,
    /// Absolute, so the `-sd` argument identifies the store in `/proc/<pid>/cmdline`
    /// whatever the working directory of a later run.
    store_dir: PathBuf,
    log_file: PathBuf,
    pid_file: PidFile,
    port: u16,
    monitor_port: u16,
}

impl EmbeddedNats {
    /// Starts the server and returns once it is healthy, with the binary [`server_bin::find`]
    /// picks from the project venv and `PATH`.
    pub async fn start(config: EmbeddedNatsConfig) -> Result<Self, EmbeddedNatsError> {
        Self::start_with_server_bin(config, None).await
    }

    /// [`Self::start`], with `server_bin` (`--nats-server-bin`) tried first: when given, it
    /// must exist and be at least [`MIN_EMBEDDED`].
    pub async fn start_with_server_bin(
        config: EmbeddedNatsConfig,
        server_bin: Option<&Path>,
    ) -> Result<Self, EmbeddedNatsError> {
        let explicit = server_bin.map(Path::to_path_buf);
        // `find` runs each candidate's `--version`: blocking work.
        let found = tokio::task::spawn_blocking(move || {
            server_bin::find(explicit.as_deref(), MIN_EMBEDDED)
        })
        .await
        .map_err(|err| EmbeddedNatsError::Spawn(std::io::Error::other(err)))??;
        let binary = found.path;
        if !config.conf.is_file() {
            return Err(EmbeddedNatsError::ConfigMissing(config.conf));
        }
        let store_dir = std::fs::create_dir_all(&config.store_dir)
            .and_then(|()| config.store_dir.canonicalize())
            .map_err(|source| EmbeddedNatsError::StoreDir {
                path: config.store_dir.clone(),
                source,
            })?;
        // Before any port is probed: a left-over server holds the port and the store.
        let pid_file = PidFile::new(&store_dir);
        pid_file.stop_leftover(STOP_TIMEOUT).await?;
        let (launch, child) = launch_healthy(&config, &binary, &store_dir, &pid_file).await?;
        let port = launch.port;
        tracing::info!(
            port,
            store = %launch.store_dir.display(),
            binary = %launch.binary.display(),
            version = %found.version,
            "embedded nats-server is up"
        );

        let restarts = Arc::new(AtomicU64::new(0));
        let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(
            launch,
            child,
            shutdown_rx,
            restarts.clone(),
            pid.clone(),
        ));
        Ok(Self {
            url: format!("nats://127.0.0.1:{port}"),
            restarts,
            pid,
            shutdown,
            supervisor,
        })
    }

    /// Client URL of the running server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Shared counter of unexpected exits that were followed by a restart.
    pub fn restarts(&self) -> Arc<AtomicU64> {
        self.restarts.clone()
    }

    /// Process ID of the running nats-server (for operators and supervision tests).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Err(err) = self.supervisor.await {
            tracing::warn!(%err, "nats-server supervisor ended abnormally");
        }
    }
}

/// Spawns nats-server and waits until it is healthy. A port picked here is free when probed but
/// may be taken (by any process's outgoing connection, even) before nats-server binds it; then
/// it picks again. A port the operator chose is never swapped silently.
async fn launch_healthy(
    config: &EmbeddedNatsConfig,
    binary: &Path,
    store_dir: &Path,
    pid_file: &PidFile,
) -> Result<(Launch, Child), EmbeddedNatsError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = claim_port(config.port)?;
        let monitor_port = claim_port(0)?;
        let launch = Launch {
            binary: binary.to_path_buf(),
            conf: config.conf.clone(),
            log_file: store_dir.join("nats-server.log"),
            store_dir: store_dir.to_path_buf(),
            pid_file: pid_file.clone(),
            port,
            monitor_port,
        };
        // A fresh log per attempt, so the tail read on failure is this attempt's.
        let _ = std::fs::remove_file(&launch.log_file);
        let child = launch.spawn().await?;
        match launch.wait_healthy(child).await {
            Ok(child) => return Ok((launch, child)),
            Err(EmbeddedNatsError::NotReady { log_tail, .. })
                if attempt < PORT_ATTEMPTS && log_tail.contains("address already in use") =>
            {
                tracing::warn!(
                    port,
                    monitor_port,
                    "a port was taken before nats-server bound it; picking others"
                );
            }
            Err(EmbeddedNatsError::NotReady { log_tail, .. })
                if config.port != 0
                    && log_tail.contains(&format!(":{port}"))
                    && log_tail.contains("address already in use") =>
            {
                return Err(EmbeddedNatsError::PortTaken { port });
            }
            Err(err) => return Err(err),
        }
    }
}

impl Launch {
    /// Starts one nats-server and records its PID before anything can go wrong with it.
    async fn spawn(&self) -> Result<Child, EmbeddedNatsError> {
        // Flags override the file: the file holds policy (JetStream, payload size, limits),
        // the flags hold what differs per instance (port, store, log).
        let mut command = Command::new(&self.binary);
        command
            .arg("-c")
            .arg(&self.conf)
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-m")
            .arg(self.monitor_port.to_string())
            .arg("-sd")
            .arg(&self.store_dir)
            .arg("-l")
            .arg(&self.log_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = spawn_tied_to_process(command)
            .await
            .map_err(EmbeddedNatsError::Spawn)?;
        if let Some(pid) = child.id() {
            let record = ServerRecord {
                pid,
                port: self.port,
            };
            // Without the record only the parent-death signal guards against an orphan;
            // worth a warning, not worth refusing to run.
            if let Err(err) = self.pid_file.record(record) {
                tracing::warn!(%err, "could not write the nats-server PID file");
            }
        }
        Ok(child)
    }

    async fn wait_healthy(&self, mut child: Child) -> Result<Child, EmbeddedNatsError> {
        let url = format!("http://127.0.0.1:{}/healthz", self.monitor_port);
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let client = reqwest::Client::new();
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().is_success()
            {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill().await;
        Err(EmbeddedNatsError::NotReady {
            secs: READY_TIMEOUT.as_secs(),
            log_tail: log_tail(&self.log_file),
        })
    }

    async fn stop_child(&self, mut child: Child) {
        // `id()` is None once the child has been reaped, so the PID cannot have been reused.
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok())
            && let Err(err) = kill(Pid::from_raw(pid), Signal::SIGTERM)
        {
            tracing::warn!(%err, "could not send SIGTERM to nats-server");
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(_) => tracing::info!("embedded nats-server stopped"),
            Err(_) => {
                tracing::warn!("nats-server ignored SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
        self.pid_file.remove();
    }
}

async fn supervise(
    launch: Launch,
    mut child: Child,
    mut shutdown: watch::Receiver<bool>,
    restarts: Arc<AtomicU64>,
    pid: Arc<AtomicU32>,
) {
    let mut backoff = RESTART_BACKOFF_MIN;
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                launch.stop_child(child).await;
                return;
            }
            status = child.wait() => {
                tracing::error!(?status, log_tail = %log_tail(&launch.log_file), "embedded nats-server exited; restarting it");
            }
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            let started = match launch.spawn().await {
                Ok(c) => launch.wait_healthy(c).await,
                Err(e) => Err(e),
            };
            match started {
                Ok(c) => {
                    child = c;
                    pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
                    restarts.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(crate::metrics::NATS_SERVER_RESTARTS).increment(1);
                    tracing::info!("embedded nats-server restarted");
                    backoff = RESTART_BACKOFF_MIN;
                    break;
                }
                Err(err) => tracing::error!(%err, "restarting nats-server failed; will retry"),
            }
        }
    }
}

/// Checks that `port` is free (or picks a free one for 0). The probe socket is closed before
/// nats-server binds; the window is tiny and a loss shows up as a clear `NotReady`.
fn claim_port(port: u16) -> Result<u16, EmbeddedNatsError> {
    match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
        Ok(listener) => listener
            .local_addr()
            .map(|a| a.port())
            .map_err(EmbeddedNatsError::Spawn),
        Err(_) => Err(EmbeddedNatsError::PortTaken { port }),
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
