//! Turns what the load generator and the receiver observed into figures,
//! and prints them as a table or as JSON.
use crate::hub::ProcUsage;
use crate::infra::PgSettings;
use crate::load::{Accepted, Outcome};
use crate::receiver::Observed;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Quantiles of a latency distribution, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quantiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Quantiles {
    /// Nearest-rank quantiles of `samples` (all zero when there are none).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            let idx = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[idx].as_secs_f64() * 1e3
        };
        Self { count: samples.len(), p50_ms: rank(0.50), p95_ms: rank(0.95), p99_ms: rank(0.99), max_ms: rank(1.0) }
    }

    /// `p50 / p95 / p99 / max`, for a table.
    pub fn cells(&self) -> String {
        format!("{:.1} / {:.1} / {:.1} / {:.1}", self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms)
    }
}

/// Rows of a table, keys aligned.
pub fn render_rows(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

/// The rows naming the services a run used, in postgres mode.
pub fn service_rows(postgres: Option<&PgSettings>, rabbitmq_version: Option<&String>) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if let Some(pg) = postgres {
        rows.push(("postgres", pg.server_version.clone()));
        rows.push(("  shared_buffers", pg.shared_buffers.clone()));
        rows.push(("  synchronous_commit", pg.synchronous_commit.clone()));
        rows.push(("  hub connection", pg.hub_connection.clone()));
        rows.push(("  max_connections", pg.max_connections.clone()));
    }
    if let Some(v) = rabbitmq_version {
        rows.push(("rabbitmq", v.clone()));
    }
    rows
}

/// What the two-tenant runs (`--noisy-tenant`, `--noisy-retries`) report
/// besides their own figures: what the receiver refused, what the
/// processes used, and the services.
#[derive(Debug, Serialize)]
pub struct RunFacts {
    /// Verified deliveries answered 2xx again.
    pub duplicates: u64,
    /// Deliveries whose signature or timestamp did not verify.
    pub bad_signatures: u64,
    /// The first non-202, non-429 answer.
    pub first_ingest_error: Option<String>,
    /// The hub process, read just before it was stopped.
    pub hub: ProcUsage,
    /// This benchmark process.
    pub bench: ProcUsage,
    /// PostgreSQL settings, in postgres mode.
    pub postgres: Option<PgSettings>,
    /// RabbitMQ version, in postgres mode.
    pub rabbitmq_version: Option<String>,
}

impl RunFacts {
    /// Read as the run ends: the receiver's refusals, both processes' use;
    /// the services are filled in once the hub stopped.
    pub fn read(seen: &Observed, first_ingest_error: Option<String>, hub: ProcUsage) -> anyhow::Result<Self> {
        Ok(Self {
            duplicates: seen.duplicates,
            bad_signatures: seen.bad_signatures,
            first_ingest_error,
            hub,
            bench: ProcUsage::read("self")?,
            postgres: None,
            rabbitmq_version: None,
        })
    }

    /// The table's last rows: processes, services, the first ingest error.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            ("hub peak RSS", format!("{:.1} MiB", self.hub.peak_rss_kib as f64 / 1024.0)),
            ("hub / bench CPU", format!("{:.1} s / {:.1} s", self.hub.cpu_seconds, self.bench.cpu_seconds)),
        ];
        rows.extend(service_rows(self.postgres.as_ref(), self.rabbitmq_version.as_ref()));
        if let Some(e) = &self.first_ingest_error {
            rows.push(("first ingest error", e.clone()));
        }
        rows
    }
}

