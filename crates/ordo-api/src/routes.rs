//! The one route table (method, path, permission, documentation) and the handlers. The router
//! and the OpenAPI document are both built from [`ROUTES`], so neither can miss a route, and the
//! permission a route needs is declared here and nowhere else.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request as HttpRequest, State as Extract};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use ordo_domain::access::Permission;
use ordo_domain::audit::{AuditEntity, AuditTrail};
use ordo_domain::catalog::{Channel, Item, Location};
use ordo_domain::inventory::MoveCommand;
use ordo_domain::orders::book::OrderCommand;
use ordo_domain::orders::book::{OrderSetting, ShipmentRequest};
use ordo_domain::orders::lifecycle::{Actor, HoldCode, OrderStatus};
use ordo_domain::orders::model::{Order, OrderKey};
use ordo_domain::{Command, State};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Caller, sha256_hex};
use crate::problem::{Code, Problem};
use crate::{DEFAULT_PAGE, MAX_PAGE, Service, command_problem};

/// A JSON Schema for a request part, written into `#/components/schemas` by the generator.
pub type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// One route: what it is, who may call it, what it takes.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// axum path syntax (`{name}` parameters), which is also OpenAPI's.
    pub path: &'static str,
    /// `None`: open to anyone (health, readiness, metrics, the document itself).
    pub permission: Option<Permission>,
    pub summary: &'static str,
    /// The query string's type: each of its fields is one query parameter.
    pub query: Option<SchemaOf>,
    /// The JSON body's type; the handler parses exactly this type.
    pub body: Option<SchemaOf>,
    /// Honours `Idempotency-Key`.
    pub idempotent: bool,
}

const fn read(path: &'static str, summary: &'static str, query: Option<SchemaOf>) -> Route {
    Route { method: "GET", path, permission: Some(Permission::Read), summary, query, body: None, idempotent: false }
}

const fn write(path: &'static str, permission: Permission, summary: &'static str, body: SchemaOf) -> Route {
    Route {
        method: "POST",
        path,
        permission: Some(permission),
        summary,
        query: None,
        body: Some(body),
        idempotent: true,
    }
}

const fn open(path: &'static str, summary: &'static str) -> Route {
    Route { method: "GET", path, permission: None, summary, query: None, body: None, idempotent: false }
}

const fn open_post(path: &'static str, summary: &'static str, body: SchemaOf) -> Route {
    Route { method: "POST", path, permission: None, summary, query: None, body: Some(body), idempotent: false }
}

pub const ROUTES: &[Route] = &[
    open("/healthz", "Liveness: the process answers."),
    open("/readyz", "Readiness: the engine answers a query."),
    open("/metrics", "Prometheus metrics."),
    open("/api/openapi.json", "This document."),
    open_post(
        "/api/v1/login",
        "Sign in a person → session cookie (HttpOnly, SameSite=Strict) and a CSRF token to send as X-CSRF-Token on changes.",
        schema_of::<Login>,
    ),
    open_post("/api/v1/logout", "End the session of the cookie sent.", schema_of::<Empty>),
    read("/api/v1/items", "Items (master data), by SKU.", Some(schema_of::<ItemsQuery>)),
    read("/api/v1/locations", "Locations.", None),
    read("/api/v1/channels", "Channels.", None),
    read("/api/v1/stock", "Stock positions per SKU and location (the ledger).", Some(schema_of::<StockQuery>)),
    read("/api/v1/ats", "Available-to-sell per SKU and channel.", Some(schema_of::<AtsQuery>)),
    read("/api/v1/orders", "Orders by channel and id.", Some(schema_of::<OrdersQuery>)),
    read("/api/v1/orders/{channel}/{order_id}", "One order: status, holds, lines, sourcing decision, history.", None),
    read("/api/v1/exceptions", "Held orders in working order (promise risk, value, channel priority, age).", None),
    write(
        "/api/v1/orders",
        Permission::CaptureOrders,
        "Capture a canonical order (README, \"Orders\").",
        schema_of::<Order>,
    ),
    write("/api/v1/orders/{channel}/{order_id}/hold", Permission::ManageOrders, "Hold an order.", schema_of::<Reason>),
    write(
        "/api/v1/orders/{channel}/{order_id}/release",
        Permission::ManageOrders,
        "Release every hold (an override).",
        schema_of::<Reason>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/cancel",
        Permission::ManageOrders,
        "Cancel an order.",
        schema_of::<Reason>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/lines/cancel",
        Permission::ManageOrders,
        "Cancel one order line (every part of a bundle line).",
        schema_of::<LineCancel>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/payment",
        Permission::CaptureOrders,
        "The channel's payment status.",
        schema_of::<Payment>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/dispatch",
        Permission::Fulfil,
        "Release an allocated order to the floor (`ship_partial` cancels the backordered rest).",
        schema_of::<Dispatch>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/pick",
        Permission::Fulfil,
        "The pick list is issued.",
        schema_of::<Empty>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/pack",
        Permission::Fulfil,
        "Picked and packed (committed → picked).",
        schema_of::<Empty>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/ship",
        Permission::Fulfil,
        "A shipment left (no lines: all picked at that location).",
        schema_of::<ShipmentRequest>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/deliver",
        Permission::Fulfil,
        "The carrier delivered a shipment.",
        schema_of::<Delivery>,
    ),
    write(
        "/api/v1/orders/{channel}/{order_id}/close",
        Permission::ManageOrders,
        "Close a shipped or delivered order.",
        schema_of::<Reason>,
    ),
    write(
        "/api/v1/movements",
        Permission::MoveStock,
        "Record a stock movement (README \"Movements\"); above the approval thresholds it becomes an approval request (202).",
        schema_of::<MoveCommand>,
    ),
    write(
        "/api/v1/items",
        Permission::MasterData,
        "Define or change an item; item master changes need approval (202).",
        schema_of::<Item>,
    ),
    write("/api/v1/locations", Permission::MasterData, "Define or change a location.", schema_of::<Location>),
    write("/api/v1/channels", Permission::MasterData, "Define or change a channel.", schema_of::<Channel>),
    write(
        "/api/v1/order-settings",
        Permission::MasterData,
        "One order setting (listing, price, shipping methods, customer, tax, node, policy, rules); prices and tax mappings need approval (202).",
        schema_of::<OrderSetting>,
    ),
    read(
        "/api/v1/audit",
        "The audit trail of one entity from the journal: every change with its time, actor, role, source, request id and what it changed.",
        Some(schema_of::<AuditQuery>),
    ),
    read(
        "/api/v1/approvals",
        "Approval requests (pending first), with what each would do and why it needs a second person.",
        Some(schema_of::<ApprovalQuery>),
    ),
    write(
        "/api/v1/approvals/{id}/approve",
        Permission::Approve,
        "Approve another user's request; its change takes effect now.",
        schema_of::<Reason>,
    ),
    write("/api/v1/approvals/{id}/reject", Permission::Approve, "Reject another user's request.", schema_of::<Reason>),
    open_post(
        "/webhooks/shopify/{channel}",
        "A Shopify webhook for channel CHANNEL (X-Shopify-Topic orders/create, orders/updated, orders/cancelled, refunds/create): verified by X-Shopify-Hmac-Sha256 over the raw body before it is read, deduplicated on X-Shopify-Event-Id (else X-Shopify-Webhook-Id) in the same commit as its effect; orders captured (and cancelled) as the canonical order, refunds recorded as an RMA already refunded by the channel.",
        schema_of::<serde_json::Map<String, Value>>,
    ),
    read("/api/v1/returns", "Return authorizations (RMAs): status, lines, grades, refund.", None),
    read("/api/v1/returns/{rma}", "One RMA.", None),
    write(
        "/api/v1/returns",
        Permission::ManageOrders,
        "Authorize a return of shipped units under the channel's return policy.",
        schema_of::<ReturnAuthorize>,
    ),
    write(
        "/api/v1/returns/{rma}/receive",
        Permission::Fulfil,
        "The parcel is back: its units go into quality control.",
        schema_of::<ReturnReceive>,
    ),
    write(
        "/api/v1/returns/{rma}/inspect",
        Permission::Fulfil,
        "Grade every line (A–D); a write-off above the approval policy waits for a second person (202).",
        schema_of::<ReturnInspect>,
    ),
    write(
        "/api/v1/returns/{rma}/refund",
        Permission::ManageOrders,
        "Refund an inspected RMA; above the policy's threshold it becomes an approval request (202).",
        schema_of::<Empty>,
    ),
    write(
        "/api/v1/returns/{rma}/exchange",
        Permission::ManageOrders,
        "Settle an inspected RMA with goods: each listed line's returned units ship again as SKU (the same, or another the channel lists at the same price) in replacement order REPLACEMENT_ORDER_ID, priced at what was paid; the RMA's other lines are refunded (above the policy's threshold, 202 for approval).",
        schema_of::<ReturnExchange>,
    ),
];

