//! `/v1/oauth/token`: the OAuth 2.0 token endpoint (client credentials,
//! RFC 6749 §4.4), with its own error format and its limits against guessing.
use crate::{ApiError, AppState};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hookhub_store::domain::{now, Scope};
use hookhub_store::repo::{
    OAuthApp, RateSubject, ACCESS_TOKEN_TTL, TOKEN_REQUESTS_PER_ADDRESS, TOKEN_REQUESTS_PER_CLIENT,
};
use serde::Serialize;
use utoipa::ToSchema;

/// An error of the token endpoint, in RFC 6749 §5.2 form.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    code: &'static str,
    description: String,
    /// Client authentication was tried with HTTP Basic (answer with a challenge).
    basic: bool,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), basic: false }
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        Self::new("server_error", e.to_string())
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.code == "invalid_client" && self.basic {
            response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="hookhub""#));
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(OAuthErrorBody { error: self.code, error_description: &self.description })
    }
}

/// An error of the token endpoint (RFC 6749 §5.2).
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody<'a> {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `invalid_scope` or `server_error`.
    #[schema(example = "invalid_client")]
    error: &'a str,
    error_description: &'a str,
}

/// The form of a token request (RFC 6749 §4.4.2).
#[derive(ToSchema)]
#[allow(dead_code)] // the handler parses the form itself, to refuse repeated parameters
pub struct TokenRequest {
    /// Only `client_credentials`.
    #[schema(example = "client_credentials", pattern = "^client_credentials$")]
    grant_type: String,
    /// Unless sent with HTTP Basic.
    client_id: Option<String>,
    /// Unless sent with HTTP Basic.
    client_secret: Option<String>,
    /// `read`, `write` or `admin`, at most the app's own (default: the app's).
    #[schema(pattern = "^ *(read|write|admin)( +(read|write|admin))* *$")]
    scope: Option<String>,
}

/// The parameters of a token request this endpoint reads.
const TOKEN_PARAMETERS: [&str; 4] = ["grant_type", "client_id", "client_secret", "scope"];

/// An access token.
#[derive(Serialize, ToSchema)]
pub struct TokenBody {
    /// `hh_at_...`, valid for `expires_in` seconds.
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    #[schema(example = 3600)]
    expires_in: i64,
    #[schema(example = "write")]
    scope: String,
}

/// Client credentials from `Authorization: Basic`, if sent.
fn basic_credentials(req: &HttpRequest) -> Option<Result<(String, String), OAuthError>> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let malformed = || OAuthError { basic: true, ..OAuthError::new("invalid_client", "malformed Basic credentials") };
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(malformed()));
    };
    // RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic.
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some(decode(id).zip(decode(secret)).ok_or_else(malformed))
}

/// `POST /v1/oauth/token`: `grant_type=client_credentials`, client
/// authentication by HTTP Basic or form fields, optional `scope`.
#[utoipa::path(operation_id = "issue_token", post, path = "/v1/oauth/token", tag = "access",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenBody), (status = 400, body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
        (status = 413, description = "The body is over the size limit", body = crate::error::ErrorBody),
        (status = 429, description = "Too many token requests for this client id or address, or over the tenant's plan",
            body = crate::error::ErrorBody, headers(("Retry-After" = i64, description = "Seconds until the window resets")))),
    security((), ("client_basic" = [])))]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    // Body problems (too large, unreadable) and limits answer in the API's
    // error format, as on every route; the rest in RFC 6749's. Every
    // attempt counts, failed or not, so a secret cannot be guessed faster
    // than the limits allow.
    let body = crate::body::read_limited(payload).await?;
    let at = now().timestamp();
    // The same client address as the audit log's: forwarding headers count
    // only from trusted proxies, so a guesser cannot reset its own limit.
    let address =
        state.trusted_proxies.client_ip(req.peer_addr().map(|a| a.ip()), req.headers()).map(|ip| ip.to_string());
    if let Some(address) = address {
        let counted = state.store.hit_limits(RateSubject::TokenAddress(&address), &[TOKEN_REQUESTS_PER_ADDRESS], at);
        crate::auth::refuse_when_over(counted.await.map_err(ApiError::from)?)?;
    }
    let ask = TokenAsk::parse(&req, &body)?;
    let counted = state.store.hit_limits(RateSubject::TokenClient(&ask.client_id), &[TOKEN_REQUESTS_PER_CLIENT], at);
    crate::auth::refuse_when_over(counted.await.map_err(ApiError::from)?)?;
    let app = ask.authenticate(&state).await?;
    let tenant = state.store.tenant(&app.tenant_id).await.map_err(ApiError::from)?;
    crate::auth::count_request(&state, &tenant, &req).await?;
    Ok(ask.grant(&state, &app).await?)
}

