//! Bounded property-based fuzzing of everything that parses untrusted input:
//! the ingest API (bodies, content types, headers, pagination, ids) and the
//! signature parsers. The property is always the same: no panic, no 5xx.
//!
//! CI runs a short campaign (`PROPTEST_CASES`, 64 by default here); run a
//! longer one locally with `PROPTEST_CASES=20000 cargo test --test it fuzz::`.
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
    answer_of(method, path, content_type, body, auth).status
}

/// What a request was answered.
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Sends one request through the real routes and returns the whole answer.
fn answer_of(method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>, auth: bool) -> Answer {
    answer_with(|_| {}, method, path, content_type, body, auth)
}

/// [`answer_of`], with the hub's state adjusted by `tweak` first.
fn answer_with(
    tweak: impl FnOnce(&mut AppState),
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    auth: bool,
) -> Answer {
    let (store, key) = hub();
    runtime().block_on(async {
        let mut state = AppState {
            store: store.clone(),
            outbox_nudge: None,
            allow_http_endpoints: true,
            allow_private_endpoints: true,
            trusted_proxies: Default::default(),
            broker: None,
            sandbox: std::sync::Arc::new(hookhub::delivery_side::SharedSandbox),
            audit: None,
            backlog_guard: None,
            portal: Default::default(),
        };
        tweak(&mut state);
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
        let resp = actix_test::call_service(&app, req.to_request()).await;
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = actix_test::read_body(resp).await.to_vec();
        Answer { status, content_type, body }
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
        let _ = hookhub_store::domain::signer::verify(&secret, Some(&header), Some(&header), Some(&header), &body, now);
        let _ = hookhub_store::domain::signer::verify(&secret, Some("id"), Some("1"), Some(&header), &body, now);
        let _ = hookhub_store::domain::SigningSecret::parse(&header);
        let _ = header.parse::<hookhub_store::domain::EventType>();
        let _ = hookhub_store::Cursor::decode(&header);
        let _ = hookhub_ingest::inbound::stripe::verify("whsec_test", Some(&header), &body, now);
    }
}

/// Values shaped like the cipher's own markers, at the top of `data` where
/// the cipher looks, and below it.
fn marker_like() -> impl Strategy<Value = serde_json::Value> {
    let text = prop_oneof![
        ".{0,24}".prop_map(|t| format!("enc:v1:{t}")),
        ".{0,24}".prop_map(|t| format!("plain:v1:{t}")),
        Just("v1".to_owned()),
    ];
    let key = prop::sample::select(vec!["$enc", "$plain", "kid", "nonce", "ct", "x"]);
    prop::collection::btree_map(key, prop_oneof![text.prop_map(serde_json::Value::from), json_value()], 1..5).prop_map(
        |fields| {
            let object: serde_json::Map<_, _> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            serde_json::Value::Object(object)
        },
    )
}

/// A private IPv4 address: this network, loopback, RFC 1918, link-local or shared.
fn private_ipv4() -> impl Strategy<Value = std::net::Ipv4Addr> {
    use std::net::Ipv4Addr;
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(0, b, c, d)),
        any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(127, b, c, d)),
        any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(10, b, c, d)),
        (16u8..32, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(172, b, c, d)),
        any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(192, 168, c, d)),
        any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(169, 254, c, d)),
        (64u8..128, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(100, b, c, d)),
    ]
}

/// An IPv6 address carrying a private IPv4 one: mapped, compatible,
/// translated, NAT64 (well-known and local-use prefix) or 6to4 (any suffix).
fn ipv6_embedding_private_ipv4() -> impl Strategy<Value = std::net::Ipv6Addr> {
    use std::net::Ipv6Addr;
    (private_ipv4(), 0usize..6, any::<[u16; 5]>()).prop_map(|(v4, form, rest)| {
        let [a, b, c, d] = v4.octets();
        let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        match form {
            0 => v4.to_ipv6_mapped(),
            1 => v4.to_ipv6_compatible(),
            2 => Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
            3 => Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
            4 => Ipv6Addr::new(0x64, 0xff9b, 1, rest[0], rest[1], rest[2], hi, lo),
            _ => Ipv6Addr::new(0x2002, hi, lo, rest[0], rest[1], rest[2], rest[3], rest[4]),
        }
    })
}

