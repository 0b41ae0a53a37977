//! Actors, one per file. Fetchers ask [`rate_limiter::RateLimiter`] for a grant before every
//! upstream call and report each response back to it; its budget rules live in [`rate_window`].

pub mod rate_limiter;
pub mod rate_window;
