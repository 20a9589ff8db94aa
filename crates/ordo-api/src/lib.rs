//! Ordo's HTTP service (`ordo serve`): a JSON API under `/api/v1` over the engine, with bearer
//! token authentication, one permission per route (default deny), idempotency keys journaled
//! with their effect, errors as problem+json, cursor pagination, health, readiness, metrics and
//! an OpenAPI document generated from the same route table the router is built from.
//!
//! Reads run as engine queries between batches (they see committed state only); writes are
//! engine submissions answered after the durable commit.

pub mod auth;
mod metrics;
pub mod openapi;
pub mod problem;
mod routes;
pub mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use ordo_domain::State;
use ordo_engine::{Answer, CommandError, EngineHandle, Request, Sequences};
use ordo_types::Timestamp;
use problem::{Code, Problem};

pub use routes::{ROUTES, Route};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// A request still unanswered after this is cut off with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an authenticated token is trusted before it is looked up again.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);
/// Page size when none is asked for, and the most one page may hold.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 500;

/// What every handler shares.
pub struct Service {
    engine: EngineHandle,
    clock: Box<dyn Fn() -> Timestamp + Send + Sync>,
    /// `(user, idempotency key)` pairs whose first request is still running.
    in_flight: Mutex<HashSet<(String, String)>>,
    /// Token hash → caller, and when it was looked up.
    tokens: std::sync::RwLock<std::collections::HashMap<String, (auth::Caller, std::time::Instant)>>,
    /// Token hashes one request is looking up again (the others go on with the cached caller).
    refreshing: Mutex<HashSet<String>>,
    sessions: session::Sessions,
    metrics: metrics::Metrics,
    /// The Shopify app's client secret that signs webhooks; unset, webhooks are refused (503).
    shopify_webhook_secret: std::sync::OnceLock<Vec<u8>>,
}

impl Service {
    pub fn new(engine: EngineHandle, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            engine,
            clock: Box::new(clock),
            in_flight: Mutex::new(HashSet::new()),
            tokens: Default::default(),
            refreshing: Mutex::new(HashSet::new()),
            sessions: Default::default(),
            metrics: metrics::Metrics::default(),
            shopify_webhook_secret: std::sync::OnceLock::new(),
        })
    }

    /// Accept Shopify webhooks signed with `secret` (from configuration, never the database).
    pub fn set_shopify_webhook_secret(&self, secret: &[u8]) {
        let _ = self.shopify_webhook_secret.set(secret.to_vec());
    }

    pub(crate) fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Runs `f` on the engine thread against committed state.
    pub(crate) async fn read<R: Send + 'static>(&self, f: impl FnOnce(&State) -> R + Send + 'static) -> R {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.engine.query_then(move |s| {
            let _ = tx.send(f(s));
        });
        rx.await.expect("the engine thread answers every query")
    }

    /// Runs `f` on the engine thread against the store, between batches.
    pub(crate) fn engine_store(&self, f: impl FnOnce(&mut dyn ordo_engine::Store) + Send + 'static) {
        self.engine.store_then(f);
    }

    /// Submits `command` and waits (asynchronously) for the durable commit; the answer the
    /// event earned comes with the acknowledgement, so no query follows.
    pub(crate) async fn write(&self, command: ordo_domain::Command) -> Result<(Sequences, Answer), CommandError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = std::time::Instant::now();
        self.engine.submit_then(Request::Answered(command), move |r, answer| {
            let _ = tx.send((r, answer));
        });
        let (result, answer) = rx.await.expect("the engine thread answers every submission");
        self.metrics.observe_commit(started.elapsed());
        let seqs = result?;
        Ok((seqs, answer.expect("an accepted answered request carries its answer")))
    }

    /// The caller a bearer token's hash belongs to, from a short-lived cache so that
    /// authentication does not stop the engine's pipeline for a query on every request. A
    /// revoked or expired token stops working within [`TOKEN_CACHE_TTL`]. Past half of it, one
    /// request looks the token up again while the others go on with the cached caller: when
    /// every connection's request missed the cache at the same instant, each query broke the
    /// engine's group commit into a batch of its own, and the whole load waited (a latency spike
    /// every few seconds).
    pub(crate) async fn caller(&self, sha256_hex: String) -> Option<auth::Caller> {
        let cached = self.tokens.read().expect("token cache lock").get(&sha256_hex).cloned();
        if let Some((caller, fetched)) = cached {
            let age = fetched.elapsed();
            let fresh = age < TOKEN_CACHE_TTL / 2;
            if fresh
                || (age < TOKEN_CACHE_TTL
                    && !self.refreshing.lock().expect("refresh set lock").insert(sha256_hex.clone()))
            {
                return Some(caller);
            }
        }
        let caller = self.look_up_token(sha256_hex.clone()).await;
        self.refreshing.lock().expect("refresh set lock").remove(&sha256_hex);
        caller
    }

    async fn look_up_token(&self, sha256_hex: String) -> Option<auth::Caller> {
        let now = self.now();
        let key = sha256_hex.clone();
        let caller = self
            .read(move |s| {
                s.access().authenticate_token(&key, now).map(|(t, u)| auth::Caller {
                    user: u.name.clone(),
                    role: u.role,
                    token_id: t.id.clone(),
                    channels: s.access().token_scope(&t.id).map(<[_]>::to_vec),
                })
            })
            .await;
        let mut cache = self.tokens.write().expect("token cache lock");
        match &caller {
            Some(c) => {
                cache.insert(sha256_hex, (c.clone(), std::time::Instant::now()));
            }
            None => {
                cache.remove(&sha256_hex);
            }
        }
        caller
    }
}

/// The router: every route of [`ROUTES`] behind its permission, plus the limits.
pub fn router(service: Arc<Service>) -> Router {
    routes::build(service).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).layer(
        tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ),
    )
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Answers are small and written in pieces: without TCP_NODELAY, Nagle's algorithm holds the
    // last piece until the client's delayed ACK (tens of milliseconds at the tail).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(service)).with_graceful_shutdown(shutdown).await
}

/// A command's refusal as problem+json: unknown things are 404, business rules 422, the store 503.
pub(crate) fn command_problem(e: CommandError) -> Problem {
    use ordo_domain::Rejection;
    use ordo_domain::orders::book::OrderRejection;
    match e {
        CommandError::Rejected(Rejection::Order(r)) if matches!(*r, OrderRejection::UnknownOrder(_)) => {
            Problem::new(Code::NotFound, r.to_string())
        }
        CommandError::Rejected(Rejection::Returns(
            r @ (ordo_domain::returns::ReturnRejection::UnknownOrder(_)
            | ordo_domain::returns::ReturnRejection::UnknownRma(_)),
        )) => Problem::new(Code::NotFound, r.to_string()),
        CommandError::Rejected(Rejection::IdempotencyKeyReused(k)) => Problem::new(
            Code::IdempotencyKeyReused,
            format!("idempotency key {k:?} was already used with a different request"),
        ),
        CommandError::Rejected(Rejection::Approval(ordo_domain::approvals::ApprovalRejection::UnknownRequest(id))) => {
            Problem::new(Code::NotFound, format!("unknown approval request {id}"))
        }
        CommandError::Rejected(r) => Problem::new(Code::Rejected, format!("rejected: {r}; nothing was changed")),
        CommandError::RejectedInGroup { rejection, .. } => {
            Problem::new(Code::Rejected, format!("rejected: {rejection}; nothing was changed"))
        }
        other => Problem::new(Code::Unavailable, format!("the change was not recorded: {other}")),
    }
}