/// How the run was set up.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// `sqlite` or `postgres`.
    pub store: String,
    /// `rabbitmq` or `in-process`.
    pub queue: String,
    /// Tenants.
    pub tenants: usize,
    /// Subscriptions per tenant.
    pub fanout: usize,
    /// Target events/s, or `None` for `--max`.
    pub rate: Option<u32>,
    /// Seconds of sending.
    pub duration_s: f64,
    /// Most POSTs in flight.
    pub concurrency: usize,
    /// Events per POST (more than 1: `/v1/events/batch`).
    pub batch: usize,
    /// Receiver delay per request.
    pub receiver_delay_ms: u64,
    /// Share of requests the receiver fails on purpose.
    pub receiver_fail_pct: u8,
    /// Whether subscriptions carried a filter and transform (`--transform`).
    pub transform: bool,
    /// Ordered subscriptions over this many keys; `None`: unordered.
    pub ordering_keys: Option<u32>,
    /// Settings passed to the hub.
    pub hub_env: Vec<String>,
    /// Cores on this machine.
    pub nproc: usize,
}

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The setup.
    pub config: RunConfig,
    /// POSTs attempted.
    pub events_sent: u64,
    /// POSTs answered 202.
    pub events_accepted: u64,
    /// Wall time of the sending phase, from the first POST to the last answer.
    pub send_seconds: f64,
    /// `events_accepted / send_seconds`.
    pub accepted_per_s: f64,
    /// `events_accepted × fanout`.
    pub expected_deliveries: u64,
    /// Distinct verified (endpoint, webhook-id) pairs that belong to an accepted event of the endpoint's tenant.
    pub delivered: u64,
    /// `expected_deliveries − delivered`, counted, not assumed.
    pub lost: u64,
    /// Verified deliveries that arrived again after one was already answered 2xx.
    pub duplicates: u64,
    /// Verified deliveries of events this run never saw accepted (or to another tenant's endpoint).
    pub unexpected: u64,
    /// Seconds from the first POST to the last delivery.
    pub delivery_seconds: f64,
    /// `delivered / delivery_seconds`.
    pub delivered_per_s: f64,
    /// Deliveries received while events were still being sent.
    pub delivered_during_send: u64,
    /// Deliveries still owed when sending stopped: how far delivery lagged ingest.
    pub backlog_at_send_end: u64,
    /// Whether every expected delivery arrived before the drain timeout.
    pub drained: bool,
    /// From the 202 of an event to its arrival at the receiver.
    pub e2e_latency: Quantiles,
    /// POST /v1/events round trip of the accepted events.
    pub ingest_latency: Quantiles,
    /// Non-202 answers and transport errors.
    pub ingest_errors: u64,
    /// The first of those.
    pub first_ingest_error: Option<String>,
    /// Deliveries whose signature or timestamp did not verify.
    pub bad_signatures: u64,
    /// The first of those.
    pub first_bad_signature: Option<String>,
    /// `ingest_errors + bad_signatures`.
    pub errors: u64,
    /// Requests the receiver answered 500 on purpose (`--receiver-fail-pct`).
    pub receiver_failed_on_purpose: u64,
    /// All requests the receiver got, retries included.
    pub receiver_requests: u64,
    /// Requests to a path that is no endpoint of this run.
    pub receiver_unknown_paths: u64,
    /// Rate-paced sends that started late because all in-flight slots were busy.
    pub late_sends: u64,
    /// `429` answers, each waited out (`Retry-After`) and sent again.
    pub refused: u64,
    /// Events still refused when sending ended (never accepted, so not owed).
    pub given_up: u64,
    /// The hub process, read just before it was stopped.
    pub hub: ProcUsage,
    /// This benchmark process (load generator + receiver), which shares the machine.
    pub bench: ProcUsage,
    /// PostgreSQL settings, in postgres mode.
    pub postgres: Option<PgSettings>,
    /// RabbitMQ version, in postgres mode.
    pub rabbitmq_version: Option<String>,
}

/// Phase boundaries of a run.
pub struct Timeline {
    /// When sending began.
    pub send_start: Instant,
    /// When the last POST was answered.
    pub send_end: Instant,
}

/// One expected delivery that arrived.
#[derive(Clone, Copy, Debug)]
pub struct Delivered {
    /// The tenant whose event it is.
    pub tenant: usize,
    /// When its event's 202 came back.
    pub accepted: Instant,
    /// When it arrived at the receiver.
    pub arrived: Instant,
}

impl Delivered {
    /// From the 202 to the arrival. A delivery can beat the 202 to us (the
    /// relay may publish before the API's answer is read); that is zero
    /// latency, not negative.
    pub fn latency(&self) -> Duration {
        self.arrived.saturating_duration_since(self.accepted)
    }
}

