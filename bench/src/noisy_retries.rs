//! `--noisy-retries`: fairness of the retry path (issue #15).
//!
//! A noisy tenant posts `--retry-backlog` events to `--fanout` endpoints
//! that answer 500 to every request, so all its deliveries live in the
//! hub's retry path and keep coming due (the circuit breaker is off for the
//! run, or it would stop them). A quiet tenant posts `--quiet-rate`
//! events/s to one endpoint that answers 500 to each webhook's first
//! request and 204 to the next: every one of its webhooks goes out by its
//! first retry.
//!
//! The figure is the quiet tenant's retry gap: from the first request of a
//! webhook to its retry. The hub draws the wait from `(0, cap]` where `cap`
//! is the first step of `--retry-schedule`, so a retry's lateness past its
//! due time lies between `gap − cap` and `gap`. The gap is split by when
//! the first request came: the quiet tenant alone, and during the storm
//! (from the noisy tenant's first POST to `--duration` seconds after its
//! last).
use crate::hub::HubProcess;
use crate::load::{self, Outcome, Pace, Plan};
use crate::receiver::{self, Answer, Behaviour, Endpoint, Observed, Receiver, ReservedPort};
use crate::report::{self, per_s, Quantiles, RunConfig, RunFacts};
use crate::{Args, Backend};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tenant index of the tenant whose deliveries all fail.
const NOISY: usize = 0;
/// Tenant index of the steady one.
const QUIET: usize = 1;
/// POSTs of the quiet tenant in flight at most: its pace is a few a second.
const QUIET_CONCURRENCY: usize = 8;
/// How long the quiet tenant's last retries get to arrive after it stops.
const QUIET_DRAIN: Duration = Duration::from_secs(15);

/// Everything a `--noisy-retries` run measured.
#[derive(Debug, Serialize)]
pub struct RetriesReport {
    /// The setup (the noisy tenant's fan-out and pace while loading).
    pub config: RunConfig,
    /// First step of the retry schedule: the most a retry's drawn wait can be, in ms.
    pub first_retry_cap_ms: f64,
    /// Events the noisy tenant had accepted.
    pub noisy_accepted: u64,
    /// Seconds it took the noisy tenant to post them.
    pub load_seconds: f64,
    /// Seconds of the storm after the noisy tenant's last POST.
    pub storm_seconds: f64,
    /// Failed requests to the noisy tenant's endpoints per second, over the storm.
    pub noisy_attempts_per_s: f64,
    /// Events the quiet tenant had accepted.
    pub quiet_accepted: u64,
    /// Of those, delivered (by the retry, after the first request failed).
    pub quiet_delivered: u64,
    /// The quiet tenant's retry gap, first requests before the storm.
    pub gap_alone: Quantiles,
    /// The quiet tenant's retry gap, first requests during the storm.
    pub gap_during_storm: Quantiles,
    /// Refusals, processes and services.
    #[serde(flatten)]
    pub facts: RunFacts,
}

impl RetriesReport {
    /// The quiet tenant's webhooks that never arrived.
    pub fn lost(&self) -> u64 {
        self.quiet_accepted.saturating_sub(self.quiet_delivered)
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let c = &self.config;
        let phase = |q: &Quantiles| format!("{} ({})", q.cells(), q.count);
        let mut rows: Vec<(&str, String)> = vec![
            ("store / queue", format!("{} / {}", c.store, c.queue)),
            ("noisy: failing deliveries", format!("{} events x {} endpoints", self.noisy_accepted, c.fanout)),
            ("noisy: posted in", format!("{:.1} s ({} in flight)", self.load_seconds, c.concurrency)),
            (
                "noisy: failed attempts/s in storm",
                format!("{:.0} (storm {:.0} s after loading)", self.noisy_attempts_per_s, self.storm_seconds),
            ),
            ("first retry wait drawn from", format!("(0, {:.0} ms]", self.first_retry_cap_ms)),
            (
                "quiet: accepted / delivered / lost",
                format!("{} / {} / {}", self.quiet_accepted, self.quiet_delivered, self.lost()),
            ),
            ("quiet retry gap ms alone (n)", phase(&self.gap_alone)),
            ("quiet retry gap ms DURING storm (n)", phase(&self.gap_during_storm)),
            ("duplicates / bad sigs", format!("{} / {}", self.facts.duplicates, self.facts.bad_signatures)),
        ];
        rows.extend(self.facts.rows());
        report::render_rows(&rows)
    }
}

