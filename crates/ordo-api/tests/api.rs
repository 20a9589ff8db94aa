//! The HTTP service end to end: a real server on 127.0.0.1 (random port) over a real SQLite
//! engine, called with a real HTTP client. The route × role matrix is generated from the served
//! OpenAPI document; idempotency, bad input, unknown resources and revoked tokens are checked
//! against the journal (a refused request must not move it).

use std::net::SocketAddr;

use ordo_api::auth::{hash_password, new_token};
use ordo_domain::Command;
use ordo_domain::access::{AccessCommand, Permission, Role, Token, User};
use ordo_domain::catalog::{
    AllocationPolicy, Capabilities, Channel, ChannelKind, Item, LegalEntity, Location, LocationKind,
};
use ordo_domain::inventory::MoveCommand;
use ordo_domain::orders::book::{OrderCommand, OrderSetting};
use ordo_engine::{Engine, EngineHandle, FixedClock};
use ordo_store_sqlite::SqliteStore;
use ordo_types::{Code, CurrencyCode, Sku, Timestamp};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000_000;

fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

fn setup_commands() -> Vec<Command> {
    let mut out = vec![
        Command::DefineLegalEntity(LegalEntity {
            code: code("E"),
            name: "Entity".into(),
            functional_currency: CurrencyCode::new("USD").unwrap(),
        }),
        Command::DefineLocation(Location {
            code: code("WH"),
            name: "Warehouse".into(),
            kind: LocationKind::Warehouse,
            legal_entity: code("E"),
            address: Default::default(),
            geo: None,
            time_zone: "UTC".into(),
            capabilities: Capabilities { ship: true, pickup: false, returns: true },
        }),
        Command::DefineItem(Item {
            sku: Sku::new("TEE").unwrap(),
            title: "Tee".into(),
            style: None,
            options: Default::default(),
            gtin: None,
            uom_conversions: Default::default(),
            components: vec![],
            sku_class: None,
        }),
        Command::DefineChannel(Channel {
            code: code("WEB"),
            name: "Web".into(),
            kind: ChannelKind::Shopify,
            legal_entity: code("E"),
            locations: vec![code("WH")],
            priority: 1,
            allocation: AllocationPolicy::default(),
        }),
        Command::DefineChannel(Channel {
            code: code("MARKET"),
            name: "Marketplace".into(),
            kind: ChannelKind::Amazon,
            legal_entity: code("E"),
            locations: vec![code("WH")],
            priority: 2,
            allocation: AllocationPolicy::default(),
        }),
        Command::Move(MoveCommand::Receipt {
            sku: Sku::new("TEE").unwrap(),
            location: code("WH"),
            units: 10,
            expectation: None,
        }),
        Command::Order(OrderCommand::Configure(OrderSetting::ShippingMethods {
            channel: code("WEB"),
            methods: ["ground".to_owned()].into(),
        })),
        Command::Order(OrderCommand::Configure(OrderSetting::Taxable {
            country: "US".into(),
            region: String::new(),
            taxable: false,
        })),
    ];
    out.push(Command::Returns(ordo_domain::returns::ReturnCommand::SetPolicy {
        channel: code("WEB"),
        policy: ordo_domain::returns::ReturnPolicy {
            window_days: 30,
            returnable_classes: Default::default(),
            restocking_fee_bp: 1_000,
            return_shipping_minor: 0,
            trusted_customers: Default::default(),
            refund_approval_above_minor: 3_000,
        },
    }));
    // A person who signs in with a password.
    out.push(Command::Access(AccessCommand::AddUser(User {
        name: "pat".into(),
        role: Role::CustomerService,
        password_hash: hash_password("correct horse battery"),
        created_at: Timestamp::from_millis(T0),
    })));
    // One user and token per role, plus a revoked one.
    for role in Role::ALL {
        out.push(Command::Access(AccessCommand::AddUser(User {
            name: role.as_str().into(),
            role,
            password_hash: "$argon2id$unused".into(),
            created_at: Timestamp::from_millis(T0),
        })));
    }
    out
}

struct Server {
    addr: SocketAddr,
    client: Client,
    tokens: Vec<(Role, String)>,
    revoked: String,
    /// An admin token that sees the MARKET channel only.
    market_only: String,
    handle: EngineHandle,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("api.db")).unwrap();
        let mut engine = Engine::open(store, Box::new(FixedClock::at(Timestamp::from_millis(T0)))).unwrap();
        for c in setup_commands() {
            engine.execute_one(c).unwrap();
        }
        let mut tokens = Vec::new();
        for role in Role::ALL {
            let (id, token, sha256_hex) = new_token();
            let t = Token {
                id,
                user: role.as_str().into(),
                sha256_hex,
                created_at: Timestamp::from_millis(T0),
                expires_at: None,
                revoked_at: None,
            };
            engine.execute_one(Command::Access(AccessCommand::IssueToken(t))).unwrap();
            tokens.push((role, token));
        }
        let (id, revoked, sha256_hex) = new_token();
        let t = Token {
            id: id.clone(),
            user: "admin".into(),
            sha256_hex,
            created_at: Timestamp::from_millis(T0),
            expires_at: None,
            revoked_at: None,
        };
        engine.execute_one(Command::Access(AccessCommand::IssueToken(t))).unwrap();
        engine.execute_one(Command::Access(AccessCommand::RevokeToken { id, at: Timestamp::from_millis(T0) })).unwrap();
        let (id, market_only, sha256_hex) = new_token();
        let t = Token {
            id,
            user: "admin".into(),
            sha256_hex,
            created_at: Timestamp::from_millis(T0),
            expires_at: None,
            revoked_at: None,
        };
        let scoped = AccessCommand::IssueScopedToken { token: t, channels: vec![code("MARKET")] };
        engine.execute_one(Command::Access(scoped)).unwrap();
        Self::serve(engine, dir, tokens, revoked, market_only)
    }

    fn serve(
        engine: Engine<SqliteStore>,
        dir: tempfile::TempDir,
        tokens: Vec<(Role, String)>,
        revoked: String,
        market_only: String,
    ) -> Self {
        let (handle, _thread) = EngineHandle::spawn(engine, 1_000);
        let service = ordo_api::Service::new(handle.clone(), || Timestamp::from_millis(T0 + 1_000));
        service.set_shopify_webhook_secret(b"test-webhook-secret");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(ordo_api::serve(listener, service, std::future::pending()));
        Self { addr, client: Client::new(), tokens, revoked, market_only, handle, _runtime: runtime, _dir: dir }
    }

    /// Stops the service and its engine, then starts both again over the same database (the
    /// state rebuilt from the journal), as a process restart would.
    fn restart(self) -> Self {
        let Server { tokens, revoked, market_only, handle, _runtime, _dir, .. } = self;
        drop(handle);
        _runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        let store = SqliteStore::open(_dir.path().join("api.db")).unwrap();
        let engine = Engine::open(store, Box::new(FixedClock::at(Timestamp::from_millis(T0)))).unwrap();
        Self::serve(engine, _dir, tokens, revoked, market_only)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn get(&self, path: &str, role: Option<Role>) -> (StatusCode, Value) {
        let mut r = self.client.get(self.url(path));
        if let Some(role) = role {
            r = r.bearer_auth(self.token(role));
        }
        let resp = r.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn post(&self, path: &str, role: Role, key: Option<&str>, body: &str) -> (StatusCode, String) {
        let mut r = self.client.post(self.url(path)).bearer_auth(self.token(role)).body(body.to_owned());
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        let resp = r.send().unwrap();
        (resp.status(), resp.text().unwrap())
    }

    fn journal_seq(&self) -> u64 {
        self.handle.query(|s| s.last_seq())
    }
}

fn order_body(id: &str, quantity: i64) -> String {
    json!({
        "channel": "WEB", "channel_order_id": id, "channel_updated_at": T0, "placed_at": T0,
        "customer": {"id": "C-1", "name": "Ada", "account_status": "active"},
        "ship_to": {"name": "Ada", "line1": "1 Main St", "city": "Boston", "region": "MA", "postal_code": "02101", "country": "US"},
        "lines": [{"line_id": "1", "item": {"sku": "TEE"}, "quantity": quantity, "unit_price_minor": 2000}],
        "shipping": {"method": "ground", "service_level": "standard"},
        "payment_status": "captured",
        "fulfillment": {"ship": {"ship_from_store_allowed": false}},
        "currency": "USD"
    })
    .to_string()
}

fn problem_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v["code"].as_str().unwrap_or_else(|| panic!("no code: {body}")).to_owned()
}

