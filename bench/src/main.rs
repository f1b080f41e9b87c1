//! `hookhub-bench`: an end-to-end benchmark anyone can rerun on one machine.
//!
//! It starts the `hookhub` binary as a child process (SQLite with the
//! in-process queue, or a fresh PostgreSQL database with RabbitMQ), a local
//! receiver that verifies every signature, creates tenants and
//! subscriptions, drives events, waits for the deliveries, and reports what
//! it measured. It exits non-zero when a delivery was lost.
mod hub;
mod infra;
mod load;
mod noisy;
mod noisy_retries;
mod receiver;
mod report;

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use hub::{HubLauncher, HubProcess, ProcUsage};
use infra::{AmqpNames, PgDatabase, SslMode};
use load::{Accepted, Pace, Plan};
use noisy::NoisyReport;
use noisy_retries::RetriesReport;
use receiver::{Behaviour, Endpoint, Receiver, ReservedPort};
use report::{Context, Report, RunConfig, Timeline};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Which store (and so which queue) the hub runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Store {
    /// SQLite in a temporary directory, in-process queue.
    Sqlite,
    /// A fresh PostgreSQL database and RabbitMQ, both removed afterwards.
    Postgres,
}

#[derive(Parser, Debug)]
#[command(name = "hookhub-bench", version, about = "End-to-end benchmark of a hookhub process on this machine")]
struct Args {
    /// Store and queue of the hub.
    #[arg(long, value_enum, default_value = "sqlite")]
    store: Store,
    /// Tenants; events are posted round-robin over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    tenants: u32,
    /// Subscriptions (all `["*"]`) per tenant, so webhooks per event.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    fanout: u32,
    /// Events per second to post.
    #[arg(long, required_unless_present_any = ["max", "noisy_retries"], conflicts_with = "max", value_parser = clap::value_parser!(u32).range(1..))]
    rate: Option<u32>,
    /// Post as fast as the hub answers, with at most --concurrency POSTs in flight.
    #[arg(long)]
    max: bool,
    /// Seconds to post events for.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Events per POST: 1 posts each to /v1/events; more posts batches of
    /// this many to /v1/events/batch (--rate still counts events).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batch: u32,
    /// Most POSTs in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Seconds to wait after sending for the deliveries still owed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=3600))]
    drain_timeout: u64,
    /// Milliseconds the receiver waits before answering each request.
    #[arg(long, default_value_t = 0)]
    receiver_delay_ms: u64,
    /// Extra subscriptions per tenant to a second, slow receiver; they are not
    /// counted, they are there to show that healthy endpoints keep their pace.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    slow_endpoints: u32,
    /// Milliseconds the slow receiver waits before answering (longer than the
    /// hub's 15-second timeout by default: every attempt to it times out).
    #[arg(long, default_value_t = 30_000)]
    slow_delay_ms: u64,
    /// Subscriptions keep order per key (`ordering: "per_key"`), and event n
    /// carries the ordering key `k_{n mod N}`: N keys delivered in parallel,
    /// each one at a time in ingest order. Unset: unordered, no keys.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000), conflicts_with = "noisy_tenant")]
    ordering_keys: Option<u32>,
    /// Percentage of requests the receiver answers 500 (the hub retries them).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    receiver_fail_pct: u8,
    /// The hookhub binary [default: `hookhub` beside this executable].
    #[arg(long)]
    hub_bin: Option<PathBuf>,
    /// HOOKHUB_RETRY_SCHEDULE for the hub: short, so retried deliveries finish within the drain.
    #[arg(long, default_value = "100ms,200ms,500ms,1s,2s,5s")]
    retry_schedule: String,
    /// Extra setting for the hub, like HOOKHUB_DELIVERY_CONCURRENCY=128 or RUST_LOG=info (repeatable).
    #[arg(long = "hub-env", value_name = "KEY=VALUE")]
    hub_env: Vec<String>,
    /// PostgreSQL server (trust auth) whose `postgres` database creates the run's database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_server: String,
    /// `sslmode` of the hub's PostgreSQL connections. Two processes on one
    /// box have no use for TLS, so the default is off; `prefer` is what a
    /// bare URL gives.
    #[arg(long, value_enum, default_value = "disable")]
    pg_sslmode: SslMode,
    /// RabbitMQ broker.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Two tenants: a noisy one bursting at the run's pace (`--max` or
    /// `--rate`, `--duration`, `--fanout`) and a quiet one posting
    /// `--quiet-rate` events/s to one subscription before, during and after
    /// the burst; reports the quiet tenant's latency during the burst.
    #[arg(long, conflicts_with_all = ["tenants", "slow_endpoints", "noisy_retries"])]
    noisy_tenant: bool,
    /// Two tenants: a noisy one whose `--retry-backlog` events go to
    /// `--fanout` endpoints that always answer 500, so they keep coming due
    /// as retries, and a quiet one posting `--quiet-rate` events/s to an
    /// endpoint that fails each webhook's first request; reports how long
    /// the quiet tenant's retries took during the storm the noisy tenant's
    /// retries make for `--duration` seconds. The circuit breaker is off.
    #[arg(long, conflicts_with_all = ["tenants", "slow_endpoints", "rate", "max", "batch"])]
    noisy_retries: bool,
    /// Events of the noisy tenant whose deliveries fail (`--noisy-retries`).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    retry_backlog: u64,
    /// Events per second of the quiet tenant (`--noisy-tenant`, `--noisy-retries`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    quiet_rate: u32,
    /// Give every counted subscription a typical filter and transform (an
    /// expression on the event's data, and a Svix-style `handler` that
    /// reshapes the body, sets PUT and a header), to measure their cost.
    /// The filter passes every event the bench posts, so every webhook is still owed.
    #[arg(long)]
    transform: bool,
    /// Seconds the quiet tenant posts alone before and after the burst
    /// (`--noisy-tenant`), or before the storm (`--noisy-retries`).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    quiet_alone: u64,
}