/// The ways a URL can spell an IPv6 host: compressed, with a dotted IPv4
/// tail, fully expanded, in capitals, with a port, or with a zone id.
fn ipv6_url(ip: std::net::Ipv6Addr) -> impl Strategy<Value = String> {
    let [a, b, c, d, e, f, g, h] = ip.segments();
    let v4_tail = format!("{a:x}:{b:x}:{c:x}:{d:x}:{e:x}:{f:x}:{}.{}.{}.{}", g >> 8, g & 0xff, h >> 8, h & 0xff);
    let forms = vec![
        ip.to_string(),
        format!("{a:x}:{b:x}:{c:x}:{d:x}:{e:x}:{f:x}:{g:x}:{h:x}"),
        format!("{a:04X}:{b:04X}:{c:04X}:{d:04X}:{e:04X}:{f:04X}:{g:04X}:{h:04X}"),
        v4_tail,
    ];
    (prop::sample::select(forms), prop::option::of(any::<u16>()), any::<bool>(), "[a-z0-9/]{0,12}").prop_map(
        |(host, port, zone, path)| {
            let zone = if zone { "%25eth0" } else { "" };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("http://[{host}{zone}]{port}/{path}")
        },
    )
}

/// Text mixing NUL, the other control characters and anything else.
fn control_text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    let char = prop_oneof![Just('\0'), (1u8..0x20).prop_map(char::from), Just('\u{7f}'), any::<char>()];
    prop::collection::vec(char, len).prop_map(String::from_iter)
}

/// An integer literal beyond the 64-bit range, positive or negative.
fn huge_integer() -> impl Strategy<Value = String> {
    prop_oneof![
        (u128::from(u64::MAX) + 1..=u128::MAX).prop_map(|n| n.to_string()),
        (i128::MIN..i128::from(i64::MIN)).prop_map(|n| n.to_string()),
        "[1-9][0-9]{39,80}",
        "-[1-9][0-9]{39,80}",
    ]
}

/// Where a value sits inside `data`: object keys and array indexes.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Puts the JSON text `literal` at `path` inside an object, as JSON text,
/// and names that place as the API does (`data.a[2].b`).
fn nest(literal: &str, path: &[Step]) -> (String, String) {
    let mut text = literal.to_owned();
    for step in path.iter().rev() {
        text = match step {
            Step::Key(k) => format!("{{\"pad\": 1, {}: {text}}}", serde_json::to_string(k).unwrap()),
            Step::Index(i) => format!("[{}{text}]", "0, ".repeat(*i)),
        };
    }
    let mut field = "data".to_owned();
    for step in path {
        match step {
            Step::Key(k) => field.push_str(&format!(".{k}")),
            Step::Index(i) => field.push_str(&format!("[{i}]")),
        }
    }
    (format!("{{\"first\": {text}}}"), field.replacen("data", "data.first", 1))
}

fn nested_path() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof!["[a-z]{1,8}".prop_map(Step::Key), (0usize..4).prop_map(Step::Index)];
    prop::collection::vec(step, 0..5)
}

/// Asserts an answer is in the API's JSON error format, with this code.
fn assert_error_format(answer: &Answer, code: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(body["message"].is_string(), "{}", body);
    prop_assert_eq!(&body["code"], code);
    Ok(())
}

