//! The API's error type and reply helpers: one place maps every error to a status and a JSON
//! body `{"error": "..."}`, including warp's own rejections (unknown route → 404, wrong method
//! → 405), so no client ever sees an HTML or empty error.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::bodies::ErrorBody;

/// A source error kept behind an [`ApiError::Internal`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a handler can fail with, by the status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request body is over `limits::MAX_BODY_BYTES`.
    #[error("request body over {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// The request target is over `limits::MAX_URI_BYTES`.
    #[error("request target over {limit} bytes")]
    UriTooLong { limit: usize },
    /// The request headers are over `limits::MAX_HEADER_BYTES`.
    #[error("request headers over {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("{0}")]
    Unavailable(String),
    /// The client's body says only `what` failed; the source (which may name files, keys or
    /// upstream URLs) goes to the log, never into the reply.
    #[error("internal error: {what}")]
    Internal {
        what: &'static str,
        #[source]
        source: BoxError,
    },
}

impl ApiError {
    /// An internal error: `what` failed because of `source`.
    pub fn internal(what: &'static str, source: impl Into<BoxError>) -> Self {
        ApiError::Internal {
            what,
            source: source.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn into_response(self) -> Response {
        match &self {
            ApiError::Internal { source, .. } => {
                tracing::error!(error = %self, source = %source, "request failed");
            }
            ApiError::Unavailable(_) => tracing::error!(error = %self, "request failed"),
            _ => {}
        }
        json(
            self.status(),
            &ErrorBody {
                error: self.to_string(),
            },
        )
    }
}

impl From<crate::encoding::CompressError> for ApiError {
    fn from(err: crate::encoding::CompressError) -> Self {
        ApiError::internal("a stored body could not be decompressed", err)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal("the store failed", e)
    }
}

impl From<crate::read::queue_snapshot::StatusUnavailable> for ApiError {
    fn from(e: crate::read::queue_snapshot::StatusUnavailable) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::Unavailable(format!("cache keeper unavailable: {e}"))
    }
}

impl From<crate::actors::store_port::StorePortError> for ApiError {
    fn from(e: crate::actors::store_port::StorePortError) -> Self {
        use crate::actors::store_port::StorePortError as E;
        match e {
            E::Keeper(e) => e.into(),
            E::Store(e) => e.into(),
            E::Shared(_) | E::Bus(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

/// A JSON reply with `status`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => raw_json(status, bytes),
        Err(e) => ApiError::internal("could not encode the reply", e).into_response(),
    }
}

/// A reply whose body is already JSON (stored upstream data is served as stored).
pub fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    typed(status, "application/json", body)
}

/// A reply of `content_type`.
pub fn typed(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<bytes::Bytes>,
) -> Response {
    let mut resp = Response::new(body.into().into());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A rejection no other branch of [`recover`] knows.
#[derive(Debug, thiserror::Error)]
#[error("unhandled rejection: {0}")]
struct Unhandled(String);

/// Maps warp's rejections (no route matched, wrong method, bad body) to JSON errors; a body
/// over the cap is reported with `body_limit`, the cap the caller applied.
pub async fn recover(rejection: warp::Rejection, body_limit: u64) -> Result<Response, Infallible> {
    let err = if rejection.is_not_found() {
        ApiError::NotFound
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::BadRequest(format!("invalid JSON body: {e}"))
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::BadRequest("invalid query string".to_string())
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge { limit: body_limit }
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::BadRequest("expected a JSON body".to_string())
    } else {
        ApiError::internal(
            "the request was rejected",
            Unhandled(format!("{rejection:?}")),
        )
    };
    Ok(err.into_response())
}
