//! `--noisy-tenant`: fairness between tenants (issue #15).
//!
//! A quiet tenant posts a steady trickle (`--quiet-rate`, 5 events/s) to
//! one subscription for the whole run. After `--quiet-alone` seconds a
//! noisy tenant bursts for `--duration` seconds at the run's pace (`--max`
//! with `--concurrency`, or `--rate`) to `--fanout` subscriptions; once its
//! webhooks are all delivered the quiet tenant goes on alone for
//! `--quiet-alone` seconds more. The report splits the quiet tenant's e2e
//! latency by when its events were accepted: before the burst, during it
//! (from the burst's first POST to its last delivery), and after; and gives
//! the burst's own throughput, its `429`s, and what each tenant lost.
use crate::hub::HubProcess;
use crate::load::{self, Accepted, Outcome, Pace, Plan};
use crate::receiver::{self, Behaviour, Endpoint, Receiver, ReservedPort};
use crate::report::{self, per_s, Delivered, Quantiles, RunConfig, RunFacts};
use crate::{Args, Backend};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tenant index of the bursting tenant.
const NOISY: usize = 0;
/// Tenant index of the steady one.
const QUIET: usize = 1;
/// POSTs of the quiet tenant in flight at most: its pace is a few a second.
const QUIET_CONCURRENCY: usize = 8;
/// How long the quiet tenant's last events get to arrive after it stops.
const QUIET_DRAIN: Duration = Duration::from_secs(15);

/// The quiet tenant's e2e latency in one phase of the run.
#[derive(Debug, Serialize)]
pub struct Phases {
    /// Events accepted before the burst began.
    pub before: Quantiles,
    /// Events accepted from the burst's first POST to its last delivery.
    pub during: Quantiles,
    /// Events accepted after the burst's last delivery.
    pub after: Quantiles,
}

/// What one tenant sent and got.
#[derive(Debug, Serialize)]
pub struct TenantFigures {
    /// Subscriptions, so webhooks per event.
    pub fanout: usize,
    /// POSTs attempted, resends after a `429` included.
    pub posts: u64,
    /// Events accepted (202).
    pub accepted: u64,
    /// Accepted events per second of its sending.
    pub accepted_per_s: f64,
    /// `429` answers, each waited out and sent again.
    pub refused: u64,
    /// Events still refused when its sending ended (never accepted, not owed).
    pub given_up: u64,
    /// Other non-202 answers and transport errors.
    pub errors: u64,
    /// `accepted × fanout`.
    pub expected: u64,
    /// Of those, delivered and verified.
    pub delivered: u64,
    /// `expected − delivered`, counted.
    pub lost: u64,
    /// Delivered webhooks per second, from its first POST to its last delivery.
    pub delivered_per_s: f64,
    /// E2E latency of all its deliveries.
    pub e2e_latency: Quantiles,
}

impl TenantFigures {
    fn of(sent: &Outcome, fanout: usize, send_seconds: f64, delivered: &[Delivered], from: Instant) -> Self {
        let accepted = sent.accepted.len() as u64;
        let expected = accepted * fanout as u64;
        let count = delivered.len() as u64;
        let last = delivered.iter().map(|d| d.arrived).max().unwrap_or(from);
        Self {
            fanout,
            posts: sent.sent,
            accepted,
            accepted_per_s: per_s(accepted, send_seconds),
            refused: sent.refused,
            given_up: sent.given_up,
            errors: sent.errors,
            expected,
            delivered: count,
            lost: expected.saturating_sub(count),
            delivered_per_s: per_s(count, last.saturating_duration_since(from).as_secs_f64()),
            e2e_latency: Quantiles::of(delivered.iter().map(Delivered::latency).collect()),
        }
    }
}