/// Every route of the served document, with every role: no credentials → 401, a role without
/// the route's permission → 403, a role with it → neither. Generated from the document, so a
/// new route is covered without touching this test.
#[test]
fn the_route_role_matrix_follows_the_document() {
    let s = Server::start();
    let (status, doc) = s.get("/api/openapi.json", None);
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    // Every route the router serves is in the document, and nothing else is.
    let documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), p.clone())))
        .collect();
    let served: Vec<(String, String)> =
        ordo_api::ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(documented.len(), served.len());
    for route in &served {
        assert!(documented.contains(route), "{route:?} is served but not documented");
    }
    // Every body is described by its Rust type (a reference into the components), not "any object".
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let Some(body) = op.get("requestBody") else { continue };
            let schema = &body["content"]["application/json"]["schema"];
            if path.starts_with("/webhooks/") {
                // A channel's own format (read by `ordo-channels`), documented as a JSON object.
                assert_eq!(schema["type"], "object", "{path}");
                continue;
            }
            let name = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/"));
            let name = name.unwrap_or_else(|| panic!("{method} {path}: body schema {schema}"));
            assert!(schemas.contains_key(name), "{method} {path}: {name} is not in the components");
        }
    }
    let order = &schemas["Order"];
    assert!(order["required"].as_array().unwrap().contains(&json!("lines")), "{order:#}");
    assert_eq!(schemas["Sku"]["maxLength"], 64);
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = path.replace("{channel}", "WEB").replace("{order_id}", "NOPE");
        for (method, op) in ops.as_object().unwrap() {
            let call = |role: Option<Role>| -> StatusCode {
                let mut r = match method.as_str() {
                    "get" => s.client.get(s.url(&concrete)),
                    "post" => s.client.post(s.url(&concrete)).body("{}"),
                    other => panic!("unexpected method {other}"),
                };
                if let Some(role) = role {
                    r = r.bearer_auth(s.token(role));
                }
                r.send().unwrap().status()
            };
            let Some(permission) = op["x-permission"].as_str() else {
                let status = call(None);
                if op.get("x-signature").is_some() {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} unsigned");
                    continue;
                }
                match method.as_str() {
                    "get" => assert!(status.is_success(), "{method} {path} is open: {status}"),
                    _ => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{method} {path}: {status}"
                    ),
                }
                continue;
            };
            let permission = Permission::ALL.into_iter().find(|p| p.as_str() == permission).unwrap();
            assert_eq!(call(None), StatusCode::UNAUTHORIZED, "{method} {path} without credentials");
            for role in Role::ALL {
                let status = call(Some(role));
                if role.allows(permission) {
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{method} {path} as {role:?}: {status}"
                    );
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role:?}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 13 * Role::ALL.len(), "{checked}");
}

#[test]
fn an_idempotent_capture_runs_once_and_repeats_its_answer() {
    let s = Server::start();
    let before = s.journal_seq();
    let (status, first) = s.post("/api/v1/orders", Role::Integration, Some("web-1001"), &order_body("1001", 2));
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["status"], "allocated");
    assert_eq!(v["journal_seq"], before + 1);
    assert_eq!(s.journal_seq(), before + 1);
    // The repeat: identical bytes, nothing new in the journal.
    let (status, again) = s.post("/api/v1/orders", Role::Integration, Some("web-1001"), &order_body("1001", 2));
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    assert_eq!(s.journal_seq(), before + 1);
    // Same key, another body: 422, nothing changed.
    let (status, body) = s.post("/api/v1/orders", Role::Integration, Some("web-1001"), &order_body("1001", 3));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem_code(&body), "idempotency_key_reused");
    assert_eq!(s.journal_seq(), before + 1);
    // Keys belong to their user: another user's same key is a new request (and the order
    // itself is then already captured: refused, nothing changed).
    let (status, body) = s.post("/api/v1/orders", Role::OpsManager, Some("web-1001"), &order_body("1001", 2));
    assert_eq!((status, problem_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "rejected".to_owned()), "{body}");
    assert_eq!(s.journal_seq(), before + 1);
    // Reserved stock follows: 10 − 2.
    let (_, stock) = s.get("/api/v1/stock?sku=TEE", Some(Role::Viewer));
    assert_eq!((stock[0]["available"].as_i64(), stock[0]["committed"].as_i64()), (Some(8), Some(2)));
    // Without a key the answer has the same shape.
    // A quantity written as 1.0 is the integer 1 (JSON does not tell them apart).
    let float_quantity = order_body("1002", 1).replace("\"quantity\":1", "\"quantity\":1.0");
    let (status, plain) = s.post("/api/v1/orders", Role::Integration, None, &float_quantity);
    assert_eq!(status, StatusCode::CREATED);
    let plain: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(plain["status"], "allocated");
    assert_eq!(plain["journal_seq"], before + 2);
}

