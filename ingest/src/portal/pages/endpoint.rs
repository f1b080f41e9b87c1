//! One endpoint: its settings, its signing secret (hidden until revealed),
//! rotation, a test event, recovery, and its latest attempts; and the
//! changes made from it.
use super::{endpoint_path, status_badge, subscription_id, NoticeQuery};
use crate::portal::csrf::Change;
use crate::portal::error::PortalError;
use crate::portal::layout::{action, csrf_field, notice, page, see_other, when, Section};
use crate::portal::session::Viewer;
use crate::routes::subscriptions::{grace_period, send_test, since};
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::{
    EventType, EventTypeFilter, OnDeadLetter, OrderingKey, OrderingMode, SubscriptionId, SubscriptionStatus,
};
use hookhub_store::repo::{AttemptsOf, BlockedKey, KeyBlock, Subscription, SubscriptionPatch};
use hookhub_store::PageRequest;
use maud::{html, Markup};

/// Attempts shown on the page; the deliveries page has them all.
const RECENT_ATTEMPTS: u64 = 20;

/// The words of a notice; unknown ones say nothing (the query is the user's).
fn notice_text(q: &NoticeQuery) -> Option<String> {
    Some(match q.notice.as_deref()? {
        "created" => "Endpoint added. Send it a test event to check it works.".into(),
        "saved" => "Changes saved.".into(),
        "disabled" => "Endpoint disabled: it receives nothing until you enable it.".into(),
        "enabled" => "Endpoint enabled.".into(),
        "skipped" => {
            "Skipped: the key's next deliveries go now. The skipped one can still be redelivered from its event.".into()
        }
        "recovered" => format!(
            "{} failed deliveries queued again.",
            q.n.as_deref().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
        ),
        _ => return None,
    })
}

/// What the secret section shows.
enum Secret {
    /// Hidden behind a "reveal" button.
    Hidden,
    /// Shown, after a reveal or a rotation (with the old secret's end).
    Shown { rotated_until: Option<chrono::DateTime<chrono::Utc>> },
}

/// `GET /portal/endpoints/{id}`.
pub(crate) async fn show(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PortalError> {
    render(&state, &viewer, &subscription_id(&id)?, Secret::Hidden, notice_text(&query)).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    id: &SubscriptionId,
    secret: Secret,
    said: Option<String>,
) -> Result<HttpResponse, PortalError> {
    let tenant = &viewer.session.tenant_id;
    let sub = state.store.subscription(tenant, id).await?;
    let first = PageRequest::new(Some(RECENT_ATTEMPTS), None).unwrap_or_else(PageRequest::first);
    let attempts = state.store.list_attempts(tenant, AttemptsOf::Subscription(id), &first).await?;
    let types: Vec<String> = state
        .store
        .list_event_types(tenant)
        .await?
        .into_iter()
        .map(|t| t.name)
        .filter(|name| viewer.offers(name) && name.parse::<EventType>().is_ok_and(|t| sub.event_types.matches(&t)))
        .collect();
    let blocked = match sub.ordering.mode {
        OrderingMode::PerKey => Some(state.store.blocked_keys(tenant, id).await?),
        OrderingMode::Unordered => None,
    };
    let path = endpoint_path(id);
    let body = html! {
        p.crumbs { a href="/portal/endpoints" { "Endpoints" } " / " }
        div.heading {
            h1.url { (sub.url) }
            (status_badge(&sub))
        }
        @if let Some(text) = said { (notice(&text)) }
        @if !viewer.session.read_only {
            div.toolbar {
                a.button href={ (path) "/edit" } { "Edit" }
                @if sub.status == SubscriptionStatus::Active {
                    (action(viewer, &format!("{path}/disable"), "Disable", &[], None, false))
                } @else if sub.status == SubscriptionStatus::Disabled {
                    (action(viewer, &format!("{path}/enable"), "Enable", &[], None, false))
                }
                (action(viewer, &format!("{path}/delete"), "Delete", &[],
                    Some("Delete this endpoint? Deliveries to it stop and it cannot be undone."), true))
            }
        }
        div.grid {
            section.card aria-labelledby="about" {
                h2 #about { "Settings" }
                dl.facts {
                    dt { "Description" } dd { @if sub.description.is_empty() { span.muted { "None" } } @else { (sub.description) } }
                    dt { "Events" } dd { (event_types(&sub)) }
                    dt { "Rate limit" } dd { @match sub.rate_limit_per_second { Some(r) => { (r) " per second" }, None => span.muted { "None" } } }
                    dt { "Order" } dd { (ordering(&sub)) }
                    dt { "Created" } dd { (when(sub.created_at)) }
                    @if let Some(reason) = &sub.disabled_reason { dt { "Disabled because" } dd { (reason) } }
                }
            }
            (secret_section(viewer, &sub, &secret))
        }
        @if !viewer.session.read_only {
            div.grid {
                section.card aria-labelledby="test" {
                    h2 #test { "Send a test event" }
                    @if types.is_empty() {
                        p.muted { "This endpoint receives none of the event types in the catalogue." }
                    } @else {
                        form.stack method="post" action={ (path) "/test" } {
                            (csrf_field(viewer))
                            div.field {
                                label for="test-type" { "Event type" }
                                select #test-type name="event_type" {
                                    @for t in &types { option value=(t) { (t) } }
                                }
                                p.help { "The event carries the type's example from the catalogue, and goes to this endpoint only." }
                            }
                            div.actions { button.primary type="submit" disabled[sub.status != SubscriptionStatus::Active] { "Send test event" } }
                        }
                    }
                }
                section.card aria-labelledby="recover" {
                    h2 #recover { "Recover failed deliveries" }
                    form.stack method="post" action={ (path) "/recover" } {
                        (csrf_field(viewer))
                        div.field {
                            label for="since" { "Resend what failed since (UTC)" }
                            input #since type="datetime-local" name="since" required;
                            p.help { "For when your endpoint was down: every delivery that failed since then is sent again." }
                        }
                        div.actions { button type="submit" { "Recover" } }
                    }
                }
            }
        }
        @if let Some(blocked) = &blocked { (blocked_keys(viewer, &path, blocked)) }
        section aria-labelledby="attempts" {
            div.heading {
                h2 #attempts { "Latest attempts" }
                a href={ "/portal/deliveries?endpoint=" (sub.id) } { "All deliveries to this endpoint →" }
            }
            @if attempts.items.is_empty() {
                p.empty-inline { "No attempts yet. Send a test event to see one here." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Result" } th scope="col" { "Latency" } } }
                    tbody { @for a in &attempts.items {
                        tr {
                            td { (when(a.attempted_at)) }
                            td { a href={ "/portal/events/" (a.event_id) } { code { (a.event_id) } } }
                            td { (super::event::outcome(a)) }
                            td { (a.latency_ms) " ms" }
                        }
                    } }
                } }
            }
        }
    };
    Ok(page(viewer, Section::Endpoints, &sub.url, body))
}

