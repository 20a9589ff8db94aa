//! The service from the command line: `ordo user add`, `ordo token create|revoke|list`, and the
//! real `ordo serve` process answering over 127.0.0.1 with the token the CLI printed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::Db;

/// A minimal HTTP/1.1 GET (one request per connection) returning `(status, body)`.
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn users_and_tokens_from_the_cli_authenticate_against_ordo_serve() {
    let db = Db::new();
    // The password comes from ORDO_PASSWORD; too short is refused and records nothing.
    let before = db.journal_seq();
    let out = db.command(&["user", "add", "ana", "--role", "viewer"]).env("ORDO_PASSWORD", "short").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8 characters"));
    assert_eq!(db.journal_seq(), before);
    let out =
        db.command(&["user", "add", "ana", "--role", "pilot"]).env("ORDO_PASSWORD", "long enough").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role \"pilot\""), "{out:?}");
    let out =
        db.command(&["user", "add", "ana", "--role", "viewer"]).env("ORDO_PASSWORD", "long enough").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(db.ok(&["user", "list"]), "ana\tviewer\n");
    // The token is the last word; only its hash is kept (the database never contains it).
    let created = db.ok(&["token", "create", "--user", "ana"]);
    let token = created.split_whitespace().last().unwrap().to_owned();
    assert!(token.starts_with("ordo_"), "{created}");
    let id = token.split('_').nth(1).unwrap().to_owned();
    let raw = std::fs::read(&db.path).unwrap();
    assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()), "the token itself is not stored");
    assert_eq!(db.refused(&["token", "create", "--user", "nobody"]), "rejected: unknown user nobody\n");
    // A token limited to channels that exist; `token list` shows the scope.
    let before = db.journal_seq();
    assert_eq!(
        db.refused(&["token", "create", "--user", "ana", "--channel", "NOPE"]),
        "rejected: unknown channel NOPE in the token's scope\n"
    );
    assert_eq!(db.journal_seq(), before);
    db.ok(&["entity", "add", "US-RETAIL", "--name", "US", "--currency", "USD"]);
    db.ok(&["location", "import", common::fixture("locations.csv").to_str().unwrap()]);
    db.ok(&[
        "channel",
        "add",
        "WEB",
        "--name",
        "Web",
        "--kind",
        "shopify",
        "--entity",
        "US-RETAIL",
        "--locations",
        "WH1",
    ]);
    let scoped = db.ok(&["token", "create", "--user", "ana", "--channel", "WEB"]);
    let scoped_id = scoped.split_whitespace().last().unwrap().split('_').nth(1).unwrap().to_owned();
    assert!(db.ok(&["token", "list"]).contains(&format!("{scoped_id}\tana\tlive\tWEB")));

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = db
        .command(&["serve", "--addr", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ordo serve");
    let _serving = Serving(child);
    let started = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "ordo serve did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&addr, "/healthz", None).0, 200);
    assert_eq!(get(&addr, "/api/v1/items", None).0, 401);
    let (status, body) = get(&addr, "/api/v1/items", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"next_cursor\""), "{body}");
    let (status, doc) = get(&addr, "/api/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc.contains("\"x-permission\":\"capture_orders\""), "{doc}");

    // Revoked from another process: refused once the server's 5 s token cache lapses.
    db.ok(&["token", "revoke", &id]);
    assert!(db.ok(&["token", "list"]).contains(&format!("{id}\tana\trevoked\tall channels")));
    let revoked_at = Instant::now();
    loop {
        let (status, _) = get(&addr, "/api/v1/items", Some(&token));
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < ordo_api::TOKEN_CACHE_TTL + Duration::from_secs(10),
            "revoked token still accepted"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