#[test]
fn bad_input_is_answered_with_what_is_wrong_and_changes_nothing() {
    let s = Server::start();
    let before = s.journal_seq();
    let (status, body) = s.post("/api/v1/orders", Role::Admin, None, "{\n  \"channel\": \"WEB\",\n  \"colour\": 1\n}");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "invalid_body");
    assert_eq!(v["errors"][0]["field"], "colour", "{v:#}");
    assert_eq!(v["errors"][0]["line"], 3);
    let (status, body) = s.post("/api/v1/movements", Role::Admin, None, "{\"Adjust\": {\"sku\": \"TEE\"}}");
    assert_eq!((status, problem_code(&body)), (StatusCode::BAD_REQUEST, "invalid_body".to_owned()));
    // A nested mistake is named by its path.
    let negative = order_body("1003", 1).replace("\"quantity\":1", "\"quantity\":-1.5");
    let (status, body) = s.post("/api/v1/orders", Role::Admin, None, &negative);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errors"][0]["field"], "lines[0].quantity", "{v:#}");
    // A struct written as an array is not an object, though serde alone would take it.
    for not_an_object in ["[]", "[\"x\"]", "null", "7"] {
        let (status, body) = s.post("/api/v1/orders/WEB/NOPE/hold", Role::Admin, None, not_an_object);
        assert_eq!((status, problem_code(&body)), (StatusCode::BAD_REQUEST, "invalid_body".to_owned()));
    }
    // A well-formed movement the ledger refuses: 422 with the rule, nothing recorded.
    let overdraw = json!({"Adjust": {"sku": "TEE", "location": "WH", "delta": -11, "reason": "lost"}}).to_string();
    let (status, body) = s.post("/api/v1/movements", Role::Warehouse, None, &overdraw);
    assert_eq!((status, problem_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "rejected".to_owned()), "{body}");
    // Unknown things are 404; bad parameters 400.
    let (status, v) = s.get("/api/v1/orders/WEB/NOPE", Some(Role::Viewer));
    assert_eq!((status, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, body) = s.post("/api/v1/orders/WEB/NOPE/hold", Role::CustomerService, None, "{\"reason\": \"x\"}");
    assert_eq!((status, problem_code(&body)), (StatusCode::NOT_FOUND, "not_found".to_owned()));
    for bad in
        ["/api/v1/orders?limit=0", "/api/v1/orders?limit=501", "/api/v1/orders?state=lost", "/api/v1/items?colour=red"]
    {
        let (status, v) = s.get(bad, Some(Role::Viewer));
        assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_parameter")), "{bad}");
    }
    let (status, v) = s.get("/api/v1/nothing-here", Some(Role::Viewer));
    assert_eq!((status, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    // A body over the limit is refused before it is read in full.
    let big = "x".repeat(ordo_api::MAX_BODY_BYTES + 1);
    let (status, _) = s.post("/api/v1/orders", Role::Admin, None, &big);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.journal_seq(), before, "nothing was recorded");
}

#[test]
fn revoked_tokens_are_refused_and_pages_follow_their_cursor() {
    let s = Server::start();
    let resp = s.client.get(s.url("/api/v1/items")).bearer_auth(&s.revoked).send().unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    for id in ["A", "B", "C"] {
        let (status, body) = s.post("/api/v1/orders", Role::Integration, None, &order_body(id, 1));
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, first) = s.get("/api/v1/orders?limit=2", Some(Role::Viewer));
    let ids: Vec<&str> =
        first["items"].as_array().unwrap().iter().map(|o| o["order"]["channel_order_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["A", "B"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    assert_eq!(cursor, "WEB/B");
    let (_, second) = s.get(&format!("/api/v1/orders?limit=2&cursor={cursor}"), Some(Role::Viewer));
    let ids: Vec<&str> =
        second["items"].as_array().unwrap().iter().map(|o| o["order"]["channel_order_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["C"]);
    assert!(second["next_cursor"].is_null());
    // Health, readiness and metrics answer without credentials.
    assert_eq!(s.get("/healthz", None).0, StatusCode::OK);
    assert_eq!(s.get("/readyz", None).1["ready"], true);
    let (_, metrics) = s.get("/metrics", None);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains(
            "ordo_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/orders\",status=\"201\"} 3"
        ),
        "{text}"
    );
    assert!(text.contains("ordo_commit_wait_seconds_count"), "{text}");
    // The stored hash is not the token.
    let hash = ordo_api::auth::sha256_hex(s.token(Role::Admin).as_bytes());
    assert_ne!(hash, s.token(Role::Admin));
    assert!(hash_password("p4ssword!").starts_with("$argon2id$"));
}

/// The floor over HTTP: the warehouse dispatches, picks, packs and ships; the carrier's
/// delivery and the close follow; each answer is the order's new status, and stock follows.
#[test]
fn an_order_goes_across_the_floor_over_http() {
    let s = Server::start();
    let (status, body) = s.post("/api/v1/orders", Role::Integration, None, &order_body("F-1", 3));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let step = |action: &str, role: Role, body: &str| -> Value {
        let (status, answer) = s.post(&format!("/api/v1/orders/WEB/F-1/{action}"), role, None, body);
        assert_eq!(status, StatusCode::CREATED, "{action}: {answer}");
        serde_json::from_str(&answer).unwrap()
    };
    // Packing before picking is refused by the state machine, and changes nothing.
    let before = s.journal_seq();
    let (status, body) = s.post("/api/v1/orders/WEB/F-1/pack", Role::Warehouse, None, "{}");
    assert_eq!((status, problem_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "rejected".to_owned()), "{body}");
    assert_eq!(s.journal_seq(), before);
    assert_eq!(step("dispatch", Role::Warehouse, "{}")["status"], "released");
    assert_eq!(step("pick", Role::Warehouse, "{}")["status"], "picking");
    assert_eq!(step("pack", Role::Warehouse, "{}")["status"], "packed");
    let (_, stock) = s.get("/api/v1/stock?sku=TEE", Some(Role::Viewer));
    assert_eq!((stock[0]["available"].as_i64(), stock[0]["picked"].as_i64()), (Some(7), Some(3)));
    let parcel = |id: &str, units: i64| {
        json!({"shipment_id": id, "location": "WH", "carrier": "UPS", "service": "ground", "tracking": format!("1Z{id}"),
               "lines": [{"line_id": "1", "units": units}]})
        .to_string()
    };
    assert_eq!(step("ship", Role::Warehouse, &parcel("S1", 1))["status"], "partially_shipped");
    assert_eq!(step("ship", Role::Warehouse, &parcel("S2", 2))["status"], "shipped");
    assert_eq!(step("deliver", Role::Integration, "{\"shipment_id\": \"S1\"}")["status"], "shipped");
    assert_eq!(step("deliver", Role::Integration, "{\"shipment_id\": \"S2\"}")["status"], "delivered");
    assert_eq!(step("close", Role::OpsManager, "{\"reason\": \"done\"}")["status"], "closed");
    let (_, stock) = s.get("/api/v1/stock?sku=TEE", Some(Role::Viewer));
    assert_eq!((stock[0]["available"].as_i64(), stock[0]["picked"].as_i64()), (Some(7), Some(0)));
    let (_, order) = s.get("/api/v1/orders/WEB/F-1", Some(Role::Viewer));
    assert_eq!(order["shipments"].as_array().map(Vec::len), Some(2));
    // A line cancel and a payment update on another order.
    let (status, _) = s.post("/api/v1/orders", Role::Integration, None, &order_body("F-2", 1));
    assert_eq!(status, StatusCode::CREATED);
    let failed = step_on(&s, "F-2", "payment", Role::Integration, "{\"status\": \"failed\"}");
    assert_eq!(
        (failed["status"].as_str(), failed["holds"][0].as_str()),
        (Some("on_hold"), Some("PAYMENT_NOT_CAPTURED"))
    );
    let cancelled =
        step_on(&s, "F-2", "lines/cancel", Role::CustomerService, "{\"line_id\": \"1\", \"reason\": \"fraud\"}");
    assert_eq!(cancelled["status"], "cancelled");
}

fn step_on(s: &Server, id: &str, action: &str, role: Role, body: &str) -> Value {
    let (status, answer) = s.post(&format!("/api/v1/orders/WEB/{id}/{action}"), role, None, body);
    assert_eq!(status, StatusCode::CREATED, "{action}: {answer}");
    serde_json::from_str(&answer).unwrap()
}

/// People sign in with a password: a session cookie (HttpOnly, SameSite=Strict) authenticates
/// reads; changes also need the session's CSRF token; failed sign-ins are throttled per user.
#[test]
fn sessions_sign_in_need_csrf_for_changes_and_throttle_failures() {
    let s = Server::start();
    let login = |user: &str, password: &str| {
        s.client
            .post(s.url("/api/v1/login"))
            .body(json!({"user": user, "password": password}).to_string())
            .send()
            .unwrap()
    };
    // Unknown users and wrong passwords look alike; the sixth failure in a minute is 429.
    assert_eq!(login("nobody", "x").status(), StatusCode::UNAUTHORIZED);
    for _ in 0..5 {
        assert_eq!(login("pat", "wrong").status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = login("pat", "correct horse battery");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
    assert_eq!(problem_code(&throttled.text().unwrap()), "too_many_requests");

    // Another server (fresh throttle): the right password opens a session.
    let s = Server::start();
    let resp = s
        .client
        .post(s.url("/api/v1/login"))
        .body(json!({"user": "pat", "password": "correct horse battery"}).to_string())
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let v: Value = resp.json().unwrap();
    assert_eq!((v["user"].as_str(), v["role"].as_str()), (Some("pat"), Some("customer_service")));
    let csrf = v["csrf_token"].as_str().unwrap().to_owned();
    let read = s.client.get(s.url("/api/v1/orders")).header("cookie", &cookie).send().unwrap();
    assert_eq!(read.status(), StatusCode::OK, "reads need only the cookie");
    let capture = |csrf: Option<&str>, id: &str| {
        let mut r = s.client.post(s.url("/api/v1/orders")).header("cookie", &cookie).body(order_body(id, 1));
        if let Some(t) = csrf {
            r = r.header("x-csrf-token", t);
        }
        r.send().unwrap()
    };
    let before = s.journal_seq();
    let refused = capture(None, "S-1");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem_code(&refused.text().unwrap()), "csrf_failed");
    assert_eq!(capture(Some("forged"), "S-1").status(), StatusCode::FORBIDDEN);
    assert_eq!(s.journal_seq(), before, "nothing recorded without the CSRF token");
    assert_eq!(capture(Some(&csrf), "S-1").status(), StatusCode::CREATED);
    // Signed out: the cookie no longer works.
    let out = s.client.post(s.url("/api/v1/logout")).header("cookie", &cookie).body("{}").send().unwrap();
    assert_eq!(out.json::<Value>().unwrap()["signed_out"], true);
    let after = s.client.get(s.url("/api/v1/orders")).header("cookie", &cookie).send().unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

/// Four-eyes: a large adjustment waits for a second person; the requester cannot approve it;
/// another user's approval makes it take effect; a rejection leaves stock alone.
#[test]
fn large_adjustments_wait_for_a_second_person() {
    let s = Server::start();
    let stock = || {
        let (_, v) = s.get("/api/v1/stock?sku=TEE&location=WH", Some(Role::Viewer));
        v[0]["available"].as_i64().unwrap()
    };
    let adjust =
        |delta: i64| json!({"Adjust": {"sku": "TEE", "location": "WH", "delta": delta, "reason": "found"}}).to_string();
    // Small: takes effect at once.
    let (status, body) = s.post("/api/v1/movements", Role::Admin, None, &adjust(5));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stock(), 15);
    // Large: a request, nothing moves yet.
    let (status, body) = s.post("/api/v1/movements", Role::Admin, Some("adj-1"), &adjust(150));
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "approval_requested");
    assert!(v["why"].as_str().unwrap().contains("above the 100 unit threshold"), "{v}");
    let id = v["approval_id"].as_u64().unwrap();
    assert_eq!(stock(), 15);
    // The repeat is the same request, not a second one.
    let (status, again) = s.post("/api/v1/movements", Role::Admin, Some("adj-1"), &adjust(150));
    assert_eq!((status, again.as_str()), (StatusCode::ACCEPTED, body.as_str()));
    let (_, pending) = s.get("/api/v1/approvals?status=pending", Some(Role::Viewer));
    assert_eq!(pending.as_array().map(Vec::len), Some(1));
    assert_eq!(pending[0]["requested_by"], "admin");
    // The requester cannot approve their own request.
    let before = s.journal_seq();
    let (status, body) =
        s.post(&format!("/api/v1/approvals/{id}/approve"), Role::Admin, None, "{\"reason\": \"mine\"}");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("cannot approve it"), "{body}");
    assert_eq!(s.journal_seq(), before);
    // A role without `approve` is refused by the route.
    let (status, _) = s.post(&format!("/api/v1/approvals/{id}/approve"), Role::Warehouse, None, "{\"reason\": \"ok\"}");
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another person approves: it takes effect now.
    let (status, body) =
        s.post(&format!("/api/v1/approvals/{id}/approve"), Role::OpsManager, None, "{\"reason\": \"counted twice\"}");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stock(), 165);
    let (status, _) = s.post(&format!("/api/v1/approvals/{id}/reject"), Role::Finance, None, "{\"reason\": \"late\"}");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no longer pending");
    // A rejected request changes no stock.
    let (_, body) = s.post("/api/v1/movements", Role::Admin, None, &adjust(-120));
    let id2 = serde_json::from_str::<Value>(&body).unwrap()["approval_id"].as_u64().unwrap();
    let (status, _) =
        s.post(&format!("/api/v1/approvals/{id2}/reject"), Role::Finance, None, "{\"reason\": \"no evidence\"}");
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(stock(), 165);
    let (_, all) = s.get("/api/v1/approvals", Some(Role::Viewer));
    let statuses: Vec<String> = all.as_array().unwrap().iter().map(|r| r["status"].to_string()).collect();
    assert!(statuses[0].contains("approved") && statuses[1].contains("rejected"), "{statuses:?}");
    let (status, _) = s.post("/api/v1/approvals/99/approve", Role::OpsManager, None, "{\"reason\": \"x\"}");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Master data over HTTP goes through the same gate: a new item waits for approval, a
/// location or a shipping-method list takes effect at once, a list price waits.
#[test]
fn master_data_changes_go_through_the_gate() {
    let s = Server::start();
    let item = json!({"sku": "CAP", "title": "Cap", "style": null, "options": {}, "gtin": null,
                      "uom_conversions": {}, "components": [], "sku_class": null})
    .to_string();
    let (status, body) = s.post("/api/v1/items", Role::OpsManager, None, &item);
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["approval_id"].as_u64().unwrap();
    let skus = |s: &Server| -> Vec<String> {
        let (_, v) = s.get("/api/v1/items", Some(Role::Viewer));
        v["items"].as_array().unwrap().iter().map(|i| i["sku"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(skus(&s), ["TEE"]);
    let (status, _) =
        s.post(&format!("/api/v1/approvals/{id}/approve"), Role::Admin, None, "{\"reason\": \"new line\"}");
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(skus(&s), ["CAP", "TEE"]);
    let methods = json!({"shipping_methods": {"channel": "WEB", "methods": ["ground", "express"]}}).to_string();
    let (status, body) = s.post("/api/v1/order-settings", Role::OpsManager, None, &methods);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let price =
        json!({"price": {"channel": "WEB", "sku": "TEE", "currency": "USD", "unit_price_minor": 2100}}).to_string();
    let (status, body) = s.post("/api/v1/order-settings", Role::OpsManager, None, &price);
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = s.post("/api/v1/order-settings", Role::OpsManager, None, "{\"colour\": 1}");
    assert_eq!((status, problem_code(&body)), (StatusCode::BAD_REQUEST, "invalid_body".to_owned()));
    let (status, _) = s.post("/api/v1/items", Role::Warehouse, None, &item);
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Every change made through the API is journaled with who made it, in which role, through
/// which door and under which request id; `GET /api/v1/audit?entity=…` reads it back.
#[test]
fn the_audit_trail_names_actor_role_source_and_request_id() {
    let s = Server::start();
    let resp = s
        .client
        .post(s.url("/api/v1/orders"))
        .bearer_auth(s.token(Role::Integration))
        .header("x-request-id", "req-42")
        .body(order_body("A-1", 1))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (status, _) =
        s.post("/api/v1/orders/WEB/A-1/hold", Role::CustomerService, Some("hold-1"), "{\"reason\": \"call\"}");
    assert_eq!(status, StatusCode::CREATED);
    let (status, trail) = s.get("/api/v1/audit?entity=order:WEB/A-1", Some(Role::Viewer));
    assert_eq!(status, StatusCode::OK, "{trail}");
    let entries = trail["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{trail:#}");
    assert_eq!(
        (
            entries[0]["actor"].as_str(),
            entries[0]["role"].as_str(),
            entries[0]["source"].as_str(),
            entries[0]["request_id"].as_str()
        ),
        (Some("integration"), Some("integration"), Some("api"), Some("req-42"))
    );
    assert_eq!(
        (entries[1]["actor"].as_str(), entries[1]["role"].as_str()),
        (Some("customer_service"), Some("customer_service"))
    );
    assert!(entries[0]["seq"].as_u64() < entries[1]["seq"].as_u64());
    // What each changed, before and after: the capture created the order, the hold moved it.
    let change = |entry: &Value, what: &str| -> (Value, Value) {
        let c = entry["changes"].as_array().unwrap().iter().find(|c| c["what"] == what);
        let c = c.unwrap_or_else(|| panic!("no change of {what} in {entry:#}"));
        (c["before"].clone(), c["after"].clone())
    };
    assert_eq!(change(&entries[0], "status"), (Value::Null, json!("allocated")));
    assert_eq!(change(&entries[1], "status"), (json!("allocated"), json!("on_hold")));
    assert_eq!(change(&entries[1], "holds"), (json!([]), json!(["MANUAL"])));
    assert!(
        entries[1]["changes"].as_array().unwrap().iter().all(|c| c["what"] != "order"),
        "unchanged fields are left out"
    );
    // By SKU: the ledger accounts each change moved, before and after (10 received, 1 reserved).
    let (_, by_sku) = s.get("/api/v1/audit?entity=sku:TEE", Some(Role::Viewer));
    let sku_entries = by_sku["entries"].as_array().unwrap();
    assert!(sku_entries.len() >= 3, "{by_sku:#}");
    let capture = sku_entries.iter().find(|e| e["request_id"] == "req-42").unwrap();
    assert_eq!(change(capture, "available@WH"), (json!(10), json!(9)));
    assert_eq!(change(capture, "committed@WH"), (json!(0), json!(1)));
    // By actor; the limit keeps the newest.
    let (_, last) = s.get("/api/v1/audit?entity=sku:TEE&limit=1", Some(Role::Viewer));
    assert_eq!(last["entries"].as_array().unwrap().len(), 1);
    assert_eq!(last["entries"][0]["actor"], "customer_service");
    let (_, by_user) = s.get("/api/v1/audit?entity=user:customer_service", Some(Role::Viewer));
    assert!(by_user["entries"].as_array().unwrap().iter().any(|e| e["request_id"].is_string()), "{by_user:#}");
    for bad in ["/api/v1/audit", "/api/v1/audit?entity=planet:mars", "/api/v1/audit?entity=order:"] {
        let (status, v) = s.get(bad, Some(Role::Viewer));
        assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_parameter")), "{bad}");
    }
}

/// A token scoped to one channel: every order route of the document answers an order of another
/// channel exactly as a missing one (404), changes nothing, and lists leave it out.
#[test]
fn objects_outside_a_scoped_token_are_not_there() {
    let s = Server::start();
    let (status, body) = s.post("/api/v1/orders", Role::Integration, None, &order_body("2001", 1));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scoped = |method: &str, path: &str, body: &str| -> (StatusCode, String) {
        let r = match method {
            "get" => s.client.get(s.url(path)),
            _ => s.client.post(s.url(path)).body(body.to_owned()),
        };
        let resp = r.bearer_auth(&s.market_only).send().unwrap();
        (resp.status(), resp.text().unwrap())
    };
    let before = s.journal_seq();
    let (_, doc) = s.get("/api/openapi.json", None);
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.contains("{order_id}") {
            continue;
        }
        let concrete = path.replace("{channel}", "WEB").replace("{order_id}", "2001");
        for method in ops.as_object().unwrap().keys() {
            let body = if concrete.ends_with("/payment") { r#"{"status": "captured"}"# } else { r#"{"reason": "x"}"# };
            let (status, text) = scoped(method, &concrete, body);
            assert_eq!(
                (status, problem_code(&text)),
                (StatusCode::NOT_FOUND, "not_found".to_owned()),
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked}");
    assert_eq!(s.journal_seq(), before, "nothing changed");
    // The same order is there for an unscoped caller.
    let (status, order) = s.get("/api/v1/orders/WEB/2001", Some(Role::Viewer));
    assert_eq!((status, order["status"].as_str()), (StatusCode::OK, Some("allocated")));
    // Lists leave it out; the audit of it is 404; capture for another channel is refused.
    let (_, list) = scoped("get", "/api/v1/orders", "");
    assert_eq!(serde_json::from_str::<Value>(&list).unwrap()["items"], json!([]));
    let (_, ats) = scoped("get", "/api/v1/ats?sku=TEE", "");
    let ats: Value = serde_json::from_str(&ats).unwrap();
    assert_eq!(ats.as_array().unwrap().iter().map(|r| r["channel"].as_str().unwrap()).collect::<Vec<_>>(), ["MARKET"]);
    let (status, _) = scoped("get", "/api/v1/audit?entity=order:WEB/2001", "");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, text) = scoped("post", "/api/v1/orders", &order_body("2002", 1));
    assert_eq!((status, problem_code(&text)), (StatusCode::FORBIDDEN, "forbidden".to_owned()));
    assert_eq!(s.journal_seq(), before, "nothing changed");
}

/// A return over HTTP: authorized by customer service, received and inspected by the warehouse,
/// and a refund above the policy's threshold held for a second person with the right role.
#[test]
fn a_large_refund_waits_for_approval_over_http() {
    let s = Server::start();
    let (status, body) = s.post("/api/v1/orders", Role::Integration, None, &order_body("R-1", 2));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (action, body) in [("dispatch", "{}"), ("pick", "{}"), ("pack", "{}")] {
        step_on(&s, "R-1", action, Role::Warehouse, body);
    }
    let parcel = json!({"shipment_id": "S1", "location": "WH", "carrier": "UPS", "service": "ground", "tracking": "1Z", "lines": []});
    step_on(&s, "R-1", "ship", Role::Warehouse, &parcel.to_string());
    let rma = json!({"rma_id": "RMA-1", "channel": "WEB", "order_id": "R-1", "lines": [{"line_id": "1", "units": 2}], "reason": "too small"});
    let (status, body) = s.post("/api/v1/returns", Role::Warehouse, None, &rma.to_string());
    assert_eq!(status, StatusCode::FORBIDDEN, "warehouse does not authorize returns: {body}");
    let (status, body) = s.post("/api/v1/returns", Role::CustomerService, Some("rma-1"), &rma.to_string());
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let unknown = json!({"rma_id": "RMA-2", "channel": "WEB", "order_id": "NOPE", "lines": [{"line_id": "1", "units": 1}], "reason": "x"});
    let (status, _) = s.post("/api/v1/returns", Role::CustomerService, None, &unknown.to_string());
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s.post("/api/v1/returns/RMA-1/receive", Role::Warehouse, None, "{\"location\": \"WH\"}");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let grades = json!({"grades": [{"line_id": "1", "grade": "A"}]});
    let (status, body) = s.post("/api/v1/returns/RMA-1/inspect", Role::Warehouse, None, &grades.to_string());
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // 2 × 20.00 = 40.00 is above the 30.00 threshold: an approval request, not a refund.
    let (status, body) = s.post("/api/v1/returns/RMA-1/refund", Role::CustomerService, None, "{}");
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["approval_id"].as_u64().unwrap();
    let (_, shown) = s.get("/api/v1/returns/RMA-1", Some(Role::Viewer));
    assert_eq!(shown["refund"], Value::Null);
    let reason = "{\"reason\": \"checked\"}";
    let (status, _) = s.post(&format!("/api/v1/approvals/{id}/approve"), Role::CustomerService, None, reason);
    assert_eq!(status, StatusCode::FORBIDDEN, "customer service may not approve");
    let (status, body) = s.post(&format!("/api/v1/approvals/{id}/approve"), Role::Finance, None, reason);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, shown) = s.get("/api/v1/returns/RMA-1", Some(Role::Viewer));
    assert_eq!(shown["refund"]["amount_minor"], 4_000);
    assert_eq!(shown["status"], "closed");
    // Outside a scoped token's channels the RMA is not there.
    let resp = s.client.get(s.url("/api/v1/returns/RMA-1")).bearer_auth(&s.market_only).send().unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (_, list) = s.get("/api/v1/returns", Some(Role::Viewer));
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}

/// An exchange over HTTP: the inspected RMA settled with a replacement order (like for like),
/// which is then an ordinary order of the channel's, reserved and visible.
#[test]
fn an_exchange_captures_a_replacement_order_over_http() {
    let s = Server::start();
    let (status, body) = s.post("/api/v1/orders", Role::Integration, None, &order_body("X-1", 1));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (action, body) in [("dispatch", "{}"), ("pick", "{}"), ("pack", "{}")] {
        step_on(&s, "X-1", action, Role::Warehouse, body);
    }
    let parcel = json!({"shipment_id": "S1", "location": "WH", "carrier": "UPS", "service": "ground", "tracking": "1Z", "lines": []});
    step_on(&s, "X-1", "ship", Role::Warehouse, &parcel.to_string());
    let rma = json!({"rma_id": "RMA-X", "channel": "WEB", "order_id": "X-1", "lines": [{"line_id": "1", "units": 1}], "reason": "faulty"});
    let (status, body) = s.post("/api/v1/returns", Role::CustomerService, None, &rma.to_string());
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = s.post("/api/v1/returns/RMA-X/receive", Role::Warehouse, None, "{\"location\": \"WH\"}");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let grades = json!({"grades": [{"line_id": "1", "grade": "D"}]});
    let (status, body) = s.post("/api/v1/returns/RMA-X/inspect", Role::Warehouse, None, &grades.to_string());
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let exchange = json!({"replacement_order_id": "EX-X-1", "lines": [{"line_id": "1", "sku": "TEE"}]});
    let before = s.journal_seq();
    let (status, _) = s.post("/api/v1/returns/RMA-X/exchange", Role::Warehouse, None, &exchange.to_string());
    assert_eq!(status, StatusCode::FORBIDDEN, "the warehouse does not settle returns");
    let bad = json!({"replacement_order_id": "EX-X-1", "lines": [{"line_id": "1", "sku": "TEE", "units": 1}]});
    let (status, body) = s.post("/api/v1/returns/RMA-X/exchange", Role::CustomerService, None, &bad.to_string());
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("units"), "names the field: {body}");
    let taken = json!({"replacement_order_id": "X-1", "lines": [{"line_id": "1", "sku": "TEE"}]});
    let (status, body) = s.post("/api/v1/returns/RMA-X/exchange", Role::CustomerService, None, &taken.to_string());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("already exists"), "{body}");
    assert_eq!(s.journal_seq(), before, "refusals change nothing");
    let (status, body) = s.post("/api/v1/returns/RMA-X/exchange", Role::CustomerService, None, &exchange.to_string());
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, shown) = s.get("/api/v1/returns/RMA-X", Some(Role::Viewer));
    assert_eq!(shown["status"], "closed");
    assert_eq!(shown["refund"], Value::Null, "nothing refunded: all of it exchanged");
    assert_eq!(shown["exchange"]["replacement"]["channel_order_id"], "EX-X-1");
    assert_eq!(shown["exchange"]["credit"]["amount_minor"], 2_000);
    let (status, order) = s.get("/api/v1/orders/WEB/EX-X-1", Some(Role::Viewer));
    assert_eq!((status, order["status"].as_str()), (StatusCode::OK, Some("allocated")));
    assert_eq!(order["order"]["tags"], json!(["exchange:RMA-X"]));
}

fn shopify_signature(body: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test-webhook-secret").unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A Shopify order webhook delivered five times at once, again later, and five times more after
/// a restart, is one order; a bad signature or a malformed body changes nothing.
#[test]
fn a_shopify_webhook_delivered_five_times_is_one_order() {
    let s = Server::start();
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/shopify/shopify_python_api_order.json");
    let body = std::fs::read_to_string(path).unwrap();
    let url = s.url("/webhooks/shopify/WEB");
    let deliver = |body: &str, signature: &str| {
        let resp = s
            .client
            .post(&url)
            .header("X-Shopify-Hmac-Sha256", signature)
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Event-Id", "evt-1")
            .body(body.to_owned())
            .send()
            .unwrap();
        (resp.status(), resp.text().unwrap())
    };
    let before = s.journal_seq();
    let (status, text) = deliver(&body, "bm90IHRoZSBzaWduYXR1cmU=");
    assert_eq!((status, problem_code(&text)), (StatusCode::UNAUTHORIZED, "unauthenticated".to_owned()));
    let broken = body.replacen("\"199.00\"", "\"19x.00\"", 1);
    let (status, text) = deliver(&broken, &shopify_signature(broken.as_bytes()));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("line_items[0].price") && text.contains("dead letter"), "{text}");
    // The malformed body is kept raw, with the reason; nothing else is recorded.
    let kept = s.handle.query(|st| st.dead_letters().all().to_vec());
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].source.as_str(), kept[0].raw.as_str()), ("shopify-webhook:WEB", broken.as_str()));
    assert!(kept[0].reason.contains("19x.00"), "{}", kept[0].reason);
    assert_eq!(s.journal_seq(), before + 1);
    let before = s.journal_seq();
    let signature = shopify_signature(body.as_bytes());
    let answers: Vec<(StatusCode, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5).map(|_| scope.spawn(|| deliver(&body, &signature))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // One captured it; the others got its answer, or 409 while it was still running.
    assert!(answers.iter().any(|(st, _)| *st == StatusCode::OK), "{answers:?}");
    for (status, text) in &answers {
        assert!(*status == StatusCode::OK || *status == StatusCode::CONFLICT, "{status} {text}");
    }
    let (status, again) = deliver(&body, &signature);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, answers.iter().find(|(st, _)| *st == StatusCode::OK).unwrap().1, "the same answer");
    assert_eq!(s.journal_seq(), before + 1, "one journal event for five deliveries and a retry");
    // Across a restart: the state rebuilt from the journal still knows the event id.
    let first = answers.iter().find(|(st, _)| *st == StatusCode::OK).unwrap().1.clone();
    let s = s.restart();
    let url = s.url("/webhooks/shopify/WEB");
    let redeliver = || {
        let resp = s
            .client
            .post(&url)
            .header("X-Shopify-Hmac-Sha256", &signature)
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Event-Id", "evt-1")
            .body(body.clone())
            .send()
            .unwrap();
        (resp.status(), resp.text().unwrap())
    };
    let after_restart: Vec<(StatusCode, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5).map(|_| scope.spawn(redeliver)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, text) in &after_restart {
        assert_eq!((*status, text.as_str()), (StatusCode::OK, first.as_str()), "the first answer after a restart");
    }
    assert_eq!(s.journal_seq(), before + 1, "still one journal event");
    let (status, order) = s.get("/api/v1/orders/WEB/450789469", Some(Role::Viewer));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["order"]["customer"]["name"], "Bob Norman");
    let (_, trail) = s.get("/api/v1/audit?entity=order:WEB/450789469", Some(Role::Viewer));
    assert_eq!(
        (trail["entries"][0]["source"].as_str(), trail["entries"][0]["request_id"].as_str()),
        (Some("connector"), Some("evt-1"))
    );
}

/// `refunds/create`: a refund the merchant issued on Shopify is recorded once (whatever the
/// deliveries), as an RMA already refunded, so Ordo's own return flow cannot pay it again; a
/// refund of an unknown order is kept as a dead letter, a malformed one answered with its field.
#[test]
fn a_shopify_refund_webhook_is_recorded_once_and_never_refunded_again() {
    let s = Server::start();
    let refund = |order: &str, amount: &str| {
        json!({
            "id": 77, "order_id": order, "created_at": "2026-11-20T10:00:00-05:00",
            "refund_line_items": [{"id": 1, "line_item_id": "1", "quantity": 1, "restock_type": "return"}],
            "transactions": [{"kind": "refund", "status": "success", "amount": amount, "currency": "USD"}]
        })
        .to_string()
    };
    let deliver = |body: &str, event: &str| {
        let resp = s
            .client
            .post(s.url("/webhooks/shopify/WEB"))
            .header("X-Shopify-Hmac-Sha256", shopify_signature(body.as_bytes()))
            .header("X-Shopify-Topic", "refunds/create")
            .header("X-Shopify-Event-Id", event)
            .body(body.to_owned())
            .send()
            .unwrap();
        (resp.status(), resp.text().unwrap())
    };
    // An order Ordo does not hold: acknowledged, kept raw to redrive.
    let (status, text) = deliver(&refund("F-1", "20.00"), "evt-r0");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("does not hold"), "{text}");
    let kept = s.handle.query(|st| st.dead_letters().all().to_vec());
    assert_eq!(kept.last().map(|d| d.source.as_str()), Some("shopify-refund:WEB"));
    // Captured but not shipped: nothing to record (the order's update cancels such lines).
    let (status, body) = s.post("/api/v1/orders", Role::Integration, None, &order_body("F-1", 2));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = s.journal_seq();
    let (status, text) = deliver(&refund("F-1", "20.00"), "evt-r1");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("shipped nothing"), "{text}");
    assert_eq!(s.journal_seq(), before);
    for (action, body) in [("dispatch", "{}"), ("pick", "{}"), ("pack", "{}")] {
        step_on(&s, "F-1", action, Role::Warehouse, body);
    }
    let parcel = json!({"shipment_id": "S1", "location": "WH", "carrier": "UPS", "service": "ground", "tracking": "1Z", "lines": []});
    step_on(&s, "F-1", "ship", Role::Warehouse, &parcel.to_string());
    // Malformed money: 400 naming the field, kept as a dead letter.
    let (status, text) = deliver(&refund("F-1", "2O.00"), "evt-r2");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("transactions[0].amount"), "{text}");
    // Delivered four times at once and once more: one record.
    let before = s.journal_seq();
    let body = refund("F-1", "20.00");
    let answers: Vec<(StatusCode, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| deliver(&body, "evt-r3"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().any(|(st, _)| *st == StatusCode::OK), "{answers:?}");
    for (status, text) in &answers {
        assert!(*status == StatusCode::OK || *status == StatusCode::CONFLICT, "{status} {text}");
    }
    let (status, _) = deliver(&body, "evt-r3");
    assert_eq!(status, StatusCode::OK);
    // The same refund under another event id (Shopify re-sent it) is acknowledged, not recorded.
    let (status, text) = deliver(&body, "evt-r4");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("already exists"), "{text}");
    assert_eq!(s.journal_seq(), before + 1, "one record for every delivery");
    let (_, shown) = s.get("/api/v1/returns/WEB-REFUND-77", Some(Role::Viewer));
    assert_eq!((shown["status"].as_str(), shown["refund"]["amount_minor"].as_i64()), (Some("authorized"), Some(2_000)));
    // Ordo's own return flow cannot pay for that unit again: one unit is left to return.
    let rma = json!({"rma_id": "RMA-F", "channel": "WEB", "order_id": "F-1", "lines": [{"line_id": "1", "units": 2}], "reason": "x"});
    let (status, text) = s.post("/api/v1/returns", Role::CustomerService, None, &rma.to_string());
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("1 shipped and not yet returned"), "{text}");
}

/// Shopify may deliver `orders/cancelled` for an order Ordo never captured: it is captured, then
/// cancelled, and a repeat changes nothing.
#[test]
fn a_cancellation_of_an_unseen_order_captures_then_cancels_it() {
    let s = Server::start();
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/shopify/shopify_python_api_order.json");
    let body = std::fs::read_to_string(path).unwrap();
    let deliver = || {
        let resp = s
            .client
            .post(s.url("/webhooks/shopify/WEB"))
            .header("X-Shopify-Hmac-Sha256", shopify_signature(body.as_bytes()))
            .header("X-Shopify-Topic", "orders/cancelled")
            .header("X-Shopify-Event-Id", "evt-cancel")
            .body(body.clone())
            .send()
            .unwrap();
        (resp.status(), resp.text().unwrap())
    };
    let before = s.journal_seq();
    let (status, first) = deliver();
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(serde_json::from_str::<Value>(&first).unwrap()["status"], "cancelled");
    assert_eq!(s.journal_seq(), before + 2, "captured, then cancelled");
    let (status, again) = deliver();
    assert_eq!((status, again), (StatusCode::OK, first));
    assert_eq!(s.journal_seq(), before + 2);
}