/// Posts an event and, when it was accepted, reads its data back.
fn post_and_read(body: Vec<u8>) -> (Answer, Option<serde_json::Value>) {
    let answer = answer_of("POST", "/v1/events", Some("application/json"), body, true);
    if answer.status != 202 {
        return (answer, None);
    }
    let accepted: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let read = answer_of("GET", &format!("/v1/events/{}", accepted["id"].as_str().unwrap()), None, vec![], true);
    assert_eq!(read.status, 200);
    let read: serde_json::Value = serde_json::from_slice(&read.body).unwrap();
    (answer, Some(read["data"].clone()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Tenant data never decides what is ciphertext: whatever it looks like,
    /// it is accepted and reads back exactly as sent.
    #[test]
    fn marker_like_data_reads_back_as_sent(top in marker_like(), nested in marker_like()) {
        for data in [top.clone(), serde_json::json!({"inner": nested.clone()})] {
            let body = serde_json::json!({"type": "client.created", "data": data});
            let (answer, read) = post_and_read(body.to_string().into_bytes());
            if data.to_string().contains("\\u0000") {
                // NUL is refused wherever it is (see the control characters' property).
                prop_assert_eq!(answer.status, 422);
                continue;
            }
            prop_assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
            prop_assert_eq!(read.as_ref(), Some(&data));
        }
    }

    #[test]
    fn control_characters_are_refused_as_nul_or_kept_exactly(
        key in control_text(0..12), value in control_text(0..24), idempotency in control_text(1..40),
        description in control_text(0..40),
    ) {
        // Cases share one hub: a key of its own, so no case replays another's event.
        static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let idempotency = format!("{idempotency}#{}", CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let data = serde_json::json!({key.clone(): value.clone(), "nested": [{"v": value.clone()}]});
        let body = serde_json::json!({"type": "client.created", "data": data, "idempotency_key": idempotency});
        let (answer, read) = post_and_read(body.to_string().into_bytes());
        if [&key, &value, &idempotency].iter().any(|s| s.contains('\0')) {
            prop_assert_eq!(answer.status, 422, "{}", body);
            assert_error_format(&answer, "validation_failed")?;
        } else {
            prop_assert_eq!(answer.status, 202, "{}", body);
            prop_assert_eq!(read, Some(data), "reads back exactly as sent");
        }

        let sub = serde_json::json!({"url": "https://crm.example.com/h", "event_types": ["*"], "description": description});
        let answer = answer_of("POST", "/v1/subscriptions", Some("application/json"), sub.to_string().into_bytes(), true);
        if description.contains('\0') {
            prop_assert_eq!(answer.status, 422);
            assert_error_format(&answer, "validation_failed")?;
        } else {
            prop_assert!(answer.status == 201 || answer.status == 422, "{} for {}", answer.status, sub);
            if answer.status == 201 {
                let created: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
                prop_assert_eq!(&created["description"], &serde_json::Value::from(description));
            }
        }
    }

    #[test]
    fn the_ssrf_guard_refuses_ipv6_forms_of_private_ipv4(ip in ipv6_embedding_private_ipv4()) {
        prop_assert!(hookhub_store::domain::target_guard::refusal(ip.into()).is_some(), "{ip} is allowed");
        let url = format!("http://[{ip}]/h");
        prop_assert!(hookhub_store::domain::target_guard::check_literal(&url).is_err(), "{url} is allowed");
    }

    #[test]
    fn subscriptions_to_ipv6_forms_of_private_ipv4_are_refused_never_5xx(
        url in ipv6_embedding_private_ipv4().prop_flat_map(ipv6_url),
        route in prop::sample::select(vec!["/v1/subscriptions", "/v1/hooks"]),
    ) {
        let body = serde_json::json!({"url": url, "event_types": ["*"], "event": "*"});
        let guarded = |s: &mut AppState| s.allow_private_endpoints = false;
        let status =
            answer_with(guarded, "POST", route, Some("application/json"), body.to_string().into_bytes(), true).status;
        prop_assert!((400..500).contains(&status), "POST {route} {url} -> {status}");
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_by_path_and_the_rest_kept_exactly(
        huge in huge_integer(), fits in any::<i64>(), unsigned in any::<u64>(), path in nested_path(),
    ) {
        let (data, field) = nest(&huge, &path);
        let body = format!(r#"{{"type": "client.created", "data": {data}}}"#);
        let (answer, _) = post_and_read(body.clone().into_bytes());
        prop_assert_eq!(answer.status, 422, "{}", body);
        assert_error_format(&answer, "validation_failed")?;
        let errors: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        prop_assert_eq!(&errors["errors"][0]["field"], &serde_json::Value::from(field));

        let literal = format!("[{fits}, {unsigned}]");
        let (data, _) = nest(&literal, &path);
        let body = format!(r#"{{"type": "client.created", "data": {data}}}"#);
        let (answer, read) = post_and_read(body.clone().into_bytes());
        prop_assert_eq!(answer.status, 202, "{}", body);
        let sent: serde_json::Value = serde_json::from_str(&data).unwrap();
        prop_assert_eq!(read, Some(sent), "reads back exactly as sent");
    }
}
