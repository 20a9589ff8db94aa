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

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use ordo_domain::State;
use ordo_engine::{CommandError, EngineHandle, Request, Sequences};
use ordo_types::Timestamp;
use problem::{Code, Problem};

pub use routes::{ROUTES, Route};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// A request still unanswered after this is cut off with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Page size when none is asked for, and the most one page may hold.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 500;

/// What every handler shares.
pub struct Service {
    engine: EngineHandle,
    clock: Box<dyn Fn() -> Timestamp + Send + Sync>,
    /// `(user, idempotency key)` pairs whose first request is still running.
    in_flight: Mutex<HashSet<(String, String)>>,
    metrics: metrics::Metrics,
}

impl Service {
    pub fn new(engine: EngineHandle, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            engine,
            clock: Box::new(clock),
            in_flight: Mutex::new(HashSet::new()),
            metrics: metrics::Metrics::default(),
        })
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

    /// Submits and waits (asynchronously) for the durable commit.
    pub(crate) async fn write(&self, request: Request) -> Result<Sequences, CommandError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = std::time::Instant::now();
        self.engine.submit_then(request, move |r| {
            let _ = tx.send(r);
        });
        let result = rx.await.expect("the engine thread answers every submission");
        self.metrics.observe_commit(started.elapsed());
        result
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
        CommandError::Rejected(Rejection::IdempotencyKeyReused(k)) => Problem::new(
            Code::IdempotencyKeyReused,
            format!("idempotency key {k:?} was already used with a different request"),
        ),
        CommandError::Rejected(r) => Problem::new(Code::Rejected, format!("rejected: {r}; nothing was changed")),
        CommandError::RejectedInGroup { rejection, .. } => {
            Problem::new(Code::Rejected, format!("rejected: {rejection}; nothing was changed"))
        }
        other => Problem::new(Code::Unavailable, format!("the change was not recorded: {other}")),
    }
}
