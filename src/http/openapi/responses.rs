//! Responses several operations share, as `IntoResponses` types that `#[utoipa::path]`
//! attributes list by name. Each carries the body type the handlers really send.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToResponse, ToSchema};

use crate::http::bodies::{ErrorBody, FailedBody};

/// 202 with `T` as the body: the work is queued (or already running); poll `Location` after
/// `Retry-After` seconds. Written by hand rather than derived so that one type serves every
/// body (`Queued<Envelope>`, `Queued<TeamSummary>`).
pub struct Queued<T>(PhantomData<T>);

impl<T: ToSchema> IntoResponses for Queued<T> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let header = |description: &str, kind: Type| {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(kind))
                .description(Some(description))
                .build()
        };
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(T::name())))
            .build();
        let response = ResponseBuilder::new()
            .description("The work is queued (or already running).")
            .header("Location", header("The GET URL to poll.", Type::String))
            .header(
                "Retry-After",
                header("Seconds to wait before polling.", Type::Integer),
            )
            .content("application/json", body)
            .build();
        BTreeMap::from([("202".to_string(), response.into())])
    }
}

/// 304 with no body: the client's copy (named by `If-None-Match`) is current.
#[derive(IntoResponses)]
#[response(status = 304, description = "Not modified: the copy named by `If-None-Match` is current.", headers(
    ("ETag" = String, description = "The entity tag of the current content."),
    ("Vary" = String, description = "`Accept-Encoding`.")
))]
pub struct NotModified;

/// Invalid ID, query parameter or body.
#[derive(IntoResponses)]
#[response(status = 400)]
pub struct BadRequest(pub ErrorBody);

/// Admin token missing or wrong (only checked when one is configured).
#[derive(IntoResponses)]
#[response(status = 401)]
pub struct Unauthorized(pub ErrorBody);

/// The last fetch failed: 404 when the upstream has no such resource, else 502. A POST (or
/// `force`) retries it; a GET does once the failure TTL has passed (`retryAt`).
#[derive(IntoResponses)]
pub enum Failed {
    /// The upstream has no such resource (yet).
    #[response(status = 404, headers(
        ("Retry-After" = u64, description = "Seconds until the failure TTL ends.")
    ))]
    NotFound(FailedBody),
    /// The last fetch failed.
    #[response(status = 502, headers(
        ("Retry-After" = u64, description = "Seconds until the failure TTL ends.")
    ))]
    Upstream(FailedBody),
}

/// The team import is not tracked.
#[derive(IntoResponses)]
#[response(status = 404)]
pub struct NotTracked(pub ErrorBody);

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

/// The request body is over the cap (`{"error": ...}`), declared or streamed. Listed under
/// `components.responses`, since any route can answer it.
#[derive(ToResponse)]
pub struct PayloadTooLarge(pub ErrorBody);

/// The request target (path and query) is over the cap. Listed under `components.responses`.
#[derive(ToResponse)]
pub struct UriTooLong(pub ErrorBody);

/// The request headers together are over the cap. Listed under `components.responses`.
#[derive(ToResponse)]
pub struct HeadersTooLarge(pub ErrorBody);
