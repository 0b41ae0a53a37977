//! Bounds on what a client may send, applied by the router to every route before any handler
//! runs: the request target ([`MAX_URI_BYTES`], 414), the headers together
//! ([`MAX_HEADER_BYTES`], 431) and the body ([`MAX_BODY_BYTES`], 413), each answered with the
//! usual JSON error. The body cap holds for chunked bodies too: the body is read as a stream
//! and refused as soon as it passes the cap, never buffered whole first.
//!
//! hyper keeps its own, larger bounds below these (a request head over ~400 KiB, or more than
//! 100 headers, is refused by hyper with a bare 431 before warp sees it).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use warp::http::HeaderMap;
use warp::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

use super::reply::ApiError;

/// Largest request body accepted (team import and invalidation bodies are small JSON).
pub const MAX_BODY_BYTES: u64 = 256 * 1024;
/// Longest request target (path and query) accepted: far above any route's real use (the
/// longest is a team's matches with a league ID), and the common proxy limit.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) accepted per request; nginx's default header buffers
/// are 4 x 8 KiB, and the API needs only a few short headers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A request over one of the bounds (the unreadable-body case keeps its message).
#[derive(Debug)]
pub enum OverLimit {
    Body,
    Uri,
    Headers,
    /// The body stream broke off (a client error, not a bound, but met while reading it).
    Unreadable(String),
}

impl OverLimit {
    /// The error the request is answered with.
    pub fn error(&self) -> ApiError {
        match self {
            OverLimit::Body => ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            },
            OverLimit::Uri => ApiError::UriTooLong {
                limit: MAX_URI_BYTES,
            },
            OverLimit::Headers => ApiError::HeadersTooLarge {
                limit: MAX_HEADER_BYTES,
            },
            OverLimit::Unreadable(why) => ApiError::BadRequest(format!("unreadable body: {why}")),
        }
    }
}

/// Refuses a request whose target (`path`, and its `query` pairs when there are some) or
/// headers are over their bounds. The router checks this before routing, so a long unknown
/// path is a 414, not a 404.
///
/// The query arrives decoded (see `router::serve`), so its length is counted as
/// `?k=v&k=v`: the exact target length for a query without percent escapes, a little under it
/// for one with them (each `%XX` counts as the byte it stands for).
pub fn check_head(
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<(), OverLimit> {
    let query_len: usize = query.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let target = path.len() + query_len;
    if target > MAX_URI_BYTES {
        return Err(OverLimit::Uri);
    }
    if header_bytes(headers) > MAX_HEADER_BYTES {
        return Err(OverLimit::Headers);
    }
    Ok(())
}

/// Bytes of every header name and value, as a client sent them (less the separators).
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// The request body, at most [`MAX_BODY_BYTES`]: refused at once when a larger length is
/// declared in `headers`, and as soon as the streamed bytes pass the cap otherwise (chunked
/// bodies have no declared length). A request without a body passes with an empty one; one
/// with neither `Content-Length` nor `Transfer-Encoding` has none (RFC 9112 §6.3), so its
/// stream is not polled.
pub async fn capped_body<S, B>(headers: &HeaderMap, body: S) -> Result<Bytes, OverLimit>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if !declares_body(headers) {
        return Ok(Bytes::new());
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(OverLimit::Body);
    }
    collect_capped(body).await
}

/// Whether a request with `headers` has a body: `Content-Length` or `Transfer-Encoding`.
pub fn declares_body(headers: &HeaderMap) -> bool {
    headers.contains_key(CONTENT_LENGTH) || headers.contains_key(TRANSFER_ENCODING)
}

/// Reads `body` into memory, failing once it passes [`MAX_BODY_BYTES`].
async fn collect_capped<S, B>(body: S) -> Result<Bytes, OverLimit>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| OverLimit::Unreadable(e.to_string()))?;
        let len = u64::try_from(out.len() + chunk.remaining()).unwrap_or(u64::MAX);
        if len > MAX_BODY_BYTES {
            return Err(OverLimit::Body);
        }
        out.put(chunk);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, warp::Error>> {
        let owned: Vec<Result<Bytes, warp::Error>> = sizes
            .iter()
            .map(|n| Ok(Bytes::from(vec![b'x'; *n])))
            .collect();
        futures::stream::iter(owned)
    }

    #[tokio::test]
    async fn a_streamed_body_up_to_the_cap_is_read_whole() {
        let half = usize::try_from(MAX_BODY_BYTES / 2).unwrap();
        let body = collect_capped(chunks(&[half, half])).await.unwrap();
        assert_eq!(body.len() as u64, MAX_BODY_BYTES);
    }

    #[tokio::test]
    async fn a_streamed_body_one_byte_over_the_cap_is_refused() {
        let half = usize::try_from(MAX_BODY_BYTES / 2).unwrap();
        let err = collect_capped(chunks(&[half, half, 1])).await.unwrap_err();
        assert!(matches!(err, OverLimit::Body), "{err:?}");
    }

    #[test]
    fn header_bytes_count_names_and_values() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", "12345".parse().unwrap());
        assert_eq!(header_bytes(&headers), 8);
    }
}