/// Deliveries matched against accepted events.
pub struct Matched {
    /// Expected and received.
    pub delivered: u64,
    /// Received but not expected.
    pub unexpected: u64,
    /// Each delivered one.
    pub deliveries: Vec<Delivered>,
}

/// Matches the receiver's arrivals against accepted events: a delivery
/// counts only if its event was accepted and posted by the endpoint's tenant.
pub fn match_arrivals(
    arrivals: &HashMap<(usize, String), Instant>,
    tenant_of_slot: impl Fn(usize) -> usize,
    accepted: &HashMap<String, Accepted>,
) -> Matched {
    let mut m = Matched { delivered: 0, unexpected: 0, deliveries: Vec::new() };
    for ((slot, id), &arrived) in arrivals {
        match accepted.get(id) {
            Some(a) if a.tenant == tenant_of_slot(*slot) => {
                m.delivered += 1;
                m.deliveries.push(Delivered { tenant: a.tenant, accepted: a.at, arrived });
            }
            _ => m.unexpected += 1,
        }
    }
    m
}

/// `n` per second over `secs` (0 over no time).
pub fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Inputs of [`Report::build`] that come from outside the two observers.
pub struct Context {
    /// The setup.
    pub config: RunConfig,
    /// Phases.
    pub timeline: Timeline,
    /// Whether the drain finished.
    pub drained: bool,
    /// Hub usage.
    pub hub: ProcUsage,
    /// Bench usage.
    pub bench: ProcUsage,
    /// PostgreSQL settings.
    pub postgres: Option<PgSettings>,
    /// RabbitMQ version.
    pub rabbitmq_version: Option<String>,
}

