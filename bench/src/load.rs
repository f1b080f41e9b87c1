//! The load generator: posts events to the hub (one per request, or in
//! batches) at a fixed rate or as fast as a bounded number of in-flight
//! requests allows, and notes for each
//! accepted event the moment its 202 came back.
//!
//! A `429` is treated as a real client would: the same event is sent again
//! after `Retry-After` (with the same idempotency key when the plan gives
//! keys), so a refusal is counted but never lost.
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How events are paced.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// This many events per second, spread evenly.
    Rate(u32),
    /// As fast as the hub answers.
    Max,
}

/// What to send.
pub struct Plan {
    /// `http://127.0.0.1:PORT` of the hub.
    pub hub: String,
    /// One API key per tenant; events go round-robin over them.
    pub keys: Vec<String>,
    /// Pacing.
    pub pace: Pace,
    /// How long to send for.
    pub duration: Duration,
    /// Most POSTs in flight at once (both paces).
    pub concurrency: usize,
    /// The report's index of the tenant of `keys[0]`; the others follow.
    pub first_tenant: usize,
    /// Ends sending early once set (a phase of the run is over).
    pub stop: Option<Arc<AtomicBool>>,
    /// When set, event `n` carries the idempotency key `{prefix}-{n}`.
    pub idempotency_prefix: Option<String>,
    /// Events per POST: 1 posts to `/v1/events`, more to `/v1/events/batch`.
    pub batch: usize,
    /// Most requests to send (each of `batch` events); `None` sends until the duration ends.
    pub max_requests: Option<u64>,
    /// When set, event `n` carries the ordering key `k_{n mod keys}`.
    pub ordering_keys: Option<u64>,
}

/// An event the hub accepted.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    /// The tenant that posted it.
    pub tenant: usize,
    /// When its 202 came back.
    pub at: Instant,
}

/// What the load generator saw.
#[derive(Default)]
pub struct Outcome {
    /// Events attempted.
    pub sent: u64,
    /// Accepted events by id.
    pub accepted: HashMap<String, Accepted>,
    /// Round-trip of every POST that got an answer (any status).
    pub ingest_latencies: Vec<Duration>,
    /// Non-202 answers and transport errors.
    pub errors: u64,
    /// The first error, for diagnosis.
    pub first_error: Option<String>,
    /// Times a rate-paced send could not start on time because all in-flight slots were taken.
    pub late_sends: u64,
    /// `429` answers, each waited out and the event sent again.
    pub refused: u64,
    /// Events still refused when sending ended: never accepted, so owed nothing.
    pub given_up: u64,
}

/// The wait a `429` asks for: its `Retry-After` in seconds, else one second.
fn retry_after(resp: &reqwest::Response) -> Duration {
    let secs = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    Duration::from_secs(secs.unwrap_or(1))
}

/// How one POST ended.
enum Answer {
    /// Accepted (202, or a batch's 200 with every event accepted), with
    /// the event ids and when the answer came.
    Accepted(Vec<String>, Instant),
    /// 429: send it again after this long.
    Refused(Duration),
    /// Anything else.
    Failed(String),
}

/// Shared by the sending tasks.
struct Sender {
    client: reqwest::Client,
    url: String,
    keys: Vec<String>,
    first_tenant: usize,
    idempotency_prefix: Option<String>,
    /// No wait after a `429` may end past this.
    deadline: Instant,
    stop: Arc<AtomicBool>,
    batch: usize,
    max_requests: Option<u64>,
    ordering_keys: Option<u64>,
    outcome: Mutex<Outcome>,
}

/// Event number `seq`.
fn event(seq: u64) -> serde_json::Value {
    json!({
        "type": "appointment.booked",
        "data": {"appointment_id": format!("apt_{seq}"), "client_id": format!("cl_{}", seq % 1000)},
    })
}

/// The ids a 202 (one event) or a batch answer (each event's result) accepted.
fn accepted_ids(batch: usize, answer: &serde_json::Value) -> Result<Vec<String>, String> {
    let ids: Vec<String> = if batch == 1 {
        answer["id"].as_str().map(str::to_owned).into_iter().collect()
    } else {
        let results =
            answer["results"].as_array().ok_or_else(|| format!("a batch answer without results: {answer}"))?;
        results.iter().filter(|r| r["status"] == 202).filter_map(|r| Some(r["id"].as_str()?.to_owned())).collect()
    };
    if ids.len() == batch {
        Ok(ids)
    } else {
        Err(format!("{} of {batch} accepted: {answer}", ids.len()))
    }
}

impl Sender {
    /// Whether sending should end: the deadline passed or the run said stop.
    fn done(&self) -> bool {
        Instant::now() >= self.deadline || self.stop.load(Ordering::Relaxed)
    }

    /// Whether request number `seq` is past the plan's last.
    fn past_last(&self, seq: u64) -> bool {
        self.max_requests.is_some_and(|max| seq >= max)
    }

    /// Event number `seq`, with its idempotency key when the plan gives keys.
    fn event(&self, seq: u64) -> serde_json::Value {
        let mut body = event(seq);
        if let Some(prefix) = &self.idempotency_prefix {
            body["idempotency_key"] = format!("{prefix}-{seq}").into();
        }
        if let Some(keys) = self.ordering_keys {
            body["ordering_key"] = format!("k_{}", seq % keys).into();
        }
        body
    }

