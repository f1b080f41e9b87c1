//! Prometheus metrics of every part of the hub, in one registry.
//!
//! Counters and histograms are updated where things happen; the gauges that
//! describe the store (outbox backlog, retry queue depth) are read from the
//! database at most once per [`STORE_GAUGES_EVERY`], so every process
//! reports the same truth and a scrape never costs a query of its own.
//! Labels have a few fixed values each: no series per subscription or
//! tenant, whose count would grow with the customers and whose ids would
//! reach whoever reads the metrics.
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the store's gauges are read again; scrapes in between see the last values.
pub const STORE_GAUGES_EVERY: Duration = Duration::from_secs(15);

/// Lets something happen at most once per interval, whoever asks.
pub struct Throttle {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl Throttle {
    /// A throttle that lets the first call through, then one per `every`.
    pub const fn new(every: Duration) -> Self {
        Self { every, last: Mutex::new(None) }
    }

    /// Whether it is time again; if so, the next time starts now.
    pub fn ready(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < self.every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// Every metric Hookhub exports.
pub struct Metrics {
    registry: Registry,
    /// Events accepted (API, inbound callbacks and rules).
    pub events_accepted: IntCounter,
    /// Events confirmed by the broker.
    pub events_published: IntCounter,
    /// Events refused because their tenant's backlog was over the bound.
    pub backlog_refusals: IntCounter,
    /// Tenants whose backlog is over the bound now (as this ingest process last read it).
    pub tenants_over_backlog_limit: IntGauge,
    /// Outbox rows not yet published (read from the store now and then).
    pub outbox_backlog: IntGauge,
    /// Age of the oldest unpublished outbox row (read from the store now and then).
    pub outbox_oldest_age_seconds: IntGauge,
    /// Outbox rows the relay set aside as unpublishable, by reason.
    pub outbox_quarantined: IntCounterVec,
    /// Outbox rows in quarantine now (sampled at scrape).
    pub outbox_quarantined_rows: IntGauge,
    /// Attempts by outcome and status class.
    pub attempts: IntCounterVec,
    /// Pending deliveries waiting for a later attempt (read from the store now and then).
    pub retry_queue_depth: IntGauge,
    /// Unpublished outbox rows by tenant class (plan), read with the other store gauges.
    pub outbox_backlog_by_plan: IntGaugeVec,
    /// Pending deliveries due now or overdue, by tenant class (plan).
    pub due_deliveries_by_plan: IntGaugeVec,
    /// How long the longest-waiting due delivery of a tenant class has been due.
    pub oldest_due_age_seconds_by_plan: IntGaugeVec,
    /// HTTP time of one attempt.
    pub attempt_duration: Histogram,
    /// From the event's acceptance to its successful delivery.
    pub delivery_latency: Histogram,
    /// Deliveries held because their subscription or event cannot be read
    /// (a key left the keyring, a corrupt row): written by fan-out, or
    /// put back by the retry path.
    pub deliveries_held: IntCounter,
    /// Subscriptions whose latest attempt from this process failed.
    pub failing_subscriptions: IntGauge,
    /// The longest run of failed attempts among them (set at render).
    pub longest_failure_streak: IntGauge,
    /// The failure streak of each failing subscription, in memory only.
    streaks: Mutex<HashMap<String, u32>>,
}

const LATENCY_BUCKETS: [f64; 16] =
    [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0];

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
                .expect("valid metric");
            registry.register(Box::new(h.clone())).expect("registered once");
            h
        };
        // One series per plan: five at most, whatever the number of tenants.
        let by_plan = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["plan"]).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let attempts = IntCounterVec::new(
            Opts::new("hookhub_attempts_total", "Delivery attempts by outcome and status class"),
            &["outcome", "status_class"],
        )
        .expect("valid metric");
        registry.register(Box::new(attempts.clone())).expect("registered once");
        let outbox_quarantined = IntCounterVec::new(
            Opts::new("hookhub_outbox_quarantined_total", "Outbox rows set aside as unpublishable, by reason"),
            &["reason"],
        )
        .expect("valid metric");
        registry.register(Box::new(outbox_quarantined.clone())).expect("registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registered once");
        Self {
            events_accepted: counter("hookhub_events_accepted_total", "Events accepted"),
            events_published: counter("hookhub_events_published_total", "Events confirmed by the broker"),
            backlog_refusals: counter(
                "hookhub_backlog_refusals_total",
                "Events refused with 429 tenant_backlog_full (HOOKHUB_TENANT_BACKLOG_LIMIT)",
            ),
            tenants_over_backlog_limit: gauge(
                "hookhub_tenants_over_backlog_limit",
                "Tenants whose unpublished events are at or over HOOKHUB_TENANT_BACKLOG_LIMIT",
            ),
            outbox_backlog: gauge("hookhub_outbox_backlog", "Outbox rows not yet published"),
            outbox_oldest_age_seconds: gauge(
                "hookhub_outbox_oldest_age_seconds",
                "Age of the oldest unpublished outbox row",
            ),
            outbox_quarantined_rows: gauge(
                "hookhub_outbox_quarantined_rows",
                "Outbox rows in quarantine (hookhub outbox quarantined)",
            ),
            outbox_quarantined,
            retry_queue_depth: gauge("hookhub_retry_queue_depth", "Pending deliveries waiting for a later attempt"),
            outbox_backlog_by_plan: by_plan(
                "hookhub_outbox_backlog_by_plan",
                "Outbox rows not yet published, by the plan of their tenant",
            ),
            due_deliveries_by_plan: by_plan(
                "hookhub_due_deliveries_by_plan",
                "Pending deliveries due now or overdue, by the plan of their tenant",
            ),
            oldest_due_age_seconds_by_plan: by_plan(
                "hookhub_oldest_due_age_seconds_by_plan",
                "How long the longest-waiting due delivery has been due, by the plan of its tenant",
            ),
            attempt_duration: histogram("hookhub_attempt_duration_seconds", "HTTP time of one delivery attempt"),
            delivery_latency: histogram(
                "hookhub_delivery_latency_seconds",
                "From an event's acceptance to its successful delivery",
            ),
            deliveries_held: counter(
                "hookhub_deliveries_held_total",
                "Deliveries held because their subscription or event cannot be read",
            ),
            failing_subscriptions: gauge(
                "hookhub_failing_subscriptions",
                "Subscriptions whose latest attempt from this process failed",
            ),
            longest_failure_streak: gauge(
                "hookhub_longest_failure_streak",
                "Most consecutive failed attempts of one subscription, in this process",
            ),
            attempts,
            streaks: Mutex::new(HashMap::new()),
            registry,
        }
    }

    /// Records one attempt's result.
    pub fn attempt(&self, outcome: &str, status: Option<u16>, seconds: f64) {
        let class = match status {
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(_) => "5xx",
            // A filtered event made no request: neither an answer nor an error.
            None if outcome == "filtered" => "none",
            None => "error",
        };
        self.attempts.with_label_values(&[outcome, class]).inc();
        if outcome != "filtered" {
            self.attempt_duration.observe(seconds);
        }
    }

    /// Tracks a subscription's run of failures; a success clears it.
    pub fn streak(&self, subscription_id: &str, failed: bool) {
        let mut streaks = self.streaks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failed {
            *streaks.entry(subscription_id.to_owned()).or_default() += 1;
        } else {
            streaks.remove(subscription_id);
        }
        self.failing_subscriptions.set(streaks.len() as i64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let longest = self.streaks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().copied().max();
        self.longest_failure_streak.set(i64::from(longest.unwrap_or(0)));
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("encoding to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_call_through_per_interval() {
        let throttle = Throttle::new(Duration::from_millis(200));
        assert!(throttle.ready());
        assert!(!throttle.ready() && !throttle.ready(), "scrapes in between read nothing");
        std::thread::sleep(Duration::from_millis(210));
        assert!(throttle.ready());
    }

    #[test]
    fn failure_streaks_are_counted_without_a_series_per_subscription() {
        let m = Metrics::new();
        m.streak("sub_a", true);
        m.streak("sub_a", true);
        m.streak("sub_b", true);
        let text = m.render();
        assert!(text.contains("hookhub_failing_subscriptions 2") && text.contains("hookhub_longest_failure_streak 2"));
        assert!(!text.contains("sub_a") && !text.contains("subscription_id"), "{text}");
        m.streak("sub_a", false);
        assert!(m.render().contains("hookhub_longest_failure_streak 1"));
    }
}
