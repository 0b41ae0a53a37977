//! Upstream access: the rate-limited HTTP [`client`], the [`opendota`] calls, the pure
//! Dotabuff page parser [`dotabuff_page`], and the retry [`error`] classification.

pub mod client;
pub mod dotabuff;
pub mod dotabuff_page;
pub mod error;
pub mod opendota;
