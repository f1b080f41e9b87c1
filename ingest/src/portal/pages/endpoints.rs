//! The endpoints page (each with its status, recent success rate and last
//! attempt) and the form that adds or edits one.
use super::{endpoint_path, status_badge, subscription_id};
use crate::pagination::PageQuery;
use crate::portal::csrf::{Change, Fields};
use crate::portal::error::PortalError;
use crate::portal::layout::{csrf_field, empty, json_block, page, see_other, when, Section};
use crate::portal::session::Viewer;
use crate::routes::subscriptions::{create_checked, update_checked, SubscriptionFields};
use crate::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use hookhub_store::domain::EventTypeFilter;
use hookhub_store::repo::{EndpointHealth, EventTypeInfo, Subscription, HEALTH_WINDOW};
use maud::{html, Markup};

/// `GET /portal/endpoints`.
pub(crate) async fn list(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PortalError> {
    let tenant = &viewer.session.tenant_id;
    let subs = state.store.list_subscriptions(tenant, &query.to_request()?).await?;
    let ids: Vec<_> = subs.items.iter().map(|s| s.id.clone()).collect();
    let health = state.store.endpoint_health(tenant, &ids).await?;
    let body = html! {
        div.heading {
            h1 { "Endpoints" }
            @if !viewer.session.read_only {
                a.button.primary href="/portal/endpoints/new" { "Add endpoint" }
            }
        }
        @if subs.items.is_empty() && subs.prev_cursor.is_none() {
            (empty(
                "No endpoints yet",
                "An endpoint is a URL of yours that receives an HTTPS POST each time an event happens. Add one to start receiving webhooks.",
                (!viewer.session.read_only).then_some(("/portal/endpoints/new", "Add your first endpoint")),
            ))
        } @else {
            div.table-wrap.stacked {
                table {
                    caption.visually-hidden { "Your endpoints" }
                    thead { tr {
                        th scope="col" { "Endpoint" }
                        th scope="col" { "Status" }
                        th scope="col" { "Success (last " (HEALTH_WINDOW) ")" }
                        th scope="col" { "Last attempt" }
                    } }
                    tbody {
                        @for sub in &subs.items {
                            (row(sub, health.get(&sub.id).cloned().unwrap_or_default()))
                        }
                    }
                }
            }
            (pager("/portal/endpoints?", subs.prev_cursor.map(|c| c.encode()), subs.next_cursor.map(|c| c.encode())))
        }
    };
    Ok(page(&viewer, Section::Endpoints, "Endpoints", body))
}

fn row(sub: &Subscription, health: EndpointHealth) -> Markup {
    html! {
        tr {
            td data-label="Endpoint" {
                div {
                    a.url href=(endpoint_path(&sub.id)) { (sub.url) }
                    @if !sub.description.is_empty() { div.sub { (sub.description) } }
                }
            }
            td data-label="Status" { (status_badge(sub)) }
            td data-label="Success" {
                @if let Some(rate) = (health.succeeded * 100).checked_div(health.attempts) {
                    span class=(if rate >= 95 { "rate ok" } else if rate >= 50 { "rate warn" } else { "rate bad" }) {
                        (rate) "%"
                    }
                    span.muted { " of " (health.attempts) }
                } @else {
                    span.muted { "No attempts yet" }
                }
            }
            td data-label="Last attempt" {
                @match health.last_attempt_at {
                    Some(at) => {
                        (when(at))
                        @if let Some(code) = health.last_status_code { span.muted { " · " (code) } }
                    }
                    None => span.muted { "—" },
                }
            }
        }
    }
}

/// "Newer" and "Older" links; `base` ends with `?` or `&`.
pub(crate) fn pager(base: &str, prev: Option<String>, next: Option<String>) -> Markup {
    html! {
        @if prev.is_some() || next.is_some() {
            nav.pager aria-label="Pages" {
                @if let Some(c) = prev { a href={ (base) "cursor=" (c) } rel="prev" { "← Newer" } }
                @if let Some(c) = next { a href={ (base) "cursor=" (c) } rel="next" { "Older →" } }
            }
        }
    }
}

/// The event types this session may pick from.
async fn offered_types(state: &AppState, viewer: &Viewer) -> Result<Vec<EventTypeInfo>, PortalError> {
    let all = state.store.list_event_types(&viewer.session.tenant_id).await?;
    Ok(all.into_iter().filter(|t| viewer.offers(&t.name)).collect())
}

/// The add/edit form; `sub` is the endpoint being edited.
fn form(viewer: &Viewer, types: &[EventTypeInfo], sub: Option<&Subscription>) -> Markup {
    let action = sub.map_or_else(|| "/portal/endpoints".to_owned(), |s| endpoint_path(&s.id));
    let chosen = |name: &str| sub.is_some_and(|s| s.event_types.to_strings().iter().any(|t| t == name));
    let all = sub.is_none_or(|s| s.event_types == EventTypeFilter::All);
    html! {
        form.card.stack method="post" action=(action) {
            (csrf_field(viewer))
            div.field {
                label for="url" { "Endpoint URL" }
                input #url type="url" name="url" required value=[sub.map(|s| s.url.as_str())]
                    placeholder="https://example.com/webhooks" autocomplete="url" aria-describedby="url-help";
                p.help #url-help { "We POST each event here, signed with the endpoint's secret." }
            }
            div.field {
                label for="description" { "Description " span.muted { "(optional)" } }
                textarea #description name="description" rows="2" maxlength="1024" {
                    (sub.map_or("", |s| s.description.as_str()))
                }
            }
            fieldset.field {
                legend { "Events to send" }
                label.check {
                    input type="checkbox" name="event_types" value="*" checked[all];
                    span { strong { "All event types" } span.sub { "Including types added later." } }
                }
                @for t in types {
                    label.check {
                        input type="checkbox" name="event_types" value=(t.name) checked[!all && chosen(&t.name)];
                        span {
                            code { (t.name) }
                            span.sub { (t.description) }
                            @if let Some(example) = &t.example {
                                details.example { summary { "Example" } (json_block(example, "Example payload")) }
                            }
                        }
                    }
                }
            }
            div.field {
                label for="rate" { "Rate limit " span.muted { "(deliveries per second, optional)" } }
                input #rate type="number" name="rate_limit_per_second" min="1" max="10000" inputmode="numeric"
                    value=[sub.and_then(|s| s.rate_limit_per_second)];
            }
            div.actions {
                button.primary type="submit" { @if sub.is_some() { "Save changes" } @else { "Add endpoint" } }
                a.button href=(sub.map_or_else(|| "/portal/endpoints".to_owned(), |s| endpoint_path(&s.id))) { "Cancel" }
            }
        }
    }
}

