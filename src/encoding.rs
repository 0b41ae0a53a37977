//! A stored body's other representations, made once when it is stored: its entity tag (a
//! content hash, so an unchanged refetch keeps the tag) and its gzip and brotli encodings, so
//! that no request ever compresses. CPU-heavy (a 300 KB match takes milliseconds): callers run
//! [`Encoded::of`] on a blocking pool, never on an async executor thread.

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

/// A body's tag and compressed forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub tag: ContentTag,
    pub gzip: Vec<u8>,
    pub br: Vec<u8>,
}

/// A body and the forms of it that can be sent: what the hot cache holds and a stored copy
/// reads back as (the HTTP layer picks one per request, see `http::representation`).
pub struct Representation<'a> {
    pub tag: ContentTag,
    pub identity: &'a bytes::Bytes,
    pub gzip: Option<&'a bytes::Bytes>,
    pub br: Option<&'a bytes::Bytes>,
}

/// Compression failed (only an allocation failure or a bug can make in-memory compression fail).
#[derive(Debug, thiserror::Error)]
#[error("could not compress a body: {0}")]
pub struct CompressError(#[from] std::io::Error);

impl Encoded {
    /// Tags and compresses `body`. Blocking CPU work (see the module docs).
    pub fn of(body: &[u8]) -> Result<Self, CompressError> {
        Ok(Self {
            tag: ContentTag::of(body),
            gzip: gzip(body)?,
            br: brotli(body)?,
        })
    }
}

/// `body` gzip-compressed at the default level (6).
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
    fn both_encodings_decode_to_the_body() {
        let body = br#"{"match_id": 1, "players": [1, 2, 3]}"#.repeat(200);
        let encoded = Encoded::of(&body).unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(encoded.gzip.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
        let mut plain = Vec::new();
        brotli::Decompressor::new(encoded.br.as_slice(), 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
        assert!(encoded.gzip.len() < body.len() / 10);
        assert!(encoded.br.len() < body.len() / 10);
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
