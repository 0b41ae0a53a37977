//! Serving a stored body the way pollers want it: the encoding the client accepts (`br` where a
//! brotli form exists, i.e. rendered team views; else `gzip`, the stored form, sent as it is;
//! else the plain bytes, decompressed for the request); an `ETag` on every
//! 200; `304 Not Modified` with no body when `If-None-Match` names the current content; and
//! `Vary: Accept-Encoding` so caches in between keep the encodings apart; and
//! `X-Cache-Status` ([`CacheStatus`]) saying where the copy came from.

use bytes::Bytes;
use warp::http::header::HeaderName;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::encoding::{CompressError, ContentTag, Encoding, Representation};
use crate::metrics as m;
use crate::store::Served;

/// Header telling whether a 200 body is fresh, stale (with a refresh queued) or fetched
/// around a degraded store (`bypass`).
pub const CACHE_STATUS_HEADER: HeaderName = HeaderName::from_static("x-cache-status");

/// What `X-Cache-Status` says of a 200 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// A fresh stored copy.
    Fresh,
    /// A stale stored copy, served while its refresh is queued.
    StaleRefreshing,
    /// A stale stored copy served while the store is degraded: no refresh could be queued,
    /// so `stale; refresh queued` would not be true.
    Stale,
    /// Fetched directly from the upstream around a degraded store, and not stored.
    Bypass,
}

impl CacheStatus {
    /// A stored copy with a refresh queued when it is not fresh.
    pub fn stored(fresh: bool) -> Self {
        if fresh {
            CacheStatus::Fresh
        } else {
            CacheStatus::StaleRefreshing
        }
    }

