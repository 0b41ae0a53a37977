//! A stored body's one kept form: its entity tag (a content hash, so an unchanged refetch keeps
//! the tag) and its gzip encoding, made once when it is stored. The gzip bytes are the stored
//! truth (redb and the shared store keep nothing else); a client that accepts gzip (every
//! browser, `curl --compressed`) gets them as they are, and the plain bytes are decompressed
//! only where a request or a reader needs them. Compressing is CPU-heavy (a 300 KB match
//! takes milliseconds): callers run [`Encoded::of`] on a blocking pool, never on an async
//! executor thread. Brotli is made only for rendered team views, once per view.

use std::io::Write;

use serde::{Deserialize, Serialize};

/// Brotli quality. Measured on a 284 KB parsed match: quality 5 takes 6 ms for 53 KB, 9 takes
/// 26 ms for 50 KB, 11 takes 390 ms for 40 KB. At 1,200 OpenDota calls a minute a store must
/// stay cheap on 2 cores, so 5: a few percent larger than 9 for a quarter of the CPU.
const BROTLI_QUALITY: u32 = 5;
/// Brotli window (log2 bytes); 22 is the encoder's default.
const BROTLI_WINDOW: u32 = 22;

/// A content hash of a body, the base of its entity tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentTag(pub u64);

impl ContentTag {
    /// The tag of `body`.
    pub fn of(body: &[u8]) -> Self {
        Self(xxhash_rust::xxh3::xxh3_64(body))
    }

    /// The quoted entity tag of this content in `encoding`. Each encoding gets its own strong
    /// tag (they are different byte sequences); [`ContentTag::matches`] accepts any of them.
    pub fn etag(self, encoding: Encoding) -> String {
        format!("\"{:016x}{}\"", self.0, encoding.tag_suffix())
    }

    /// Whether an `If-None-Match` value names this content (in any encoding, weak or strong,
    /// or `*`): the client's copy is current, so the answer is a 304.
    pub fn matches(self, if_none_match: &str) -> bool {
        let hex = format!("{:016x}", self.0);
        if_none_match.split(',').map(str::trim).any(|tag| {
            if tag == "*" {
                return true;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
                return false;
            };
            let base = inner
                .strip_suffix(Encoding::Gzip.tag_suffix())
                .or_else(|| inner.strip_suffix(Encoding::Brotli.tag_suffix()))
                .unwrap_or(inner);
            base == hex
        })
    }
}

/// A content coding the API can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The `Content-Encoding` value (none for identity).
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    fn tag_suffix(self) -> &'static str {
        match self {
            Encoding::Identity => "",
            Encoding::Gzip => "-gz",
            Encoding::Brotli => "-br",
        }
    }
}

/// A body as it is stored: its tag and its gzip bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub tag: ContentTag,
    pub gzip: Vec<u8>,
    /// Length of the plain body.
    pub plain_len: u64,
}

/// A body and the forms of it that can be sent: what the hot cache holds and a stored copy
/// reads back as (the HTTP layer picks one per request, see `http::representation`). The
/// plain bytes may be absent: they are then decompressed from `gzip` when a request needs them.
pub struct Representation<'a> {
    pub tag: ContentTag,
    pub identity: Option<&'a bytes::Bytes>,
    pub gzip: Option<&'a bytes::Bytes>,
    pub br: Option<&'a bytes::Bytes>,
}

impl Representation<'_> {
    /// The plain bytes: as held, else decompressed from the gzip form (CPU work in proportion
    /// to the body: callers holding large bodies make them beforehand, see `read::hot`).
    pub fn plain(&self) -> Result<bytes::Bytes, CompressError> {
        match (self.identity, self.gzip) {
            (Some(identity), _) => Ok(identity.clone()),
            (None, Some(gz)) => gunzip(gz).map(bytes::Bytes::from),
            (None, None) => Ok(bytes::Bytes::new()),
        }
    }
}

/// Compression or decompression failed: an allocation failure, a bug, or stored bytes that are
/// not gzip (a corrupt record).
#[derive(Debug, thiserror::Error)]
#[error("could not compress or decompress a body: {0}")]
pub struct CompressError(#[from] std::io::Error);

impl Encoded {
    /// Tags and compresses `body`. Blocking CPU work (see the module docs).
    pub fn of(body: &[u8]) -> Result<Self, CompressError> {
        Ok(Self {
            tag: ContentTag::of(body),
            gzip: gzip(body)?,
            plain_len: body.len() as u64,
        })
    }

    /// The plain body back.
    pub fn plain(&self) -> Result<Vec<u8>, CompressError> {
        gunzip(&self.gzip)
    }
}

/// Bodies up to this size are decompressed in place on an async thread (tens of
/// microseconds); larger ones on the blocking pool.
pub const INLINE_GUNZIP_BYTES: usize = 16 * 1024;

/// The plain bytes of a gzip stream.
pub fn gunzip(gz: &[u8]) -> Result<Vec<u8>, CompressError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(gz.len() * 5);
    flate2::read::GzDecoder::new(gz).read_to_end(&mut out)?;
    Ok(out)
}

/// `body` gzip-compressed at the default level (6), by zlib-rs (flate2's `zlib-rs` backend: 2.6x
/// faster than its default miniz_oxide on a 249 KB parsed match, 8 ms against 21 ms, for 1.7%
/// more bytes, the same as zlib's own level 6; BENCHMARKS.md "Scale and cost").
pub fn gzip(body: &[u8]) -> Result<Vec<u8>, CompressError> {
    let mut out = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    out.write_all(body)?;
    Ok(out.finish()?)
}

/// `body` brotli-compressed at [`BROTLI_QUALITY`].
pub fn brotli(body: &[u8]) -> Result<Vec<u8>, CompressError> {
    let mut out = Vec::with_capacity(body.len() / 4);
    {
        let mut writer =
            brotli::CompressorWriter::new(&mut out, 64 * 1024, BROTLI_QUALITY, BROTLI_WINDOW);
        writer.write_all(body)?;
        writer.flush()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_stored_form_decodes_to_the_body() {
        let body = br#"{"match_id": 1, "players": [1, 2, 3]}"#.repeat(200);
        let encoded = Encoded::of(&body).unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(encoded.gzip.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
        assert_eq!(encoded.plain().unwrap(), body);
        assert!(encoded.gzip.len() < body.len() / 10);
        let br = brotli(&body).unwrap();
        let mut plain = Vec::new();
        brotli::Decompressor::new(br.as_slice(), 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
        assert!(gunzip(b"not gzip").is_err());
    }

    #[test]
    fn tags_follow_the_content_and_match_in_any_encoding() {
        let a = ContentTag::of(b"{\"a\":1}");
        let b = ContentTag::of(b"{\"a\":2}");
        assert_ne!(a, b);
        assert_eq!(a, ContentTag::of(b"{\"a\":1}"));
        for encoding in [Encoding::Identity, Encoding::Gzip, Encoding::Brotli] {
            let etag = a.etag(encoding);
            assert!(a.matches(&etag), "{etag}");
            assert!(a.matches(&format!("W/{etag}")));
            assert!(a.matches(&format!("\"nope\", {etag}")));
            assert!(!b.matches(&etag));
        }
        assert!(a.matches("*"));
        assert!(!a.matches(""));
        assert!(!a.matches("garbage"));
    }
}
