//! Probes and metrics.
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_dispatcher::metrics::{metrics as registry, Throttle, STORE_GAUGES_EVERY};

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
    if let Some(url) = &state.broker_url {
        if hookhub_dispatcher::queue::amqp::ping(url).await.is_err() {
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
    let m = registry();
    if STORE_READS.ready() {
        if let Ok(outbox) = state.store.outbox_status().await {
            m.outbox_backlog.set(outbox.backlog as i64);
            m.outbox_quarantined_rows.set(outbox.quarantined as i64);
            let age = outbox.oldest.map(|t| (hookhub_store::domain::now() - t).num_seconds().max(0));
            m.outbox_oldest_age_seconds.set(age.unwrap_or(0));
        }
        if let Ok(depth) = state.store.retry_queue_depth().await {
            m.retry_queue_depth.set(depth as i64);
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(m.render())
}
