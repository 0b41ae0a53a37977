//! The webhook endpoints API (`/api/webhooks...`) and the event contract
//! (`/api/asyncapi.json`). Every webhook call needs the admin token when one is configured.
//! Bodies are parsed once into `webhooks::model` types; what an endpoint is and how it is
//! delivered to lives in [`crate::webhooks`]. Listed in [`crate::http::table`].

use warp::http::StatusCode;
use warp::reply::Response;

use crate::http::ApiState;
use crate::http::bodies::ErrorBody;
use crate::http::openapi::responses::{BadRequest, Unauthorized, Unavailable};
use crate::http::reply::{ApiError, json};
use crate::http::router::Request;
use crate::webhooks::WebhookError;
use crate::webhooks::model::{
    CreateWebhook, DeliveryList, WebhookCreated, WebhookList, WebhookView,
};

/// Largest body of `POST /api/webhooks` (a URL and a few event names).
pub const MAX_WEBHOOK_BODY: usize = 16 * 1024;

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::Invalid(reason) => ApiError::BadRequest(reason),
            WebhookError::NotFound => ApiError::NotFound,
            WebhookError::Backend(reason) => ApiError::Unavailable(reason),
        }
    }
}

/// The webhook side, or 503 where it could not start (see `app::start::events`).
fn hooks(state: &ApiState) -> Result<&crate::webhooks::Webhooks, ApiError> {
    state.webhooks.as_ref().ok_or_else(|| {
        ApiError::Unavailable("webhooks are off on this instance: its NATS server cannot hold them (nats-server 2.12 or newer needed)".to_string())
    })
}

fn not_found(err: ApiError) -> Result<Response, ApiError> {
    match err {
        ApiError::NotFound => Ok(json(
            StatusCode::NOT_FOUND,
            &ErrorBody {
                error: "no such webhook endpoint".to_string(),
            },
        )),
        other => Err(other),
    }
}

/// `GET /api/asyncapi.json`.
#[utoipa::path(
    get,
    path = "/api/asyncapi.json",
    tag = "events",
    summary = "The AsyncAPI 3.0 document of the NATS events",
    responses((status = 200, description = "Channels, messages, CloudEvents headers and payload schemas of every ready/failed event.", body = Object))
)]
pub async fn get_asyncapi(_: ApiState, _: Request) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &crate::events::asyncapi::document()))
}

#[utoipa::path(
    post,
    path = "/api/webhooks",
    tag = "webhooks",
    summary = "Create a webhook endpoint",
    description = "Events are POSTed to `url`, signed (Standard Webhooks v1) with the secret \
        in the answer, which is shown only here. URLs resolving to loopback, private or \
        link-local addresses are refused unless `--webhook-allow-private`.",
    request_body = CreateWebhook,
    security((), ("adminToken" = [])),
    responses(
        (status = 201, description = "Created; keep the secret.", body = WebhookCreated),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub async fn post_webhook(state: ApiState, req: Request) -> Result<Response, ApiError> {
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    if req.body.len() > MAX_WEBHOOK_BODY {
        return Err(ApiError::BadRequest(format!(
            "a webhook body is at most {MAX_WEBHOOK_BODY} bytes"
        )));
    }
    let body: CreateWebhook = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::BadRequest(format!("invalid webhook body: {e}")))?;
    let created = hooks(&state)?.create(body).await?;
    tracing::info!(endpoint = %created.id, "webhook endpoint created");
    Ok(json(StatusCode::CREATED, &created))
}

#[utoipa::path(
    get,
    path = "/api/webhooks",
    tag = "webhooks",
    summary = "List webhook endpoints",
    security((), ("adminToken" = [])),
    responses((status = 200, description = "Every endpoint (no secrets).", body = WebhookList), Unauthorized, Unavailable)
)]
pub async fn list_webhooks(state: ApiState, req: Request) -> Result<Response, ApiError> {
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    let webhooks: Vec<WebhookView> = hooks(&state)?.list().iter().map(|r| r.view()).collect();
    Ok(json(StatusCode::OK, &WebhookList { webhooks }))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/{id}",
    tag = "webhooks",
    summary = "One webhook endpoint, with whether (and why) it is disabled",
    params(("id" = String, Path, description = "Endpoint ID (`ep_...`).")),
    security((), ("adminToken" = [])),
    responses(
        (status = 200, description = "The endpoint (no secret).", body = WebhookView),
        (status = 404, description = "No such endpoint.", body = ErrorBody),
        Unauthorized, Unavailable
    )
)]
pub async fn get_webhook(state: ApiState, req: Request) -> Result<Response, ApiError> {
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    match hooks(&state)?.get(req.param("id")).await {
        Ok(record) => Ok(json(StatusCode::OK, &record.view())),
        Err(err) => not_found(err.into()),
    }
}

#[utoipa::path(
    delete,
    path = "/api/webhooks/{id}",
    tag = "webhooks",
    summary = "Delete a webhook endpoint and its queued deliveries",
    params(("id" = String, Path, description = "Endpoint ID (`ep_...`).")),
    security((), ("adminToken" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such endpoint.", body = ErrorBody),
        Unauthorized, Unavailable
    )
)]
pub async fn delete_webhook(state: ApiState, req: Request) -> Result<Response, ApiError> {
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    match hooks(&state)?.delete(req.param("id")).await {
        Ok(()) => Ok(warp::http::Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Default::default())
            .unwrap_or_default()),
        Err(err) => not_found(err.into()),
    }
}

#[utoipa::path(
    post,
    path = "/api/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    summary = "Give an endpoint a new secret",
    description = "Deliveries are signed with both the new and the previous secret for 24 hours.",
    params(("id" = String, Path, description = "Endpoint ID (`ep_...`).")),
    security((), ("adminToken" = [])),
    responses(
        (status = 200, description = "The new secret, shown only here.", body = WebhookCreated),
        (status = 404, description = "No such endpoint.", body = ErrorBody),
        Unauthorized, Unavailable
    )
)]
pub async fn rotate_webhook_secret(state: ApiState, req: Request) -> Result<Response, ApiError> {
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    match hooks(&state)?.rotate(req.param("id")).await {
        Ok(created) => Ok(json(StatusCode::OK, &created)),
        Err(err) => not_found(err.into()),
    }
}

#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "The last 100 delivery attempts of an endpoint, newest first",
    params(("id" = String, Path, description = "Endpoint ID (`ep_...`).")),
    security((), ("adminToken" = [])),
    responses(
        (status = 200, description = "Attempts with status and duration.", body = DeliveryList),
        (status = 404, description = "No such endpoint.", body = ErrorBody),
        Unauthorized, Unavailable
    )
)]
pub async fn get_webhook_deliveries(state: ApiState, req: Request) -> Result<Response, ApiError> {
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    match hooks(&state)?.deliveries(req.param("id")).await {
        Ok(deliveries) => Ok(json(StatusCode::OK, &DeliveryList { deliveries })),
        Err(err) => not_found(err.into()),
    }
}
