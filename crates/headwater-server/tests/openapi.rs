//! The OpenAPI document covers exactly the routes the routers declare: every `.route(...)` of
//! `src/routes/` has an operation for each of its methods, and every operation has its route.

use std::collections::BTreeSet;

/// `(METHOD, path)` of every `.route("path", get(..).post(..))` in `source`.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // Only a literal path: a computed one is listed in `COMPUTED`.
        let trimmed = rest.trim_start();
        if !trimmed.starts_with('"') {
            continue;
        }
        rest = trimmed;
        let Some(close) = rest[1..].find('"') else {
            break;
        };
        let path = rest[1..1 + close].to_string();
        // The method chain runs to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let chain = &rest[..end];
        for method in ["get", "post", "put", "delete", "patch"] {
            let called = chain.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !chain[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
        rest = &rest[end..];
    }
    out
}

/// Routes whose path the code computes, so `routes_in` cannot read them: `setting_routes` in
/// `src/routes/registry.rs` serves the registry's compatibility level and mode alike.
const COMPUTED: &[(&str, &str)] = &[
    ("GET", "/config"),
    ("PUT", "/config"),
    ("GET", "/config/{subject}"),
    ("PUT", "/config/{subject}"),
    ("DELETE", "/config/{subject}"),
    ("GET", "/mode"),
    ("PUT", "/mode"),
    ("GET", "/mode/{subject}"),
    ("PUT", "/mode/{subject}"),
    ("DELETE", "/mode/{subject}"),
];

#[test]
fn every_route_has_an_operation_and_every_operation_a_route() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes");
    let mut declared = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/routes") {
        let path = entry.expect("entry").path();
        let source = std::fs::read_to_string(&path).expect("read");
        declared.extend(routes_in(&source));
    }
    assert!(declared.len() > 30, "found only {declared:?}");
    declared.extend(COMPUTED.iter().map(|(m, p)| (m.to_string(), p.to_string())));

    let doc: serde_json::Value =
        serde_json::from_str(headwater_server::OPENAPI).expect("openapi.json is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty(),
        "routes without an operation in openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "operations in openapi.json without a route: {unrouted:?}"
    );
}

#[test]
fn routes_are_read_with_their_methods() {
    let source = r#"
        .route("/a/{x}", get(one).post(two))
        .route(
            "/b",
            delete(three),
        )
        .route("/c", axum::routing::get(scrape))
        .route(path, get(computed))
    "#;
    assert_eq!(
        routes_in(source),
        vec![
            ("GET".into(), "/a/{x}".into()),
            ("POST".into(), "/a/{x}".into()),
            ("DELETE".into(), "/b".into()),
            ("GET".into(), "/c".into()),
        ]
    );
}
