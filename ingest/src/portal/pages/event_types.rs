//! The event-type catalogue: what each type means, its schema and an example.
use crate::portal::error::PortalError;
use crate::portal::layout::{badge, empty, json_block, page, Section};
use crate::portal::session::Viewer;
use crate::AppState;
use actix_web::{web, HttpResponse};
use maud::html;

/// `GET /portal/event-types`.
pub(crate) async fn list(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, PortalError> {
    let types: Vec<_> = state
        .store
        .list_event_types(&viewer.session.tenant_id)
        .await?
        .into_iter()
        .filter(|t| viewer.offers(&t.name))
        .collect();
    let body = html! {
        div.heading { h1 { "Event types" } }
        p.lead { "Every kind of event your endpoints can receive. Pick the ones each endpoint wants when you add or edit it." }
        @if types.is_empty() {
            (empty("No event types", "There are no event types to show in this session.", None))
        }
        @for t in &types {
            section.card.event-type aria-labelledby={ "t-" (t.name) } {
                div.heading {
                    h2 id={ "t-" (t.name) } { code { (t.name) } }
                    @if t.builtin { (badge("muted", "Built in")) } @else { (badge("muted", "Custom")) }
                }
                p { (t.description) }
                @if let Some(example) = &t.example {
                    details { summary { "Example payload" } (json_block(example, "Example payload")) }
                }
                @if let Some(schema) = &t.schema {
                    details { summary { "Schema" } (json_block(schema, "JSON Schema")) }
                }
            }
        }
    };
    Ok(page(&viewer, Section::EventTypes, "Event types", body))
}
