//! Access control: scoped API keys, OAuth 2.0 client credentials, and
//! revocation that takes effect on the next request.
mod common;

use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn with(hub: &TestHub, credential: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", hub.base)).bearer_auth(credential);
    if let Some(body) = body {
        req = req.json(&body);
    }
    hub.call(req).await
}

async fn token_request(hub: &TestHub, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{}/v1/oauth/token", hub.base)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn scoped_api_keys_and_revocation_on_the_next_request() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let event = json!({"type": "client.created", "data": {"client_id": "c1"}});
    let (status, read) = hub.post("/v1/api-keys", json!({"name": "dashboard", "scope": "read"})).await;
    assert_eq!(status, StatusCode::CREATED, "{read}");
    let read_key = read["key"].as_str().unwrap().to_owned();
    assert!(read_key.starts_with("hh_live_"));
    let (_, write) = hub.post("/v1/api-keys", json!({"name": "zapier"})).await;
    assert_eq!(write["scope"], "write", "write is the default");
    let write_key = write["key"].as_str().unwrap().to_owned();

    assert_eq!(with(&hub, &read_key, Method::GET, "/v1/events", None).await.0, StatusCode::OK);
    let (status, body) = with(&hub, &read_key, Method::POST, "/v1/events", Some(event.clone())).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    assert_eq!(with(&hub, &write_key, Method::POST, "/v1/events", Some(event.clone())).await.0, StatusCode::ACCEPTED);
    let (status, _) = with(&hub, &write_key, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "keys are managed with admin scope only");

    let (_, keys) = hub.get("/v1/api-keys").await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 3);
    assert!(!keys.to_string().contains(&write_key[8..]), "keys are never shown again");

    let (status, _) =
        hub.call(hub.request(Method::DELETE, &format!("/v1/api-keys/{}", write["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(with(&hub, &write_key, Method::POST, "/v1/events", Some(event)).await.0, StatusCode::UNAUTHORIZED);

    let other = hub.new_tenant().await;
    let (status, _) =
        with(&hub, &other, Method::DELETE, &format!("/v1/api-keys/{}", read["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's key is not found, not forbidden");
    let (status, body) = hub.post("/v1/api-keys", json!({"name": "x", "scope": "root"})).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("scope")));
    hub.stop().await;
}

#[tokio::test]
async fn oauth_client_credentials_issue_expire_tamper_and_revoke() {
    let hub = TestHub::start(Backend::Postgres).await;
    let (status, app) = hub.post("/v1/oauth-apps", json!({"name": "CRM sync", "scope": "write"})).await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let (id, secret) =
        (app["client_id"].as_str().unwrap().to_owned(), app["client_secret"].as_str().unwrap().to_owned());

    // Form-encoded credentials, and HTTP Basic.
    let resp = token_request(
        &hub,
        &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)],
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let issued: Value = resp.json().await.unwrap();
    assert_eq!((issued["token_type"].as_str(), issued["expires_in"].as_i64()), (Some("Bearer"), Some(3600)));
    assert_eq!(issued["scope"], "read write");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let resp =
        token_request(&hub, &[("grant_type", "client_credentials"), ("scope", "read")], Some((&id, &secret))).await;
    let read_only: Value = resp.json().await.unwrap();
    assert_eq!(read_only["scope"], "read");

    let event = json!({"type": "client.created", "data": {"client_id": "c1"}});
    assert_eq!(with(&hub, &token, Method::POST, "/v1/events", Some(event.clone())).await.0, StatusCode::ACCEPTED);
    let read_token = read_only["access_token"].as_str().unwrap();
    assert_eq!(with(&hub, read_token, Method::POST, "/v1/events", Some(event.clone())).await.0, StatusCode::FORBIDDEN);
    let (status, body) = with(&hub, &token, Method::GET, "/v1/oauth-apps", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));

    // Tampered: 401 with the RFC 6750 challenge.
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let resp =
        reqwest::Client::new().get(format!("{}/v1/events", hub.base)).bearer_auth(&tampered).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);

    // Expired: an hour later, as far as the database knows.
    {
        use sea_orm::ConnectionTrait;
        let db = hub.hub().store().db();
        db.execute_unprepared("UPDATE access_tokens SET expires_at = created_at - interval '1 second'").await.unwrap();
    }
    let (status, body) = with(&hub, &token, Method::GET, "/v1/events", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));

    // Revoked: deleting the app kills its fresh tokens on the next request.
    let resp = token_request(&hub, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    let fresh: Value = resp.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(with(&hub, fresh, Method::GET, "/v1/events", None).await.0, StatusCode::OK);
    let (status, _) =
        hub.call(hub.request(Method::DELETE, &format!("/v1/oauth-apps/{}", app["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(with(&hub, fresh, Method::GET, "/v1/events", None).await.0, StatusCode::UNAUTHORIZED);
    hub.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_answers_errors_as_rfc_6749_says() {
    let hub = TestHub::start(Backend::Sqlite).await;
    let (_, app) = hub.post("/v1/oauth-apps", json!({"name": "reporting", "scope": "read"})).await;
    let (id, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());
    let grant = ("grant_type", "client_credentials");
    for (name, form, basic, status, error) in [
        ("wrong secret", vec![grant], Some((id, "hh_secret_nope")), 401, "invalid_client"),
        (
            "unknown client",
            vec![grant, ("client_id", "hh_client_x"), ("client_secret", "s")],
            None,
            401,
            "invalid_client",
        ),
        ("no client authentication", vec![grant], None, 401, "invalid_client"),
        ("password grant", vec![("grant_type", "password")], Some((id, secret)), 400, "unsupported_grant_type"),
        ("no grant type", vec![], Some((id, secret)), 400, "invalid_request"),
        ("more scope than the app has", vec![grant, ("scope", "write")], Some((id, secret)), 400, "invalid_scope"),
        ("unknown scope", vec![grant, ("scope", "root")], Some((id, secret)), 400, "invalid_scope"),
    ] {
        let resp = token_request(&hub, &form, basic).await;
        assert_eq!(resp.status().as_u16(), status, "{name}");
        let basic_challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], error, "{name}: {body}");
        assert!(body["error_description"].is_string(), "{name}");
        if name == "wrong secret" {
            assert!(basic_challenge.unwrap().starts_with("Basic"), "Basic authentication failed: a Basic challenge");
        }
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/oauth/token", hub.base))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "JSON is not the token endpoint's format");
    hub.stop().await;
}
