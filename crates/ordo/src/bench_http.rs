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

/// An order capture request as an integration sends it.
fn capture_request(token: &str, n: usize, body: &str) -> String {
    format!(
        "POST /api/v1/orders HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: bench-{n}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The same order as Shopify's `orders/create` webhook would deliver it, signed.
fn webhook_request(secret: &[u8], n: usize, capture_body: &str) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let o: serde_json::Value = serde_json::from_str(capture_body).expect("bench bodies are JSON");
    let lines: Vec<serde_json::Value> = o["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::json!({"id": n * 10 + i, "sku": l["item"]["sku"], "quantity": l["quantity"],
                               "price": ordo_types::format_decimal(l["unit_price_minor"].as_i64().unwrap_or(0), 2)})
        })
        .collect();
    let a = &o["ship_to"];
    let body = serde_json::json!({
        "id": 5_000_000_000_000u64 + n as u64,
        "created_at": "2026-11-18T10:00:00-05:00", "updated_at": "2026-11-18T10:00:00-05:00",
        "currency": "USD", "financial_status": "paid", "email": "bench@example.com",
        "customer": {"id": 7_000_000_000u64 + (n % 1_000) as u64, "first_name": "Bench", "last_name": "Customer"},
        "shipping_address": {"name": a["name"], "address1": a["line1"], "city": a["city"], "province_code": a["region"],
            "zip": a["postal_code"], "country_code": a["country"],
            "latitude": ordo_types::format_decimal(a["geo"]["latitude_micro"].as_i64().unwrap_or(0), 6),
            "longitude": ordo_types::format_decimal(a["geo"]["longitude_micro"].as_i64().unwrap_or(0), 6)},
        "shipping_lines": [{"code": "ground", "price": "0.00"}],
        "line_items": lines,
    })
    .to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "POST /webhooks/shopify/WEB HTTP/1.1\r\nHost: bench\r\nX-Shopify-Topic: orders/create\r\nX-Shopify-Event-Id: evt-{n}\r\nX-Shopify-Hmac-Sha256: {signature}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn connection(
    addr: std::net::SocketAddr,
    work: std::sync::Arc<std::sync::Mutex<std::vec::IntoIter<String>>>,
    ok_status: &'static str,
) -> Result<(Vec<Duration>, usize)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut latencies = Vec::new();
    let mut failed = 0;
    loop {
        let next = work.lock().expect("work lock").next();
        let Some(request) = next else { break };
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
        if !status_line.starts_with(ok_status) {
            failed += 1;
        }
    }
    Ok((latencies, failed))
}

/// The bench retailer (10,000 SKUs × 8 nodes, stock everywhere) behind an engine handle, with an
/// `integration` user's token.
type Served =
    (EngineHandle, std::thread::JoinHandle<ordo_engine::Engine<crate::backend::AnyStore>>, String, tempfile::TempDir);

fn serve_setup(skus: usize) -> Result<Served> {
    let (target, dir) = open(Backend::Sqlite, "", "http")?;
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
    // As `ordo serve` runs.
    e.set_projection_interval(Duration::from_millis(crate::cli::SERVE_PROJECTION_INTERVAL_MS));
    let (handle, thread) = EngineHandle::spawn(e, 1_000);
    Ok((handle, thread, token, dir.context("a SQLite bench keeps its directory")?))
}

