//! The route table and the one warp filter that serves it. Each [`Route`] pairs a
//! `#[utoipa::path]` description (method, path template, parameters, responses) with the
//! handler that serves it, so one list in `super::table` both routes requests (through a
//! `matchit` router keyed by the same OpenAPI templates) and builds the OpenAPI document.
//! Every matched request is recorded in the HTTP metrics here, once, under its template.
//! Every request is held to the bounds of [`super::limits`] first. A WebSocket upgrade is routed
//! like any request: the route that takes it (`/api/ws`) finds it in [`Request::upgrade`].
//!
//! The whole request, errors included, runs in its `http` span with its request ID
//! ([`super::request_id`]). Bounds, unknown routes and wrong methods are answered here
//! directly, not through warp rejections, so a request that succeeds allocates no rejection.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures::Stream;
use futures::future::BoxFuture;
use smallvec::SmallVec;
use tracing::Instrument;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use warp::Filter;
use warp::filters::ws::Ws;
use warp::http::{HeaderMap, HeaderValue, Method};
use warp::reply::Response;

use super::ApiState;
use super::limits;
use super::reply::ApiError;
use super::request_id;
use crate::metrics as m;

/// What a handler gets of a request, parsed no further than the router needs.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    path: warp::path::FullPath,
    /// Path parameters: where each one's value lies in `path`.
    params: Params,
    /// The query string as key/value pairs (empty without one).
    query: Vec<(String, String)>,
    pub body: bytes::Bytes,
    pub authorization: Option<String>,
    /// Every request header (content negotiation and conditional requests read them).
    pub headers: HeaderMap,
    /// The WebSocket handshake, when the request is one (a GET with the upgrade headers).
    pub upgrade: Option<Ws>,
}

impl Request {
    /// The path parameter `name` (empty when the template has none by that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .names
            .iter()
            .position(|key| &**key == name)
            .and_then(|i| self.params.values.get(i))
            .and_then(|range| self.path.as_str().get(range.clone()))
            .unwrap_or_default()
    }

    /// The query string as key/value pairs (percent-decoded; never fails: undecodable bytes
    /// become U+FFFD, as they always did).
    pub fn query(&self) -> Result<&[(String, String)], ApiError> {
        Ok(&self.query)
    }
}

type Reply = BoxFuture<'static, Result<Response, ApiError>>;

/// An async fn serving one route.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, state: ApiState, req: Request) -> Reply;
}

impl<F, Fut> Handler for F
where
    F: Fn(ApiState, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    fn call(&self, state: ApiState, req: Request) -> Reply {
        Box::pin(self(state, req))
    }
}
/// A route's answer from memory alone (see [`Route::with_fast`]).
pub type Fast = fn(&ApiState, &Request) -> Option<Response>;

/// Schemas an operation refers to, by name.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// One operation: its OpenAPI description and its handler.
pub struct Route {
    pub template: String,
    /// As documented; each also as a warp method.
    pub methods: Vec<HttpMethod>,
    warp_methods: Vec<Method>,
    pub operation: Operation,
    pub schemas: Schemas,
    handler: Arc<dyn Handler>,
    /// Answers a plain GET from memory when it can (see [`Route::with_fast`]).
    fast: Option<Fast>,
    metrics: RouteMetrics,
}

/// Lowest and highest status code a response can have.
const STATUS_CODES: std::ops::RangeInclusive<u16> = 100..=599;

/// A route's request metrics for its first method, made on first use (the recorder is
/// installed by then) and kept, so a request neither builds label strings nor looks its series
/// up in the registry.
#[derive(Default)]
struct RouteMetrics {
    latency: OnceLock<metrics::Histogram>,
    /// Indexed by status code minus 100.
    requests: Vec<OnceLock<metrics::Counter>>,
}

impl RouteMetrics {
    fn new() -> Self {
        Self {
            latency: OnceLock::new(),
            requests: STATUS_CODES.map(|_| OnceLock::new()).collect(),
        }
    }
}

