//! The OpenAPI 3.1 document, generated from [`crate::ROUTES`]: every route the router serves is
//! in it with its permission, parameters, body and answers.

use serde_json::{Map, Value, json};

use crate::problem::Code;
use crate::{MAX_PAGE, ROUTES};

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
        .collect()
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters = path_parameters(route.path);
        for (name, description) in route.query {
            let schema = if *name == "limit" {
                json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE})
            } else {
                json!({"type": "string"})
            };
            parameters.push(
                json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema}),
            );
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
        if route.method == "POST" && route.permission.is_none() {
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
            if !route.query.is_empty() {
                responses.insert("400".into(), json!({"description": "malformed parameter", "content": problem}));
            }
            if route.path.contains('{') {
                responses.insert("404".into(), json!({"description": "unknown resource", "content": problem}));
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
            None => operation["security"] = json!([]),
        }
        if route.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        operation["responses"] = Value::Object(responses);
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.to_lowercase()] = operation;
    }
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Ordo", "version": env!("CARGO_PKG_VERSION"), "description": "ERP automation engine for ecommerce retail."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {
                "type": "object",
                "required": ["type", "title", "status", "code", "detail"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "code": {"type": "string", "enum": codes}, "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object"}}
                }
            }}
        }
    })
}
