//! A minimal headless-Chromium driver for browser tests, speaking the Chrome DevTools Protocol
//! over a websocket: launch with a fresh profile and `--remote-debugging-port=0`, read the
//! `DevTools listening on ws://...` line from stderr, open one page target and attach to it
//! (flattened session), then navigate, evaluate JavaScript and take screenshots. The browser
//! runs in its own process group, which [`Chromium`]'s `Drop` kills, so a panicking test never
//! leaves a browser behind. Used by `status_page`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long Chromium may take to print its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for a page load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for one CDP command's answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Chromium stderr lines kept for failure messages.
const STDERR_TAIL: usize = 40;

/// Where `chromium` is, if installed (`$CHROMIUM` overrides the PATH lookup).
pub fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

/// Finds Chromium, or decides the test cannot run: on CI (`$CI` set) a missing browser is a
/// failure, locally the test is skipped with a note.
pub fn find_or_skip(test: &str) -> Option<PathBuf> {
    match find() {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => panic!(
            "{test} needs Chromium: install the Debian package `chromium` \
             (apt-get install chromium, or scripts/install-deps.sh with DOTA_WITH_TEST_DEPS=1)"
        ),
        None => {
            eprintln!(
                "skipping {test}: `chromium` is not installed (apt-get install chromium); \
                 set CI=1 to make this a failure"
            );
            None
        }
    }
}

/// A running headless Chromium with one attached page.
pub struct Chromium {
    child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    stderr: Arc<Mutex<VecDeque<String>>>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch(binary: &Path) -> Chromium {
        let profile = tempfile::tempdir().expect("chromium profile dir");
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--remote-debugging-port=0", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so Drop can end the renderers too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        {
            let tail = tail.clone();
            // Keeps draining stderr for the browser's lifetime: a full pipe would stall it.
            std::thread::spawn(move || {
                let mut url_tx = Some(url_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = line.strip_prefix("DevTools listening on ")
                        && let Some(tx) = url_tx.take()
                    {
                        let _ = tx.send(url.trim().to_string());
                    }
                    let mut tail = tail.lock().expect("stderr tail");
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let mut guard = Launching {
            child: Some(child),
            tail: tail.clone(),
        };
        let url = match tokio::time::timeout(LAUNCH_TIMEOUT, url_rx).await {
            Ok(Ok(url)) => url,
            _ => panic!(
                "chromium printed no DevTools address; stderr:\n{}",
                guard.tail()
            ),
        };
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connect to DevTools at {url}: {e}"));
        let mut browser = Chromium {
            child: guard.child.take().expect("child"),
            ws,
            session: String::new(),
            next_id: 0,
            stderr: tail,
            _profile: profile,
        };
        let target = browser
            .browser_call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser
            .browser_call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// A command to the browser itself.
    async fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None).await
    }

    /// A command to the attached page.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(session)).await
    }

    async fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            msg["sessionId"] = session.into();
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .unwrap_or_else(|e| panic!("send {method}: {e}"));
        let answer = tokio::time::timeout(COMMAND_TIMEOUT, async {
            while let Some(frame) = self.ws.next().await {
                let frame = frame.unwrap_or_else(|e| panic!("DevTools socket: {e}"));
                let Message::Text(text) = frame else { continue };
                let value: Value = serde_json::from_str(&text).expect("CDP JSON");
                // Everything without our id is an event or another answer: skip it.
                if value["id"] == id {
                    return value;
                }
            }
            panic!("DevTools socket closed while waiting for {method}");
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} within {COMMAND_TIMEOUT:?}"));
        if let Some(err) = answer.get("error") {
            panic!(
                "{method} failed: {err}; chromium stderr:\n{}",
                self.stderr_tail()
            );
        }
        answer["result"].clone()
    }

    /// Navigates and waits until the document has loaded.
    pub async fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url})).await;
        if let Some(err) = result.get("errorText") {
            panic!("navigating to {url}: {err}");
        }
        let deadline = tokio::time::Instant::now() + LOAD_TIMEOUT;
        loop {
            let state = self.eval("document.readyState").await;
            let here = self.eval("location.href").await;
            if state == "complete" && here.as_str().is_some_and(|h| h.starts_with(url)) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{url} did not finish loading within {LOAD_TIMEOUT:?} (at {here}, {state})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its JSON value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!("`{expression}` threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Saves a PNG of the viewport to `path` (parents created).
    pub async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    pub fn stderr_tail(&self) -> String {
        join(&self.stderr)
    }

    /// Asks the browser to exit, then makes sure it did.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.send("Browser.close", json!({}), None),
        )
        .await;
        // Drop kills whatever is left and reaps the process.
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Owns the child until the DevTools connection is up, so a failed launch still kills it.
struct Launching {
    child: Option<Child>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Launching {
    fn tail(&self) -> String {
        join(&self.tail)
    }
}

impl Drop for Launching {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill_group(child);
        }
    }
}

fn join(tail: &Mutex<VecDeque<String>>) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// SIGKILLs the process group we started (the browser and its helpers), then reaps the browser.
fn kill_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
    let _ = child.wait();
}