impl Args {
    /// How requests are paced: `--rate` events per second are
    /// `--rate / --batch` requests.
    fn pace(&self) -> Pace {
        self.rate.map_or(Pace::Max, |r| Pace::Rate((r / self.batch).max(1)))
    }

    /// The first step of `--retry-schedule`: the longest wait before a first retry.
    fn first_retry_cap(&self) -> anyhow::Result<Duration> {
        let schedule: hookhub_dispatcher::RetrySchedule = self.retry_schedule.parse().context("--retry-schedule")?;
        schedule.caps().first().copied().context("--retry-schedule has no step: nothing is retried")
    }

    /// `KEY=VALUE` pairs of --hub-env, checked.
    fn extra_env(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.hub_env
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').with_context(|| format!("--hub-env {kv:?} is not KEY=VALUE"))?;
                Ok((k.to_owned(), v.to_owned()))
            })
            .collect()
    }
}

/// Refuses any service address off this machine: the benchmark only ever talks to loopback.
fn ensure_loopback(what: &str, url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{what}: not a URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("{what} must be a loopback address (127.0.0.0/8, ::1, localhost)");
    }
    Ok(())
}

/// The services of one run, removed by [`Backend::cleanup`].
struct Backend {
    pg: Option<PgDatabase>,
    amqp: Option<AmqpNames>,
    /// Settings that point the hub at them.
    env: Vec<(String, String)>,
}

impl Backend {
    async fn prepare(args: &Args, workdir: &Path) -> anyhow::Result<Self> {
        match args.store {
            Store::Sqlite => {
                let url = format!("sqlite://{}/hub.db?mode=rwc", workdir.display());
                Ok(Self { pg: None, amqp: None, env: vec![("HOOKHUB_DATABASE_URL".into(), url)] })
            }
            Store::Postgres => {
                ensure_loopback("--pg-server", &args.pg_server)?;
                ensure_loopback("--amqp-url", &args.amqp_url)?;
                let pg = PgDatabase::create(&args.pg_server, args.pg_sslmode).await?;
                let amqp = AmqpNames::new(&args.amqp_url);
                let env = vec![
                    ("HOOKHUB_DATABASE_URL".into(), pg.url()),
                    ("HOOKHUB_AMQP_URL".into(), amqp.url.clone()),
                    ("HOOKHUB_AMQP_EXCHANGE".into(), amqp.name.clone()),
                    ("HOOKHUB_AMQP_QUEUE".into(), amqp.name.clone()),
                ];
                Ok(Self { pg: Some(pg), amqp: Some(amqp), env })
            }
        }
    }

