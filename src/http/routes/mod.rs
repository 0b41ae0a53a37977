//! The handlers, one file per resource family. Each handler is listed once in `super::table`
//! with its `#[utoipa::path]` description; what several families share (the bodies, replies,
//! content negotiation) is plumbing one level up, and what they read besides the store is the
//! read model (`crate::read`).
//!
//! - [`resources`]: matches, players, player stats and leagues (POST/GET), with
//!   [`degraded`] (answers while redb writes fail) and [`replies`] (`ready`, `queued`, `failed`).
//! - [`teams`]: team imports; [`schedule`]: their tracking and refresh schedule.
//! - [`invalidate`]: cache invalidation.
//! - [`status`]: queue status, health, readiness, metrics; [`store`]: the store's size and
//!   evictions; [`page`]: the status page.
//! - [`events`]: the Server-Sent Event streams; [`ws`]: the WebSocket.
//! - [`openapi`]: the OpenAPI document.

pub mod degraded;
pub mod events;
pub mod invalidate;
pub mod openapi;
pub mod page;
pub mod replies;
pub mod resources;
pub mod schedule;
pub mod status;
pub mod store;
pub mod teams;
pub mod webhooks;
pub mod ws;

/// Which of the idempotent pair a request is: POST makes sure a resource is stored, GET serves
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Post,
    Get,
}