const ORDER_ACTION: &str = "/api/v1/orders/{channel}/{order_id}/";
const ORDER_ACTIONS: [&str; 11] =
    ["hold", "release", "cancel", "lines/cancel", "payment", "dispatch", "pick", "pack", "ship", "deliver", "close"];

/// Builds the router from [`ROUTES`]; a route without a handler is a startup panic (and a test).
pub(crate) fn build(service: Arc<Service>) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        let handler = handler(route).unwrap_or_else(|| panic!("no handler for {} {}", route.method, route.path));
        let layered = handler.layer(middleware::from_fn_with_state((service.clone(), *route), guard));
        router = router.route(route.path, layered);
    }
    router.fallback(|| async { Problem::new(Code::NotFound, "no such route") }).with_state(service)
}

fn handler(route: &Route) -> Option<MethodRouter<Arc<Service>>> {
    Some(match (route.method, route.path) {
        ("GET", "/healthz") => get(|| async { "ok\n" }),
        ("GET", "/readyz") => get(readyz),
        ("GET", "/metrics") => get(metrics),
        ("GET", "/api/openapi.json") => get(|| async { Json(crate::openapi::document()) }),
        ("GET", "/api/v1/items") => get(items),
        ("GET", "/api/v1/locations") => get(locations),
        ("GET", "/api/v1/channels") => get(channels),
        ("GET", "/api/v1/stock") => get(stock),
        ("GET", "/api/v1/ats") => get(ats),
        ("GET", "/api/v1/orders") => get(orders),
        ("GET", "/api/v1/orders/{channel}/{order_id}") => get(order),
        ("GET", "/api/v1/exceptions") => get(exceptions),
        ("POST", "/api/v1/orders") => post(capture),
        ("POST", "/api/v1/login") => post(login),
        ("POST", "/api/v1/logout") => post(logout),
        ("POST", path) if path.starts_with(ORDER_ACTION) => {
            let action = &path[ORDER_ACTION.len()..];
            if !ORDER_ACTIONS.contains(&action) {
                return None;
            }
            post(move |s, c, p, h, b| order_action(s, c, p, h, b, action))
        }
        ("POST", "/api/v1/movements") => post(movement),
        ("GET", "/api/v1/approvals") => get(approvals),
        ("GET", "/api/v1/audit") => get(audit),
        ("POST", "/api/v1/items") => post(|s, c, h, b| master_data(s, c, h, b, "/api/v1/items")),
        ("POST", "/api/v1/locations") => post(|s, c, h, b| master_data(s, c, h, b, "/api/v1/locations")),
        ("POST", "/api/v1/channels") => post(|s, c, h, b| master_data(s, c, h, b, "/api/v1/channels")),
        ("POST", "/api/v1/order-settings") => post(|s, c, h, b| master_data(s, c, h, b, "/api/v1/order-settings")),
        ("POST", "/api/v1/approvals/{id}/approve") => post(|s, c, p, h, b| approval(s, c, p, h, b, true)),
        ("POST", "/api/v1/approvals/{id}/reject") => post(|s, c, p, h, b| approval(s, c, p, h, b, false)),
        ("POST", "/webhooks/shopify/{channel}") => post(shopify_webhook),
        ("GET", "/api/v1/returns") => get(returns_list),
        ("GET", "/api/v1/returns/{rma}") => get(return_one),
        ("POST", "/api/v1/returns") => post(return_authorize),
        ("POST", "/api/v1/returns/{rma}/receive") => post(|s, c, p, h, b| return_step(s, c, p, h, b, "receive")),
        ("POST", "/api/v1/returns/{rma}/inspect") => post(|s, c, p, h, b| return_step(s, c, p, h, b, "inspect")),
        ("POST", "/api/v1/returns/{rma}/refund") => post(|s, c, p, h, b| return_step(s, c, p, h, b, "refund")),
        ("POST", "/api/v1/returns/{rma}/exchange") => post(|s, c, p, h, b| return_step(s, c, p, h, b, "exchange")),
        _ => return None,
    })
}