impl Report {
    /// Computes the figures.
    pub fn build(ctx: Context, sent: Outcome, seen: Observed) -> Self {
        let fanout = ctx.config.fanout as u64;
        let accepted = sent.accepted.len() as u64;
        let expected = accepted * fanout;
        let m = match_arrivals(&seen.arrivals, |slot| seen.tenant_of_slot[slot], &sent.accepted);
        let Timeline { send_start, send_end } = ctx.timeline;
        let send_seconds = send_end.duration_since(send_start).as_secs_f64();
        let last_arrival = m.deliveries.iter().map(|d| d.arrived).max().unwrap_or(send_start);
        let delivery_seconds = last_arrival.duration_since(send_start).as_secs_f64();
        let delivered_during_send = m.deliveries.iter().filter(|d| d.arrived <= send_end).count() as u64;
        Self {
            events_sent: sent.sent,
            events_accepted: accepted,
            send_seconds,
            accepted_per_s: per_s(accepted, send_seconds),
            expected_deliveries: expected,
            delivered: m.delivered,
            lost: expected.saturating_sub(m.delivered),
            duplicates: seen.duplicates,
            unexpected: m.unexpected,
            delivery_seconds,
            delivered_per_s: per_s(m.delivered, delivery_seconds),
            delivered_during_send,
            backlog_at_send_end: expected.saturating_sub(delivered_during_send),
            drained: ctx.drained,
            e2e_latency: Quantiles::of(m.deliveries.iter().map(Delivered::latency).collect()),
            ingest_latency: Quantiles::of(sent.ingest_latencies),
            ingest_errors: sent.errors,
            first_ingest_error: sent.first_error,
            bad_signatures: seen.bad_signatures,
            first_bad_signature: seen.first_bad_signature,
            errors: sent.errors + seen.bad_signatures,
            receiver_failed_on_purpose: seen.failed_on_purpose,
            receiver_requests: seen.requests,
            receiver_unknown_paths: seen.unknown_paths,
            late_sends: sent.late_sends,
            refused: sent.refused,
            given_up: sent.given_up,
            hub: ctx.hub,
            bench: ctx.bench,
            postgres: ctx.postgres,
            rabbitmq_version: ctx.rabbitmq_version,
            config: ctx.config,
        }
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let c = &self.config;
        let pace = c.rate.map_or_else(|| "max".to_owned(), |r| format!("{r}/s"));
        let mut rows: Vec<(&str, String)> = vec![
            ("store / queue", format!("{} / {}", c.store, c.queue)),
            ("tenants x fan-out", format!("{} x {}", c.tenants, c.fanout)),
            ("pace / duration", format!("{pace} for {:.0} s, {} in flight max", c.duration_s, c.concurrency)),
            ("events per POST", c.batch.to_string()),
            ("filter + transform", if c.transform { "yes (--transform)" } else { "no" }.to_owned()),
            ("receiver delay / fail", format!("{} ms / {}%", c.receiver_delay_ms, c.receiver_fail_pct)),
            ("ordering", c.ordering_keys.map_or("unordered".to_owned(), |n| format!("per key, {n} keys"))),
            ("events sent / accepted", format!("{} / {}", self.events_sent, self.events_accepted)),
            ("accepted events/s", format!("{:.0}", self.accepted_per_s)),
            ("delivered webhooks/s", format!("{:.0} (over {:.1} s)", self.delivered_per_s, self.delivery_seconds)),
            (
                "delivered during send",
                format!("{} (backlog at end {})", self.delivered_during_send, self.backlog_at_send_end),
            ),
            ("expected / delivered", format!("{} / {}", self.expected_deliveries, self.delivered)),
            ("lost", self.lost.to_string()),
            ("duplicates / unexpected", format!("{} / {}", self.duplicates, self.unexpected)),
            ("drained in time", self.drained.to_string()),
            ("e2e ms p50/p95/p99/max", self.e2e_latency.cells()),
            ("ingest ms p50/p95/p99/max", self.ingest_latency.cells()),
            (
                "errors",
                format!("{} ({} ingest, {} bad signatures)", self.errors, self.ingest_errors, self.bad_signatures),
            ),
            (
                "receiver requests / 500s / 404s",
                format!(
                    "{} / {} / {}",
                    self.receiver_requests, self.receiver_failed_on_purpose, self.receiver_unknown_paths
                ),
            ),
            ("late sends", self.late_sends.to_string()),
            ("429s waited out / given up", format!("{} / {}", self.refused, self.given_up)),
            ("hub peak RSS", format!("{:.1} MiB", self.hub.peak_rss_kib as f64 / 1024.0)),
            ("hub / bench CPU", format!("{:.1} s / {:.1} s", self.hub.cpu_seconds, self.bench.cpu_seconds)),
        ];
        rows.extend(service_rows(self.postgres.as_ref(), self.rabbitmq_version.as_ref()));
        if let Some(e) = &self.first_ingest_error {
            rows.push(("first ingest error", e.clone()));
        }
        if let Some(e) = &self.first_bad_signature {
            rows.push(("first bad signature", e.clone()));
        }
        render_rows(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let q = Quantiles::of((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(q, Quantiles { count: 100, p50_ms: 50.0, p95_ms: 95.0, p99_ms: 99.0, max_ms: 100.0 });
        assert_eq!(Quantiles::of(vec![]), Quantiles::default());
        assert_eq!(Quantiles::of(vec![Duration::from_millis(7)]).p99_ms, 7.0);
    }

    #[test]
    fn only_deliveries_of_accepted_events_to_their_tenant_count() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(5);
        let accepted = HashMap::from([
            ("evt_a".to_owned(), Accepted { tenant: 0, at: t0 }),
            ("evt_b".to_owned(), Accepted { tenant: 1, at: later }),
        ]);
        let arrivals = HashMap::from([
            ((0, "evt_a".to_owned()), later),
            ((1, "evt_b".to_owned()), t0),    // before its 202: clamped to 0
            ((0, "evt_b".to_owned()), later), // another tenant's endpoint
            ((1, "evt_z".to_owned()), later), // never accepted
        ]);
        let m = match_arrivals(&arrivals, |slot| slot, &accepted);
        assert_eq!((m.delivered, m.unexpected), (2, 2));
        let mut ms: Vec<_> = m.deliveries.iter().map(|d| d.latency().as_millis()).collect();
        ms.sort();
        assert_eq!(ms, vec![0, 5]);
    }
}