    /// Drops the database and deletes the exchange and queue; reports failures but goes on.
    async fn cleanup(self) {
        if let Some(amqp) = &self.amqp {
            if let Err(e) = amqp.delete().await {
                eprintln!("warning: could not delete RabbitMQ exchange/queue {}: {e:#}", amqp.name);
            }
        }
        if let Some(pg) = self.pg {
            if let Err(e) = pg.drop_database().await {
                eprintln!("warning: could not drop the benchmark database: {e:#}");
            }
        }
    }
}

/// The filter of `--transform`: typical of one, and true for every event the bench posts.
const BENCH_FILTER: &str = r#"event.type === "appointment.booked" && event.data.client_id.startsWith("cl_")"#;

/// The transform of `--transform`: what a CRM integration typically does.
const BENCH_TRANSFORM: &str = r#"function handler(webhook) {
  const d = webhook.payload.data;
  webhook.payload = { appointment: d.appointment_id, contact: { id: d.client_id }, tags: ["hookhub", webhook.eventType], at: webhook.payload.timestamp };
  webhook.method = "PUT";
  webhook.headers = { "x-source": "hookhub" };
  return webhook;
}"#;

/// Creates one `["*"]` subscription, with the bench's filter and transform
/// if `transform` and ordered per key if `ordered`, and returns its signing key.
async fn subscribe(
    client: &reqwest::Client,
    hub: &str,
    key: &str,
    url: &str,
    transform: bool,
    ordered: bool,
) -> anyhow::Result<Vec<u8>> {
    let mut body = json!({"url": url, "event_types": ["*"], "description": "hookhub-bench"});
    if transform {
        body["filter"] = json!(BENCH_FILTER);
        body["transform"] = json!(BENCH_TRANSFORM);
    }
    // Only when asked: a hub from before ordering refuses the field.
    if ordered {
        body["ordering"] = json!("per_key");
    }
    let resp = client.post(format!("{hub}/v1/subscriptions")).bearer_auth(key).json(&body).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("creating a subscription: {status} {body}");
    }
    receiver::secret_key(body["secret"].as_str().context("subscription without a secret")?)
}