/// Authentication and the route's permission, then metrics.
async fn guard(
    Extract((service, route)): Extract<(Arc<Service>, Route)>,
    mut request: HttpRequest,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let response = match authorize(&service, &route, &method, request.headers()).await {
        Ok(caller) => {
            if let Some(caller) = caller {
                request.extensions_mut().insert(caller);
            }
            next.run(request).await
        }
        Err(p) => p.into_response(),
    };
    service.metrics.observe_request(method.as_str(), route.path, response.status().as_u16(), started.elapsed());
    response
}

async fn authorize(
    service: &Service,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Caller>, Problem> {
    let Some(permission) = route.permission else { return Ok(None) };
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).and_then(crate::session::session_cookie);
    let caller = match (bearer, cookie) {
        (Some(token), _) => service
            .caller(sha256_hex(token.trim().as_bytes()))
            .await
            .ok_or_else(|| Problem::new(Code::Unauthenticated, "the token is unknown, expired or revoked"))?,
        (None, Some(id)) => {
            let csrf = headers.get(crate::session::CSRF_HEADER).and_then(|v| v.to_str().ok());
            match service.sessions.caller(id, csrf, method != Method::GET) {
                Ok(c) => c,
                Err(crate::session::SessionError::Unknown) => {
                    return Err(Problem::new(
                        Code::Unauthenticated,
                        "the session is unknown or expired; sign in again",
                    ));
                }
                Err(crate::session::SessionError::Csrf) => {
                    return Err(Problem::new(Code::CsrfFailed, "send the session's CSRF token as X-CSRF-Token"));
                }
            }
        }
        (None, None) => {
            return Err(Problem::new(
                Code::Unauthenticated,
                "send an API token as `Authorization: Bearer TOKEN`, or sign in at /api/v1/login",
            ));
        }
    };
    if !caller.may(permission) {
        return Err(Problem::new(
            Code::Forbidden,
            format!(
                "role {} may not {} (route {} {})",
                caller.role.as_str(),
                permission.as_str(),
                route.method,
                route.path
            ),
        ));
    }
    Ok(Some(caller))
}

// ----- reads ------------------------------------------------------------------------------------

async fn readyz(Extract(service): Extract<Arc<Service>>) -> Response {
    let seq = service.read(|s| s.last_seq()).await;
    Json(json!({"ready": true, "journal_seq": seq})).into_response()
}

async fn metrics(Extract(service): Extract<Arc<Service>>) -> Response {
    let seq = service.read(|s| s.last_seq()).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], service.metrics.render(seq)).into_response()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ItemsQuery {
    /// page size (default 100)
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OrdersQuery {
    /// only orders in this status
    state: Option<OrderStatus>,
    /// only orders held with this code
    hold: Option<HoldCode>,
    /// page size (default 100)
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
}

fn page_size(limit: Option<usize>) -> Result<usize, Problem> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(Problem::new(Code::InvalidParameter, format!("limit must be 1–{MAX_PAGE}, got {n}"))),
    }
}

/// A page of `rows` keyed by `key`, after `cursor`, with the cursor of the next page.
fn page(rows: Vec<(String, Value)>, cursor: Option<&str>, limit: usize) -> Value {
    let mut after: Vec<(String, Value)> =
        rows.into_iter().filter(|(k, _)| cursor.is_none_or(|c| k.as_str() > c)).collect();
    let more = after.len() > limit;
    after.truncate(limit);
    let next = if more { after.last().map(|(k, _)| k.clone()) } else { None };
    json!({"items": after.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "next_cursor": next})
}

fn query_or_problem<T: serde::de::DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, Problem> {
    q.map(|Query(t)| t).map_err(|e| Problem::new(Code::InvalidParameter, e.body_text()))
}

async fn items(
    Extract(service): Extract<Arc<Service>>,
    q: Result<Query<ItemsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query_or_problem(q)?;
    let limit = page_size(q.limit)?;
    let rows = service
        .read(|s| {
            s.items()
                .iter()
                .map(|i| (i.sku.to_string(), serde_json::to_value(i).expect("items serialize")))
                .collect::<Vec<_>>()
        })
        .await;
    let mut rows = rows;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Json(page(rows, q.cursor.as_deref(), limit)))
}

async fn locations(Extract(service): Extract<Arc<Service>>) -> Json<Value> {
    Json(service.read(|s| serde_json::to_value(s.locations()).expect("serialize")).await)
}

