//! `serve --record-dir DIR`: writes every accepted upstream answer into `DIR` in the layout the
//! fixture upstream serves ([`super::layout`]), so a session against the real services can be
//! replayed offline with `fixture-upstream --dir DIR` or `serve --demo --demo-dir DIR`.
//!
//! What is recorded: only bodies that passed the same checks as the ones the service stores.
//! The hooks sit after validation: [`super::opendota`] records a body once its `read` step
//! accepted it, and the team importer records a Dotabuff page once it parsed (through
//! [`super::dotabuff::Dotabuff::record_page`]). So a 4xx/5xx, a cut or garbled body, a bot
//! check, or a match body without the requested `match_id` never reaches a file. The OpenDota
//! API key never does either: the layout ignores OpenDota's query string, and the recorder
//! drops `api_key` from any query before the layout sees it.
//!
//! How: each write runs on tokio's blocking pool and is atomic (a temp file in the target
//! directory, then a rename), creating directories as needed; the fetch waits for it, so a
//! resource announced ready has its answer on disk. A failed write is logged with the running
//! failure count and never fails the fetch. [`Recorder::open`] checks at start-up that the
//! directory can be written, so a wrong `--record-dir` stops the service at once.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::layout::AnswerFile;
use crate::domain::Service;

/// Query parameters that are secrets and never reach the layout (nor, so, a file name).
const SECRET_PARAMS: [&str; 2] = ["api_key", "key"];
/// Recorded files are data for anyone replaying them, not secrets: `rw-r--r--`, not the 0600 a
/// temp file starts with.
const FILE_MODE: u32 = 0o644;

/// `--record-dir` cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("--record-dir {dir}: cannot write {path}: {source}")]
pub struct RecordDirError {
    /// The configured directory.
    pub dir: PathBuf,
    /// What could not be created or written (the directory, a service subdirectory, a probe).
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Writes accepted upstream answers below one directory. Cheap to clone (shared counters).
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    written: AtomicU64,
    failed: AtomicU64,
}

impl Recorder {
    /// Creates `dir` and its service subdirectories, and writes and removes a probe file in
    /// each, so a directory that cannot be written fails here and not at the first answer.
    /// Blocking: called once at start-up.
    pub fn open(dir: &Path) -> Result<Self, RecordDirError> {
        let fail = |path: &Path| {
            let (dir, path) = (dir.to_path_buf(), path.to_path_buf());
            move |source| RecordDirError { dir, path, source }
        };
        for service in Service::ALL {
            let sub = dir.join(service.as_str());
            std::fs::create_dir_all(&sub).map_err(fail(&sub))?;
            probe(&sub).map_err(fail(&sub))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                written: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        })
    }

    /// The directory answers are written to.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Records `body` as the data file `{service}/{tail}.json` that the fixture upstream pages
    /// from (Steam and STRATZ, see [`super::layout`]). Call only with accepted answers.
    pub async fn record_file(&self, service: Service, tail: &str, body: Bytes) {
        self.record(service, tail, &[], body).await;
    }

    /// Records `body` as the answer to `GET {service base}/{tail}?{query}` (the request as
    /// sent, secrets included: they are dropped here). Call only with an accepted body.
    pub async fn record(
        &self,
        service: Service,
        tail: &str,
        query: &[(&str, String)],
        body: Bytes,
    ) {
        let public: Vec<_> = query
            .iter()
            .filter(|(key, _)| !SECRET_PARAMS.contains(key))
            .collect();
        // The pairs are plain keys and digits; an encoding failure leaves only the path.
        let query = serde_urlencoded::to_string(public).unwrap_or_default();
        let Some(path) = AnswerFile::parse(service, tail, &query).record_path(self.dir()) else {
            tracing::warn!(%service, tail, "not recording an answer whose path names no file");
            return;
        };
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&target, &body)).await;
        let err = match written {
            Ok(Ok(())) => {
                self.inner.written.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %path.display(), "recorded an upstream answer");
                return;
            }
            Ok(Err(err)) => err.to_string(),
            Err(join) => join.to_string(),
        };
        let failures = self.inner.failed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(path = %path.display(), %err, failures, "could not record an upstream answer");
    }

    /// Answers written so far.
    pub fn written(&self) -> u64 {
        self.inner.written.load(Ordering::Relaxed)
    }

    /// Writes that failed so far.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }
}

/// Writes `body` to `path` so a reader sees the old file or the whole new one, never a part:
/// a temp file beside it, then a rename over it. Parent directories are created.
fn write_atomically(path: &Path, body: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    std::fs::create_dir_all(parent)?;
    let mut file = temp_file_in(parent)?;
    file.write_all(body)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A temp file in `dir` that a replay never serves (its name ends in neither `.json` nor
/// `.html`), readable by all once renamed (set after creation, so no umask narrows it).
fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix(".recording-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Creates, writes and removes a file in `dir`.
fn probe(dir: &Path) -> io::Result<()> {
    let mut file = temp_file_in(dir)?;
    file.write_all(b"probe")?;
    file.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_land_where_the_layout_says_without_the_api_key() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::open(dir.path()).unwrap();
        let key = vec![("api_key", "secret-123".to_string())];
        recorder
            .record(Service::OpenDota, "matches/7", &key, Bytes::from("{}"))
            .await;
        let page = vec![("page", "2".to_string())];
        recorder
            .record(
                Service::Dotabuff,
                "esports/teams/5/matches",
                &page,
                Bytes::from("<p>"),
            )
            .await;
        let match_file = dir.path().join("opendota/matches/7.json");
        assert_eq!(std::fs::read(&match_file).unwrap(), b"{}");
        let mode = std::fs::metadata(&match_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, FILE_MODE);
        let page_file = dir
            .path()
            .join("dotabuff/esports/teams/5/matches.page-2.html");
        assert_eq!(std::fs::read(page_file).unwrap(), b"<p>");
        assert_eq!((recorder.written(), recorder.failed()), (2, 0));
    }

    #[tokio::test]
    async fn a_failed_write_is_counted_and_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::open(dir.path()).unwrap();
        // A file where the `matches` directory would go.
        std::fs::write(dir.path().join("opendota/matches"), "in the way").unwrap();
        recorder
            .record(Service::OpenDota, "matches/7", &[], Bytes::from("{}"))
            .await;
        assert_eq!((recorder.written(), recorder.failed()), (0, 1));
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = Recorder::open(&file).unwrap_err();
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        std::fs::write(dir.path().join("dotabuff"), "x").unwrap();
        let err = Recorder::open(dir.path()).unwrap_err();
        assert_eq!(err.path, dir.path().join("dotabuff"), "{err}");
    }
}
