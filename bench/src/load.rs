//! The load generator: posts events to the hub (one per request, or in
//! batches) at a fixed rate or as fast as a bounded number of in-flight
//! requests allows, and notes for each
//! accepted event the moment its 202 came back.
use serde_json::json;
use std::collections::HashMap;
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
    /// Events per POST: 1 posts to `/v1/events`, more to `/v1/events/batch`.
    pub batch: usize,
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
}

/// Shared by the sending tasks.
struct Sender {
    client: reqwest::Client,
    url: String,
    keys: Vec<String>,
    batch: usize,
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
    /// Posts request number `seq` (one event, or a batch of them) and records the result.
    async fn send(&self, seq: u64) {
        let tenant = (seq % self.keys.len() as u64) as usize;
        let first = seq * self.batch as u64;
        let body = if self.batch == 1 {
            event(first)
        } else {
            json!({"events": (first..first + self.batch as u64).map(event).collect::<Vec<_>>()})
        };
        let started = Instant::now();
        let answer = self.client.post(&self.url).bearer_auth(&self.keys[tenant]).json(&body).send().await;
        let expected = if self.batch == 1 { reqwest::StatusCode::ACCEPTED } else { reqwest::StatusCode::OK };
        let result = match answer {
            Ok(resp) if resp.status() == expected => {
                let at = Instant::now();
                match resp.json::<serde_json::Value>().await {
                    Ok(v) => accepted_ids(self.batch, &v).map(|ids| (ids, at)),
                    Err(e) => Err(format!("{expected} with an unreadable body: {e}")),
                }
            }
            Ok(resp) => {
                let status = resp.status();
                Err(format!("{status}: {}", resp.text().await.unwrap_or_default()))
            }
            Err(e) => Err(format!("transport: {e}")),
        };
        let elapsed = started.elapsed();
        let mut out = self.outcome.lock().unwrap();
        out.sent += self.batch as u64;
        match result {
            Ok((ids, at)) => {
                out.ingest_latencies.push(elapsed);
                for id in ids {
                    out.accepted.insert(id, Accepted { tenant, at });
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
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
    let sender = Arc::new(Sender {
        client,
        url: format!("{}/v1/events{}", plan.hub, if plan.batch > 1 { "/batch" } else { "" }),
        keys: plan.keys,
        batch: plan.batch.max(1),
        outcome: Mutex::new(Outcome::default()),
    });
    let deadline = Instant::now() + plan.duration;
    let late_sends = match plan.pace {
        Pace::Max => run_max(&sender, concurrency, deadline).await,
        Pace::Rate(rate) => run_rate(&sender, rate, concurrency, deadline).await,
    };
    let sender = Arc::into_inner(sender).expect("all sending tasks finished");
    let mut outcome = sender.outcome.into_inner().unwrap();
    outcome.late_sends = late_sends;
    Ok(outcome)
}

/// `concurrency` workers, each posting the next event as soon as its previous one was answered.
async fn run_max(sender: &Arc<Sender>, concurrency: usize, deadline: Instant) -> u64 {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (sender, next) = (sender.clone(), next.clone());
        workers.spawn(async move {
            while Instant::now() < deadline {
                sender.send(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    0
}

/// Starts event `i` at `start + i / rate`; at most `concurrency` in flight.
/// Returns how many sends started late because no slot was free.
async fn run_rate(sender: &Arc<Sender>, rate: u32, concurrency: usize, deadline: Instant) -> u64 {
    let slots = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tasks = JoinSet::new();
    let mut late = 0;
    for seq in 0u64.. {
        let due = start + period.mul_f64(seq as f64);
        if due >= deadline {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
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
