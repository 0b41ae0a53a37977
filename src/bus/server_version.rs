//! The version of a nats-server, parsed once from what the server says about itself (the
//! `version` of its INFO, as async-nats's `server_info()` reports it, or the line of
//! `nats-server --version`), and the minimums each way of running the service needs.
//! [`super::server_bin`] uses it to pick a binary; the shared store checks the server it
//! joined against [`MIN_SHARED_STORE`].

use std::fmt;
use std::str::FromStr;

/// A nats-server release, `major.minor.patch`. A pre-release suffix (`2.12.0-RC.3`) is
/// dropped: the minimums below name minor releases, which a release candidate already has
/// the features of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// The oldest server the embedded single-node mode runs: Debian's 2.9 has everything a single
/// node needs (JetStream work queues, dedup, durable pull consumers, nak with delay, KV).
pub const MIN_EMBEDDED: ServerVersion = ServerVersion::new(2, 9, 0);

/// The oldest server the shared store (`serve --store nats`) accepts. Below it, failures are
/// silent, not errors:
/// - before 2.9.21 a cluster loses KV compare-and-swap updates that every client was told had
///   succeeded (nats-server #4320), which breaks claims;
/// - before 2.11 the per-key TTL header (`Nats-TTL`) is ignored, so claim leases never expire;
/// - before 2.12 the counter header (`Nats-Incr`) is ignored, so the shared rate budget counts
///   nothing.
pub const MIN_SHARED_STORE: ServerVersion = ServerVersion::new(2, 12, 0);

/// Text that does not hold a `major.minor.patch` version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a nats-server version (expected major.minor.patch, e.g. 2.12.0)")]
pub struct ServerVersionError {
    /// The text as given, cut to [`ServerVersionError::MAX_TEXT`] characters.
    pub text: String,
}

impl ServerVersionError {
    /// Longest text an error repeats: the output of an unknown binary may be long.
    pub const MAX_TEXT: usize = 80;

    fn new(text: &str) -> Self {
        Self {
            text: text.chars().take(Self::MAX_TEXT).collect(),
        }
    }
}

impl ServerVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// True when this is `major.minor.0` or later.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        *self >= Self::new(major, minor, 0)
    }
}

impl FromStr for ServerVersion {
    type Err = ServerVersionError;

    /// Accepts `2.15.1`, `v2.9.10`, `2.12.0-RC.3` (and `+build` metadata), and the
    /// `nats-server: v2.9.10` line of `nats-server --version`, with surrounding whitespace.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let version = trimmed
            .strip_prefix("nats-server:")
            .map_or(trimmed, str::trim_start);
        let version = version.strip_prefix('v').unwrap_or(version);
        let core = version
            .split_once(['-', '+'])
            .map_or(version, |(core, _suffix)| core);
        let mut parts = core.split('.').map(|part| {
            // `u32::from_str` accepts a leading `+`; a version part is digits only.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u32>().ok()
        });
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) => {
                Ok(Self::new(major, minor, patch))
            }
            _ => Err(ServerVersionError::new(text)),
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ServerVersion {
        text.parse().unwrap()
    }

    #[test]
    fn parses_every_form_the_server_reports() {
        assert_eq!(v("2.15.1"), ServerVersion::new(2, 15, 1));
        assert_eq!(v("v2.9.10"), ServerVersion::new(2, 9, 10));
        assert_eq!(v("2.12.0-RC.3"), ServerVersion::new(2, 12, 0));
        assert_eq!(v("2.11.4+binary"), ServerVersion::new(2, 11, 4));
        assert_eq!(v("nats-server: v2.9.10\n"), ServerVersion::new(2, 9, 10));
        assert_eq!(v("  nats-server:v2.15.1 "), ServerVersion::new(2, 15, 1));
    }

    #[test]
    fn refuses_text_that_is_not_major_minor_patch() {
        for text in [
            "",
            "2.12",
            "2.12.0.1",
            "2..1",
            "v",
            "x2.12.0",
            "2.+12.0",
            "2.12.x",
            "nats-server: version unknown",
            "99999999999.0.0",
        ] {
            let err = text.parse::<ServerVersion>().unwrap_err();
            assert!(
                err.to_string().contains("not a nats-server version"),
                "{text}"
            );
        }
    }

    #[test]
    fn an_error_repeats_at_most_a_bounded_prefix_of_the_text() {
        let long = "x".repeat(10_000);
        let err = long.parse::<ServerVersion>().unwrap_err();
        assert_eq!(err.text.len(), ServerVersionError::MAX_TEXT);
    }

    #[test]
    fn orders_numerically_not_as_text() {
        assert!(v("2.10.0") > v("2.9.21"));
        assert!(v("2.9.21") > v("2.9.10"));
        assert!(v("3.0.0") > v("2.15.1"));
        assert_eq!(v("v2.12.0"), v("2.12.0-RC.3"));
    }

    #[test]
    fn at_least_compares_major_and_minor() {
        assert!(v("2.12.0").at_least(2, 12));
        assert!(v("2.12.0-RC.3").at_least(2, 12));
        assert!(v("2.15.1").at_least(2, 12));
        assert!(v("3.0.0").at_least(2, 12));
        assert!(!v("2.11.9").at_least(2, 12));
        assert!(!v("2.9.10").at_least(2, 12));
        assert!(v("2.9.10").at_least(2, 9));
    }

    #[test]
    fn the_minimums_are_the_documented_releases() {
        assert_eq!(MIN_EMBEDDED.to_string(), "2.9.0");
        assert_eq!(MIN_SHARED_STORE.to_string(), "2.12.0");
        // Debian's server runs the embedded mode and not the shared store.
        assert!(v("2.9.10") >= MIN_EMBEDDED);
        assert!(v("2.9.10") < MIN_SHARED_STORE);
        assert!(v("2.15.1") >= MIN_SHARED_STORE);
    }
}