/// A parsed token request.
struct TokenAsk {
    client_id: String,
    secret: String,
    /// Whether the client authenticated with HTTP Basic (a failure then gets a challenge).
    used_basic: bool,
    /// The `scope` parameter, if sent.
    scope: Option<String>,
}

impl TokenAsk {
    /// Reads the form and the client credentials.
    fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(OAuthError::new(
                "invalid_request",
                "send the request form-encoded (application/x-www-form-urlencoded)",
            ));
        }
        // RFC 6749 §3.1, §3.2: a parameter without a value counts as omitted,
        // unknown parameters are ignored, and ours may be sent only once.
        let mut form = std::collections::HashMap::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            if v.is_empty() || !TOKEN_PARAMETERS.contains(&k.as_ref()) {
                continue;
            }
            if form.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(OAuthError::new("invalid_request", format!("parameter {k} is repeated")));
            }
        }
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {}
            Some(other) => return Err(OAuthError::new("unsupported_grant_type", format!("{other} is not supported"))),
            None => return Err(OAuthError::new("invalid_request", "grant_type is required")),
        }
        let basic = basic_credentials(req).transpose()?;
        let used_basic = basic.is_some();
        let (client_id, secret) = match (basic, form.get("client_id"), form.get("client_secret")) {
            // RFC 6749 §3.2.1 lets a client identify itself in the body
            // while authenticating with Basic (requests-oauthlib does by
            // default); only a disagreement is an error.
            (Some(creds), None, None) => creds,
            (Some(creds), Some(id), None) if *id == creds.0 => creds,
            (Some(_), Some(_), None) => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "client_id in the body differs from the Basic credentials",
                ))
            }
            (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
            (Some(_), _, Some(_)) => {
                return Err(OAuthError::new("invalid_request", "use one client authentication method, not two"))
            }
            _ => {
                return Err(OAuthError::new("invalid_client", "client authentication is required"));
            }
        };
        Ok(Self { client_id, secret, used_basic, scope: form.remove("scope") })
    }

    /// The app these credentials are of.
    async fn authenticate(&self, state: &AppState) -> Result<OAuthApp, OAuthError> {
        let wrong = || OAuthError {
            basic: self.used_basic,
            ..OAuthError::new("invalid_client", "unknown client or wrong secret")
        };
        // No client id or secret contains NUL, which no text column could hold.
        if self.client_id.contains('\0') || self.secret.contains('\0') {
            return Err(wrong());
        }
        state.store.authenticate_client(&self.client_id, &self.secret).await.map_err(ApiError::from)?.ok_or_else(wrong)
    }

    /// Issues the token, with the scope asked for (at most the app's).
    async fn grant(&self, state: &AppState, app: &OAuthApp) -> Result<HttpResponse, OAuthError> {
        let scope = match self.scope.as_deref().map(Scope::from_scope_string) {
            None => app.scope,
            Some(Ok(asked)) if asked <= app.scope => asked,
            Some(Ok(asked)) => {
                return Err(OAuthError::new("invalid_scope", format!("this client may not have {asked}")));
            }
            Some(Err(_)) => return Err(OAuthError::new("invalid_scope", "scopes are read, write, admin and platform")),
        };
        let (token, _) = state.store.issue_access_token(app, scope).await.map_err(ApiError::from)?;
        Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(TokenBody {
            access_token: token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_TTL.num_seconds(),
            scope: scope.to_scope_string(),
        }))
    }
}
