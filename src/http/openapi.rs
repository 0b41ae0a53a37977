//! The OpenAPI 3.1 description of the HTTP API, served by `GET /api/openapi.json`
//! (`super::routes::openapi`). Nothing in it is written twice: the operations come from the
//! `#[utoipa::path]` items of the route table ([`super::table`], the same list that routes
//! requests), their schemas from the Rust types the handlers serialise (`ToSchema`), and this
//! module adds only the document's info, tags and security scheme. `tests/openapi.rs` checks
//! it against the running server.

use std::sync::LazyLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, OpenApi as Document};
use utoipa::{Modify, OpenApi};

use super::bodies::{Envelope, ErrorBody, FailedBody, TeamSummary};
use super::router::Route;
use crate::bus::wire::{FailedEvent, ReadyEvent};
use crate::domain::ResourceKind;
use responses::{HeadersTooLarge, MethodNotAllowed, NotFound, PayloadTooLarge, UriTooLong};

pub mod responses;
pub mod schemas;

/// Adds the bearer-token scheme that `security(("adminToken" = []))` refers to.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, doc: &mut Document) {
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description =
            Some("The configured admin token. Only checked when one is configured.".to_string());
        doc.components
            .get_or_insert_with(|| ComponentsBuilder::new().build())
            .add_security_scheme("adminToken", SecurityScheme::Http(scheme));
    }
}

/// What the route table does not say: info, tags, the security scheme, the route-miss answers,
/// and the schemas utoipa does not gather from operations: those that only shared responses
/// (`responses.rs`), parameters (`Kind`) or the event stream's description refer to. A missing
/// one is an unresolved `$ref`, which `tests/openapi.rs` reports.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dota-orchestrator",
        description = "Keeps a Dota 2 dashboard fed: resources are fetched in the background and \
            served from the cache. POST is idempotent and answers `ready` or 202 `queued` (poll \
            the `Location`); GET serves the stored JSON. Every error is JSON \
            `{\"error\": \"...\"}`: an unknown path answers 404 `{\"error\": \"not found\"}` and \
            a known path with another method 405."
    ),
    tags(
        (name = "resources", description = "Matches, players, player stats, leagues."),
        (name = "teams", description = "Team imports, one league at a time."),
        (name = "admin", description = "Cache administration."),
        (name = "events", description = "Server-sent events and the AsyncAPI document of the NATS events."),
        (name = "webhooks", description = "Signed webhook endpoints (Standard Webhooks v1)."),
        (name = "operations", description = "Health, readiness, status, metrics.")
    ),
    components(
        schemas(
            ErrorBody,
            Envelope,
            FailedBody,
            TeamSummary,
            ReadyEvent,
            FailedEvent,
            ResourceKind
        ),
        responses(NotFound, MethodNotAllowed, PayloadTooLarge, UriTooLong, HeadersTooLarge)
    ),
    modifiers(&AdminToken)
)]
struct ApiDoc;

/// The document of `routes`.
pub fn build(routes: &[Route]) -> Document {
    let mut doc = ApiDoc::openapi();
    let components = doc
        .components
        .get_or_insert_with(|| ComponentsBuilder::new().build());
    for route in routes {
        doc.paths.add_path_operation(
            &route.template,
            route.methods.clone(),
            route.operation.clone(),
        );
        for (name, schema) in &route.schemas {
            components
                .schemas
                .entry(name.clone())
                .or_insert_with(|| schema.clone());
        }
    }
    doc
}

/// The document, built on first use from the route table.
static DOCUMENT: LazyLock<Document> = LazyLock::new(|| build(&super::table()));

/// The OpenAPI document.
pub fn document() -> &'static Document {
    &DOCUMENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_once() {
        let doc = serde_json::to_value(document()).unwrap();
        let table = super::super::route_list();
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, table.len(), "{doc:#}");
        for (method, template) in table {
            let op = &doc["paths"][&template][method.to_lowercase()];
            assert!(op["responses"].is_object(), "{method} {template}");
        }
    }
}
