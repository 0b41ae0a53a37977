//! `GET /api/openapi.json` against the running server: the document's operations are exactly
//! `http::ROUTES`, every listed route answers (never the route-miss 404) with a status the
//! document lists for it, paths that do not exist are neither served nor documented, and the
//! document holds together (every `$ref` resolves, every operation has responses, every path
//! parameter is declared). When `openapi-spec-validator` is installed it checks the document too.

use crate::common;

use std::collections::BTreeSet;

use common::{Fixtures, spawn_app};
use dota_orchestrator::http::ROUTES;
use serde_json::{Value, json};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `(METHOD, template)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths object") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

fn routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

/// Whether the concrete `path` (no query) matches the OpenAPI `template`.
fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// Follows a `$ref` (if any) within `doc`.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.strip_prefix('#').expect("local $ref"))
            .unwrap_or_else(|| panic!("unresolved {r}")),
        None => v,
    }
}

async fn fetch_document(t: &common::TestApp) -> Value {
    let resp = t.get("/api/openapi.json").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    resp.json().await.expect("JSON document")
}

#[actix_rt::test]
async fn document_operations_are_exactly_the_routes() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let documented = operations(&doc);
    let routes = routes();
    assert_eq!(routes.len(), ROUTES.len(), "ROUTES has duplicates");
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(undocumented.is_empty(), "not documented: {undocumented:?}");
    assert!(
        unrouted.is_empty(),
        "documented, not in ROUTES: {unrouted:?}"
    );
    t.shutdown().await;
}

#[actix_rt::test]
async fn every_route_answers_with_a_documented_status() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    for &(method, template) in ROUTES {
        // An SSE stream never ends; tests/events.rs covers it against the document's contract.
        if template == "/api/events" {
            continue;
        }
        let path = template.replace("{id}", "1");
        let url = match template {
            "/api/teams/{id}/matches" => format!("{}{path}?leagueId=1", t.base),
            _ => format!("{}{path}", t.base),
        };
        let req = match method {
            "GET" => t.http.get(&url),
            "POST" => t.http.post(&url),
            other => panic!("unexpected method {other}"),
        };
        let req = match template {
            "/api/cache/invalidate" => req.json(&json!({"items": []})),
            _ => req,
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = resp.text().await.expect("body");
        let what = format!("{method} {path}: {status} {text}");
        let body: Option<Value> = serde_json::from_str(&text).ok();

        assert!(
            !(status == 404 && body.as_ref().is_some_and(|b| b["error"] == "not found")),
            "route miss for {what}"
        );
        if template.starts_with("/api/") && template.contains("{id}") {
            // The fixture dir is empty: jobs are queued, or (if a fetch already ran) failed.
            let failed = body.as_ref().is_some_and(|b| b["status"] == "failed");
            assert!(
                matches!(status, 200 | 202) || (matches!(status, 404 | 502) && failed),
                "{what}"
            );
        } else {
            assert!((200..300).contains(&status), "{what}");
        }

        let op = &doc["paths"][template][method.to_lowercase()];
        let documented = deref(&doc, &op["responses"][status.to_string()]);
        assert!(documented.is_object(), "status not documented: {what}");
        let media = content_type.split(';').next().unwrap_or_default().trim();
        assert!(
            documented["content"].get(media).is_some(),
            "content type {content_type:?} not documented: {what}"
        );
    }
    t.shutdown().await;
}

#[actix_rt::test]
async fn paths_that_do_not_exist_are_neither_served_nor_documented() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    let templates: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    for path in ["/api/nothing", "/api/matches", "/api/players/1"] {
        let resp = t.get(path).await;
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.expect("JSON error");
        assert_eq!(body["error"], "not found", "{path}");
        assert!(
            !templates.iter().any(|tpl| template_matches(tpl, path)),
            "{path} is documented"
        );
    }
    t.shutdown().await;
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                out.push(r);
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Names of the path parameters declared in `params` (a list of parameters or `$ref`s).
fn path_params(doc: &Value, params: &Value) -> BTreeSet<String> {
    params
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| deref(doc, p))
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "path parameter not required: {p}");
                    p["name"].as_str().expect("parameter name").to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn document_is_structurally_sound() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    t.shutdown().await;

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local {r}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
    }

    for (template, item) in doc["paths"].as_object().expect("paths") {
        let in_template: BTreeSet<String> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        let shared = path_params(&doc, &item["parameters"]);
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let responses = op["responses"].as_object();
            assert!(
                responses.is_some_and(|r| !r.is_empty()),
                "{method} {template} has no responses"
            );
            let mut declared = shared.clone();
            declared.extend(path_params(&doc, &op["parameters"]));
            assert_eq!(
                declared, in_template,
                "{method} {template}: declared path parameters differ from the template"
            );
        }
    }

    // The reference validator, when this machine has it.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), doc.to_string()).expect("write document");
    match std::process::Command::new("openapi-spec-validator")
        .arg(file.path())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "openapi-spec-validator: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("could not run openapi-spec-validator: {e}"),
    }
}
