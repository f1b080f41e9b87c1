//! The page shell and the small pieces every page uses: navigation, times
//! shown relative with the exact time on hover, badges, empty states and
//! the one-button forms of changes.
//!
//! Everything is built with `maud`, which escapes every value it inserts:
//! an event payload or a description holding `<script>` renders as text.
use crate::portal::csrf;
use crate::portal::session::Viewer;
use actix_web::http::header;
use actix_web::{HttpResponse, HttpResponseBuilder};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

/// The portal's sections, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Endpoints,
    Deliveries,
    EventTypes,
}

impl Section {
    const ALL: [(Self, &'static str, &'static str); 3] = [
        (Self::Endpoints, "/portal/endpoints", "Endpoints"),
        (Self::Deliveries, "/portal/deliveries", "Deliveries"),
        (Self::EventTypes, "/portal/event-types", "Event types"),
    ];
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="no-referrer";
        title { (title) " · Webhooks" }
        link rel="stylesheet" href=(concat!("/portal/assets/portal.css?v=", env!("CARGO_PKG_VERSION")));
        link rel="stylesheet" href="/portal/theme.css";
        script src=(concat!("/portal/assets/portal.js?v=", env!("CARGO_PKG_VERSION"))) defer {}
    }
}

fn html_response(mut response: HttpResponseBuilder, markup: Markup) -> HttpResponse {
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// A page of an open session.
pub(crate) fn page(viewer: &Viewer, section: Section, title: &str, body: Markup) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" class=[viewer.theme.dark.then_some("dark")] {
            head { (head(title)) }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.brand {
                        @if let Some(logo) = &viewer.theme.logo_url {
                            img.logo src=(logo) alt="";
                        }
                        span { "Webhooks" }
                    }
                    nav aria-label="Portal" {
                        @for (s, href, label) in Section::ALL {
                            a href=(href) aria-current=[(s == section).then_some("page")] { (label) }
                        }
                    }
                    @if viewer.session.read_only {
                        span.badge.muted title="This session can look but not change anything" { "Read-only" }
                    }
                }
                main #main { (body) }
            }
        }
    };
    html_response(HttpResponse::Ok(), markup)
}

/// A page without a session's navigation: errors, the refused link;
/// `back`: a way back into the portal, when the session still stands.
pub(crate) fn bare(response: &mut HttpResponseBuilder, title: &str, message: &str, back: bool) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                main #main .narrow {
                    div.card.message role="alert" {
                        h1 { (title) }
                        p { (message) }
                        @if back { a.button href="/portal/endpoints" { "Back to the portal" } }
                    }
                }
            }
        }
    };
    let builder = std::mem::replace(response, HttpResponse::Ok());
    html_response(builder, markup)
}

/// `at` relative to `now`, in words.
pub(crate) fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let amount = match n {
        0..=9 => return "just now".into(),
        10..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => match n / 86_400 {
            1 => "1 day".into(),
            d => format!("{d} days"),
        },
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A time shown relative, with the exact time on hover and for machines.
pub(crate) fn when(at: DateTime<Utc>) -> Markup {
    let exact = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! {
        time datetime=(at.to_rfc3339()) title=(exact) { (relative(at, hookhub_store::domain::now())) }
    }
}

/// A coloured label; `tone` is one of `ok`, `bad`, `warn`, `muted`.
pub(crate) fn badge(tone: &str, label: &str) -> Markup {
    html! { span class={ "badge " (tone) } { (label) } }
}

/// What an empty list says, and what to do next.
pub(crate) fn empty(title: &str, text: &str, action: Option<(&str, &str)>) -> Markup {
    html! {
        div.empty {
            h2 { (title) }
            p { (text) }
            @if let Some((href, label)) = action {
                a.button href=(href) { (label) }
            }
        }
    }
}

/// A status line after a change.
pub(crate) fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(viewer.csrf); }
}

/// A one-button form that POSTs a change (with the CSRF token and
/// `fields`); nothing in read-only sessions, which cannot change anything.
/// `confirm`: a question asked before sending (by the script).
pub(crate) fn action(
    viewer: &Viewer,
    to: &str,
    label: &str,
    fields: &[(&str, &str)],
    confirm: Option<&str>,
    danger: bool,
) -> Markup {
    if viewer.session.read_only {
        return html! {};
    }
    html! {
        form.inline method="post" action=(to) data-confirm=[confirm] {
            (csrf_field(viewer))
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" class=[danger.then_some("danger")] { (label) }
        }
    }
}

/// A value as indented JSON, in a block that scrolls on its own.
pub(crate) fn json_block(value: &serde_json::Value, label: &str) -> Markup {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.code tabindex="0" aria-label=(label) { code { (pretty) } } }
}

/// `/portal/...` answer to a change: see the result at `to`.
pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

#[cfg(test)]
mod tests {
    use super::relative;
    use chrono::Duration;

    #[test]
    fn relative_times_read_naturally() {
        let now = chrono::Utc::now();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - Duration::seconds(90), now), "1 min ago");
        assert_eq!(relative(now - Duration::hours(5), now), "5 h ago");
        assert_eq!(relative(now - Duration::days(1), now), "1 day ago");
        assert_eq!(relative(now + Duration::minutes(3), now), "in 3 min");
    }
}
