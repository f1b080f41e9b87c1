//! Deliveries, newest first and cursor-paged, filtered by status, event
//! type, endpoint and time; each opens its event with every attempt.
use super::endpoints::pager;
use super::event::delivery_status;
use crate::portal::error::PortalError;
use crate::portal::layout::{empty, page, when, Section};
use crate::portal::session::Viewer;
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use hookhub_store::domain::{DeliveryStatus, SubscriptionId};
use hookhub_store::repo::DeliveryFilter;
use hookhub_store::{Cursor, PageRequest};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;

/// The page's filters, as the form sends them (empty means "any").
#[derive(Deserialize, Default)]
pub(crate) struct DeliveryQuery {
    status: Option<String>,
    r#type: Option<String>,
    endpoint: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// Rows per page: enough to scan, small enough to stay far under 100 KB.
const PER_PAGE: u64 = 50;

/// A `datetime-local` value (the form labels it UTC).
fn time(raw: Option<&str>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match raw.filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
            .map(|t| Some(t.and_utc()))
            .map_err(|_| ApiError::field(field, "a date and time")),
    }
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl DeliveryQuery {
    fn filter(&self) -> Result<DeliveryFilter, ApiError> {
        let status = match nonempty(&self.status) {
            None => None,
            Some("pending") => Some(DeliveryStatus::Pending),
            Some("succeeded") => Some(DeliveryStatus::Succeeded),
            Some("failed") => Some(DeliveryStatus::Failed),
            Some("filtered") => Some(DeliveryStatus::Filtered),
            Some(_) => return Err(ApiError::field("status", "pending, succeeded or failed")),
        };
        let subscription = nonempty(&self.endpoint)
            .map(|e| e.parse::<SubscriptionId>().map_err(|_| ApiError::field("endpoint", "an endpoint of yours")))
            .transpose()?;
        Ok(DeliveryFilter {
            status,
            event_type: nonempty(&self.r#type).map(str::to_owned),
            subscription,
            from: time(self.from.as_deref(), "from")?,
            to: time(self.to.as_deref(), "to")?,
        })
    }

    /// The filters as a query string prefix, for the pager's links.
    fn base(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &self.status),
            ("type", &self.r#type),
            ("endpoint", &self.endpoint),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = nonempty(v) {
                q.append_pair(k, v);
            }
        }
        let q = q.finish();
        if q.is_empty() {
            "/portal/deliveries?".into()
        } else {
            format!("/portal/deliveries?{q}&")
        }
    }

    fn page(&self) -> Result<PageRequest, ApiError> {
        let cursor = nonempty(&self.cursor)
            .map(|c| {
                Cursor::decode(c).map_err(|e| ApiError::BadRequest { code: "invalid_cursor", message: e.to_string() })
            })
            .transpose()?;
        PageRequest::new(Some(PER_PAGE), cursor).ok_or(ApiError::Internal)
    }
}

/// `GET /portal/deliveries`.
pub(crate) async fn list(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, PortalError> {
    let tenant = &viewer.session.tenant_id;
    let filter = query.filter()?;
    let filtered = nonempty(&query.status).is_some()
        || filter.event_type.is_some()
        || filter.subscription.is_some()
        || filter.from.is_some()
        || filter.to.is_some();
    let found = state.store.list_deliveries(tenant, &filter, &query.page()?).await?;
    let first = PageRequest::new(Some(PageRequest::MAX_LIMIT), None).unwrap_or_else(PageRequest::first);
    let endpoints = state.store.list_subscriptions(tenant, &first).await?.items;
    let urls: HashMap<&SubscriptionId, &str> = endpoints.iter().map(|s| (&s.id, s.url.as_str())).collect();
    let types: Vec<String> =
        state.store.list_event_types(tenant).await?.into_iter().map(|t| t.name).filter(|n| viewer.offers(n)).collect();
    let selected = |v: &Option<String>, option: &str| nonempty(v) == Some(option);
    let body = html! {
        div.heading { h1 { "Deliveries" } }
        form.filters method="get" action="/portal/deliveries" role="search" aria-label="Filter deliveries" {
            div.field {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "Any" }
                    @for (value, label) in [("pending", "Pending"), ("succeeded", "Succeeded"), ("failed", "Failed"), ("filtered", "Filtered")] {
                        option value=(value) selected[selected(&query.status, value)] { (label) }
                    }
                }
            }
            div.field {
                label for="f-type" { "Event type" }
                select #f-type name="type" {
                    option value="" { "Any" }
                    @for t in &types { option value=(t) selected[selected(&query.r#type, t)] { (t) } }
                }
            }
            div.field {
                label for="f-endpoint" { "Endpoint" }
                select #f-endpoint name="endpoint" {
                    option value="" { "Any" }
                    @for s in &endpoints { option value=(s.id) selected[selected(&query.endpoint, s.id.as_str())] { (s.url) } }
                }
            }
            div.field {
                label for="f-from" { "From (UTC)" }
                input #f-from type="datetime-local" name="from" value=[nonempty(&query.from)];
            }
            div.field {
                label for="f-to" { "To (UTC)" }
                input #f-to type="datetime-local" name="to" value=[nonempty(&query.to)];
            }
            div.actions {
                button type="submit" { "Filter" }
                @if filtered { a.button href="/portal/deliveries" { "Clear" } }
            }
        }
        @if found.items.is_empty() && found.prev_cursor.is_none() {
            @if filtered {
                (empty("No deliveries match", "Try another status, type, endpoint or time range, or clear the filters.", Some(("/portal/deliveries", "Clear filters"))))
            } @else {
                (empty("No deliveries yet", "When an event is sent to one of your endpoints it shows here, with every attempt. Send a test event from an endpoint's page to see one.", Some(("/portal/endpoints", "Go to endpoints"))))
            }
        } @else {
            div.table-wrap.stacked { table {
                caption.visually-hidden { "Deliveries, newest first" }
                thead { tr {
                    th scope="col" { "Created" }
                    th scope="col" { "Event" }
                    th scope="col" { "Endpoint" }
                    th scope="col" { "Status" }
                    th scope="col" { "Attempts" }
                } }
                tbody { @for row in &found.items {
                    @let d = &row.delivery;
                    tr {
                        td data-label="Created" { (when(d.created_at)) }
                        td data-label="Event" { a href={ "/portal/events/" (d.event_id) } { code { (row.event_type) } } }
                        td.url data-label="Endpoint" { (urls.get(&d.subscription_id).copied().unwrap_or("Deleted endpoint")) }
                        td data-label="Status" {
                            (delivery_status(d.status))
                            @if let Some(code) = d.last_status_code { span.muted { " " (code) } }
                        }
                        td data-label="Attempts" { (d.attempt_count) }
                    }
                } }
            } }
            (pager(&query.base(), found.prev_cursor.map(|c| c.encode()), found.next_cursor.map(|c| c.encode())))
        }
    };
    Ok(page(&viewer, Section::Deliveries, "Deliveries", body))
}