    /// Posts request number `seq` (one event, or a batch of them), again
    /// after each `429` until it is answered otherwise or sending ends, and
    /// records the result.
    async fn send(&self, seq: u64) {
        let slot = (seq % self.keys.len() as u64) as usize;
        let first = seq * self.batch as u64;
        let body = if self.batch == 1 {
            self.event(first)
        } else {
            json!({"events": (first..first + self.batch as u64).map(|n| self.event(n)).collect::<Vec<_>>()})
        };
        loop {
            let started = Instant::now();
            let answer = self.post(&self.keys[slot], &body).await;
            let Some(wait) = self.record(answer, started.elapsed(), slot) else { return };
            // Never past the end of sending: a worker that gave up at once
            // would only be refused again with its next event.
            tokio::time::sleep(wait.min(self.deadline.saturating_duration_since(Instant::now()))).await;
            if self.done() {
                self.outcome.lock().unwrap().given_up += self.batch as u64;
                return;
            }
        }
    }

    /// Records one answer; returns how long to wait before sending the
    /// request again when it was refused.
    fn record(&self, answer: Answer, elapsed: Duration, slot: usize) -> Option<Duration> {
        let mut out = self.outcome.lock().unwrap();
        out.sent += self.batch as u64;
        match answer {
            Answer::Accepted(ids, at) => {
                out.ingest_latencies.push(elapsed);
                for id in ids {
                    out.accepted.insert(id, Accepted { tenant: self.first_tenant + slot, at });
                }
            }
            Answer::Refused(wait) => {
                out.refused += 1;
                return Some(wait);
            }
            Answer::Failed(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
        None
    }

    /// One POST of `body` with `key`.
    async fn post(&self, key: &str, body: &serde_json::Value) -> Answer {
        let expected = if self.batch == 1 { reqwest::StatusCode::ACCEPTED } else { reqwest::StatusCode::OK };
        match self.client.post(&self.url).bearer_auth(key).json(body).send().await {
            Ok(resp) if resp.status() == expected => {
                let at = Instant::now();
                match resp.json::<serde_json::Value>().await {
                    Ok(v) => match accepted_ids(self.batch, &v) {
                        Ok(ids) => Answer::Accepted(ids, at),
                        Err(e) => Answer::Failed(e),
                    },
                    Err(e) => Answer::Failed(format!("{expected} with an unreadable body: {e}")),
                }
            }
            Ok(resp) if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => Answer::Refused(retry_after(&resp)),
            Ok(resp) => {
                let status = resp.status();
                Answer::Failed(format!("{status}: {}", resp.text().await.unwrap_or_default()))
            }
            Err(e) => Answer::Failed(format!("transport: {e}")),
        }
    }
}

/// Sends events as planned; returns when every POST has finished.
pub async fn run(plan: Plan) -> anyhow::Result<Outcome> {
    let concurrency = plan.concurrency.max(1);
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        // Bounds every POST, so the run ends even if the hub hangs.
        .timeout(Duration::from_secs(30))
        .build()?;
    let deadline = Instant::now() + plan.duration;
    let sender = Arc::new(Sender {
        client,
        url: format!("{}/v1/events{}", plan.hub, if plan.batch > 1 { "/batch" } else { "" }),
        keys: plan.keys,
        first_tenant: plan.first_tenant,
        idempotency_prefix: plan.idempotency_prefix,
        deadline,
        stop: plan.stop.unwrap_or_default(),
        batch: plan.batch.max(1),
        max_requests: plan.max_requests,
        ordering_keys: plan.ordering_keys,
        outcome: Mutex::new(Outcome::default()),
    });
    let late_sends = match plan.pace {
        Pace::Max => run_max(&sender, concurrency).await,
        Pace::Rate(rate) => run_rate(&sender, rate, concurrency).await,
    };
    let sender = Arc::into_inner(sender).expect("all sending tasks finished");
    let mut outcome = sender.outcome.into_inner().unwrap();
    outcome.late_sends = late_sends;
    Ok(outcome)
}

/// `concurrency` workers, each posting the next event as soon as its previous one was answered.
async fn run_max(sender: &Arc<Sender>, concurrency: usize) -> u64 {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (sender, next) = (sender.clone(), next.clone());
        workers.spawn(async move {
            while !sender.done() {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if sender.past_last(seq) {
                    break;
                }
                sender.send(seq).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    0
}

/// Starts event `i` at `start + i / rate`; at most `concurrency` in flight.
/// Returns how many sends started late because no slot was free.
async fn run_rate(sender: &Arc<Sender>, rate: u32, concurrency: usize) -> u64 {
    let slots = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tasks = JoinSet::new();
    let mut late = 0;
    for seq in 0u64.. {
        let due = start + period.mul_f64(seq as f64);
        if due >= sender.deadline || sender.past_last(seq) {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        if sender.done() {
            break;
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                late += 1;
                slots.clone().acquire_owned().await.expect("semaphore is never closed")
            }
        };
        let sender = sender.clone();
        tasks.spawn(async move {
            sender.send(seq).await;
            drop(permit);
        });
        // Reap finished tasks so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    late
}