/// Everything a `--noisy-tenant` run measured.
#[derive(Debug, Serialize)]
pub struct NoisyReport {
    /// The setup (the noisy tenant's pace, duration, fan-out).
    pub config: RunConfig,
    /// The quiet tenant's events per second.
    pub quiet_rate: u32,
    /// Seconds the quiet tenant posts alone before and after the burst.
    pub quiet_alone_s: u64,
    /// The bursting tenant.
    pub noisy: TenantFigures,
    /// The steady tenant.
    pub quiet: TenantFigures,
    /// The steady tenant's latency by phase.
    pub quiet_e2e: Phases,
    /// Seconds from the burst's first POST to its last delivery.
    pub burst_seconds: f64,
    /// Whether every expected delivery arrived before the drain timeouts.
    pub drained: bool,
    /// Deliveries of events never seen accepted, or to another tenant's endpoint.
    pub unexpected: u64,
    /// Refusals, processes and services.
    #[serde(flatten)]
    pub facts: RunFacts,
}

impl NoisyReport {
    /// Deliveries owed and not received, both tenants.
    pub fn lost(&self) -> u64 {
        self.noisy.lost + self.quiet.lost
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let c = &self.config;
        let pace = c.rate.map_or_else(|| format!("max, {} in flight", c.concurrency), |r| format!("{r}/s"));
        let tenant = |t: &TenantFigures| {
            format!(
                "{} accepted of {} posts, {} x 429 ({} given up), {} errors",
                t.accepted, t.posts, t.refused, t.given_up, t.errors
            )
        };
        let mut rows: Vec<(&str, String)> = vec![
            ("store / queue", format!("{} / {}", c.store, c.queue)),
            ("noisy: pace / fan-out", format!("{pace} for {:.0} s / {}", c.duration_s, self.noisy.fanout)),
            (
                "quiet: pace / fan-out",
                format!("{}/s, alone {} s before and after / 1", self.quiet_rate, self.quiet_alone_s),
            ),
            ("noisy: events", tenant(&self.noisy)),
            ("noisy: accepted events/s", format!("{:.0}", self.noisy.accepted_per_s)),
            (
                "noisy: delivered webhooks/s",
                format!("{:.0} (burst {:.1} s)", self.noisy.delivered_per_s, self.burst_seconds),
            ),
            (
                "noisy: expected / delivered / lost",
                format!("{} / {} / {}", self.noisy.expected, self.noisy.delivered, self.noisy.lost),
            ),
            ("noisy: e2e ms p50/p95/p99/max", self.noisy.e2e_latency.cells()),
            ("quiet: events", tenant(&self.quiet)),
            (
                "quiet: expected / delivered / lost",
                format!("{} / {} / {}", self.quiet.expected, self.quiet.delivered, self.quiet.lost),
            ),
            ("quiet e2e ms before (n)", phase(&self.quiet_e2e.before)),
            ("quiet e2e ms DURING burst (n)", phase(&self.quiet_e2e.during)),
            ("quiet e2e ms after (n)", phase(&self.quiet_e2e.after)),
            ("drained in time", self.drained.to_string()),
            (
                "duplicates / unexpected / bad sigs",
                format!("{} / {} / {}", self.facts.duplicates, self.unexpected, self.facts.bad_signatures),
            ),
        ];
        rows.extend(self.facts.rows());
        report::render_rows(&rows)
    }
}

/// `p50 / p95 / p99 / max (n)`.
fn phase(q: &Quantiles) -> String {
    format!("{} ({})", q.cells(), q.count)
}