/// `webhooks`: the same orders as signed Shopify webhooks instead of API captures.
pub fn run(orders: usize, connections: usize, skus: usize, webhooks: bool) -> Result<()> {
    let (handle, thread, token, _dir) = serve_setup(skus)?;
    let now = Timestamp::from_millis(T0);
    let service = ordo_api::Service::new(handle.clone(), move || now);
    let secret = b"bench-webhook-secret";
    service.set_shopify_webhook_secret(secret);
    let (ok_status, what) = if webhooks {
        ("HTTP/1.1 200", "Shopify order webhooks (HMAC verified, event id deduplicated)")
    } else {
        ("HTTP/1.1 201", "order captures over HTTP (bearer token, idempotency key each)")
    };
    let work: Vec<String> = bodies(orders, skus)
        .into_iter()
        .enumerate()
        .map(|(n, body)| if webhooks { webhook_request(secret, n, &body) } else { capture_request(&token, n, &body) })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (latencies, failed, elapsed) = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(ordo_api::serve(listener, service, std::future::pending()));
        let work = std::sync::Arc::new(std::sync::Mutex::new(work.into_iter()));
        let started = Instant::now();
        let tasks: Vec<_> = (0..connections).map(|_| tokio::spawn(connection(addr, work.clone(), ok_status))).collect();
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
    let allocated = handle.query(|s| {
        s.orders().all().filter(|r| r.status == ordo_domain::orders::lifecycle::OrderStatus::Allocated).count()
    });
    println!(
        "bench http: {orders} {what} from {connections} connections: {:.2} s = {:.0} requests/s; latency p50 {:.1} ms, p99 {:.1} ms; {failed} failed; {captured} orders recorded, {allocated} allocated (reserved)",
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

/// The wrk script: every request a new order id and idempotency key (thread number and counter),
/// bodies taken in turn from the prebuilt templates (one per line, `__ID__` for the order id).
const WRK_SCRIPT: &str = r#"
local threads = {}
function setup(thread)
  thread:set("tid", tostring(#threads + 1))
  table.insert(threads, thread)
end
local function build(counter)
  local id = tid .. "-" .. counter
  local body = bodies[(counter % #bodies) + 1]:gsub("__ID__", id)
  return wrk.format("POST", "/api/v1/orders", {
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = "wrk-" .. id,
    ["Content-Type"] = "application/json",
  }, body)
end
function init(args)
  bodies = {}
  for line in io.lines(args[1]) do table.insert(bodies, line) end
  token = args[2]
  counter = 0
  -- Built before the clock starts, so the generator spends the run sending, not formatting.
  prebuilt = {}
  for n = 1, tonumber(args[3]) do prebuilt[n] = build(n) end
end
function request()
  counter = counter + 1
  return prebuilt[counter] or build(counter)
end
"#;

/// `ordo bench http --wrk SECONDS`: the same server and workload, driven by `wrk` (Debian
/// package `wrk`), a separate process on loopback, with its own latency percentiles.
pub fn run_wrk(seconds: u64, connections: usize, threads: usize, skus: usize) -> Result<()> {
    let (handle, thread, token, dir) = serve_setup(skus)?;
    let now = Timestamp::from_millis(T0);
    let service = ordo_api::Service::new(handle.clone(), move || now);
    let templates: Vec<String> = bodies(1_000, skus)
        .into_iter()
        .enumerate()
        .map(|(n, body)| {
            body.replacen(&format!("\"channel_order_id\":\"B-{n}\""), "\"channel_order_id\":\"__ID__\"", 1)
        })
        .collect();
    if templates.iter().any(|t| !t.contains("__ID__")) {
        bail!("the order template has no order id to vary");
    }
    let bodies_path = dir.path().join("bodies.jsonl");
    std::fs::write(&bodies_path, templates.join("\n") + "\n")?;
    let script_path = dir.path().join("capture.lua");
    std::fs::write(&script_path, WRK_SCRIPT)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(ordo_api::serve(listener, service, std::future::pending()));
    let output = std::process::Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script_path)
        .arg(format!("http://{addr}"))
        .arg("--")
        .arg(&bodies_path)
        .arg(&token)
        // Enough requests for 25,000/s per thread, up to ~200 MB of them; past that each is
        // built as it goes.
        .arg((seconds * 25_000 / threads.max(1) as u64).min(200_000).to_string())
        .output()
        .context("running wrk (Debian package wrk)")?;
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wrk failed: {report}{}", String::from_utf8_lossy(&output.stderr));
    }
    let captured = handle.query(|s| s.orders().all().count());
    let field = |label: &str| {
        report.lines().find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned())).unwrap_or_default()
    };
    let requests: usize = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let non_2xx = field("Non-2xx or 3xx responses:");
    println!(
        "bench http (wrk, {threads} thread(s), {connections} connections, {seconds} s): {} requests/s; latency p50 {}, p99 {}; {} requests, non-2xx {}; {captured} orders recorded",
        field("Requests/sec:"),
        field("50%"),
        field("99%"),
        requests,
        if non_2xx.is_empty() { "0".to_owned() } else { non_2xx.clone() },
    );
    drop(handle);
    drop(runtime);
    drop(thread);
    // wrk stops mid-flight: the requests still open then were captured but not counted.
    if !non_2xx.is_empty() || captured < requests {
        bail!("{non_2xx} non-2xx answers; {captured} orders recorded for {requests} requests\n{report}");
    }
    Ok(())
}
