//! How much the store may keep: `--store-max-gb` (evict the least recently requested
//! resources once the store is larger) and `--retention-days` (drop what nobody requested for
//! that long). Neither ever touches the data of a tracked team import. Both are off by
//! default. Fractions are taken (`0.05` GB, `0.5` days), so a small bound can be tried.

use std::time::Duration;

use clap::Args;

/// Bytes in the `GB` of `--store-max-gb` (decimal, as disks are sold).
const BYTES_PER_GB: f64 = 1e9;
/// Milliseconds in a day.
const MS_PER_DAY: f64 = 86_400_000.0;
/// Default period of the store's upkeep pass (bounds, retention, expired shared entries).
pub const DEFAULT_UPKEEP_SECS: u64 = 60;

/// A positive decimal number (a size or a number of days).
fn positive_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a number: {e}"))?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err("must be a number greater than 0".to_string())
    }
}

/// The store's bounds (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Args)]
pub struct StoreBounds {
    /// Largest size of the store in GB (10^9 bytes; fractions allowed): the redb file, or
    /// with `--store nats` the shared data (KV bucket and object store). Past it the least
    /// recently requested resources are evicted, never a tracked import's data.
    #[arg(
        id = "store_max_gb",
        long = "store-max-gb",
        env = "DOTA_STORE_MAX_GB",
        value_name = "GB",
        value_parser = positive_fraction,
    )]
    pub max_gb: Option<f64>,
    /// Days after its last request that a resource is dropped (fractions allowed), unless it
    /// belongs to a tracked import.
    #[arg(
        id = "retention_days",
        long = "retention-days",
        env = "DOTA_RETENTION_DAYS",
        value_name = "DAYS",
        value_parser = positive_fraction,
    )]
    pub retention_days: Option<f64>,
    /// Seconds between two passes of the store's upkeep: bounds, retention and (with
    /// `--store nats`) expired shared entries.
    #[arg(
        id = "store_upkeep_secs",
        long = "store-upkeep-secs",
        env = "DOTA_STORE_UPKEEP_SECS",
        value_name = "SECS",
        default_value_t = DEFAULT_UPKEEP_SECS,
        value_parser = super::values::positive::<u64>,
    )]
    pub upkeep_secs: u64,
}

impl Default for StoreBounds {
    fn default() -> Self {
        super::builtin()
    }
}

impl StoreBounds {
    /// `--store-max-gb` in bytes.
    pub fn max_bytes(&self) -> Option<u64> {
        self.max_gb.map(|gb| (gb * BYTES_PER_GB) as u64)
    }

    /// `--retention-days` in milliseconds.
    pub fn retention_ms(&self) -> Option<i64> {
        self.retention_days.map(|days| (days * MS_PER_DAY) as i64)
    }

    /// The upkeep period.
    pub fn upkeep(&self) -> Duration {
        Duration::from_secs(self.upkeep_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_taken_and_zero_is_not() {
        assert_eq!(positive_fraction("0.05"), Ok(0.05));
        assert!(positive_fraction("0").is_err());
        assert!(positive_fraction("-1").is_err());
        assert!(positive_fraction("NaN").is_err());
        let bounds = StoreBounds {
            max_gb: Some(0.05),
            retention_days: Some(0.5),
            upkeep_secs: 60,
        };
        assert_eq!(bounds.max_bytes(), Some(50_000_000));
        assert_eq!(bounds.retention_ms(), Some(43_200_000));
        assert_eq!(StoreBounds::default().max_bytes(), None);
    }
}
