//! `POST /v1/portal-sessions`: a one-time magic link to the portal for one
//! tenant, asked for by the tenant's admin or by its platform (with
//! `Hookhub-Tenant`), to hand to the person who owns the endpoints.
use crate::auth::Admin;
use crate::body::OptionalJson;
use crate::error::FieldError;
use crate::portal::theme::Theme;
use crate::{ApiError, AppState};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use hookhub_store::domain::EventType;
use hookhub_store::repo::{NewPortalSession, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a magic link may wait to be opened.
pub(crate) const LINK_TTL: Duration = Duration::minutes(10);
/// A session's length when the request does not say.
const DEFAULT_SESSION_SECS: u32 = 3600;
/// The longest session: a working day.
const MAX_SESSION_SECS: u32 = 12 * 3600;
/// The most event types a session may be limited to.
const MAX_EVENT_TYPES: usize = 200;

/// What the session may do and show.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalSessionFields {
    /// Seconds the session lasts once the link is opened, 60 to 43,200 (default 3,600).
    #[schema(minimum = 60, maximum = 43200, example = 3600)]
    expires_in: Option<u32>,
    /// Look only: every change is refused by the server (default false).
    read_only: Option<bool>,
    /// Offer only these event types (in the catalogue and the forms); default every type.
    #[schema(example = json!(["appointment.booked", "client.created"]))]
    event_types: Option<Vec<String>>,
    /// The platform's brand.
    theme: Option<Theme>,
}

/// A magic link to the portal.
#[derive(Serialize, ToSchema)]
pub struct PortalLinkBody {
    /// Opens the portal once; hand it to the person, or load it in an iframe.
    #[schema(example = "https://hooks.example.com/portal/login/hhpl_...")]
    url: String,
    /// The link opens nothing after this (10 minutes).
    expires_at: DateTime<Utc>,
}

impl PortalSessionFields {
    fn check(self, state: &AppState) -> Result<NewPortalSession, ApiError> {
        let mut errors = Vec::new();
        let secs = self.expires_in.unwrap_or(DEFAULT_SESSION_SECS);
        if !(60..=MAX_SESSION_SECS).contains(&secs) {
            errors.push(FieldError::new("expires_in", format!("from 60 to {MAX_SESSION_SECS} seconds")));
        }
        if let Some(types) = &self.event_types {
            if types.len() > MAX_EVENT_TYPES || types.iter().any(|t| t.parse::<EventType>().is_err()) {
                errors.push(FieldError::new(
                    "event_types",
                    format!("at most {MAX_EVENT_TYPES} event type names, like \"appointment.booked\""),
                ));
            }
        }
        let theme = match self.theme.map(|t| t.check(&state.portal)).transpose() {
            Ok(theme) => theme,
            Err(theme_errors) => {
                errors.extend(theme_errors);
                None
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(NewPortalSession {
            link_ttl: LINK_TTL,
            session_ttl: Duration::seconds(i64::from(secs)),
            read_only: self.read_only.unwrap_or(false),
            event_types: self.event_types,
            theme: theme.and_then(|t| serde_json::to_value(t).ok()),
            created_by: None,
        })
    }
}

/// The base of portal links: the configured public URL, else the scheme
/// and host this request came to.
fn base_url(state: &AppState, req: &HttpRequest) -> String {
    match state.portal.public_url() {
        Some(url) => url.to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// `POST /v1/portal-sessions` `{expires_in?, read_only?, event_types?, theme?}` → 201 `{url, expires_at}`.
#[utoipa::path(operation_id = "create_portal_session", post, path = "/v1/portal-sessions", tag = "portal",
    request_body(content = Option<PortalSessionFields>), responses((status = 201, body = PortalLinkBody)),
    security(("bearer" = ["admin"])))]
pub async fn create(
    state: web::Data<AppState>,
    Admin(tenant): Admin,
    req: HttpRequest,
    OptionalJson(body): OptionalJson<PortalSessionFields>,
) -> Result<HttpResponse, ApiError> {
    let mut new = body.unwrap_or_default().check(&state)?;
    new.created_by = req.extensions().get::<Principal>().map(|p| p.credential.clone());
    let link = state.store.create_portal_session(&tenant.id, new).await?;
    let url = format!("{}{}{}", base_url(&state, &req), crate::portal::LOGIN_PREFIX, link.token.expose());
    Ok(HttpResponse::Created().json(PortalLinkBody { url, expires_at: link.expires_at }))
}
