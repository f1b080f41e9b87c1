//! A local webhook receiver that records requests and answers from a script.
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// The request method.
    pub method: String,
    /// Lower-case header names to values.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: std::time::Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    scripts: Mutex<HashMap<String, VecDeque<u16>>>,
    echoing: Mutex<std::collections::HashSet<String>>,
    delay: Mutex<Duration>,
    path_delays: Mutex<HashMap<String, Duration>>,
    /// Paths that answer 500 at random, with this probability.
    flaky: Mutex<HashMap<String, f64>>,
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    base: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

async fn record(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<State>>) -> HttpResponse {
    let path = req.path().to_owned();
    let headers =
        req.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let at = std::time::Instant::now();
    let path_delay = state.path_delays.lock().unwrap().get(&path).copied();
    let delay = path_delay.unwrap_or(*state.delay.lock().unwrap());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let scripted = state.scripts.lock().unwrap().get_mut(&path).and_then(VecDeque::pop_front);
    let flaky = state.flaky.lock().unwrap().get(&path).copied();
    let status = scripted.unwrap_or_else(|| match flaky {
        Some(p) if rand::random::<f64>() < p => 500,
        _ => 200,
    });
    let echo = state.echoing.lock().unwrap().contains(&path);
    let method = req.method().to_string();
    state.received.lock().unwrap().push(Received { path, method, headers, body: body.to_vec(), at, status });
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if status == 429 {
        response.insert_header(("retry-after", "1"));
    }
    if echo {
        // As careless receivers do: the payload back, with a NUL to boot.
        return response.body([&body[..], b"\0"].concat());
    }
    response.body(format!("answered {status}"))
}

impl Receiver {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        let data = web::Data::new(state.clone());
        let (base, handle) = super::serve_locally(move |cfg| {
            cfg.app_data(data.clone()).default_service(web::to(record));
        });
        Self { base, state, handle }
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers the next requests to `path` with these statuses, then 200.
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.state.scripts.lock().unwrap().insert(path.to_owned(), statuses.iter().copied().collect());
    }

    /// Answers requests to `path` with a 500 with probability `p`, else 200
    /// (a script set for the path goes first).
    pub fn fail_randomly(&self, path: &str, p: f64) {
        self.state.flaky.lock().unwrap().insert(path.to_owned(), p);
    }

    /// Answers requests to `path` with their own body and a NUL byte.
    pub fn echo(&self, path: &str) {
        self.state.echoing.lock().unwrap().insert(path.to_owned());
    }

    /// Waits this long before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// Waits this long before answering each request to `path`.
    pub fn set_path_delay(&self, path: &str, delay: Duration) {
        self.state.path_delays.lock().unwrap().insert(path.to_owned(), delay);
    }

    /// Everything received at `path` so far.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.state.received.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    /// The distinct `webhook-id`s received at `path`.
    pub fn ids(&self, path: &str) -> std::collections::HashSet<String> {
        self.received(path).iter().map(|r| r.header("webhook-id").to_owned()).collect()
    }

    /// Waits until `path` received `n` distinct webhooks; returns their ids.
    pub async fn wait_for_ids(&self, path: &str, n: usize, timeout: Duration) -> std::collections::HashSet<String> {
        super::eventually(timeout, || async {
            let ids = self.ids(path);
            (ids.len() >= n).then_some(ids)
        })
        .await
    }

    /// Everything received so far, on any path.
    pub fn all(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `path` received at least `n` requests.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        super::eventually(Duration::from_secs(20), || async {
            let got = self.received(path);
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}