impl Route {
    /// The operation described by the `#[utoipa::path]` item `P`, served by `handler`.
    pub fn new<P>(handler: impl Handler) -> Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences,
    {
        // utoipa-axum's `routes!` gathers an operation's schemas the same way.
        let mut schemas = Vec::new();
        P::schemas(&mut schemas);
        let methods = P::methods();
        Self {
            template: P::path(),
            warp_methods: methods.iter().map(warp_method).collect(),
            methods,
            operation: P::operation(),
            schemas,
            handler: Arc::new(handler),
            fast: None,
            metrics: RouteMetrics::new(),
        }
    }

    /// Lets `fast` answer a GET without a body at once, before any span is made, when the
    /// request's success would log nothing ([`request_id::quiet`]): a poll of ready data then
    /// costs no span, no boxed handler future and no body read. `fast` must not log, and
    /// answers `None` for anything it cannot serve whole (the handler then serves it, errors
    /// included); its answers are counted in the route's metrics like the handler's.
    pub fn with_fast(mut self, fast: Fast) -> Self {
        self.fast = Some(fast);
        self
    }

    /// The answer of [`Route::with_fast`]'s function, when the request qualifies and it has
    /// one.
    fn try_fast(&self, state: &ApiState, req: &Request) -> Option<Response> {
        let fast = self.fast?;
        if req.method != Method::GET
            || req.upgrade.is_some()
            || limits::declares_body(&req.headers)
            || !request_id::quiet()
        {
            return None;
        }
        let started = Instant::now();
        let resp = fast(state, req)?;
        self.observe(&req.method, started, &resp);
        Some(resp)
    }

    /// The methods as HTTP methods (`GET`, `POST`).
    pub fn method_names(&self) -> impl Iterator<Item = &str> {
        self.warp_methods.iter().map(Method::as_str)
    }
}

fn warp_method(m: &HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// The routes by template.
pub struct Router {
    paths: matchit::Router<Template>,
    routes: Vec<Route>,
}

/// One template's routes (one per method) and its parameter names, in the order they appear.
struct Template {
    indices: Vec<usize>,
    names: Arc<[Box<str>]>,
}

impl Template {
    fn new(template: &str, indices: Vec<usize>) -> Self {
        let names = template
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}'))
            .map(|(name, _)| name.trim_start_matches('*').into())
            .collect();
        Self { indices, names }
    }
}

/// A matched request's path parameters: the template's names (shared) and where each value
/// lies in the request's path, so a match allocates nothing (no route has more than two).
#[derive(Debug)]
struct Params {
    names: Arc<[Box<str>]>,
    values: SmallVec<[std::ops::Range<usize>; 2]>,
}

impl Router {
    /// The router of `routes`. Two templates that cannot be told apart are a programming error
    /// (`try_new` fails, and a unit test builds the table with it); here the later one is
    /// left out and logged.
    pub fn new(routes: Vec<Route>) -> Self {
        let mut paths = matchit::Router::new();
        for (template, indices) in by_template(&routes) {
            let entry = Template::new(&template, indices);
            if let Err(error) = paths.insert(template.clone(), entry) {
                tracing::error!(%error, template, "route left out");
            }
        }
        Self { paths, routes }
    }

    pub fn try_new(routes: Vec<Route>) -> Result<Self, matchit::InsertError> {
        let mut paths = matchit::Router::new();
        for (template, indices) in by_template(&routes) {
            let entry = Template::new(&template, indices);
            paths.insert(template, entry)?;
        }
        Ok(Self { paths, routes })
    }

    /// The route for `method` on `path`: 404 when no template matches, 405 when the template
    /// exists for other methods only.
    fn find(&self, method: &Method, path: &str) -> Result<(usize, Params), ApiError> {
        let found = self.paths.at(path).map_err(|_| ApiError::NotFound)?;
        let index = found
            .value
            .indices
            .iter()
            .copied()
            .find(|i| self.routes[*i].warp_methods.contains(method))
            .ok_or(ApiError::MethodNotAllowed)?;
        let params = Params {
            names: found.value.names.clone(),
            values: offsets(path, &found.params),
        };
        Ok((index, params))
    }