async fn channels(Extract(service): Extract<Arc<Service>>) -> Json<Value> {
    Json(service.read(|s| serde_json::to_value(s.channels()).expect("serialize")).await)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StockQuery {
    /// one SKU
    sku: Option<String>,
    /// one location
    location: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AtsQuery {
    /// one SKU
    sku: Option<String>,
    /// one channel
    channel: Option<String>,
}

async fn stock(
    Extract(service): Extract<Arc<Service>>,
    q: Result<Query<StockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query_or_problem(q)?;
    let rows = service
        .read(move |s| {
            s.stock_rows()
                .into_iter()
                .filter(|r| q.sku.as_deref().is_none_or(|x| r.sku.as_str() == x))
                .filter(|r| q.location.as_deref().is_none_or(|x| r.location.as_str() == x))
                .map(|r| {
                    let b = r.buckets;
                    json!({
                        "sku": r.sku, "location": r.location,
                        "available": b.get(ordo_domain::inventory::StockState::Available),
                        "committed": b.get(ordo_domain::inventory::StockState::Committed),
                        "picked": b.get(ordo_domain::inventory::StockState::Picked),
                        "reserved": b.get(ordo_domain::inventory::StockState::Reserved),
                        "quality_control": b.get(ordo_domain::inventory::StockState::QualityControl),
                        "damaged": b.get(ordo_domain::inventory::StockState::Damaged),
                        "in_transit": b.in_transit_inbound, "incoming": b.incoming,
                    })
                })
                .collect::<Vec<_>>()
        })
        .await;
    Ok(Json(Value::Array(rows)))
}

async fn ats(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    q: Result<Query<AtsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query_or_problem(q)?;
    let caller = caller(request_caller);
    let rows = service
        .read(move |s| {
            let mut out = Vec::new();
            for item in s.items().iter().filter(|i| q.sku.as_deref().is_none_or(|x| i.sku.as_str() == x)) {
                let wanted = |c: &&ordo_domain::catalog::Channel| {
                    caller.sees(&c.code) && q.channel.as_deref().is_none_or(|x| c.code.as_str() == x)
                };
                for ch in s.channels().iter().filter(wanted) {
                    out.push(
                        json!({"sku": item.sku, "channel": ch.code, "ats": s.ats(&item.sku, &ch.code).unwrap_or(0)}),
                    );
                }
            }
            out
        })
        .await;
    Ok(Json(Value::Array(rows)))
}

fn order_json(s: &State, key: &OrderKey) -> Option<Value> {
    s.orders().get(key).map(|r| serde_json::to_value(r).expect("orders serialize"))
}

async fn orders(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    q: Result<Query<OrdersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query_or_problem(q)?;
    let caller = caller(request_caller);
    let limit = page_size(q.limit)?;
    let (status, hold) = (q.state, q.hold);
    let cursor = q.cursor.clone();
    let value = service
        .read(move |s| {
            // Keys are "CHANNEL/ID", the book's own order, so the cursor is a plain string bound.
            let rows: Vec<(String, Value)> = s
                .orders()
                .all()
                .filter(|r| caller.sees(&r.key().channel))
                .filter(|r| status.is_none_or(|st| r.status == st))
                .filter(|r| hold.is_none_or(|h| r.holds.contains(&h)))
                .map(|r| (r.key().to_string(), r))
                .filter(|(k, _)| cursor.as_deref().is_none_or(|c| k.as_str() > c))
                .take(limit + 1)
                .map(|(k, r)| (k, serde_json::to_value(r).expect("orders serialize")))
                .collect();
            page(rows, None, limit)
        })
        .await;
    Ok(Json(value))
}

/// The order a path names, if the caller may see it: an order of a channel outside the caller's
/// scope is answered exactly as an order that does not exist.
fn key_of(caller: &Caller, channel: &str, order_id: &str) -> Result<OrderKey, Problem> {
    let channel = ordo_types::Code::new(channel).map_err(|e| Problem::new(Code::NotFound, format!("no order: {e}")))?;
    let key = OrderKey { channel, channel_order_id: order_id.to_owned() };
    if !caller.sees(&key.channel) {
        return Err(Problem::new(Code::NotFound, format!("unknown order {key}")));
    }
    Ok(key)
}

async fn order(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    Path((channel, order_id)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let key = key_of(&caller(request_caller), &channel, &order_id)?;
    let shown = key.to_string();
    service
        .read(move |s| order_json(s, &key))
        .await
        .map(Json)
        .ok_or_else(|| Problem::new(Code::NotFound, format!("unknown order {shown}")))
}

async fn exceptions(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
) -> Json<Value> {
    let now = service.now();
    let caller = caller(request_caller);
    Json(
        service
            .read(move |s| {
                let mut queue = ordo_domain::orders::book::exceptions(s, now);
                queue.retain(|e| caller.sees(&e.key().channel));
                serde_json::to_value(queue).expect("serialize")
            })
            .await,
    )
}

// ----- writes -----------------------------------------------------------------------------------

fn caller(request_caller: Option<axum::Extension<Caller>>) -> Caller {
    request_caller.map(|axum::Extension(c)| c).expect("the guard puts the caller on every protected route")
}

/// What identifies a request for idempotency: a repeat must match all of it.
struct RequestText<'a> {
    method: &'a str,
    path: &'a str,
    body: &'a [u8],
}

/// Runs `command` for `caller`, honouring an `Idempotency-Key`; answers `201` with the
/// resource as the domain's [`ordo_domain::response_of`] renders it — the same bytes for a repeat.
async fn submit(
    service: &Service,
    caller: &Caller,
    headers: &HeaderMap,
    request: RequestText<'_>,
    command: Command,
) -> Result<Response, Problem> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str().ok().map(str::trim).filter(|k| !k.is_empty() && k.len() <= 255) {
            Some(k) => Some(k.to_owned()),
            None => {
                return Err(Problem::new(Code::InvalidParameter, "Idempotency-Key must be 1–255 visible characters"));
            }
        },
    };
    let request_id = match headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::trim) {
        Some(id) if !id.is_empty() && id.len() <= 128 => id.to_owned(),
        _ => crate::auth::random_hex(8),
    };
    let origin = ordo_domain::access::Origin {
        actor: caller.user.clone(),
        role: Some(caller.role),
        source: ordo_domain::access::Source::Api,
        request_id,
    };
    let attributed = |command: Command| Command::Attributed { origin: origin.clone(), command: Box::new(command) };
    let Some(key) = key else {
        let (_, (status, body)) = service.write(attributed(command)).await.map_err(command_problem)?;
        return Ok(replay(status, body));
    };
    let RequestText { method, path, body } = request;
    let mut fingerprint = Vec::with_capacity(body.len() + path.len() + 8);
    fingerprint.extend_from_slice(method.as_bytes());
    fingerprint.push(b' ');
    fingerprint.extend_from_slice(path.as_bytes());
    fingerprint.push(b'\n');
    fingerprint.extend_from_slice(body);
    let hash = sha256_hex(&fingerprint);
    let slot = (caller.user.clone(), key.clone());
    if !service.in_flight.lock().expect("in-flight lock").insert(slot.clone()) {
        return Err(Problem::new(
            Code::IdempotencyKeyInFlight,
            format!("a request with idempotency key {key:?} is still being processed"),
        ));
    }
    struct Release<'a>(&'a Service, (String, String));
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.in_flight.lock().expect("in-flight lock").remove(&self.1);
        }
    }
    let _release = Release(service, slot);
    let wrapped =
        Command::Idempotent { user: caller.user.clone(), key, request_sha256_hex: hash, command: Box::new(command) };
    match service.write(attributed(wrapped)).await {
        Ok((_, (status, body))) => Ok(replay(status, body)),
        Err(ordo_engine::CommandError::Rejected(ordo_domain::Rejection::AlreadyAnswered { status, body, .. })) => {
            Ok(replay(status, body))
        }
        Err(e) => Err(command_problem(e)),
    }
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Parses a request body, which is always a JSON object (serde alone would also take a struct
/// written as an array). A number written with a zero fraction (`3.0`) is the integer it equals:
/// JSON does not tell them apart and some clients only write floats.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Problem::new(Code::InvalidBody, "the body must be a JSON object"));
    }
    // The common case parses once, plainly; only a refused body is read again to name the field.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let first = match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut value: Value = serde_json::from_slice(body).map_err(|_| Problem::invalid_json(&first))?;
    if !integral_floats_to_integers(&mut value) {
        return Err(Problem::invalid_json(&first));
    }
    serde_path_to_error::deserialize(value).map_err(|e| Problem::invalid_json(&e))
}

