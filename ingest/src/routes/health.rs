//! Probes and metrics.
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::Plan;
use hookhub_store::metrics::{metrics as registry, Throttle, STORE_GAUGES_EVERY};
use hookhub_store::Store;

/// What a probe answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProbeBody {
    /// `ok`, `ready` or `not_ready`.
    status: &'static str,
    /// `unavailable` when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    /// What is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl ProbeBody {
    fn status(status: &'static str) -> Self {
        Self { status, code: None, message: None }
    }
}

/// `GET /healthz`: the process is up.
#[utoipa::path(operation_id = "healthz", get, path = "/healthz", tag = "operations", responses((status = 200, body = ProbeBody)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(ProbeBody::status("ok"))
}

/// `GET /readyz`: the process can serve: the database answers with every
/// migration applied, and the broker answers when this process uses one.
#[utoipa::path(operation_id = "readyz", get, path = "/readyz", tag = "operations",
    responses((status = 200, body = ProbeBody), (status = 503, body = ProbeBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    match state.store.pending_migrations().await {
        Ok(0) => {}
        Ok(n) => problems.push(format!("{n} migration(s) not applied: run `hookhub migrate`")),
        Err(_) => problems.push("database unreachable".to_owned()),
    }
    if let Some(broker) = &state.broker {
        if !broker.reachable().await {
            problems.push("broker unreachable".to_owned());
        }
    }
    if problems.is_empty() {
        Ok(HttpResponse::Ok().json(ProbeBody::status("ready")))
    } else {
        Ok(HttpResponse::ServiceUnavailable().json(ProbeBody {
            status: "not_ready",
            code: Some("unavailable"),
            message: Some(problems.join("; ")),
        }))
    }
}

/// `GET /metrics` on the metrics listener: Prometheus text format. The
/// store's gauges are read at most once per [`STORE_GAUGES_EVERY`], however
/// often (and by whomever) the endpoint is scraped.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    static STORE_READS: Throttle = Throttle::new(STORE_GAUGES_EVERY);
    if STORE_READS.ready() {
        read_store_gauges(&state.store).await;
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(registry().render())
}

/// Sets the gauges read from the store; one that cannot be read keeps its
/// last value, so a slow or failing query shows as a stale gauge, not as a
/// failed scrape.
async fn read_store_gauges(store: &Store) {
    let m = registry();
    let age = |t: chrono::DateTime<chrono::Utc>| (hookhub_store::domain::now() - t).num_seconds().max(0);
    if let Ok(outbox) = store.outbox_status().await {
        m.outbox_backlog.set(outbox.backlog as i64);
        m.outbox_quarantined_rows.set(outbox.quarantined as i64);
        m.outbox_oldest_age_seconds.set(outbox.oldest.map_or(0, age));
    }
    if let Ok(depth) = store.retry_queue_depth().await {
        m.retry_queue_depth.set(depth as i64);
    }
    if let Ok(by_plan) = store.backlog_by_plan().await {
        for plan in Plan::ALL {
            let backlog = by_plan.get(&plan).copied().unwrap_or_default();
            let label = [plan.as_str()];
            m.outbox_backlog_by_plan.with_label_values(&label).set(backlog.outbox as i64);
            m.due_deliveries_by_plan.with_label_values(&label).set(backlog.due as i64);
            m.oldest_due_age_seconds_by_plan.with_label_values(&label).set(backlog.oldest_due.map_or(0, age));
        }
    }
}