/// How the endpoint orders its deliveries.
fn ordering(sub: &Subscription) -> Markup {
    match (sub.ordering.mode, sub.ordering.on_dead_letter) {
        (OrderingMode::Unordered, _) => html! { "Any order" },
        (OrderingMode::PerKey, OnDeadLetter::Skip) => {
            html! { "One at a time per ordering key; a dead letter is skipped" }
        }
        (OrderingMode::PerKey, OnDeadLetter::Block) => {
            html! { "One at a time per ordering key; a dead letter holds its key until redelivered or skipped" }
        }
    }
}

/// The ordering keys an ordered endpoint is held up on, each with the
/// delivery holding it and the two ways out: redeliver it (on its event's
/// page) or skip it.
fn blocked_keys(viewer: &Viewer, path: &str, blocked: &[BlockedKey]) -> Markup {
    html! {
        section.card aria-labelledby="blocked" {
            h2 #blocked { "Held-up ordering keys" }
            @if blocked.is_empty() {
                p.empty-inline { "No key is held up: every key's deliveries are going out in order." }
            } @else {
                p.help { "A key's deliveries go one at a time. These keys wait on a delivery that failed: redeliver it from its event (it goes first), or skip it and let the rest of the key go." }
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Held by" } th scope="col" { "Why" } th scope="col" { "Waiting" } th scope="col" { span.visually-hidden { "Action" } } } }
                    tbody { @for b in blocked {
                        tr {
                            td { code { (b.ordering_key) } }
                            td { a href={ "/portal/events/" (b.delivery.event_id) } { code { (b.delivery.event_id) } } }
                            td { @match b.block {
                                KeyBlock::Retrying => { "Failing; retried " @if let Some(at) = b.delivery.next_attempt_at { (when(at)) } }
                                KeyBlock::DeadLettered => { "Out of attempts (dead letter)" }
                            } }
                            td { (b.waiting) }
                            td { (action(viewer, &format!("{path}/blocked-keys/skip"), "Skip", &[("key", b.ordering_key.as_str())], None, false)) }
                        }
                    } }
                } }
            }
        }
    }
}

fn event_types(sub: &Subscription) -> Markup {
    match &sub.event_types {
        EventTypeFilter::All => html! { "All event types" },
        other => html! { ul.tags { @for t in other.to_strings() { li { code { (t) } } } } },
    }
}