/// Rewrites every float that is exactly an integer; whether any was.
fn integral_floats_to_integers(value: &mut Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().expect("an f64");
            // Beyond 2^53 a float no longer stands for one integer: refuse rather than round.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            let integer = (f.fract() == 0.0 && f.abs() <= EXACT).then(|| serde_json::Number::from(f as i64));
            integer.map(|i| *n = i).is_some()
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, v| integral_floats_to_integers(v) | any),
        Value::Object(fields) => fields.values_mut().fold(false, |any, v| integral_floats_to_integers(v) | any),
        _ => false,
    }
}

async fn capture(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let caller = caller(request_caller);
    let order: Order = parse(&body)?;
    if !caller.sees(&order.channel) {
        return Err(Problem::new(
            Code::Forbidden,
            format!("this token captures orders of its own channels only, not {}", order.channel),
        ));
    }
    let command = Command::Order(OrderCommand::Capture(Box::new(order)));
    let request = RequestText { method: method.as_str(), path: "/api/v1/orders", body: &body };
    submit(&service, &caller, &headers, request, command).await
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

async fn login(Extract(service): Extract<Arc<Service>>, body: Bytes) -> Result<Response, Problem> {
    let Login { user, password } = parse(&body)?;
    if let Some(wait) = service.sessions.throttled(&user) {
        let mut response =
            Problem::new(Code::TooManyRequests, format!("too many failed sign-ins for {user}; try again in {wait} s"))
                .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return Ok(response);
    }
    let name = user.clone();
    let found = service.read(move |s| s.access().user(&name).map(|u| (u.role, u.password_hash.clone()))).await;
    // Hash even for an unknown user, so timing does not tell which names exist.
    let (role, phc) = found.clone().unwrap_or((ordo_domain::access::Role::Viewer, String::new()));
    let verified = tokio::task::spawn_blocking(move || {
        if phc.is_empty() {
            let _ = crate::auth::hash_password(&password);
            false
        } else {
            crate::auth::verify_password(&password, &phc)
        }
    })
    .await
    .unwrap_or(false);
    if !verified || found.is_none() {
        service.sessions.failed(&user);
        return Err(Problem::new(Code::Unauthenticated, "unknown user or wrong password"));
    }
    let (id, csrf) =
        service.sessions.open(Caller { user: user.clone(), role, token_id: "session".into(), channels: None });
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        crate::session::SESSION_COOKIE,
        crate::session::SESSION_IDLE.as_secs()
    );
    let body = json!({"user": user, "role": role.as_str(), "csrf_token": csrf});
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn logout(Extract(service): Extract<Arc<Service>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(problem) = parse::<Empty>(&body) {
        return problem.into_response();
    }
    let closed = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::session::session_cookie)
        .is_some_and(|id| service.sessions.close(id));
    let cookie = format!("{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0", crate::session::SESSION_COOKIE);
    ([(header::SET_COOKIE, cookie)], Json(json!({"signed_out": closed}))).into_response()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Reason {
    /// why, for the order history and the audit trail
    #[schemars(regex(pattern = r"\S"))]
    reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LineCancel {
    line_id: String,
    #[schemars(regex(pattern = r"\S"))]
    reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Payment {
    status: ordo_domain::orders::model::PaymentStatus,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Dispatch {
    #[serde(default)]
    ship_partial: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Delivery {
    shipment_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn order_action(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    Path((channel, order_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    action: &'static str,
) -> Result<Response, Problem> {
    let caller = caller(request_caller);
    let key = key_of(&caller, &channel, &order_id)?;
    let actor = Actor::User(caller.user.clone());
    let command = match action {
        "hold" => OrderCommand::Hold { key, actor, reason: parse::<Reason>(&body)?.reason },
        "release" => OrderCommand::Release { key, actor, reason: parse::<Reason>(&body)?.reason },
        "cancel" => OrderCommand::Cancel { key, actor, reason: parse::<Reason>(&body)?.reason },
        "lines/cancel" => {
            let LineCancel { line_id, reason } = parse(&body)?;
            OrderCommand::CancelLine { key, line_id, actor, reason }
        }
        "payment" => {
            let Payment { status } = parse(&body)?;
            OrderCommand::UpdatePayment { key, status, actor }
        }
        "dispatch" => OrderCommand::Dispatch { key, actor, ship_partial: parse::<Dispatch>(&body)?.ship_partial },
        "pick" => {
            parse::<Empty>(&body)?;
            OrderCommand::StartPicking { key, actor }
        }
        "pack" => {
            parse::<Empty>(&body)?;
            OrderCommand::Pack { key, actor }
        }
        "ship" => OrderCommand::Ship { key, actor, shipment: parse(&body)? },
        "deliver" => OrderCommand::ConfirmDelivery { key, actor, shipment_id: parse::<Delivery>(&body)?.shipment_id },
        "close" => OrderCommand::Close { key, actor, reason: parse::<Reason>(&body)?.reason },
        other => unreachable!("order action {other} is not routed"),
    };
    let path = format!("/api/v1/orders/{channel}/{order_id}/{action}");
    let request = RequestText { method: "POST", path: &path, body: &body };
    submit(&service, &caller, &headers, request, Command::Order(command)).await
}

async fn movement(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let caller = caller(request_caller);
    let command: MoveCommand = parse(&body)?;
    let request = RequestText { method: "POST", path: "/api/v1/movements", body: &body };
    let gated =
        Command::Gated { by: caller.user.clone(), note: String::new(), command: Box::new(Command::Move(command)) };
    submit(&service, &caller, &headers, request, gated).await
}

/// What [`AuditEntity::parse`] takes: a channel code and an order id, a SKU (no control
/// characters, no padding, ≤ 64), an approval number (u64), a user name.
const ENTITY_PATTERN: &str = concat!(
    r"^(order:[A-Za-z0-9._-]{1,64}/.+",
    r"|sku:[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,62}[^\s\x00-\x1f\x7f-\x9f])?",
    r"|approval:[0-9]{1,19}|user:.+)$"
);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// order:CHANNEL/ID, sku:SKU, approval:N or user:NAME
    #[schemars(regex(pattern = ENTITY_PATTERN))]
    entity: String,
    /// the newest N entries (default 100)
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<usize>,
}

async fn audit(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query_or_problem(q)?;
    let caller = caller(request_caller);
    let limit = page_size(q.limit)?;
    let raw = q.entity;
    let entity = AuditEntity::parse(&raw).map_err(|e| Problem::new(Code::InvalidParameter, e.to_string()))?;
    if let AuditEntity::Order(key) = &entity
        && !caller.sees(&key.channel)
    {
        return Err(Problem::new(Code::NotFound, format!("unknown order {key}")));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    service.engine_store(move |store| {
        let mut trail = AuditTrail::new(entity);
        let mut entries = std::collections::VecDeque::new();
        let mut failure = None;
        let result = store.audit(&mut |row| {
            let Ok(event) = ordo_engine::decode_event(row.payload) else {
                failure.get_or_insert(row.seq);
                return;
            };
            if let Some(entry) = trail.visit(row.seq, ordo_types::Timestamp::from_millis(row.recorded_at), &event) {
                entries.push_back(entry);
                if entries.len() > limit {
                    entries.pop_front();
                }
            }
        });
        let _ = tx.send(result.map(|()| (entries, failure)));
    });
    let (entries, failure) = rx
        .await
        .expect("the engine thread answers")
        .map_err(|e| Problem::new(Code::Unavailable, format!("reading the journal: {e}")))?;
    if let Some(seq) = failure {
        return Err(Problem::new(Code::Unavailable, format!("journal row {seq} does not decode; run ordo verify")));
    }
    Ok(Json(json!({"entity": raw, "entries": entries})))
}

/// Master data through the four-eyes gate.
async fn master_data(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
    path: &'static str,
) -> Result<Response, Problem> {
    let caller = caller(request_caller);
    let command = match path {
        "/api/v1/items" => Command::DefineItem(parse(&body)?),
        "/api/v1/locations" => Command::DefineLocation(parse(&body)?),
        "/api/v1/channels" => Command::DefineChannel(parse(&body)?),
        _ => Command::Order(OrderCommand::Configure(parse(&body)?)),
    };
    let request = RequestText { method: "POST", path, body: &body };
    let gated = Command::Gated { by: caller.user.clone(), note: String::new(), command: Box::new(command) };
    submit(&service, &caller, &headers, request, gated).await
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApprovalQuery {
    /// only requests in this state
    status: Option<ApprovalState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ApprovalState {
    Pending,
    Approved,
    Rejected,
}

async fn approvals(
    Extract(service): Extract<Arc<Service>>,
    q: Result<Query<ApprovalQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = query_or_problem(q)?;
    let wanted = q.status;
    let list = service
        .read(move |s| {
            let status_of = |r: &ordo_domain::approvals::ApprovalRequest| match r.status {
                ordo_domain::approvals::ApprovalStatus::Pending => ApprovalState::Pending,
                ordo_domain::approvals::ApprovalStatus::Approved { .. } => ApprovalState::Approved,
                ordo_domain::approvals::ApprovalStatus::Rejected { .. } => ApprovalState::Rejected,
            };
            let mut rows: Vec<&ordo_domain::approvals::ApprovalRequest> =
                s.approvals().all().filter(|r| wanted.is_none_or(|w| status_of(r) == w)).collect();
            rows.sort_by_key(|r| (status_of(r) != ApprovalState::Pending, r.id));
            serde_json::to_value(rows).expect("approvals serialize")
        })
        .await;
    Ok(Json(list))
}

async fn approval(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    approve: bool,
) -> Result<Response, Problem> {
    let caller = caller(request_caller);
    let id: u64 = id.parse().map_err(|_| Problem::new(Code::NotFound, format!("unknown approval request {id:?}")))?;
    let Reason { reason } = parse(&body)?;
    let by = caller.user.clone();
    let command =
        if approve { Command::Approve { id, by, reason } } else { Command::RejectApproval { id, by, reason } };
    let path = format!("/api/v1/approvals/{id}/{}", if approve { "approve" } else { "reject" });
    let request = RequestText { method: "POST", path: &path, body: &body };
    submit(&service, &caller, &headers, request, command).await
}

// ----- returns ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReturnLine {
    line_id: String,
    #[schemars(range(min = 1))]
    units: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReturnAuthorize {
    rma_id: String,
    channel: ordo_types::Code,
    order_id: String,
    lines: Vec<ReturnLine>,
    #[schemars(regex(pattern = r"\S"))]
    reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReturnReceive {
    location: ordo_types::Code,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReturnGrade {
    line_id: String,
    grade: ordo_domain::returns::Grade,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReturnInspect {
    grades: Vec<ReturnGrade>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExchangeLine {
    line_id: String,
    /// What is sent in place of the line's returned units.
    sku: ordo_types::Sku,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReturnExchange {
    #[schemars(regex(pattern = r"^\S+$"))]
    replacement_order_id: String,
    #[schemars(length(min = 1))]
    lines: Vec<ExchangeLine>,
}

/// An RMA the caller may see (its order's channel in the caller's scope), with its exchange.
fn rma_json(s: &State, caller: &Caller, rma: &str) -> Option<Value> {
    s.returns().get(rma).filter(|r| caller.sees(&r.order.channel)).map(|r| rma_value(s, r))
}

fn rma_value(s: &State, rma: &ordo_domain::returns::Rma) -> Value {
    let mut value = serde_json::to_value(rma).expect("serialize");
    value["exchange"] = serde_json::to_value(s.returns().exchange(&rma.rma_id)).expect("serialize");
    value["exchange_refund"] = serde_json::to_value(s.returns().exchange_refund(&rma.rma_id)).expect("serialize");
    value
}

async fn returns_list(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
) -> Json<Value> {
    let caller = caller(request_caller);
    Json(
        service
            .read(move |s| {
                let rows: Vec<Value> =
                    s.returns().all().filter(|r| caller.sees(&r.order.channel)).map(|r| rma_value(s, r)).collect();
                Value::Array(rows)
            })
            .await,
    )
}

async fn return_one(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    Path(rma): Path<String>,
) -> Result<Json<Value>, Problem> {
    let caller = caller(request_caller);
    let shown = rma.clone();
    service
        .read(move |s| rma_json(s, &caller, &rma))
        .await
        .map(Json)
        .ok_or_else(|| Problem::new(Code::NotFound, format!("unknown RMA {shown}")))
}

async fn return_authorize(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let caller = caller(request_caller);
    let ReturnAuthorize { rma_id, channel, order_id, lines, reason } = parse(&body)?;
    let order = key_of(&caller, channel.as_str(), &order_id)?;
    let command = ordo_domain::returns::ReturnCommand::Authorize {
        rma_id,
        order,
        lines: lines.into_iter().map(|l| (l.line_id, l.units)).collect(),
        reason,
    };
    let request = RequestText { method: "POST", path: "/api/v1/returns", body: &body };
    // Through the gate: a trusted customer is refunded at authorization, above the threshold too.
    let gated =
        Command::Gated { by: caller.user.clone(), note: String::new(), command: Box::new(Command::Returns(command)) };
    submit(&service, &caller, &headers, request, gated).await
}

/// Receive, inspect, refund and exchange: through the four-eyes gate, which holds large refunds and
/// write-offs for a second person.
async fn return_step(
    Extract(service): Extract<Arc<Service>>,
    request_caller: Option<axum::Extension<Caller>>,
    Path(rma): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    step: &'static str,
) -> Result<Response, Problem> {
    use ordo_domain::returns::ReturnCommand;
    let caller = caller(request_caller);
    let visible = {
        let (rma, caller) = (rma.clone(), caller.clone());
        service.read(move |s| rma_json(s, &caller, &rma).is_some()).await
    };
    if !visible {
        return Err(Problem::new(Code::NotFound, format!("unknown RMA {rma}")));
    }
    let command = match step {
        "receive" => ReturnCommand::Receive { rma_id: rma.clone(), location: parse::<ReturnReceive>(&body)?.location },
        "inspect" => ReturnCommand::Inspect {
            rma_id: rma.clone(),
            grades: parse::<ReturnInspect>(&body)?.grades.into_iter().map(|g| (g.line_id, g.grade)).collect(),
        },
        "exchange" => {
            let ReturnExchange { replacement_order_id, lines } = parse(&body)?;
            ReturnCommand::Exchange {
                rma_id: rma.clone(),
                replacement_order_id,
                lines: lines.into_iter().map(|l| (l.line_id, l.sku)).collect(),
            }
        }
        _ => {
            parse::<Empty>(&body)?;
            ReturnCommand::Refund { rma_id: rma.clone() }
        }
    };
    let path = format!("/api/v1/returns/{rma}/{step}");
    let request = RequestText { method: "POST", path: &path, body: &body };
    let gated =
        Command::Gated { by: caller.user.clone(), note: String::new(), command: Box::new(Command::Returns(command)) };
    submit(&service, &caller, &headers, request, gated).await
}

// ----- channel webhooks -------------------------------------------------------------------------

/// Keeps what Shopify sent, raw, with the reason (`ordo deadletter`), so nothing is lost.
async fn keep_dead_letter(
    service: &Service,
    source: String,
    event_id: &str,
    reason: String,
    raw: &str,
) -> Result<u64, Problem> {
    let actor = format!("shopify:{}", source.rsplit(':').next().unwrap_or_default());
    let keep = ordo_domain::deadletter::DeadLetterCommand::Keep { source, reason, raw: raw.to_owned() };
    let origin = ordo_domain::access::Origin {
        actor,
        role: None,
        source: ordo_domain::access::Source::Connector,
        request_id: event_id.to_owned(),
    };
    let kept = service
        .write(Command::Attributed { origin, command: Box::new(Command::DeadLetter(keep)) })
        .await
        .map_err(crate::command_problem)?;
    Ok(kept.0[0])
}

/// A malformed delivery: kept as a dead letter, answered 400 with the field and value.
async fn unreadable(
    service: &Service,
    source: String,
    event_id: &str,
    what: &str,
    e: ordo_channels::FormatError,
    raw: &str,
) -> Problem {
    let seq = match keep_dead_letter(service, source, event_id, e.to_string(), raw).await {
        Ok(seq) => seq,
        Err(p) => return p,
    };
    let mut p = Problem::new(Code::InvalidBody, format!("{what}: {e}; kept as dead letter (journal sequence {seq})"));
    p.errors.push(crate::problem::FieldError {
        field: e.column.clone(),
        line: Some(e.line as usize),
        column: None,
        message: e.message.clone(),
    });
    p
}

/// `refunds/create`: a refund the merchant issued on Shopify, recorded (once per event id and
/// per refund id) as an RMA already refunded, so Ordo's own return flow never pays it twice.
/// A refund of an order Ordo does not hold is kept as a dead letter (redriven once the order is
/// in) and acknowledged; one of units that never shipped is the order update's business.
async fn shopify_refund(
    service: &Arc<Service>,
    channel: &ordo_types::Code,
    event_id: &str,
    body: &Bytes,
    text: &str,
) -> Result<Response, Problem> {
    use ordo_domain::returns::ReturnRejection;
    let source = format!("shopify-refund:{channel}");
    let order_id = match ordo_channels::shopify::refunds::order_of(text) {
        Ok(id) => id,
        Err(e) => return Err(unreadable(service, source, event_id, "not a Shopify refund", e, text).await),
    };
    let key = OrderKey { channel: channel.clone(), channel_order_id: order_id };
    let currency = {
        let key = key.clone();
        service.read(move |s| s.orders().get(&key).map(|r| r.order.currency)).await
    };
    let Some(currency) = currency else {
        let reason = format!("a refund of order {key}, which Ordo does not hold");
        let seq = keep_dead_letter(service, source, event_id, reason.clone(), text).await?;
        return Ok(Json(json!({"ignored": reason, "dead_letter_seq": seq})).into_response());
    };
    let refund = match ordo_channels::shopify::refunds::parse(text, currency) {
        Ok(r) => r.canonical(channel.clone()),
        Err(e) => return Err(unreadable(service, source, event_id, "not a Shopify refund", e, text).await),
    };
    let actor = format!("shopify:{channel}");
    let origin = ordo_domain::access::Origin {
        actor: actor.clone(),
        role: None,
        source: ordo_domain::access::Source::Connector,
        request_id: event_id.to_owned(),
    };
    let once = Command::Idempotent {
        user: actor,
        key: event_id.to_owned(),
        request_sha256_hex: sha256_hex(body),
        command: Box::new(Command::Returns(ordo_domain::returns::ReturnCommand::RecordChannelRefund(refund))),
    };
    match service.write(Command::Attributed { origin, command: Box::new(once) }).await {
        Ok((_, (_, body))) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        Err(ordo_engine::CommandError::Rejected(ordo_domain::Rejection::AlreadyAnswered { body, .. })) => {
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        Err(ordo_engine::CommandError::Rejected(ordo_domain::Rejection::Returns(
            r @ (ReturnRejection::RmaExists(_)
            | ReturnRejection::NothingShipped(_)
            | ReturnRejection::OnlyUnshipped(_)
            | ReturnRejection::OwnRefund(_)),
        ))) => Ok(Json(json!({"ignored": r.to_string(), "order": key.to_string()})).into_response()),
        // An Ordo RMA holds those units: a person settles it; the refund is kept until then.
        Err(ordo_engine::CommandError::Rejected(ordo_domain::Rejection::Returns(
            r @ ReturnRejection::OnOpenRma { .. },
        ))) => {
            let reason = r.to_string();
            let seq = keep_dead_letter(service, source, event_id, reason.clone(), text).await?;
            Ok(Json(json!({"ignored": reason, "dead_letter_seq": seq})).into_response())
        }
        Err(e) => Err(crate::command_problem(e)),
    }
}

/// Shopify's order webhooks. The signature is checked on the raw bytes before anything reads
/// them; the delivery's event id is the idempotency key (in the same journal event as the
/// capture), so a delivery repeated — concurrently or after a restart — has one effect. An update
/// older than what Ordo holds, or one with nothing new, is acknowledged (200) so Shopify stops
/// retrying; a malformed body is 400 with the field and value.
async fn shopify_webhook(
    Extract(service): Extract<Arc<Service>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    use ordo_domain::orders::book::OrderRejection;
    let Some(secret) = service.shopify_webhook_secret.get() else {
        return Err(Problem::new(
            Code::Unavailable,
            "Shopify webhooks are not configured (ORDO_SHOPIFY_WEBHOOK_SECRET)",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let verifier = ordo_channels::shopify::orders::ShopifyWebhooks { secret };
    let signed = ordo_channels::WebhookVerifier::verify(&verifier, &body, &|name| header(name).map(str::to_owned));
    if !signed {
        return Err(Problem::new(Code::Unauthenticated, "X-Shopify-Hmac-Sha256 does not match the body"));
    }
    let channel =
        ordo_types::Code::new(channel).map_err(|e| Problem::new(Code::NotFound, format!("no such channel: {e}")))?;
    let topic = header("x-shopify-topic").unwrap_or("orders/updated").to_owned();
    if !matches!(topic.as_str(), "orders/create" | "orders/updated" | "orders/cancelled" | "refunds/create") {
        return Ok(Json(json!({"ignored": topic})).into_response());
    }
    let Some(event_id) = header("x-shopify-event-id").or_else(|| header("x-shopify-webhook-id")).map(str::to_owned)
    else {
        return Err(Problem::new(Code::InvalidParameter, "X-Shopify-Event-Id or X-Shopify-Webhook-Id is required"));
    };
    let text = String::from_utf8_lossy(&body);
    if topic == "refunds/create" {
        return shopify_refund(&service, &channel, &event_id, &body, &text).await;
    }
    let mapped = match ordo_channels::shopify::orders::parse(&text, channel.clone()) {
        Ok(mapped) => mapped,
        Err(e) => {
            let source = format!("shopify-webhook:{channel}");
            return Err(unreadable(&service, source, &event_id, "not a Shopify order", e, &text).await);
        }
    };
    let key = mapped.order.key();
    let cancelled = mapped.cancelled || topic == "orders/cancelled";
    // Only a cancellation needs to know whether Ordo has the order: asking costs a round trip to
    // the engine thread, which every other delivery would wait for.
    let known = cancelled && {
        let key = key.clone();
        service.read(move |s| s.orders().get(&key).is_some()).await
    };
    // A cancellation of an order Ordo never saw captures it first (its own key, so a retry
    // after a crash between the two finds the capture done and goes on to the cancel).
    let mut steps = Vec::new();
    if !cancelled || !known {
        steps.push((event_id.clone(), Command::Order(OrderCommand::Capture(Box::new(mapped.order)))));
    }
    if cancelled {
        let actor = Actor::Connector(channel.to_string());
        let cancel = OrderCommand::Cancel { key: key.clone(), actor, reason: "cancelled on Shopify".into() };
        // Its own key whatever came before, so every delivery of the event gets the same answer.
        steps.push((format!("{event_id}:cancel"), Command::Order(cancel)));
    }
    let source = format!("shopify:{channel}");
    let last = steps.len() - 1;
    for (n, (step_key, command)) in steps.into_iter().enumerate() {
        let origin = ordo_domain::access::Origin {
            actor: source.clone(),
            role: None,
            source: ordo_domain::access::Source::Connector,
            request_id: event_id.clone(),
        };
        let once = Command::Idempotent {
            user: source.clone(),
            key: step_key,
            request_sha256_hex: sha256_hex(&body),
            command: Box::new(command),
        };
        let answer = match service.write(Command::Attributed { origin, command: Box::new(once) }).await {
            Ok((_, (_, body))) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(ordo_engine::CommandError::Rejected(ordo_domain::Rejection::AlreadyAnswered { body, .. })) => {
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            Err(ordo_engine::CommandError::Rejected(ordo_domain::Rejection::Order(r)))
                if matches!(*r, OrderRejection::AlreadyCaptured(_) | OrderRejection::StaleUpdate { .. }) =>
            {
                Json(json!({"ignored": r.to_string(), "order": key.to_string()})).into_response()
            }
            Err(e) => return Err(crate::command_problem(e)),
        };
        if n == last {
            return Ok(answer);
        }
    }
    unreachable!("a webhook makes at least one step")
}