    /// Answers one request: its bounds and its route; then from memory when the route can
    /// ([`Route::with_fast`]), with no span made; else its body and its handler, inside the
    /// request's `http` span, which also holds the line logging the status
    /// ([`request_id::answered`]).
    async fn answer<S, B>(
        self: Arc<Self>,
        state: ApiState,
        head: Head,
        body: S,
        id: HeaderValue,
    ) -> Response
    where
        S: Stream<Item = Result<B, warp::Error>>,
        B: Buf,
    {
        // The bounds come first: an over-long target is refused before routing.
        let found = limits::check_head(head.path.as_str(), &head.query, &head.headers)
            .map_err(|over| over.error())
            .and_then(|()| self.find(&head.method, head.path.as_str()));
        let (index, params) = match found {
            Ok(found) => found,
            Err(err) => {
                let span = request_id::span(&head.method, head.path.as_str(), &id);
                return span.in_scope(|| request_id::answered(err.into_response(), id));
            }
        };
        let Head {
            method,
            path,
            query,
            headers,
            upgrade,
        } = head;
        let mut req = Request {
            method,
            path,
            params,
            query,
            body: Bytes::new(),
            authorization: None,
            headers,
            upgrade,
        };
        if let Some(resp) = self.routes[index].try_fast(&state, &req) {
            return request_id::answered(resp, id);
        }
        let span = request_id::span(&req.method, req.path.as_str(), &id);
        let full = async move {
            let resp = match limits::capped_body(&req.headers, body).await {
                Ok(body) => {
                    req.body = body;
                    req.authorization = req
                        .headers
                        .get(warp::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    self.dispatch(state, index, req).await
                }
                Err(over) => over.error().into_response(),
            };
            request_id::answered(resp, id)
        };
        full.instrument(span).await
    }

    async fn dispatch(&self, state: ApiState, index: usize, req: Request) -> Response {
        let route = &self.routes[index];
        let started = Instant::now();
        let method = req.method.clone();
        let resp = route
            .handler
            .call(state, req)
            .await
            .unwrap_or_else(ApiError::into_response);
        // For `/api/events` this is the time to open the stream, not its lifetime.
        route.observe(&method, started, &resp);
        resp
    }
}

/// Where each matched value lies in `path`: each is a slice of it, so its offset is the
/// difference of the two addresses (compared, never dereferenced).
fn offsets(path: &str, params: &matchit::Params<'_, '_>) -> SmallVec<[std::ops::Range<usize>; 2]> {
    let start = path.as_ptr() as usize;
    params
        .iter()
        .map(|(_, value)| {
            let from = (value.as_ptr() as usize).saturating_sub(start);
            from..from + value.len()
        })
        .collect()
}

/// What the router reads of a request before its body.
struct Head {
    method: Method,
    path: warp::path::FullPath,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    upgrade: Option<Ws>,
}

/// Indices of the routes of each template (one per method).
fn by_template(routes: &[Route]) -> BTreeMap<String, Vec<usize>> {
    let mut by_template: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, route) in routes.iter().enumerate() {
        by_template
            .entry(route.template.clone())
            .or_default()
            .push(i);
    }
    by_template
}

impl Route {
    /// Records the request metrics under the route's template (never the concrete path).
    fn observe(&self, method: &Method, started: Instant, resp: &Response) {
        let elapsed = started.elapsed().as_secs_f64();
        let status = resp.status().as_u16();
        let cached = self.warp_methods.first() == Some(method);
        let slot = usize::from(status.saturating_sub(*STATUS_CODES.start()));
        match (cached, self.metrics.requests.get(slot)) {
            (true, Some(counter)) => {
                counter
                    .get_or_init(|| self.counter(method, status))
                    .increment(1);
                self.metrics
                    .latency
                    .get_or_init(|| self.histogram(method))
                    .record(elapsed);
            }
            _ => {
                self.counter(method, status).increment(1);
                self.histogram(method).record(elapsed);
            }
        }
    }