fn secret_section(viewer: &Viewer, sub: &Subscription, secret: &Secret) -> Markup {
    let path = endpoint_path(&sub.id);
    html! {
        section.card aria-labelledby="secret" {
            h2 #secret { "Signing secret" }
            p.help { "Use it to check that a webhook comes from us (the " code { "webhook-signature" } " header, Standard Webhooks)." }
            @if viewer.session.read_only {
                p.muted { "Read-only sessions cannot see the secret." }
            } @else {
                @match secret {
                    Secret::Hidden => {
                        div.secret { code aria-label="Secret, hidden" { "whsec_••••••••••••••••••••" } }
                        (action(viewer, &format!("{path}/secret"), "Reveal", &[], None, false))
                    }
                    Secret::Shown { rotated_until } => {
                        @if let Some(until) = rotated_until {
                            p.notice role="status" { "New secret made. Until " (when(*until)) ", deliveries are signed with the old one too." }
                        }
                        div.secret {
                            code #secret-value { (sub.secret.expose()) }
                            button type="button" data-copy="secret-value" { "Copy" }
                        }
                    }
                }
                form.stack method="post" action={ (path) "/rotate" } data-confirm="Make a new secret? Update your receiver before the grace period ends." {
                    (csrf_field(viewer))
                    div.field.row {
                        label for="grace" { "Keep the old secret valid for" }
                        select #grace name="grace_period_secs" {
                            option value="0" { "No time" }
                            option value="3600" { "1 hour" }
                            option value="86400" selected { "24 hours" }
                            option value="604800" { "7 days" }
                        }
                        button type="submit" { "Rotate secret" }
                    }
                }
            }
        }
    }
}

/// `POST /portal/endpoints/{id}/secret`: the page with the secret shown.
pub(crate) async fn reveal(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    render(&state, &change.viewer, &subscription_id(&id)?, Secret::Shown { rotated_until: None }, None).await
}

/// `POST /portal/endpoints/{id}/rotate`: a new secret, shown at once.
pub(crate) async fn rotate(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = subscription_id(&id)?;
    let secs = match change.form.get("grace_period_secs") {
        Some(raw) => Some(raw.parse::<u32>().map_err(|_| ApiError::field("grace_period_secs", "whole seconds"))?),
        None => None,
    };
    let sub = state.store.rotate_secret(&change.viewer.session.tenant_id, &id, grace_period(secs)?).await?;
    let until = sub.previous_secret.as_ref().map(|(_, until)| *until);
    render(&state, &change.viewer, &id, Secret::Shown { rotated_until: until }, None).await
}

async fn set_status(
    state: &AppState,
    change: &Change,
    id: &str,
    status: SubscriptionStatus,
) -> Result<HttpResponse, PortalError> {
    let id = subscription_id(id)?;
    let patch = SubscriptionPatch { status: Some(status), ..SubscriptionPatch::default() };
    state.store.update_subscription(&change.viewer.session.tenant_id, &id, patch).await?;
    let word = if status == SubscriptionStatus::Active { "enabled" } else { "disabled" };
    Ok(see_other(&format!("{}?notice={word}", endpoint_path(&id))))
}

/// `POST /portal/endpoints/{id}/disable`.
pub(crate) async fn disable(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    set_status(&state, &change, &id, SubscriptionStatus::Disabled).await
}

/// `POST /portal/endpoints/{id}/enable`.
pub(crate) async fn enable(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    set_status(&state, &change, &id, SubscriptionStatus::Active).await
}

/// `POST /portal/endpoints/{id}/delete`.
pub(crate) async fn delete(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    state.store.delete_subscription(&change.viewer.session.tenant_id, &subscription_id(&id)?).await?;
    Ok(see_other("/portal/endpoints"))
}

/// `POST /portal/endpoints/{id}/test`: sends a test event, then shows it.
pub(crate) async fn test(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = subscription_id(&id)?;
    let kind = change.form.get("event_type").unwrap_or_default();
    if !change.viewer.offers(kind) {
        return Err(ApiError::field("event_type", "pick one of the event types listed").into());
    }
    let event = send_test(&state, &change.viewer.session.tenant_id, &id, kind).await?;
    Ok(see_other(&format!("/portal/events/{}?notice=test", event.id)))
}

/// `POST /portal/endpoints/{id}/recover`: requeues what failed since a time.
pub(crate) async fn recover(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = subscription_id(&id)?;
    // `datetime-local` sends `2026-01-31T09:30`, which the form labels UTC.
    let local = change.form.get("since").map(|s| if s.len() == 16 { format!("{s}:00Z") } else { format!("{s}Z") });
    let from = since(local.as_deref()).map_err(|_| ApiError::field("since", "a date and time"))?;
    let n = state.store.recover_subscription(&change.viewer.session.tenant_id, &id, from).await?;
    Ok(see_other(&format!("{}?notice=recovered&n={n}", endpoint_path(&id))))
}

/// `POST /portal/endpoints/{id}/blocked-keys/skip`: lets a held-up key's
/// next deliveries go without the one holding it, as the API's skip does.
pub(crate) async fn skip_key(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = subscription_id(&id)?;
    let key: OrderingKey = change.form.parsed("key", "not an ordering key")?;
    state.store.skip_blocked_key(&change.viewer.session.tenant_id, &id, &key).await?;
    Ok(see_other(&format!("{}?notice=skipped", endpoint_path(&id))))
}
