//! Bounded property-based fuzzing of everything that parses untrusted input:
//! the ingest API (bodies, content types, headers, pagination, ids) and the
//! signature parsers. The property is always the same: no panic, no 5xx.
//!
//! CI runs a short campaign (`PROPTEST_CASES`, 64 by default here); run a
//! longer one locally with `PROPTEST_CASES=20000 cargo test --test fuzz`.
use actix_web::{test as actix_test, web, App};
use hookhub_ingest::AppState;
use hookhub_store::Store;
use proptest::prelude::*;
use std::sync::OnceLock;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
}

/// One runtime and one in-memory hub for every case: the property is about
/// parsing, and a fresh database per case would make the campaign crawl.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

fn hub() -> &'static (Store, String) {
    static HUB: OnceLock<(Store, String)> = OnceLock::new();
    HUB.get_or_init(|| {
        runtime().block_on(async {
            let store = Store::connect("sqlite::memory:").await.unwrap();
            store.migrate().await.unwrap();
            let (_, key) = store.create_tenant("fuzz").await.unwrap();
            (store, key.expose().to_owned())
        })
    })
}

/// Sends one request through the real routes and returns its status.
fn status_of(method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>, auth: bool) -> u16 {
    let (store, key) = hub();
    runtime().block_on(async {
        let state = AppState {
            store: store.clone(),
            outbox_wake: None,
            allow_http_endpoints: true,
            allow_private_endpoints: true,
            trusted_proxies: Default::default(),
            broker_url: None,
            audit: None,
        };
        let app =
            actix_test::init_service(App::new().app_data(web::Data::new(state)).configure(hookhub_ingest::configure))
                .await;
        let mut req = actix_test::TestRequest::default().method(method.parse().unwrap()).uri(path).set_payload(body);
        if let Some(ct) = content_type {
            req = req.insert_header(("content-type", ct));
        }
        if auth {
            req = req.insert_header(("authorization", format!("Bearer {key}")));
        }
        actix_test::call_service(&app, req.to_request()).await.status().as_u16()
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::hash_map(".{0,12}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_to_every_writing_route_never_5xx(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        path in prop::sample::select(vec![
            "/v1/events", "/v1/subscriptions", "/v1/hooks", "/v1/rules", "/v1/event-types",
            "/v1/inbound-sources", "/v1/listen", "/v1/inbound/stripe/x", "/v1/inbound/generic/x",
        ]),
        content_type in prop::option::of(prop::sample::select(vec![
            "application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "",
        ])),
        auth in any::<bool>(),
    ) {
        let status = status_of("POST", path, content_type, body, auth);
        prop_assert!(status < 500, "POST {path} -> {status}");
    }

    #[test]
    fn arbitrary_json_events_never_5xx(r#type in ".{0,64}", data in json_value(), key in prop::option::of(".{0,300}")) {
        let body = serde_json::json!({"type": r#type, "data": data, "idempotency_key": key});
        let status = status_of("POST", "/v1/events", Some("application/json"), body.to_string().into_bytes(), true);
        prop_assert!(status == 202 || (400..500).contains(&status), "{status} for {body}");
    }

    #[test]
    fn arbitrary_query_and_path_parameters_never_5xx(
        limit in ".{0,24}", cursor in ".{0,64}", id in ".{0,48}",
        route in prop::sample::select(vec!["/v1/events", "/v1/subscriptions"]),
    ) {
        let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let list = format!("{route}?limit={}&cursor={}", enc(&limit), enc(&cursor));
        prop_assert!(status_of("GET", &list, None, vec![], true) < 500);
        let one = format!("{route}/{}", enc(&id));
        prop_assert!(status_of("GET", &one, None, vec![], true) < 500);
        let attempts = format!("{one}/attempts");
        prop_assert!(status_of("GET", &attempts, None, vec![], true) < 500);
    }

    #[test]
    fn signature_parsers_never_panic(header in ".{0,200}", body in prop::collection::vec(any::<u8>(), 0..256), now in any::<i64>()) {
        let secret = hookhub_store::domain::SigningSecret::generate();
        let _ = hookhub_dispatcher::signer::verify(&secret, Some(&header), Some(&header), Some(&header), &body, now);
        let _ = hookhub_dispatcher::signer::verify(&secret, Some("id"), Some("1"), Some(&header), &body, now);
        let _ = hookhub_store::domain::SigningSecret::parse(&header);
        let _ = header.parse::<hookhub_store::domain::EventType>();
        let _ = hookhub_store::Cursor::decode(&header);
        let _ = hookhub_ingest::inbound::stripe::verify("whsec_test", Some(&header), &body, now);
    }
}
