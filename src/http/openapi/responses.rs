//! Responses several operations share, as `IntoResponses` types that `#[utoipa::path]`
//! attributes list by name. Each carries the body type the handlers really send.

use utoipa::{IntoResponses, ToResponse};

use crate::http::bodies::{Envelope, ErrorBody, FailedBody, TeamSummary};

/// The fetch is queued (or already running): poll `Location` after `Retry-After` seconds.
#[derive(IntoResponses)]
#[response(
    status = 202,
    headers(
        ("Location" = String, description = "The GET URL to poll."),
        ("Retry-After" = u32, description = "Seconds to wait before polling.")
    )
)]
pub struct Queued(pub Envelope);

/// The import is queued (or already running): poll `Location` after `Retry-After` seconds.
#[derive(IntoResponses)]
#[response(
    status = 202,
    headers(
        ("Location" = String, description = "The GET URL to poll."),
        ("Retry-After" = u32, description = "Seconds to wait before polling.")
    )
)]
pub struct TeamQueued(pub TeamSummary);

/// Invalid ID, query parameter or body.
#[derive(IntoResponses)]
#[response(status = 400)]
pub struct BadRequest(pub ErrorBody);

/// Admin token missing or wrong (only checked when one is configured).
#[derive(IntoResponses)]
#[response(status = 401)]
pub struct Unauthorized(pub ErrorBody);

/// The last fetch failed: 404 when the upstream has no such resource, else 502. A POST (or
/// `force`) retries it.
#[derive(IntoResponses)]
pub enum Failed {
    /// The upstream has no such resource.
    #[response(status = 404)]
    NotFound(FailedBody),
    /// The last fetch failed.
    #[response(status = 502)]
    Upstream(FailedBody),
}

/// The store failed.
#[derive(IntoResponses)]
#[response(status = 500)]
pub struct Internal(pub ErrorBody);

/// A component (actor, JetStream) is unavailable.
#[derive(IntoResponses)]
#[response(status = 503)]
pub struct Unavailable(pub ErrorBody);

/// No such route: `{"error": "not found"}`. Listed under `components.responses`, since it
/// belongs to no operation.
#[derive(ToResponse)]
pub struct NotFound(pub ErrorBody);

/// The route exists, the method does not. Listed under `components.responses`, since it
/// belongs to no operation.
#[derive(ToResponse)]
pub struct MethodNotAllowed(pub ErrorBody);