/// Runs the scenario against a started hub; `keys` are the noisy and the quiet tenant's.
pub async fn measure(
    args: &Args,
    backend: &Backend,
    hub: &HubProcess,
    keys: [String; 2],
) -> anyhow::Result<NoisyReport> {
    let fanout = args.fanout as usize;
    let port = ReservedPort::bind()?;
    let base = port.base_url()?;
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
    let mut endpoints = Vec::with_capacity(fanout + 1);
    for (tenant, count) in [(NOISY, fanout), (QUIET, 1)] {
        for _ in 0..count {
            let url = format!("{base}{}", receiver::endpoint_path(endpoints.len()));
            let key = crate::subscribe(&client, &hub.base, &keys[tenant], &url, args.transform, false).await?;
            endpoints.push(Endpoint::new(key, tenant));
        }
    }
    let behaviour =
        Behaviour { delay: Duration::from_millis(args.receiver_delay_ms), fail_pct: args.receiver_fail_pct };
    let receiver = Receiver::start(port, endpoints, behaviour)?;
    let plan = |tenant: usize, pace: Pace, duration: Duration, concurrency: usize, stop| Plan {
        hub: hub.base.clone(),
        keys: vec![keys[tenant].clone()],
        pace,
        duration,
        concurrency,
        first_tenant: tenant,
        stop,
        // A resend after a 429 is the same event: a real client keeps its key.
        idempotency_prefix: Some(format!("bench-{tenant}")),
        batch: 1,
        max_requests: None,
        ordering_keys: None,
    };

    let alone = Duration::from_secs(args.quiet_alone);
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let stop_quiet = Arc::new(AtomicBool::new(false));
    // Long enough for every phase; the run stops it once the last is over.
    let quiet_for = alone * 2 + Duration::from_secs(args.duration) + drain_timeout + QUIET_DRAIN;
    let quiet_plan = plan(QUIET, Pace::Rate(args.quiet_rate), quiet_for, QUIET_CONCURRENCY, Some(stop_quiet.clone()));
    let quiet_start = Instant::now();
    let quiet = tokio::spawn(load::run(quiet_plan));
    eprintln!("quiet tenant alone for {} s", alone.as_secs());
    tokio::time::sleep(alone).await;

    eprintln!("noisy tenant bursting for {} s ({:?})", args.duration, args.pace());
    let burst_start = Instant::now();
    let noisy_plan = plan(NOISY, args.pace(), Duration::from_secs(args.duration), args.concurrency as usize, None);
    let noisy = load::run(noisy_plan).await?;
    let noisy_seconds = burst_start.elapsed().as_secs_f64();
    eprintln!(
        "noisy tenant: {} accepted, {} x 429; draining (at most {} s)",
        noisy.accepted.len(),
        noisy.refused,
        args.drain_timeout
    );
    let noisy_drained = crate::drain(&receiver, &noisy.accepted, noisy.accepted.len() * fanout, drain_timeout).await;

    eprintln!("quiet tenant alone again for {} s", alone.as_secs());
    tokio::time::sleep(alone).await;
    stop_quiet.store(true, Ordering::Relaxed);
    let quiet = quiet.await??;
    let quiet_seconds = quiet_start.elapsed().as_secs_f64();
    let quiet_drained = crate::drain(&receiver, &quiet.accepted, quiet.accepted.len(), QUIET_DRAIN).await;

    let hub_usage = hub.usage()?;
    let seen = receiver.stop().await;
    let accepted: HashMap<String, Accepted> =
        noisy.accepted.iter().chain(&quiet.accepted).map(|(id, a)| (id.clone(), *a)).collect();
    let matched = report::match_arrivals(&seen.arrivals, |slot| seen.tenant_of_slot[slot], &accepted);
    let of = |tenant| -> Vec<Delivered> { matched.deliveries.iter().filter(|d| d.tenant == tenant).copied().collect() };
    let (noisy_got, quiet_got) = (of(NOISY), of(QUIET));
    let burst_end = noisy_got.iter().map(|d| d.arrived).max().unwrap_or(burst_start);
    let quiet_in = |keep: &dyn Fn(Instant) -> bool| {
        Quantiles::of(quiet_got.iter().filter(|d| keep(d.accepted)).map(Delivered::latency).collect())
    };
    let config = crate::run_config(args, backend, 2);
    let report = NoisyReport {
        quiet_rate: args.quiet_rate,
        quiet_alone_s: args.quiet_alone,
        noisy: TenantFigures::of(&noisy, fanout, noisy_seconds, &noisy_got, burst_start),
        quiet: TenantFigures::of(&quiet, 1, quiet_seconds, &quiet_got, quiet_start),
        quiet_e2e: Phases {
            before: quiet_in(&|at| at < burst_start),
            during: quiet_in(&|at| at >= burst_start && at <= burst_end),
            after: quiet_in(&|at| at > burst_end),
        },
        burst_seconds: burst_end.saturating_duration_since(burst_start).as_secs_f64(),
        drained: noisy_drained && quiet_drained,
        unexpected: matched.unexpected,
        facts: RunFacts::read(&seen, noisy.first_error.or(quiet.first_error), hub_usage)?,
        config,
    };
    Ok(report)
}
