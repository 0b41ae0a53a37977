//! A webhook receiver for tests: a small HTTP server on a free loopback port that records every
//! POST (headers and body) and answers from a script of statuses (then 200). Status 0 in the
//! script means "hang": the request is held open and never answered.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warp::Filter;
use warp::http::StatusCode;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<u16>,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    /// Starts a receiver that answers `script` in order, then 200.
    pub async fn start(script: &[u16]) -> Receiver {
        let state = Arc::new(Mutex::new(State {
            received: Vec::new(),
            script: script.iter().copied().collect(),
        }));
        let shared = state.clone();
        let route = warp::post()
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .and_then(move |headers: warp::http::HeaderMap, body: bytes::Bytes| {
                let state = shared.clone();
                async move {
                    let status = {
                        let mut s = state.lock().unwrap();
                        s.received.push(Received {
                            headers: headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect(),
                            body: String::from_utf8_lossy(&body).to_string(),
                            at: Instant::now(),
                        });
                        s.script.pop_front().unwrap_or(200)
                    };
                    if status == 0 {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    Ok::<_, Infallible>(warp::reply::with_status("ok", code))
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = warp::serve(route)
            .incoming(listener)
            .graceful(async {
                let _ = stopped.await;
            })
            .run();
        tokio::spawn(server);
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
            _stop: stop,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until at least `n` requests arrived (within `limit`) and returns them all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let found = super::wait_for(limit, || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "{n} webhook requests within {limit:?}; got {:?}",
                self.received()
            )
        })
    }
}
