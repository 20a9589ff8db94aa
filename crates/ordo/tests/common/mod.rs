//! Running the real `ordo` binary against a database of one test's own: shared by the CLI test
//! files, each of which adds its own helpers in its own `impl Db` block.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_ordo");

/// One test's database file in a temporary directory of its own, created with `ordo init`.
pub struct Db {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Db {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("x.db");
        let db = Self { dir, path };
        db.ok(&["init"]);
        db
    }

    /// `ordo --db <this database> ARGS`, isolated from the caller's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--db")
            .arg(&self.path)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("ORDO_DB")
            .env_remove("ORDO_DATABASE_URL")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run the ordo binary")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "`ordo {}` failed ({}):\n{}", args.join(" "), out.status, describe(&out));
        String::from_utf8(out.stdout).expect("stdout is UTF-8")
    }

    /// Runs a command that must be refused with exit code 1 and print nothing on stdout;
    /// returns its stderr.
    pub fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "`ordo {}` should be refused:\n{}", args.join(" "), describe(&out));
        assert!(out.stdout.is_empty(), "a refused command prints nothing on stdout:\n{}", describe(&out));
        String::from_utf8(out.stderr).expect("stderr is UTF-8")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let stdout = self.ok(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("`ordo {}` is not JSON ({e}):\n{stdout}", args.join(" ")))
    }

    /// The journal length, from a clean `ordo verify --json`.
    pub fn journal_seq(&self) -> u64 {
        let v = self.json(&["verify", "--json"]);
        assert_eq!(v["ok"], json!(true), "verify: {v:#}");
        assert_eq!(v["problems"], json!([]), "verify: {v:#}");
        v["journal_seq"].as_u64().expect("journal_seq is a number")
    }
}

pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A file under `tests/fixtures`.
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(relative)
}

/// The order fixtures' retailer: the US-RETAIL entity, EAST / WEST / STORE-1 and TEE / MUG /
/// SOCK, and one channel of `kind` selling from `locations` (comma-separated).
#[allow(dead_code)]
pub fn retailer(db: &Db, channel: &str, kind: &str, locations: &str) {
    db.ok(&["entity", "add", "US-RETAIL", "--name", "Ordo Outfitters Inc.", "--currency", "USD"]);
    db.ok(&["location", "import", fixture("orders/locations.csv").to_str().expect("UTF-8 path")]);
    db.ok(&["item", "import", fixture("orders/items.csv").to_str().expect("UTF-8 path")]);
    db.ok(&[
        "channel",
        "add",
        channel,
        "--name",
        channel,
        "--kind",
        kind,
        "--entity",
        "US-RETAIL",
        "--locations",
        locations,
    ]);
}

/// A fake channel API: `app` served on a free loopback port by its own runtime (kept alive by the
/// returned runtime); returns the runtime and the base URL.
#[allow(dead_code)]
pub fn serve_on_loopback(app: axum::Router) -> (tokio::runtime::Runtime, String) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    runtime.spawn(async move { axum::serve(listener, app).await });
    (runtime, url)
}
