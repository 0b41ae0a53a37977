//! `GET /api/openapi.json`: the OpenAPI document (`crate::http::openapi`), built once from the
//! route table.

use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::ApiState;
use crate::http::openapi::document;
use crate::http::reply::{self, ApiError};
use crate::http::router::Request;

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object))
)]
pub async fn get_openapi(_: ApiState, _: Request) -> Result<Response, ApiError> {
    Ok(reply::json(StatusCode::OK, document()))
}