    fn counter(&self, method: &Method, status: u16) -> metrics::Counter {
        let (route, method) = (self.template.clone(), method.as_str().to_string());
        metrics::counter!(m::HTTP_REQUESTS, "route" => route, "method" => method, "status" => status.to_string())
    }

    fn histogram(&self, method: &Method) -> metrics::Histogram {
        let (route, method) = (self.template.clone(), method.as_str().to_string());
        metrics::histogram!(m::HTTP_LATENCY, "route" => route, "method" => method)
    }
}

/// The WebSocket handshake of a request that asks for one; `None` for any other request.
/// A request without an `Upgrade` header is answered `None` at once: warp's `ws()` would
/// reject it, and each rejection is an allocation on every poll.
fn upgrade() -> impl Filter<Extract = (Option<Ws>,), Error = Infallible> + Clone {
    let no_upgrade =
        warp::header::optional::<Present>("upgrade").and_then(|upgrade: Option<Present>| {
            // `not_found` is the one rejection warp makes without allocating.
            futures::future::ready(match upgrade {
                None => Ok(None),
                Some(_) => Err(warp::reject::not_found()),
            })
        });
    no_upgrade
        .or(warp::ws().map(Some))
        .unify()
        .or(warp::any().map(|| None))
        .unify()
}

/// A header that is there, whatever its value.
struct Present;

impl std::str::FromStr for Present {
    type Err = Infallible;

    fn from_str(_: &str) -> Result<Self, Infallible> {
        Ok(Present)
    }
}

/// Serves `router`, with JSON errors for everything that matches no route. Each request runs in
/// its `http` span and gets its `X-Request-Id` ([`request_id`]).
pub fn serve(
    router: Router,
    state: ApiState,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let router = Arc::new(router);
    // As pairs: `query::raw()` rejects a request without a query (an allocation per poll);
    // this never rejects (undecodable bytes become U+FFFD).
    let query = warp::query::<Vec<(String, String)>>();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(upgrade())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: Vec<(String, String)>,
                  headers: HeaderMap,
                  body,
                  upgrade: Option<Ws>| {
                let id = request_id::of(&headers);
                let head = Head {
                    method,
                    path,
                    query,
                    headers,
                    upgrade,
                };
                // Boxed: the request's whole state would otherwise be moved by value through
                // warp's and hyper's futures on every poll.
                Box::pin(router.clone().answer(state.clone(), head, body, id))
            },
        )
        // Only a warp filter above can still reject (none does in practice): JSON errors too.
        .recover(|rejection: warp::Rejection| async move {
            let resp = super::reply::recover(rejection, limits::MAX_BODY_BYTES).await?;
            Ok::<_, Infallible>(request_id::answered(
                resp,
                request_id::of(&HeaderMap::new()),
            ))
        })
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templates_parameter_names_are_read_in_order() {
        let t = Template::new("/api/teams/{id}/matches/{league}", vec![0]);
        assert_eq!(&*t.names, &["id".into(), "league".into()] as &[Box<str>]);
        assert!(Template::new("/api/store", vec![0]).names.is_empty());
    }

    #[test]
    fn a_matched_parameter_is_read_back_from_the_path() {
        let mut paths = matchit::Router::new();
        let template = "/api/webhooks/{id}/deliveries";
        paths
            .insert(template, Template::new(template, vec![0]))
            .unwrap();
        let path = "/api/webhooks/wh_42/deliveries";
        let found = paths.at(path).unwrap();
        let values = offsets(path, &found.params);
        assert_eq!(values.len(), 1);
        assert_eq!(&path[values[0].clone()], "wh_42");
    }
}
