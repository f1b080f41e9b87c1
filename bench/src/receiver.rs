//! The webhook receiver: a loopback actix-web server that checks every
//! Standard Webhooks signature with its own HMAC code (not the hub's signer,
//! so a signer bug cannot hide itself) and records when each delivery
//! arrived.
use actix_web::http::header::HeaderMap;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How far a `webhook-timestamp` may be from our clock, as the spec advises receivers.
const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Why a delivery's signature was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// A `webhook-*` header is absent or not text.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a number or is outside the tolerance.
    BadTimestamp,
    /// No `v1,` entry matched the HMAC of the payload.
    NoMatch,
}

/// Decodes a `whsec_<base64>` secret into the HMAC key.
pub fn secret_key(secret: &str) -> anyhow::Result<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").ok_or_else(|| anyhow::anyhow!("secret lacks the whsec_ prefix"))?;
    Ok(STANDARD.decode(encoded)?)
}

/// Checks one delivery: `signatures` is the `webhook-signature` header, a
/// space-separated list of `v1,<base64>` entries of which one must match
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}").
pub fn verify(key: &[u8], id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> Result<(), SignatureError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        // verify_slice compares in constant time; clone because it consumes the MAC.
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    headers.get(name).and_then(|v| v.to_str().ok()).ok_or(SignatureError::MissingHeader(name))
}

fn check_timestamp(timestamp: &str) -> Result<(), SignatureError> {
    let ts: i64 = timestamp.parse().map_err(|_| SignatureError::BadTimestamp)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    if (now - ts).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::BadTimestamp);
    }
    Ok(())
}

/// Verifies a request's headers and body against `key`; returns the webhook id.
fn verify_request<'a>(key: &[u8], headers: &'a HeaderMap, body: &[u8]) -> Result<&'a str, SignatureError> {
    let id = header(headers, "webhook-id")?;
    let timestamp = header(headers, "webhook-timestamp")?;
    let signatures = header(headers, "webhook-signature")?;
    check_timestamp(timestamp)?;
    verify(key, id, timestamp, signatures, body)?;
    Ok(id)
}

/// How the receiver answers.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Waited before answering each verified request.
    pub delay: Duration,
    /// Percentage (0..=100) of verified requests answered 500, to make the hub retry.
    pub fail_pct: u8,
}

/// How one endpoint answers a verified request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Answer {
    /// As the receiver's [`Behaviour`] says.
    #[default]
    AsConfigured,
    /// 500 to every request: its deliveries live in the hub's retry path.
    AlwaysFail,
    /// 500 to each webhook's first request and as configured after, so every
    /// webhook is delivered by its first retry.
    FailFirst,
}

/// One subscription's endpoint: its HMAC key and the tenant it belongs to.
pub struct Endpoint {
    /// The decoded signing key.
    pub key: Vec<u8>,
    /// Index of the tenant whose events this endpoint should get.
    pub tenant: usize,
    /// How it answers.
    pub answer: Answer,
}

impl Endpoint {
    /// An endpoint of `tenant` that answers as the receiver is configured.
    pub fn new(key: Vec<u8>, tenant: usize) -> Self {
        Self { key, tenant, answer: Answer::AsConfigured }
    }
}

/// Counters and the arrival log, shared by the server's handlers.
#[derive(Default)]
struct Shared {
    endpoints: Vec<Endpoint>,
    /// First 2xx-answered arrival per (endpoint slot, webhook-id).
    arrivals: Mutex<HashMap<(usize, String), Instant>>,
    /// First request per (slot, webhook-id) of a [`Answer::FailFirst`] endpoint.
    first_failures: Mutex<HashMap<(usize, String), Instant>>,
    requests: AtomicU64,
    duplicates: AtomicU64,
    bad_signatures: AtomicU64,
    failed_on_purpose: AtomicU64,
    unknown_paths: AtomicU64,
    first_bad_signature: Mutex<Option<String>>,
}

struct State {
    shared: Arc<Shared>,
    behaviour: Behaviour,
}