/// Runs the scenario against a started hub; `keys` are the noisy and the quiet tenant's.
pub async fn measure(
    args: &Args,
    backend: &Backend,
    hub: &HubProcess,
    keys: [String; 2],
    first_retry_cap: Duration,
) -> anyhow::Result<RetriesReport> {
    let port = ReservedPort::bind()?;
    let base = port.base_url()?;
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
    let mut endpoints = Vec::new();
    for (tenant, count, answer) in [(NOISY, args.fanout as usize, Answer::AlwaysFail), (QUIET, 1, Answer::FailFirst)] {
        for _ in 0..count {
            let url = format!("{base}{}", receiver::endpoint_path(endpoints.len()));
            let key = crate::subscribe(&client, &hub.base, &keys[tenant], &url, false, false).await?;
            endpoints.push(Endpoint { answer, ..Endpoint::new(key, tenant) });
        }
    }
    let receiver = Receiver::start(port, endpoints, Behaviour { delay: Duration::ZERO, fail_pct: 0 })?;
    let plan = |tenant: usize, pace: Pace, concurrency: usize, stop, max_requests| Plan {
        hub: hub.base.clone(),
        keys: vec![keys[tenant].clone()],
        pace,
        // Until told to stop, or `max_requests` were sent.
        duration: Duration::from_secs(86_400),
        concurrency,
        first_tenant: tenant,
        stop,
        idempotency_prefix: Some(format!("bench-{tenant}")),
        batch: 1,
        max_requests,
        ordering_keys: None,
    };

    let alone = Duration::from_secs(args.quiet_alone);
    let storm = Duration::from_secs(args.duration);
    let stop_quiet = Arc::new(AtomicBool::new(false));
    let quiet_plan = plan(QUIET, Pace::Rate(args.quiet_rate), QUIET_CONCURRENCY, Some(stop_quiet.clone()), None);
    let quiet = tokio::spawn(load::run(quiet_plan));
    eprintln!("quiet tenant alone for {} s", alone.as_secs());
    tokio::time::sleep(alone).await;

    eprintln!("noisy tenant posting {} events to failing endpoints", args.retry_backlog);
    let storm_start = Instant::now();
    let noisy_plan = plan(NOISY, Pace::Max, args.concurrency as usize, None, Some(args.retry_backlog));
    let noisy = load::run(noisy_plan).await?;
    let load_seconds = storm_start.elapsed().as_secs_f64();
    eprintln!("noisy tenant: {} accepted; storm for {} s", noisy.accepted.len(), storm.as_secs());
    let failures_at_storm = receiver.failed_on_purpose();
    tokio::time::sleep(storm).await;
    let storm_failures = receiver.failed_on_purpose() - failures_at_storm;
    let storm_end = Instant::now();
    stop_quiet.store(true, Ordering::Relaxed);
    let quiet = quiet.await??;
    wait_for_quiet(&receiver, &quiet).await;

    let hub_usage = hub.usage()?;
    let seen = receiver.stop().await;
    let gaps = |keep: &dyn Fn(Instant) -> bool| Quantiles::of(retry_gaps(&seen, &quiet, keep));
    Ok(RetriesReport {
        config: crate::run_config(args, backend, 2),
        first_retry_cap_ms: first_retry_cap.as_secs_f64() * 1e3,
        noisy_accepted: noisy.accepted.len() as u64,
        load_seconds,
        storm_seconds: storm.as_secs_f64(),
        noisy_attempts_per_s: per_s(storm_failures, storm.as_secs_f64()),
        quiet_accepted: quiet.accepted.len() as u64,
        quiet_delivered: quiet_arrivals(&seen, &quiet) as u64,
        gap_alone: gaps(&|at| at < storm_start),
        gap_during_storm: gaps(&|at| at >= storm_start && at <= storm_end),
        facts: RunFacts::read(&seen, noisy.first_error.or(quiet.first_error), hub_usage)?,
    })
}

/// Waits, at most [`QUIET_DRAIN`], until every quiet event was delivered.
async fn wait_for_quiet(receiver: &Receiver, quiet: &Outcome) {
    let deadline = Instant::now() + QUIET_DRAIN;
    while Instant::now() < deadline {
        let arrived = receiver.with_arrivals(|arrivals, endpoints| {
            arrivals.keys().filter(|(slot, _)| endpoints[*slot].tenant == QUIET).count()
        });
        if arrived >= quiet.accepted.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The quiet tenant's accepted events that arrived (2xx).
fn quiet_arrivals(seen: &Observed, quiet: &Outcome) -> usize {
    seen.arrivals
        .keys()
        .filter(|(slot, id)| seen.tenant_of_slot[*slot] == QUIET && quiet.accepted.contains_key(id))
        .count()
}

/// First request → retry, for the quiet webhooks whose first request `keep` accepts.
fn retry_gaps(seen: &Observed, quiet: &Outcome, keep: &dyn Fn(Instant) -> bool) -> Vec<Duration> {
    seen.first_failures
        .iter()
        .filter(|((slot, id), first)| {
            seen.tenant_of_slot[*slot] == QUIET && quiet.accepted.contains_key(id) && keep(**first)
        })
        .filter_map(|(key, first)| Some(seen.arrivals.get(key)?.saturating_duration_since(*first)))
        .collect()
}
