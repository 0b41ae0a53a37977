//! The small-body reference of issue 19: a bare warp server that answers `GET /NAME` with the
//! bytes of DIR/NAME from memory (DIR/NAME.gz to a request that accepts gzip), and nothing else
//! per request: no routing table, no spans, no metrics, no store. It measures what warp and hyper
//! cost on this machine, so `bench/readpath_cpu.py --bare` puts our service, this and nginx side
//! by side.
//!
//! ```sh
//! cargo build --release --example bare_warp
//! target/release/examples/bare_warp 127.0.0.1:8099 /tmp/static
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use warp::Filter;
use warp::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(dir)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: bare_warp ADDR DIR");
    };
    let addr: SocketAddr = addr.parse().context("ADDR")?;
    let mut files: HashMap<String, Bytes> = HashMap::new();
    for entry in std::fs::read_dir(&dir).with_context(|| dir.clone())? {
        let entry = entry?;
        let name = format!("/{}", entry.file_name().to_string_lossy());
        files.insert(name, std::fs::read(entry.path())?.into());
    }
    let files = Arc::new(files);
    let route = warp::path::full()
        .and(warp::header::optional::<String>("accept-encoding"))
        .map(move |path: warp::path::FullPath, accept: Option<String>| {
            let gzip = accept.as_deref().is_some_and(|a| a.contains("gzip"));
            let found = gzip
                .then(|| files.get(&format!("{}.gz", path.as_str())))
                .flatten()
                .map(|body| (body, true))
                .or_else(|| files.get(path.as_str()).map(|body| (body, false)));
            let Some((body, gzipped)) = found else {
                let mut resp = Response::new(Bytes::new().into());
                *resp.status_mut() = StatusCode::NOT_FOUND;
                return resp;
            };
            let mut resp = Response::new(body.clone().into());
            let headers = resp.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if gzipped {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            resp
        });
    warp::serve(route).run(addr).await;
    Ok(())
}
