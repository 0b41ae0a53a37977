//! Upstream access: the rate-limited HTTP [`client`], the [`budget`] it waits on (every rate
//! budget rule: calendar windows, the local budget, the one shared by instances over JetStream
//! counters, the reserve gate) and the [`in_flight`] limits on calls and jobs per service, the
//! [`opendota`] calls (a match read through its [`match_head`]), the [`steam`] and [`stratz`] league history calls and the pure
//! [`league_history`] they fill, the pure Dotabuff page parser [`dotabuff_page`], the retry [`error`]
//! classification, [`off_thread`], where body parsing and scraping run, and the [`recorder`]
//! of accepted answers (`--record-dir`) with the file [`layout`] it shares with the fixture
//! upstream.

pub mod budget;
pub mod client;
pub mod dotabuff;
pub mod dotabuff_page;
pub mod error;
pub mod in_flight;
pub mod layout;
pub mod league_history;
pub mod match_head;
pub mod off_thread;
pub mod opendota;
pub mod recorder;
pub mod steam;
pub mod stratz;