/// `GET /portal/endpoints/new`.
pub(crate) async fn new(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, PortalError> {
    if viewer.session.read_only {
        return Err(PortalError::ReadOnly);
    }
    let types = offered_types(&state, &viewer).await?;
    let body = html! { h1 { "Add an endpoint" } (form(&viewer, &types, None)) };
    Ok(page(&viewer, Section::Endpoints, "Add an endpoint", body))
}

/// `GET /portal/endpoints/{id}/edit`.
pub(crate) async fn edit(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    if viewer.session.read_only {
        return Err(PortalError::ReadOnly);
    }
    let sub = state.store.subscription(&viewer.session.tenant_id, &subscription_id(&id)?).await?;
    let types = offered_types(&state, &viewer).await?;
    let body = html! { h1 { "Edit endpoint" } (form(&viewer, &types, Some(&sub))) };
    Ok(page(&viewer, Section::Endpoints, "Edit endpoint", body))
}

/// The form's fields as the API's; only offered types may be picked.
fn fields(viewer: &Viewer, form: &Fields) -> Result<SubscriptionFields, PortalError> {
    let mut types = form.all("event_types");
    if types.is_empty() {
        return Err(ApiError::field("event_types", "pick at least one event type, or all of them").into());
    }
    if types.iter().any(|t| t == "*") {
        types = vec!["*".into()];
    }
    if types.iter().any(|t| t != "*" && !viewer.offers(t)) || (types == ["*"] && viewer.session.event_types.is_some()) {
        return Err(ApiError::field("event_types", "pick from the event types listed").into());
    }
    let rate = match form.get("rate_limit_per_second") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u32>()
                .map_err(|_| ApiError::field("rate_limit_per_second", "a whole number from 1 to 10,000"))?,
        ),
    };
    Ok(SubscriptionFields {
        url: form.get("url").map(str::to_owned),
        event_types: Some(types),
        description: Some(form.get("description").unwrap_or_default().to_owned()),
        status: None,
        rate_limit_per_second: Some(rate),
        // Programs are set over the API (with its test operation); the
        // portal's form leaves them as they are.
        filter: None,
        transform: None,
        // Set over the API, like the programs.
        ordering: None,
        on_dead_letter: None,
    })
}

/// `POST /portal/endpoints`: adds an endpoint, then shows it.
pub(crate) async fn create(state: web::Data<AppState>, change: Change) -> Result<HttpResponse, PortalError> {
    let fields = fields(&change.viewer, &change.form)?;
    let sub = create_checked(&state, &change.viewer.session.tenant_id, fields).await?;
    Ok(see_other(&format!("{}?notice=created", endpoint_path(&sub.id))))
}

/// `POST /portal/endpoints/{id}`: saves an edit, then shows the endpoint.
pub(crate) async fn update(
    state: web::Data<AppState>,
    change: Change,
    id: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = subscription_id(&id)?;
    let fields = fields(&change.viewer, &change.form)?;
    update_checked(&state, &change.viewer.session.tenant_id, &id, fields).await?;
    Ok(see_other(&format!("{}?notice=saved", endpoint_path(&id))))
}
