//! `ordo bench http`: order capture over HTTP, end to end — bearer token authentication, an
//! `Idempotency-Key` per request, the canonical order JSON, durably committed — against a real
//! `ordo serve` router on 127.0.0.1, driven by keep-alive HTTP/1.1 connections from this process.
//! Client and server share the machine's cores, as a load generator on the same host would.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ordo_domain::Command;
use ordo_domain::access::{AccessCommand, Role, Token, User};
use ordo_domain::inventory::MoveCommand;
use ordo_domain::orders::book::OrderCommand;
use ordo_engine::EngineHandle;
use ordo_types::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::bench::{Backend, T0, engine, open, percentile, setup, sku};

/// Request bodies, prebuilt so the generator spends its time sending.
fn bodies(orders: usize, skus: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(5);
    let now = Timestamp::from_millis(T0);
    (0..orders)
        .map(|id| {
            let lines = (0..3).map(|_| (sku(rng.random_range(0..skus)), rng.random_range(1..=3))).collect();
            match crate::bench_orders::order(id, lines, now, &mut rng) {
                Command::Order(OrderCommand::Capture(o)) => serde_json::to_string(&*o).expect("orders serialize"),
                _ => unreachable!("order() builds a capture"),
            }
        })
        .collect()
}

async fn connection(
    addr: std::net::SocketAddr,
    token: String,
    work: std::sync::Arc<std::sync::Mutex<std::vec::IntoIter<(usize, String)>>>,
) -> Result<(Vec<Duration>, usize)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut latencies = Vec::new();
    let mut failed = 0;
    loop {
        let next = work.lock().expect("work lock").next();
        let Some((n, body)) = next else { break };
        let request = format!(
            "POST /api/v1/orders HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: bench-{n}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let started = Instant::now();
        write.write_all(request.as_bytes()).await?;
        let mut status_line = String::new();
        read.read_line(&mut status_line).await?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            read.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().context("content-length")?;
            }
        }
        let mut buf = vec![0u8; length];
        read.read_exact(&mut buf).await?;
        latencies.push(started.elapsed());
        if !status_line.starts_with("HTTP/1.1 201") {
            failed += 1;
        }
    }
    Ok((latencies, failed))
}

pub fn run(orders: usize, connections: usize, skus: usize) -> Result<()> {
    let (target, _dir) = open(Backend::Sqlite, "", "http")?;
    let mut e = engine(&target)?;
    setup(&mut e, crate::bench_orders::catalog(skus, 8))?;
    let receipts = (0..skus)
        .flat_map(|i| (0..8).map(move |n| (i, n)))
        .map(|(i, n)| {
            Command::Move(MoveCommand::Receipt {
                sku: sku(i),
                location: ordo_types::Code::new(format!("NODE-{n}")).expect("valid"),
                units: 10_000,
                expectation: None,
            })
        })
        .collect();
    setup(&mut e, receipts)?;
    let (id, token, sha256_hex) = ordo_api::auth::new_token();
    let now = Timestamp::from_millis(T0);
    let user = User { name: "bench".into(), role: Role::Integration, password_hash: String::new(), created_at: now };
    e.execute_one(Command::Access(AccessCommand::AddUser(user)))?;
    let record = Token { id, user: "bench".into(), sha256_hex, created_at: now, expires_at: None, revoked_at: None };
    e.execute_one(Command::Access(AccessCommand::IssueToken(record)))?;
    e.set_projection_interval(Duration::from_secs(5));
    let (handle, thread) = EngineHandle::spawn(e, 1_000);
    let service = ordo_api::Service::new(handle.clone(), move || now);
    let work: Vec<(usize, String)> = bodies(orders, skus).into_iter().enumerate().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (latencies, failed, elapsed) = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(ordo_api::serve(listener, service, std::future::pending()));
        let work = std::sync::Arc::new(std::sync::Mutex::new(work.into_iter()));
        let started = Instant::now();
        let tasks: Vec<_> =
            (0..connections).map(|_| tokio::spawn(connection(addr, token.clone(), work.clone()))).collect();
        let mut latencies = Vec::with_capacity(orders);
        let mut failed = 0;
        for t in tasks {
            let (l, f) = t.await??;
            latencies.extend(l);
            failed += f;
        }
        anyhow::Ok((latencies, failed, started.elapsed()))
    })?;
    let mut latencies = latencies;
    latencies.sort();
    let captured = handle.query(|s| s.orders().all().count());
    println!(
        "bench http: {orders} order captures over HTTP (bearer token, idempotency key each) from {connections} connections: {:.2} s = {:.0} requests/s; latency p50 {:.1} ms, p99 {:.1} ms; {failed} non-201; {captured} orders recorded",
        elapsed.as_secs_f64(),
        orders as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    drop(handle);
    drop(runtime);
    drop(thread);
    if failed > 0 || captured != orders {
        bail!("{failed} requests failed; {captured} of {orders} orders recorded");
    }
    Ok(())
}