    /// A stored copy served while the store is degraded (no refresh can be queued).
    pub fn stored_while_degraded(fresh: bool) -> Self {
        if fresh {
            CacheStatus::Fresh
        } else {
            CacheStatus::Stale
        }
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Fresh => "fresh",
            CacheStatus::StaleRefreshing => "stale; refresh queued",
            CacheStatus::Stale => "stale",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// The coding a client prefers among those it accepts (RFC 9110 §12.5.3): the highest `q`;
/// on a tie `br`, then `gzip`, then none. `*` stands for any coding not named. Identity is
/// always acceptable here: refusing it would only turn a poll into an error.
pub fn preferred(accept_encoding: Option<&str>) -> Encoding {
    let (br, gzip) = qualities(accept_encoding);
    if br > 0.0 && br >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The `q` the client gives `br` and `gzip` (0: not acceptable).
fn qualities(accept_encoding: Option<&str>) -> (f32, f32) {
    let Some(accept) = accept_encoding else {
        return (0.0, 0.0);
    };
    let (mut br, mut gzip, mut any) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        // Codings are case-insensitive; compared in place, so a poll allocates nothing here.
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            any = Some(q);
        }
    }
    (br.or(any).unwrap_or(0.0), gzip.or(any).unwrap_or(0.0))
}

/// A body that has no stored encodings (rendered for one request, or fetched around the store):
/// sent plain, with a tag computed from it like any other 200.
pub fn respond_plain(
    body: &Bytes,
    headers: &HeaderMap,
    cache_status: CacheStatus,
) -> Result<Response, CompressError> {
    let plain = Representation {
        tag: ContentTag::of(body),
        identity: Some(body),
        gzip: None,
        br: None,
    };
    respond(&plain, headers, cache_status)
}

/// A stored copy read from redb (not the hot cache), served in its stored form, or plain for a
/// client that takes no gzip (decompressed here: this path serves stale or degraded copies,
/// not the polls of ready data).
pub fn respond_served(
    served: Served,
    headers: &HeaderMap,
    cache_status: CacheStatus,
) -> Result<Response, CompressError> {
    let gzip = Bytes::from(served.stored.gzip);
    let stored = Representation {
        tag: served.stored.tag,
        identity: None,
        gzip: Some(&gzip),
        br: None,
    };
    respond(&stored, headers, cache_status)
}

/// The encoding a request with `headers` gets from `repr`: the client's preferred one among
/// those `repr` has (gzip stands in for brotli), else identity.
pub fn chosen(repr: &Representation<'_>, headers: &HeaderMap) -> Encoding {
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let (br, gzip) = qualities(accept);
    if br > 0.0 && br >= gzip && repr.br.is_some() {
        Encoding::Brotli
    } else if gzip > 0.0 && repr.gzip.is_some() {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The answer to a GET of `repr` with `headers`: 304 when the client's copy is current, else
/// 200 with the preferred encoding that exists (the plain bytes are decompressed when `repr`
/// does not hold them). `cache_status` goes in `x-cache-status`.
pub fn respond(
    repr: &Representation<'_>,
    headers: &HeaderMap,
    cache_status: CacheStatus,
) -> Result<Response, CompressError> {
    respond_as(repr, chosen(repr, headers), headers, cache_status)
}

/// [`respond`] for a caller that has already [`chosen`] the encoding.
pub fn respond_as(
    repr: &Representation<'_>,
    encoding: Encoding,
    headers: &HeaderMap,
    cache_status: CacheStatus,
) -> Result<Response, CompressError> {
    respond_tagged(
        repr,
        encoding,
        etag(repr.tag, encoding),
        headers,
        cache_status,
    )
}

/// [`respond_as`] with the `ETag` header already made (the hot cache keeps it per entry, see
/// [`etag`]).
pub fn respond_tagged(
    repr: &Representation<'_>,
    encoding: Encoding,
    etag: HeaderValue,
    headers: &HeaderMap,
    cache_status: CacheStatus,
) -> Result<Response, CompressError> {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|inm| repr.tag.matches(inm));
    let mut resp = if not_modified {
        m::count_not_modified();
        let mut resp = Response::new(Bytes::new().into());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp
    } else {
        let body = match encoding {
            Encoding::Brotli => repr.br.cloned().unwrap_or_default(),
            Encoding::Gzip => repr.gzip.cloned().unwrap_or_default(),
            Encoding::Identity => repr.plain()?,
        };
        let mut resp = Response::new(body.into());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(coding) = encoding.header() {
            resp.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        resp
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        CACHE_STATUS_HEADER,
        HeaderValue::from_static(cache_status.as_str()),
    );
    Ok(resp)
}

/// The `ETag` header of `tag` in `encoding`: [`ContentTag::etag`], formatted on the stack (every
/// 200 carries one, so no `String` and no formatting machinery per poll).
pub fn etag(tag: ContentTag, encoding: Encoding) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let suffix = match encoding {
        Encoding::Identity => &b""[..],
        Encoding::Gzip => b"-gz",
        Encoding::Brotli => b"-br",
    };
    // `"` + 16 hex digits + the suffix + `"`.
    let mut buf = [0u8; 21];
    buf[0] = b'"';
    for (i, byte) in tag.0.to_be_bytes().iter().enumerate() {
        buf[1 + 2 * i] = HEX[usize::from(byte >> 4)];
        buf[2 + 2 * i] = HEX[usize::from(byte & 0xf)];
    }
    let end = 17 + suffix.len();
    buf[17..end].copy_from_slice(suffix);
    buf[end] = b'"';
    // Hex digits, `-`, letters and quotes are all valid in a header value.
    HeaderValue::from_bytes(&buf[..=end]).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_header_is_the_tags_etag() {
        for tag in [
            ContentTag(0),
            ContentTag(0x0123_4567_89ab_cdef),
            ContentTag(u64::MAX),
        ] {
            for encoding in [Encoding::Identity, Encoding::Gzip, Encoding::Brotli] {
                assert_eq!(etag(tag, encoding), tag.etag(encoding).as_str());
            }
        }
    }

    #[test]
    fn the_preferred_coding_follows_q_values() {
        assert_eq!(preferred(None), Encoding::Identity);
        assert_eq!(preferred(Some("")), Encoding::Identity);
        assert_eq!(preferred(Some("gzip")), Encoding::Gzip);
        assert_eq!(preferred(Some("gzip, deflate, br")), Encoding::Brotli);
        assert_eq!(preferred(Some("br;q=0.5, gzip")), Encoding::Gzip);
        assert_eq!(preferred(Some("br;q=0, gzip;q=0")), Encoding::Identity);
        assert_eq!(preferred(Some("*")), Encoding::Brotli);
        assert_eq!(preferred(Some("*;q=0.1, br;q=0")), Encoding::Gzip);
        assert_eq!(preferred(Some("deflate, identity")), Encoding::Identity);
        assert_eq!(preferred(Some("GZIP ; q=0.8")), Encoding::Gzip);
    }
}
