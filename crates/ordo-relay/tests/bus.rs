//! The event bus relay against a real NATS JetStream server (its own process on a free port):
//! with the server down while 10,000 events are committed, nothing is delivered and nothing is
//! lost; once it is up, every outbox message arrives exactly once (the outbox id is the message
//! id), in outbox order, so each SKU's figures arrive in the order they changed.

mod support;

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ordo_engine::{Outbox, Store};
use ordo_relay::config::{BusDestination, RelayConfig};
use ordo_relay::worker::Worker;
use ordo_store_sqlite::SqliteStore;
use support::*;

struct Nats {
    child: Child,
}

impl Nats {
    fn start(port: u16, store_dir: &std::path::Path) -> Self {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server is installed (the machine's Debian package)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn with_the_bus_down_nothing_is_lost_and_order_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ordo.db");
    let skus = 20;
    let mut engine = engine(&path, skus);
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let config = RelayConfig {
        channels: vec![],
        bus: Some(BusDestination {
            url: url.clone(),
            stream: "ORDO".into(),
            subject_prefix: "ordo".into(),
            retry: ordo_relay::relay::bus_retry(),
        }),
        poll: Duration::from_millis(5),
    };
    let open: ordo_relay::worker::OpenStore =
        Arc::new(move || Ok(Box::new(SqliteStore::open(&path)?) as Box<dyn Outbox>));
    let worker = Worker::start(config, open.clone(), false, Arc::new(|_: &str| {}));

    // 10,000 receipts while the bus is down, each committed on its own: 10,000 events, 10,000
    // availability messages.
    let mut expected_total = vec![0i64; skus];
    for n in 0..10_000 {
        let i = (n * 7) % skus;
        let units = 1 + (n % 5) as i64;
        expected_total[i] += units;
        let outcome = engine.execute(vec![receipt(i, units)]);
        assert!(outcome.error.is_none() && outcome.results.iter().all(Result::is_ok));
    }
    let messages = engine.store_mut().outbox_pending().unwrap();
    assert_eq!(messages, 10_000);
    let mut reader = open().unwrap();
    assert_eq!(reader.outbox_cursor(ordo_engine::BUS_DESTINATION).unwrap(), 0, "nothing delivered while down");

    // The bus comes up: delivery resumes by itself.
    let nats = Nats::start(port, &dir.path().join("jetstream"));
    let deadline = Instant::now() + Duration::from_secs(90);
    while reader.outbox_cursor(ordo_engine::BUS_DESTINATION).unwrap() < messages {
        assert!(Instant::now() < deadline, "the relay did not catch up once the bus was up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(engine.store_mut().outbox_pending().unwrap(), 0, "every row marked delivered");
    worker.stop();
    for (name, stats) in worker.join() {
        let stats = stats.unwrap();
        assert_eq!(stats.messages, 10_000, "{name}: each message published once");
    }

    // Read the stream back: every message once, in outbox order.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream("ORDO").await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: None,
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut ids = Vec::new();
        let mut last_seen = vec![0i64; skus];
        let mut changes = 0;
        let mut messages_read = Vec::new();
        while (messages_read.len() as u64) < messages {
            let mut batch =
                consumer.fetch().max_messages(2_000).expires(Duration::from_secs(3)).messages().await.unwrap();
            let before = messages_read.len();
            while let Some(m) = batch.next().await {
                messages_read.push(m.unwrap());
            }
            assert!(messages_read.len() > before, "the stream holds fewer messages than the outbox");
        }
        for m in messages_read {
            assert_eq!(m.subject.as_str(), "ordo.availability_changed");
            let id: u64 = m.headers.as_ref().unwrap().get("Nats-Msg-Id").unwrap().as_str().parse().unwrap();
            ids.push(id);
            for c in ordo_engine::parse_availability_message(std::str::from_utf8(&m.payload).unwrap()).unwrap() {
                let i: usize = c.sku.as_str().trim_start_matches("SKU-").parse().unwrap();
                // Per SKU, each message continues from the figure the previous one left.
                assert_eq!(c.old, last_seen[i], "SKU-{i} out of order at message {id}");
                assert!(c.new > c.old);
                last_seen[i] = c.new;
                changes += 1;
            }
        }
        assert_eq!(ids, (1..=messages).collect::<Vec<_>>(), "every message once, in outbox order");
        assert_eq!(changes, 10_000);
        assert_eq!(last_seen, expected_total);
    });
    drop(nats);
}
