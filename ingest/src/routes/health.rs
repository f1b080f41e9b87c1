//! Probes and metrics.
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_dispatcher::metrics::metrics as registry;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The process can serve: the database answers with every migration
/// applied, and the broker answers when this process uses one.
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
        Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
    } else {
        Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "not_ready",
            "code": "unavailable",
            "message": problems.join("; "),
        })))
    }
}

/// Prometheus text format. Store gauges are read now, so every process
/// reports the same backlog.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = registry();
    if let Ok(outbox) = state.store.outbox_status().await {
        m.outbox_backlog.set(outbox.backlog as i64);
        let age = outbox.oldest.map(|t| (hookhub_store::domain::now() - t).num_seconds().max(0));
        m.outbox_oldest_age_seconds.set(age.unwrap_or(0));
    }
    if let Ok(depth) = state.store.retry_queue_depth().await {
        m.retry_queue_depth.set(depth as i64);
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(m.render())
}
