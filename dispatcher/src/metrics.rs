//! Prometheus metrics of every part of the hub, in one registry.
//!
//! Counters and histograms are updated where things happen; the gauges that
//! describe the store (outbox backlog, retry queue depth) are read from the
//! database at scrape time, so every process reports the same truth.
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

/// Every metric Hookhub exports.
pub struct Metrics {
    registry: Registry,
    /// Events accepted (API, inbound callbacks and rules).
    pub events_accepted: IntCounter,
    /// Events confirmed by the broker.
    pub events_published: IntCounter,
    /// Outbox rows not yet published (sampled at scrape).
    pub outbox_backlog: IntGauge,
    /// Age of the oldest unpublished outbox row (sampled at scrape).
    pub outbox_oldest_age_seconds: IntGauge,
    /// Outbox rows the relay set aside as unpublishable, by reason.
    pub outbox_quarantined: IntCounterVec,
    /// Outbox rows in quarantine now (sampled at scrape).
    pub outbox_quarantined_rows: IntGauge,
    /// Attempts by outcome and status class.
    pub attempts: IntCounterVec,
    /// Pending deliveries waiting for a later attempt (sampled at scrape).
    pub retry_queue_depth: IntGauge,
    /// HTTP time of one attempt.
    pub attempt_duration: Histogram,
    /// From the event's acceptance to its successful delivery.
    pub delivery_latency: Histogram,
    /// Consecutive failed attempts per subscription, while above zero.
    pub failure_streak: IntGaugeVec,
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
        let failure_streak = IntGaugeVec::new(
            Opts::new("hookhub_subscription_failure_streak", "Consecutive failed attempts of a subscription"),
            &["subscription_id"],
        )
        .expect("valid metric");
        registry.register(Box::new(failure_streak.clone())).expect("registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registered once");
        Self {
            events_accepted: counter("hookhub_events_accepted_total", "Events accepted"),
            events_published: counter("hookhub_events_published_total", "Events confirmed by the broker"),
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
            attempt_duration: histogram("hookhub_attempt_duration_seconds", "HTTP time of one delivery attempt"),
            delivery_latency: histogram(
                "hookhub_delivery_latency_seconds",
                "From an event's acceptance to its successful delivery",
            ),
            attempts,
            failure_streak,
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
            None => "error",
        };
        self.attempts.with_label_values(&[outcome, class]).inc();
        self.attempt_duration.observe(seconds);
    }

    /// Tracks a subscription's run of failures; a success clears it.
    pub fn streak(&self, subscription_id: &str, failed: bool) {
        if failed {
            self.failure_streak.with_label_values(&[subscription_id]).inc();
        } else {
            let _ = self.failure_streak.remove_label_values(&[subscription_id]);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
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