/// The path of endpoint `slot` on the receiver.
pub fn endpoint_path(slot: usize) -> String {
    format!("/hooks/{slot}")
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    // Taken first, so that the latency does not include our own verification.
    let arrived = Instant::now();
    let shared = &state.shared;
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let slot = req.path().strip_prefix("/hooks/").and_then(|s| s.parse::<usize>().ok());
    let Some(endpoint) = slot.and_then(|s| shared.endpoints.get(s)) else {
        shared.unknown_paths.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::NotFound().finish();
    };
    let id = match verify_request(&endpoint.key, req.headers(), &body) {
        Ok(id) => id,
        Err(e) => {
            shared.bad_signatures.fetch_add(1, Ordering::Relaxed);
            shared.first_bad_signature.lock().unwrap().get_or_insert_with(|| format!("{} {e:?}", req.path()));
            return HttpResponse::Unauthorized().finish();
        }
    };
    let slot = slot.expect("endpoint found by slot");
    let fail_on_purpose = || {
        shared.failed_on_purpose.fetch_add(1, Ordering::Relaxed);
        HttpResponse::InternalServerError().finish()
    };
    match endpoint.answer {
        Answer::AsConfigured => {}
        Answer::AlwaysFail => return fail_on_purpose(),
        Answer::FailFirst => {
            if let Entry::Vacant(v) = shared.first_failures.lock().unwrap().entry((slot, id.to_owned())) {
                v.insert(arrived);
                return fail_on_purpose();
            }
        }
    }
    if !state.behaviour.delay.is_zero() {
        tokio::time::sleep(state.behaviour.delay).await;
    }
    if state.behaviour.fail_pct > 0 && rand::thread_rng().gen_range(0..100u8) < state.behaviour.fail_pct {
        return fail_on_purpose();
    }
    match shared.arrivals.lock().unwrap().entry((slot, id.to_owned())) {
        Entry::Occupied(_) => {
            shared.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        Entry::Vacant(v) => {
            v.insert(arrived);
        }
    }
    HttpResponse::NoContent().finish()
}

/// A receiver port reserved before the endpoints are known: subscriptions
/// need the URL, and the server needs their secrets.
pub struct ReservedPort {
    listener: TcpListener,
}

impl ReservedPort {
    /// Binds a free loopback port.
    pub fn bind() -> anyhow::Result<Self> {
        Ok(Self { listener: TcpListener::bind("127.0.0.1:0")? })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> anyhow::Result<String> {
        Ok(format!("http://127.0.0.1:{}", self.listener.local_addr()?.port()))
    }
}

/// What the receiver saw, taken at the end of a run.
pub struct Observed {
    /// First verified, 2xx-answered arrival per (endpoint slot, webhook-id).
    pub arrivals: HashMap<(usize, String), Instant>,
    /// First request per (slot, webhook-id) of [`Answer::FailFirst`] endpoints.
    pub first_failures: HashMap<(usize, String), Instant>,
    /// Tenant index of each endpoint slot.
    pub tenant_of_slot: Vec<usize>,
    /// Requests of any kind.
    pub requests: u64,
    /// Verified deliveries answered 2xx again for a (slot, id) already recorded.
    pub duplicates: u64,
    /// Requests whose signature or timestamp did not check out.
    pub bad_signatures: u64,
    /// The first of those, for diagnosis.
    pub first_bad_signature: Option<String>,
    /// Verified requests answered 500 on purpose: `--receiver-fail-pct`, or an endpoint's [`Answer`].
    pub failed_on_purpose: u64,
    /// Requests to a path that is no endpoint.
    pub unknown_paths: u64,
}

/// The running receiver.
pub struct Receiver {
    shared: Arc<Shared>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Serves `endpoints` (slot = index) on the reserved port.
    pub fn start(port: ReservedPort, endpoints: Vec<Endpoint>, behaviour: Behaviour) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared { endpoints, ..Shared::default() });
        let data = web::Data::new(State { shared: shared.clone(), behaviour });
        // Two workers: the hub and the load generator share the same two
        // cores, and a receiver delay is a sleep, not CPU, so more would only
        // contend.
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
            .workers(2)
            .backlog(4096)
            .max_connection_rate(4096)
            .disable_signals()
            .listen(port.listener)?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { shared, handle })
    }

    /// Distinct verified (slot, id) pairs so far; cheap, for progress and drain checks.
    pub fn distinct(&self) -> usize {
        self.shared.arrivals.lock().unwrap().len()
    }

    /// Runs `f` over the arrival log without copying it.
    pub fn with_arrivals<T>(&self, f: impl FnOnce(&HashMap<(usize, String), Instant>, &[Endpoint]) -> T) -> T {
        f(&self.shared.arrivals.lock().unwrap(), &self.shared.endpoints)
    }

    /// Verified requests answered 500 on purpose so far.
    pub fn failed_on_purpose(&self) -> u64 {
        self.shared.failed_on_purpose.load(Ordering::Relaxed)
    }

    /// Requests received so far, verified or not.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Stops accepting without waiting for requests in progress.
    pub fn abandon(self) {
        let handle = self.handle;
        tokio::spawn(async move { handle.stop(false).await });
    }

    /// Stops the server and returns what it saw.
    pub async fn stop(self) -> Observed {
        self.handle.stop(true).await;
        let s = &self.shared;
        Observed {
            arrivals: std::mem::take(&mut *s.arrivals.lock().unwrap()),
            first_failures: std::mem::take(&mut *s.first_failures.lock().unwrap()),
            tenant_of_slot: s.endpoints.iter().map(|e| e.tenant).collect(),
            requests: s.requests.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            bad_signatures: s.bad_signatures.load(Ordering::Relaxed),
            first_bad_signature: s.first_bad_signature.lock().unwrap().clone(),
            failed_on_purpose: s.failed_on_purpose.load(Ordering::Relaxed),
            unknown_paths: s.unknown_paths.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    /// The vector published with the Standard Webhooks reference libraries.
    #[test]
    fn accepts_the_standard_webhooks_test_vector() {
        let key = secret_key(SECRET).unwrap();
        assert_eq!(verify(&key, ID, TS, SIG, BODY), Ok(()));
        assert_eq!(verify(&key, ID, TS, &format!("v1,bm9wZQ== {SIG}"), BODY), Ok(()), "any entry may match");
    }

    #[test]
    fn refuses_any_tampering() {
        let key = secret_key(SECRET).unwrap();
        assert_eq!(verify(&key, ID, TS, SIG, br#"{"test": 2432232315}"#), Err(SignatureError::NoMatch));
        assert_eq!(verify(&key, "msg_other", TS, SIG, BODY), Err(SignatureError::NoMatch));
        assert_eq!(verify(&key, ID, "1614265331", SIG, BODY), Err(SignatureError::NoMatch));
        assert_eq!(
            verify(&key, ID, TS, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", BODY),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(verify(b"other key", ID, TS, SIG, BODY), Err(SignatureError::NoMatch));
    }

    #[test]
    fn refuses_stale_timestamps() {
        assert_eq!(check_timestamp(TS), Err(SignatureError::BadTimestamp));
        assert_eq!(check_timestamp("soon"), Err(SignatureError::BadTimestamp));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(check_timestamp(&now.to_string()), Ok(()));
    }
}
