//! One event: its payload as indented JSON, where it stands with each
//! endpoint, and every attempt (time, status, latency, error, the start of
//! the response), each of which can be sent again.
use super::{endpoint_path, event_id, NoticeQuery};
use crate::portal::csrf::Change;
use crate::portal::error::PortalError;
use crate::portal::layout::{action, badge, json_block, notice, page, see_other, when, Section};
use crate::portal::session::Viewer;
use crate::AppState;
use actix_web::{web, HttpResponse};
use hookhub_store::domain::{AttemptOutcome, DeliveryStatus, SubscriptionId};
use hookhub_store::repo::{Attempt, AttemptsOf};
use hookhub_store::PageRequest;
use maud::{html, Markup};
use std::collections::HashMap;

/// A delivery's status as a badge.
pub(crate) fn delivery_status(status: DeliveryStatus) -> Markup {
    match status {
        DeliveryStatus::Pending => badge("warn", "Pending"),
        DeliveryStatus::Succeeded => badge("ok", "Succeeded"),
        DeliveryStatus::Failed => badge("bad", "Failed"),
        DeliveryStatus::Filtered => badge("muted", "Filtered"),
    }
}

/// An attempt's result: its status code (or "no response") and outcome.
pub(crate) fn outcome(a: &Attempt) -> Markup {
    let tone = match a.outcome {
        AttemptOutcome::Succeeded => "ok",
        AttemptOutcome::Retrying => "warn",
        AttemptOutcome::Failed => "bad",
        AttemptOutcome::Filtered => "muted",
    };
    let label = match (a.status_code, a.outcome) {
        (Some(code), _) => code.to_string(),
        (None, AttemptOutcome::Filtered) => "Filtered".into(),
        (None, _) => "No response".into(),
    };
    let title = match a.outcome {
        AttemptOutcome::Succeeded => "Succeeded",
        AttemptOutcome::Retrying => "Failed; retried later",
        AttemptOutcome::Failed => "Failed; no more retries",
        AttemptOutcome::Filtered => "Not sent: the endpoint's filter or transform left it out",
    };
    html! { span class={ "badge " (tone) } title=(title) { (label) } }
}

/// `GET /portal/events/{id}`.
pub(crate) async fn show(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PortalError> {
    let tenant = &viewer.session.tenant_id;
    let id = event_id(&id)?;
    let event = state.store.event(tenant, &id).await?;
    let deliveries = state.store.event_deliveries(tenant, &id).await?;
    let page_of = PageRequest::new(Some(PageRequest::MAX_LIMIT), None).unwrap_or_else(PageRequest::first);
    let attempts = state.store.list_attempts(tenant, AttemptsOf::Event(&id), &page_of).await?;
    let mut urls: HashMap<SubscriptionId, String> = HashMap::new();
    for d in &deliveries {
        if let Ok(sub) = state.store.subscription(tenant, &d.subscription_id).await {
            urls.insert(d.subscription_id.clone(), sub.url);
        }
    }
    let endpoint = |sub: &SubscriptionId| -> Markup {
        match urls.get(sub) {
            Some(url) => html! { a.url href=(endpoint_path(sub)) { (url) } },
            None => html! { span.muted { "Deleted endpoint" } },
        }
    };
    let redeliver_to = format!("/portal/events/{id}/redeliver");
    // Only to an endpoint that still exists: the store refuses the others.
    let redeliver_button = |sub: &SubscriptionId| -> Markup {
        if urls.contains_key(sub) {
            action(&viewer, &redeliver_to, "Redeliver", &[("subscription_id", sub.as_str())], None, false)
        } else {
            html! {}
        }
    };
    let body = html! {
        p.crumbs { a href="/portal/deliveries" { "Deliveries" } " / " }
        div.heading {
            h1 { code { (event.event_type) } }
            span.muted { (when(event.created_at)) }
        }
        @if query.notice.as_deref() == Some("test") { (notice("Test event sent. Its attempt shows below within a few seconds; reload to see it.")) }
        @if query.notice.as_deref() == Some("redelivered") { (notice("Queued to be sent again; reload to see the new attempt.")) }
        p.muted { "Event " code { (event.id) } }
        section.card aria-labelledby="payload" {
            h2 #payload { "Payload" }
            (json_block(&event.data, "Event payload"))
        }
        section aria-labelledby="deliveries" {
            h2 #deliveries { "Deliveries" }
            @if deliveries.is_empty() {
                p.empty-inline { "No endpoint wanted this event, so nothing was sent." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Endpoint" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody { @for d in &deliveries {
                        tr {
                            td { (endpoint(&d.subscription_id)) }
                            td {
                                (delivery_status(d.status))
                                @if let (DeliveryStatus::Pending, Some(next)) = (d.status, d.next_attempt_at) { span.muted { " next " (when(next)) } }
                            }
                            td { (d.attempt_count) }
                            td { (redeliver_button(&d.subscription_id)) }
                        }
                    } }
                } }
            }
        }
        section aria-labelledby="attempts" {
            h2 #attempts { "Attempts" }
            @if attempts.items.is_empty() {
                p.empty-inline { "No attempt yet: the first one is on its way." }
            }
            ol.attempts {
                @for a in &attempts.items {
                    li.card.attempt {
                        div.attempt-head {
                            (outcome(a))
                            span { "Attempt " (a.attempt_number) " to " (endpoint(&a.subscription_id)) }
                            span.muted { (when(a.attempted_at)) " · " (a.latency_ms) " ms" }
                            (redeliver_button(&a.subscription_id))
                        }
                        @if let Some(error) = &a.error { p.error { (error) } }
                        @match &a.response_body {
                            Some(body) if !body.is_empty() => {
                                details {
                                    summary { "Response (first " (body.len()) " bytes)" }
                                    pre.code tabindex="0" { code { (body) } }
                                }
                            }
                            _ => p.muted { "No response body." },
                        }
                    }
                }
            }
        }
    };
    Ok(page(&viewer, Section::Deliveries, event.event_type.as_str(), body))
}

/// `POST /portal/events/{id}/redeliver` `subscription_id`: sends the event
/// again to that endpoint, then shows the event.
pub(crate) async fn redeliver(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = event_id(&id)?;
    let sub: SubscriptionId = change.form.parsed("subscription_id", "is required")?;
    state.store.redeliver(&change.viewer.session.tenant_id, &id, Some(&sub)).await?;
    Ok(see_other(&format!("/portal/events/{id}?notice=redelivered")))
}
