//! Upstream clients.

pub mod dotabuff_page;