/// Waits until the `expected` deliveries of the `accepted` events arrived
/// or `timeout` passed; returns whether all did.
async fn drain(receiver: &Receiver, accepted: &HashMap<String, Accepted>, expected: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut last_progress = Instant::now();
    loop {
        // The count of distinct arrivals is cheap; matching them against
        // accepted events is exact but walks everything, so do it only once
        // the cheap count says we may be done.
        if receiver.distinct() >= expected {
            let delivered = receiver.with_arrivals(|arrivals, endpoints| {
                report::match_arrivals(arrivals, |slot| endpoints[slot].tenant, accepted).delivered
            });
            if delivered as usize >= expected {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            eprintln!("draining: {} of {expected} deliveries", receiver.distinct());
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The figures of one run, of either kind.
enum Figures {
    /// The standard run.
    Standard(Box<Report>),
    /// `--noisy-tenant`.
    Noisy(Box<NoisyReport>),
    /// `--noisy-retries`.
    Retries(Box<RetriesReport>),
}

impl Figures {
    /// Where the services' versions and settings go.
    fn services(&mut self) -> (&mut Option<infra::PgSettings>, &mut Option<String>) {
        match self {
            Self::Standard(r) => (&mut r.postgres, &mut r.rabbitmq_version),
            Self::Noisy(r) => (&mut r.facts.postgres, &mut r.facts.rabbitmq_version),
            Self::Retries(r) => (&mut r.facts.postgres, &mut r.facts.rabbitmq_version),
        }
    }

    /// Deliveries owed and not received, and events accepted.
    fn lost_and_accepted(&self) -> (u64, u64) {
        match self {
            Self::Standard(r) => (r.lost, r.events_accepted),
            Self::Noisy(r) => (r.lost(), r.noisy.accepted + r.quiet.accepted),
            Self::Retries(r) => (r.lost(), r.noisy_accepted + r.quiet_accepted),
        }
    }

    fn table(&self) -> String {
        match self {
            Self::Standard(r) => r.table(),
            Self::Noisy(r) => r.table(),
            Self::Retries(r) => r.table(),
        }
    }

    fn json(&self) -> String {
        let json = match self {
            Self::Standard(r) => serde_json::to_string_pretty(r),
            Self::Noisy(r) => serde_json::to_string_pretty(r),
            Self::Retries(r) => serde_json::to_string_pretty(r),
        };
        json.expect("report serializes")
    }
}

/// Everything between "services are ready" and "figures are in".
async fn measure(args: &Args, backend: &Backend, launcher: &HubLauncher) -> anyhow::Result<Figures> {
    let tenants = if args.noisy_tenant || args.noisy_retries { 2 } else { args.tenants as usize };
    eprintln!("creating {tenants} tenant(s)");
    let mut keys = Vec::with_capacity(tenants);
    for t in 0..tenants {
        keys.push(launcher.create_tenant(&format!("bench tenant {t}")).await?);
    }
    let hub = launcher.serve(&format!("127.0.0.1:{}", hub::free_port()?)).await?;
    let result = if args.noisy_tenant {
        let pair: [String; 2] = keys.try_into().expect("two tenants were created");
        noisy::measure(args, backend, &hub, pair).await.map(|r| Figures::Noisy(Box::new(r)))
    } else if args.noisy_retries {
        let pair: [String; 2] = keys.try_into().expect("two tenants were created");
        noisy_retries::measure(args, backend, &hub, pair, args.first_retry_cap()?)
            .await
            .map(|r| Figures::Retries(Box::new(r)))
    } else {
        measure_with_hub(args, backend, &hub, keys).await
    };
    // Stopped in every case so a failed run leaves no hub behind.
    let stopped = hub.stop().await;
    let mut figures = result?;
    if let Err(e) = stopped {
        eprintln!("warning: {e:#}");
    }
    let (postgres, rabbitmq_version) = figures.services();
    if let Some(pg) = &backend.pg {
        *postgres = Some(pg.settings().await?);
    }
    if backend.amqp.is_some() {
        *rabbitmq_version = Some(infra::rabbitmq_version().await.unwrap_or_else(|e| format!("unknown ({e:#})")));
    }
    Ok(figures)
}

/// Starts the receiver of `--slow-endpoints` and subscribes them, if asked for.
async fn start_slow_receiver(
    args: &Args,
    client: &reqwest::Client,
    hub: &str,
    keys: &[String],
) -> anyhow::Result<Option<Receiver>> {
    if args.slow_endpoints == 0 {
        return Ok(None);
    }
    let port = ReservedPort::bind()?;
    let base = port.base_url()?;
    let mut endpoints = Vec::new();
    for (tenant, key) in keys.iter().enumerate() {
        for _ in 0..args.slow_endpoints {
            let url = format!("{base}{}", receiver::endpoint_path(endpoints.len()));
            endpoints.push(Endpoint::new(subscribe(client, hub, key, &url, false, false).await?, tenant));
        }
    }
    let behaviour = Behaviour { delay: Duration::from_millis(args.slow_delay_ms), fail_pct: 0 };
    Ok(Some(Receiver::start(port, endpoints, behaviour)?))
}

async fn measure_with_hub(
    args: &Args,
    backend: &Backend,
    hub: &HubProcess,
    keys: Vec<String>,
) -> anyhow::Result<Figures> {
    let fanout = args.fanout as usize;
    let port = ReservedPort::bind()?;
    let receiver_base = port.base_url()?;
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
    let mut endpoints = Vec::with_capacity(keys.len() * fanout);
    for (tenant, key) in keys.iter().enumerate() {
        for _ in 0..fanout {
            let url = format!("{receiver_base}{}", receiver::endpoint_path(endpoints.len()));
            let ordered = args.ordering_keys.is_some();
            let key = subscribe(&client, &hub.base, key, &url, args.transform, ordered).await?;
            endpoints.push(Endpoint::new(key, tenant));
        }
    }
    let behaviour =
        Behaviour { delay: Duration::from_millis(args.receiver_delay_ms), fail_pct: args.receiver_fail_pct };
    let receiver = Receiver::start(port, endpoints, behaviour)?;
    let slow = start_slow_receiver(args, &client, &hub.base, &keys).await?;

    eprintln!("sending for {} s ({:?})", args.duration, args.pace());
    let send_start = Instant::now();
    let plan = Plan {
        hub: hub.base.clone(),
        keys,
        pace: args.pace(),
        duration: Duration::from_secs(args.duration),
        concurrency: args.concurrency as usize,
        first_tenant: 0,
        stop: None,
        idempotency_prefix: None,
        batch: args.batch as usize,
        max_requests: None,
        ordering_keys: args.ordering_keys.map(u64::from),
    };
    let sent = load::run(plan).await?;
    let send_end = Instant::now();
    eprintln!(
        "sent {} events, {} accepted; draining (at most {} s)",
        sent.sent,
        sent.accepted.len(),
        args.drain_timeout
    );
    let expected = sent.accepted.len() * fanout;
    let drained = drain(&receiver, &sent.accepted, expected, Duration::from_secs(args.drain_timeout)).await;

    // Read now: VmHWM is the peak over the process's life, and the hub is about to stop.
    let hub_usage = hub.usage()?;
    let bench_usage = ProcUsage::read("self")?;
    let seen = receiver.stop().await;
    if let Some(slow) = slow {
        // Its requests sleep for seconds; do not wait for them.
        eprintln!("slow receiver got {} requests (not counted)", slow.requests());
        slow.abandon();
    }
    let ctx = Context {
        config: run_config(args, backend, args.tenants as usize),
        timeline: Timeline { send_start, send_end },
        drained,
        hub: hub_usage,
        bench: bench_usage,
        postgres: None,
        rabbitmq_version: None,
    };
    Ok(Figures::Standard(Box::new(Report::build(ctx, sent, seen))))
}

/// How the run was set up, for the report.
fn run_config(args: &Args, backend: &Backend, tenants: usize) -> RunConfig {
    RunConfig {
        store: format!("{:?}", args.store).to_lowercase(),
        queue: if backend.amqp.is_some() { "rabbitmq" } else { "in-process" }.into(),
        tenants,
        fanout: args.fanout as usize,
        rate: args.rate,
        duration_s: args.duration as f64,
        concurrency: args.concurrency as usize,
        batch: args.batch as usize,
        receiver_delay_ms: args.receiver_delay_ms,
        receiver_fail_pct: args.receiver_fail_pct,
        transform: args.transform,
        ordering_keys: args.ordering_keys,
        hub_env: launcher_settings(args),
        nproc: std::thread::available_parallelism().map_or(0, usize::from),
    }
}

/// The tuning settings given to the hub (not the URLs, which may carry credentials).
fn launcher_settings(args: &Args) -> Vec<String> {
    let mut v = vec![format!("HOOKHUB_RETRY_SCHEDULE={}", args.retry_schedule)];
    v.extend(args.hub_env.iter().cloned());
    v
}

async fn run(args: &Args) -> anyhow::Result<(Figures, PathBuf)> {
    let bin = match &args.hub_bin {
        Some(b) => b.clone(),
        None => hub::default_bin()?,
    };
    hub::check_bin(&bin)?;
    let workdir = std::env::temp_dir().join(format!("hh_bench_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&workdir)?;
    let backend = Backend::prepare(args, &workdir).await?;
    let mut env = backend.env.clone();
    // Quiet by default: per-request logging would be measured as hub cost.
    env.push(("RUST_LOG".into(), "warn".into()));
    env.push(("HOOKHUB_RETRY_SCHEDULE".into(), args.retry_schedule.clone()));
    // The receivers are on loopback over http, which only development mode
    // allows; encryption at rest stays as in production.
    env.push(("HOOKHUB_MODE".into(), "development".into()));
    if args.noisy_retries {
        // The breaker would disable the always-failing endpoints and end the storm.
        env.push(("HOOKHUB_BREAKER_MAX_FAILURES".into(), "0".into()));
    }
    // Last, so that they override the above.
    env.extend(args.extra_env()?);
    let launcher = HubLauncher { bin, env, log: workdir.join("hub.log") };
    let result = tokio::select! {
        r = measure(args, &backend, &launcher) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    backend.cleanup().await;
    result.map(|r| (r, workdir.clone())).with_context(|| format!("hub log kept in {}", launcher.log.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (report, workdir) = match run(&args).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    let (lost, accepted) = report.lost_and_accepted();
    if lost > 0 || accepted == 0 {
        eprintln!(
            "FAIL: {lost} expected deliveries lost, {accepted} events accepted; hub log kept in {}",
            workdir.join("hub.log").display()
        );
        return ExitCode::FAILURE;
    }
    let _ = std::fs::remove_dir_all(&workdir);
    ExitCode::SUCCESS
}
