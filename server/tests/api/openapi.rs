//! The OpenAPI document covers every REST route of docs/protocol.md, and every
//! documented operation is really routed.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use syncscript_testkit::{Backend, TestApp};

/// The REST routes of docs/protocol.md.
const CONTRACT_ROUTES: [(&str, &str); 22] = [
    ("post", "/api/auth/signup"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("get", "/api/me"),
    ("get", "/api/vaults"),
    ("post", "/api/vaults"),
    ("get", "/api/vaults/{id}"),
    ("patch", "/api/vaults/{id}"),
    ("delete", "/api/vaults/{id}"),
    ("get", "/api/vaults/{id}/members"),
    ("post", "/api/vaults/{id}/members"),
    ("patch", "/api/vaults/{id}/members/{userId}"),
    ("delete", "/api/vaults/{id}/members/{userId}"),
    ("get", "/api/vaults/{id}/sources"),
    ("post", "/api/vaults/{id}/sources"),
    ("get", "/api/sources/{id}"),
    ("patch", "/api/sources/{id}"),
    ("delete", "/api/sources/{id}"),
    ("get", "/api/vaults/{id}/events"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn document_covers_every_route_and_every_documented_route_exists() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1"),
        "OpenAPI 3.1"
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (method, path) in CONTRACT_ROUTES {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is missing from the OpenAPI document"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for schema in ["Source", "Vault", "Member", "ErrorBody", "LoggedEvent"] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }

    let some_id = "01900000-0000-7000-8000-000000000000";
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", some_id).replace("{userId}", some_id);
        for method in item.as_object().expect("path item").keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            operations += 1;
            let response = app
                .http
                .request(method.clone(), app.url(&concrete))
                .json(&Value::Null)
                .send()
                .await
                .expect("request");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} not routed"
            );
            assert_ne!(
                body["error"]["message"], "No such route",
                "{method} {path} not routed"
            );
        }
    }
    assert!(operations >= CONTRACT_ROUTES.len());
}
