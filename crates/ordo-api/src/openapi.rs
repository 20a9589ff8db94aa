//! The OpenAPI 3.1 document, generated from [`crate::ROUTES`]: every route the router serves is
//! in it with its permission, parameters, body and answers.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::ROUTES;
use crate::problem::Code;

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
        .collect()
}

/// A query string's type as parameters: one per field, its doc comment as the description.
/// A query parameter is either present or absent, never `null`, so `null` is taken out.
fn query_parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else { return Vec::new() };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property.as_object_mut().and_then(|p| p.remove("description")).unwrap_or(json!(""));
            if let Some(types) = property.get_mut("type").and_then(Value::as_array_mut) {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    property["type"] = types[0].clone();
                }
            }
            if let Some(any_of) = property.get_mut("anyOf").and_then(Value::as_array_mut) {
                any_of.retain(|s| s.get("type") != Some(&json!("null")));
                if any_of.len() == 1 {
                    property = any_of[0].clone();
                }
            }
            json!({"name": name, "in": "query", "required": required.contains(&name.as_str()),
                   "description": description, "schema": property})
        })
        .collect()
}

/// Says in every schema what the Rust integer types accept (JSON Schema's `format: int64` bounds
/// nothing), and drops `uniqueItems`: a set in a body takes repeats and keeps one.
fn state_rust_limits(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            fields.remove("uniqueItems");
            let bounds = match fields.get("format").and_then(Value::as_str) {
                Some("int64" | "int") => Some((json!(i64::MIN), json!(i64::MAX))),
                Some("uint64" | "uint") => Some((json!(0), json!(u64::MAX))),
                Some("int32") => Some((json!(i32::MIN), json!(i32::MAX))),
                Some("uint32") => Some((json!(0), json!(u32::MAX))),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                fields.entry("minimum").or_insert(min);
                fields.entry("maximum").or_insert(max);
            }
            fields.values_mut().for_each(state_rust_limits);
        }
        Value::Array(items) => items.iter_mut().for_each(state_rust_limits),
        _ => {}
    }
}

pub fn document() -> Value {
    let mut bodies = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut queries = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters = path_parameters(route.path);
        if let Some(query) = route.query {
            parameters.extend(query_parameters(query(&mut queries).as_value()));
        }
        if route.idempotent {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "a repeat returns the first answer; the same key with another body gets 422, while the first is running 409",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255}
            }));
        }
        let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
        let mut responses = Map::new();
        if route.path.starts_with("/webhooks/") {
            for (name, required, description) in [
                ("X-Shopify-Hmac-Sha256", true, "base64 HMAC-SHA256 of the raw body under the app's secret"),
                (
                    "X-Shopify-Topic",
                    false,
                    "orders/create, orders/updated or orders/cancelled (others are acknowledged and ignored)",
                ),
                ("X-Shopify-Event-Id", false, "the event's id: repeats of it have one effect"),
                ("X-Shopify-Webhook-Id", false, "the delivery's id, used when there is no event id"),
            ] {
                parameters.push(json!({"name": name, "in": "header", "required": required, "description": description,
                                       "schema": {"type": "string"}}));
            }
            responses.insert(
                "200".into(),
                json!({"description": "captured, repeated or acknowledged", "content": {"application/json": {"schema": {"type": "object"}}}}),
            );
            for (status, what) in [
                ("400", "malformed body or missing event id"),
                ("401", "the signature does not match"),
                ("404", "unknown channel or order"),
                ("409", "the same event is being processed"),
                ("422", "refused by a business rule"),
                ("503", "webhooks not configured, or not recorded"),
            ] {
                responses.insert(status.into(), json!({"description": what, "content": problem}));
            }
        } else if route.method == "POST" && route.permission.is_none() {
            responses.insert(
                "200".into(),
                json!({"description": route.summary, "content": {"application/json": {"schema": {"type": "object"}}}}),
            );
            for (status, what) in [
                ("400", "malformed body"),
                ("401", "unknown user or wrong password"),
                ("429", "too many failed sign-ins"),
            ] {
                responses.insert(status.into(), json!({"description": what, "content": problem}));
            }
        } else if route.method == "POST" {
            responses.insert("201".into(), json!({"description": "recorded; the resource as JSON", "content": {"application/json": {"schema": {"type": "object"}}}}));
            responses.insert("202".into(), json!({"description": "needs a second person: the approval request it opened", "content": {"application/json": {"schema": {"type": "object"}}}}));
            for (status, what) in [
                ("400", "malformed body"),
                ("404", "unknown resource"),
                ("409", "idempotency key in flight"),
                ("413", "body too large"),
                ("422", "refused by a business rule, or idempotency key reused"),
                ("503", "not recorded"),
            ] {
                responses.insert(status.into(), json!({"description": what, "content": problem}));
            }
        } else {
            let content = if route.path == "/metrics" || route.path == "/healthz" {
                json!({"text/plain": {"schema": {"type": "string"}}})
            } else {
                json!({"application/json": {"schema": {}}})
            };
            responses.insert("200".into(), json!({"description": route.summary, "content": content}));
            if route.query.is_some() {
                responses.insert("400".into(), json!({"description": "malformed parameter", "content": problem}));
            }
            // The audit names its entity in the query: an order outside the caller's scope is 404.
            if route.path.contains('{') || route.path == "/api/v1/audit" {
                responses.insert(
                    "404".into(),
                    json!({"description": "unknown resource, or outside the caller's scope", "content": problem}),
                );
            }
        }
        let mut operation = json!({
            "summary": route.summary,
            "operationId": format!("{} {}", route.method, route.path),
            "parameters": parameters,
        });
        match route.permission {
            Some(p) => {
                responses.insert("401".into(), json!({"description": "no or unknown credentials", "content": problem}));
                responses
                    .insert("403".into(), json!({"description": "the role lacks the permission", "content": problem}));
                operation["security"] = json!([{"bearer": []}]);
                operation["x-permission"] = json!(p.as_str());
            }
            None => {
                operation["security"] = json!([]);
                if route.path.starts_with("/webhooks/shopify/") {
                    // Authenticated by the channel's signature over the body, not by a role.
                    operation["x-signature"] = json!("X-Shopify-Hmac-Sha256");
                }
            }
        }
        if let Some(body) = route.body {
            let schema = body(&mut bodies).to_value();
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        operation["responses"] = Value::Object(responses);
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = operation;
    }
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let mut schemas = bodies.take_definitions(true);
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "required": ["type", "title", "status", "code", "detail"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "code": {"type": "string", "enum": codes}, "detail": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object"}}
            }
        }),
    );
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {"title": "Ordo", "version": env!("CARGO_PKG_VERSION"), "description": "ERP automation engine for ecommerce retail."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas
        }
    });
    state_rust_limits(&mut document);
    document
}
