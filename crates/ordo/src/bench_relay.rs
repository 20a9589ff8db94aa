//! `ordo bench relay`: from a stock movement to the availability update handed to a channel
//! endpoint, under a steady load. Movements go through the engine thread (group commit, the
//! batch's availability message written in its transaction); a channel relay on its own
//! connection polls the outbox and sends Shopify `inventorySetQuantities` calls to a fake
//! Shopify (a real HTTP server on loopback), which notes when each figure arrives. A movement
//! counts as delivered when the endpoint receives a figure that includes it (receipts only raise
//! a SKU's figure, so the first figure at or above the one after the movement).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use ordo_domain::Command;
use ordo_domain::inventory::MoveCommand;
use ordo_engine::{Engine, EngineHandle, FixedClock, Request};
use ordo_types::Timestamp;

use crate::bench::{T0, percentile, setup, sku};

/// Per SKU: (figure after the movement, when it was submitted), oldest first.
type Pending = Arc<Vec<Mutex<VecDeque<(i64, Instant)>>>>;

struct Arrivals {
    pending: Pending,
    latencies: Mutex<Vec<Duration>>,
    calls: Mutex<u64>,
}

async fn graphql(axum::extract::State(arrivals): axum::extract::State<Arc<Arrivals>>, body: String) -> String {
    let now = Instant::now();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut done = Vec::new();
    for q in body["variables"]["input"]["quantities"].as_array().into_iter().flatten() {
        let (Some(item), Some(quantity)) = (q["inventoryItemId"].as_str(), q["quantity"].as_i64()) else { continue };
        let Some(i) = item.strip_prefix("SKU-").and_then(|n| n.parse::<usize>().ok()) else { continue };
        let Some(queue) = arrivals.pending.get(i) else { continue };
        let mut queue = queue.lock().expect("pending queue");
        while queue.front().is_some_and(|(after, _)| *after <= quantity) {
            let (_, submitted) = queue.pop_front().expect("non-empty");
            done.push(now - submitted);
        }
    }
    arrivals.latencies.lock().expect("latencies").extend(done);
    *arrivals.calls.lock().expect("calls") += 1;
    r#"{"data":{"inventorySetQuantities":{"inventoryAdjustmentGroup":null,"userErrors":[]}}}"#.to_owned()
}

pub fn run(rate: u32, seconds: u64, skus: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("relay.db");
    let target = crate::backend::Target::Sqlite(path.clone());
    let mut e = Engine::open(target.create_store()?, Box::new(FixedClock::at(Timestamp::from_millis(T0))))?;
    setup(&mut e, crate::bench_orders::catalog(skus, 1))?;
    e.set_projection_interval(Duration::from_secs(1));
    let (handle, engine_thread) = EngineHandle::spawn(e, 1_000);

    let pending: Pending = Arc::new((0..skus).map(|_| Mutex::new(VecDeque::new())).collect());
    let arrivals =
        Arc::new(Arrivals { pending: pending.clone(), latencies: Mutex::new(Vec::new()), calls: Mutex::new(0) });
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let listener = server.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/admin/api/2025-10/graphql.json", axum::routing::post(graphql))
        .with_state(arrivals.clone());
    server.spawn(async move {
        use axum::serve::ListenerExt;
        // Small answers written in pieces: without TCP_NODELAY, Nagle holds the last piece for
        // the client's delayed ACK (40 ms a call).
        axum::serve(listener.tap_io(|tcp| drop(tcp.set_nodelay(true))), app).await
    });

    // The relay, as `ordo worker` runs it: own thread, own connection, polling every millisecond.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let destination = ordo_relay::config::ChannelDestination {
        channel: "WEB".into(),
        endpoint,
        credentials: ordo_relay::config::Credentials::Shopify {
            access_token: ordo_relay::config::Secret::new("bench"),
            location_gid: "gid://shopify/Location/1".into(),
        },
        items: Default::default(),
        rate_per_second: 1_000_000.0,
        burst: 1_000,
        retry: ordo_relay::RetryPolicy::default(),
        timeout: Duration::from_secs(5),
        every: None,
    };
    let relay_stop = stop.clone();
    let relay_thread = std::thread::spawn(move || -> Result<ordo_relay::RelayStats> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut store = ordo_store_sqlite::SqliteStore::open(&path)?;
        let writer =
            ordo_relay::relay::CursorWriter::spawn(Box::new(ordo_store_sqlite::SqliteStore::open(&path)?), |line| {
                eprintln!("{line}")
            });
        let mut relay = ordo_relay::ChannelRelay::new(ordo_relay::connectors::Connector::new(destination))
            .with_cursor_writer(writer);
        runtime.block_on(async {
            while !relay_stop.load(std::sync::atomic::Ordering::Relaxed) {
                if relay.pass(&mut store).await? == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Ok::<_, anyhow::Error>(())
        })?;
        Ok(relay.stats)
    });

    // The load: `rate` receipts a second, paced per millisecond, round-robin over the SKUs.
    let total = rate as u64 * seconds;
    let mut figure = vec![0i64; skus];
    let started = Instant::now();
    let committed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let commit_latencies = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / f64::from(rate));
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let i = (n as usize * 7919) % skus;
        figure[i] += 1;
        pending[i].lock().expect("pending queue").push_back((figure[i], Instant::now()));
        let committed = committed.clone();
        let commit_latencies = commit_latencies.clone();
        let submitted = Instant::now();
        handle.submit_then(
            Request::One(Command::Move(MoveCommand::Receipt {
                sku: sku(i),
                location: ordo_types::Code::new("NODE-0").expect("valid code"),
                units: 1,
                expectation: None,
            })),
            move |result, _| {
                if result.is_ok() {
                    committed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    commit_latencies.lock().expect("commit latencies").push(submitted.elapsed());
                }
            },
        );
    }
    let offered = started.elapsed();
    // Let the last figures arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.latencies.lock().expect("latencies").len() < total as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let stats = relay_thread.join().map_err(|_| anyhow::anyhow!("relay thread panicked"))??;
    drop(handle);
    engine_thread.join().map_err(|_| anyhow::anyhow!("engine thread panicked"))?;
    let mut latencies = arrivals.latencies.lock().expect("latencies").clone();
    latencies.sort();
    let delivered = latencies.len();
    let calls = *arrivals.calls.lock().expect("calls");
    println!(
        "bench relay: {total} movements offered at {rate}/s over {:.1} s ({} committed) to {skus} SKUs; {delivered} reached the channel in {calls} calls ({} availability updates, coalesced)",
        offered.as_secs_f64(),
        committed.load(std::sync::atomic::Ordering::Relaxed),
        stats.availability_updates
    );
    println!(
        "movement → availability at the channel endpoint: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    let mut commits = commit_latencies.lock().expect("commit latencies").clone();
    commits.sort();
    println!(
        "of which the engine's commit (submitted → durable): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&commits, 0.50).as_secs_f64() * 1e3,
        percentile(&commits, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "relay: {} rows read; reading the outbox {:.0} ms, delivering {:.0} ms, moving the cursor {:.0} ms",
        stats.rows_read,
        stats.reading.as_secs_f64() * 1e3,
        stats.delivering.as_secs_f64() * 1e3,
        stats.advancing.as_secs_f64() * 1e3
    );
    anyhow::ensure!(delivered as u64 == total, "{} movements never reached the channel", total - delivered as u64);
    server.shutdown_background();
    Ok(())
}
