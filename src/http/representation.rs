//! Serving a stored body the way pollers want it: the encoding the client accepts (`br`, then
//! `gzip`, else the plain bytes), already compressed when it was stored; an `ETag` on every
//! 200; `304 Not Modified` with no body when `If-None-Match` names the current content; and
//! `Vary: Accept-Encoding` so caches in between keep the encodings apart.

use bytes::Bytes;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::resources::CACHE_STATUS_HEADER;
use crate::encoding::{ContentTag, Encoding};
use crate::metrics as m;

/// A body and the forms of it that can be sent.
pub struct Representation<'a> {
    pub tag: ContentTag,
    pub identity: &'a Bytes,
    pub gzip: Option<&'a Bytes>,
    pub br: Option<&'a Bytes>,
}

/// The coding a client prefers among those it accepts (RFC 9110 §12.5.3): the highest `q`;
/// on a tie `br`, then `gzip`, then none. `*` stands for any coding not named. Identity is
/// always acceptable here: refusing it would only turn a poll into an error.
pub fn preferred(accept_encoding: Option<&str>) -> Encoding {
    let Some(accept) = accept_encoding else {
        return Encoding::Identity;
    };
    let (mut br, mut gzip, mut any) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => any = Some(q),
            _ => {}
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// A body that has no stored encodings (rendered for one request, or fetched around the store):
/// sent plain, with a tag computed from it like any other 200.
pub fn respond_plain(body: &Bytes, headers: &HeaderMap, cache_status: &'static str) -> Response {
    Representation {
        tag: ContentTag::of(body),
        identity: body,
        gzip: None,
        br: None,
    }
    .respond(headers, cache_status)
}

impl Representation<'_> {
    /// The answer to a GET with `headers`: 304 when the client's copy is current, else 200 with
    /// the preferred encoding that exists. `cache_status` goes in `x-cache-status`.
    pub fn respond(&self, headers: &HeaderMap, cache_status: &'static str) -> Response {
        let wanted = preferred(
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        );
        let (encoding, body) = match wanted {
            Encoding::Brotli if self.br.is_some() => (Encoding::Brotli, self.br),
            Encoding::Brotli | Encoding::Gzip if self.gzip.is_some() => (Encoding::Gzip, self.gzip),
            _ => (Encoding::Identity, Some(self.identity)),
        };
        let not_modified = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|inm| self.tag.matches(inm));
        let mut resp = if not_modified {
            metrics::counter!(m::NOT_MODIFIED).increment(1);
            let mut resp = Response::new(Bytes::new().into());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            resp
        } else {
            let mut resp = Response::new(body.cloned().unwrap_or_default().into());
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
        if let Ok(etag) = HeaderValue::from_str(&self.tag.etag(encoding)) {
            h.insert(header::ETAG, etag);
        }
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(CACHE_STATUS_HEADER, HeaderValue::from_static(cache_status));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
