//! Parsers for setting values, shared by flags, environment variables and the TOML file (the
//! file's values go through the same parsers, see `file.rs`). Each error says what is wrong
//! with the value; clap and [`super::ConfigError`] add which setting it was.

use std::str::FromStr;
use std::time::Duration;

/// A number greater than zero: limits, worker counts and attempts of 0 would stall the service.
pub fn positive<T: FromStr + PartialOrd + Default>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let value: T = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a number: {e}"))?;
    if value > T::default() {
        Ok(value)
    } else {
        Err("must be greater than 0".to_string())
    }
}

/// A positive number of seconds (TTLs: 0 would make every stored copy stale at once).
pub fn secs(text: &str) -> Result<Duration, String> {
    positive::<u64>(text).map(Duration::from_secs)
}

/// A number of milliseconds, 0 allowed (a retry base of 0 retries at once).
pub fn millis(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("{text:?} is not a number of milliseconds: {e}"))
}

/// A positive number of milliseconds.
pub fn positive_millis(text: &str) -> Result<Duration, String> {
    positive::<u64>(text).map(Duration::from_millis)
}

/// An http(s) base URL, without a trailing `/` (endpoint paths are appended with one).
pub fn http_url(text: &str) -> Result<String, String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.trim_end_matches('/').to_string())
    } else {
        Err(format!("{text:?} is not an http(s) URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_garbage_are_not_positive() {
        assert_eq!(positive::<u32>("7"), Ok(7));
        assert!(positive::<u32>("0").is_err());
        assert!(positive::<u32>("-1").is_err());
        assert!(positive::<usize>("many").is_err());
    }

    #[test]
    fn durations_read_their_unit() {
        assert_eq!(secs("90"), Ok(Duration::from_secs(90)));
        assert!(secs("0").is_err());
        assert_eq!(millis("0"), Ok(Duration::ZERO));
        assert_eq!(positive_millis("1500"), Ok(Duration::from_millis(1500)));
        assert!(positive_millis("0").is_err());
    }

    #[test]
    fn urls_must_be_http_and_lose_their_trailing_slash() {
        assert_eq!(
            http_url("https://x.test/api/"),
            Ok("https://x.test/api".into())
        );
        assert!(http_url("ftp://x").is_err());
        assert!(http_url("x.test").is_err());
    }
}
