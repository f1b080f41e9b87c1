//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the request and response types they use, served at `/v1/openapi.json`.
use super::{
    access, attempts, batch, erasures, event_types, events, health, hooks, inbound, listen, me, ordering,
    portal_sessions, rules, subscriptions, tenants, transforms,
};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use std::sync::LazyLock;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

mod typed_clients;

/// The whole API surface; `paths` must name every operation of the route
/// table (a test holds the two together).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hookhub API",
        description = "Ingest domain events, subscribe endpoints to them, and follow every signed delivery. \
Authenticate with `Authorization: Bearer hh_live_...` (an API key) or `Bearer hh_at_...` (an OAuth 2.0 \
access token from `POST /v1/oauth/token`). Scopes: `read` may only GET, `write` may also change things, \
`admin` may also manage credentials and read the audit log, `platform` (a platform's credential) may also \
manage the platform's tenants (`/v1/tenants`) and act for any of them on every other route with the \
`Hookhub-Tenant` header (a `ten_...` id or the platform's external id). Errors are `{message, code, hint?, errors?}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers((url = "/", description = "The hub that serves this document; pass your deployment's URL to generated clients")),
    paths(
        health::healthz, health::readyz, serve,
        subscriptions::create, subscriptions::list, subscriptions::get, subscriptions::update,
        subscriptions::delete, subscriptions::secret, subscriptions::rotate_secret, subscriptions::enable,
        subscriptions::recover, subscriptions::test, transforms::test, attempts::of_subscription, ordering::list,
        ordering::skip,
        events::ingest, batch::ingest, events::list, events::get, attempts::of_event, events::redeliver,
        hooks::subscribe, hooks::samples, hooks::unsubscribe,
        event_types::list, event_types::create, event_types::update,
        rules::list, rules::create, rules::delete,
        inbound::list, inbound::create, inbound::delete, inbound::receive,
        listen::start, listen::stream,
        access::token, access::list_keys, access::create_key, access::delete_key,
        access::list_apps, access::create_app, access::delete_app, access::audit_log,
        me::get, portal_sessions::create,
        tenants::create, tenants::list, tenants::get, tenants::update, tenants::suspend, tenants::resume,
        erasures::delete, erasures::get,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecuritySchemes, &StandardErrors),
    tags(
        (name = "events", description = "Ingest domain events and follow their deliveries"),
        (name = "subscriptions", description = "Endpoints that receive signed deliveries"),
        (name = "integrations", description = "REST Hooks (Zapier, Make), event types, rules, inbound gateways, listen"),
        (name = "access", description = "API keys, OAuth 2.0 client credentials and the audit log"),
        (name = "platform", description = "A platform's tenants: create, list, change, suspend, resume, delete"),
        (name = "portal", description = "Magic links to the tenant portal, the web pages under /portal"),
        (name = "operations", description = "Probes and this document"),
    )
)]
pub(crate) struct ApiDoc;

/// Declares how callers authenticate: bearer credentials for the API,
/// HTTP Basic for OAuth clients at the token endpoint.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("client_basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    }
}

/// Adds the error answers every operation of a kind can give, from one
/// place rather than on each handler: authenticated calls can be refused
/// (401, 403, 429), ids can be unknown (404), bodies and queries can be
/// invalid (400, 413, 415, 422). Each answers with `ErrorBody`.
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.patch, &mut item.put, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                add_errors(path, operation);
            }
        }
    }
}

/// The operations that write events, which a suspended tenant is refused (409).
const INGESTING: [&str; 2] = ["create_event", "receive_inbound_callback"];

fn add_errors(path: &str, operation: &mut Operation) {
    let authenticated = operation
        .security
        .iter()
        .flatten()
        .any(|requirement| serde_json::to_value(requirement).is_ok_and(|v| v.get("bearer").is_some()));
    let json_body = operation.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
    let query = operation.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let mut codes = Vec::new();
    if authenticated {
        codes.extend([StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::TOO_MANY_REQUESTS]);
    }
    let platform_route = path.starts_with("/v1/tenants") || path.starts_with("/v1/erasures");
    let acts_for_tenant = authenticated && !platform_route;
    if acts_for_tenant {
        // Every tenant route honours the header; a tenant it cannot name is not found.
        operation.parameters.get_or_insert_with(Vec::new).push(tenant_header());
        codes.push(StatusCode::NOT_FOUND);
    }
    if path.contains('{') {
        codes.push(StatusCode::NOT_FOUND);
    }
    if json_body || query {
        codes.push(StatusCode::BAD_REQUEST);
    }
    if json_body {
        codes.extend([
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::UNPROCESSABLE_ENTITY,
        ]);
    }
    let responses = &mut operation.responses.responses;
    if operation.operation_id.as_deref().is_some_and(|id| INGESTING.contains(&id)) {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let suspended = "`tenant_suspended`: the tenant is suspended and accepts no events";
        responses.entry("409".to_owned()).or_insert_with(|| {
            RefOr::T(ResponseBuilder::new().description(suspended).content("application/json", content).build())
        });
    }
    for code in codes {
        responses.entry(code.as_str().to_owned()).or_insert_with(|| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            let reason = code.canonical_reason().unwrap_or_default();
            RefOr::T(ResponseBuilder::new().description(reason).content("application/json", content).build())
        });
    }
    // OpenAPI requires a description on every response.
    for (code, response) in responses.iter_mut() {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                let reason = code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok());
                response.description = reason.and_then(|c| c.canonical_reason()).unwrap_or("Answer").to_owned();
            }
        }
    }
}

/// `Hookhub-Tenant`: the tenant a platform's credential acts for.
fn tenant_header() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::ParameterBuilder;
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    ParameterBuilder::new()
        .name("Hookhub-Tenant")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "With a `platform` credential: act for this tenant of the platform (its `ten_...` id or the \
             platform's external id). Any other credential may name only its own tenant.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).max_length(Some(255))))
        .build()
}

/// The document as JSON, built once, adjusted for typed clients.
pub(crate) fn document() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        typed_clients::adjust(&mut doc);
        serde_json::to_string_pretty(&doc).expect("JSON serializes")
    });
    &DOC
}

/// `GET /v1/openapi.json`: this API's OpenAPI 3.1 document (no credentials needed).
#[utoipa::path(operation_id = "get_openapi_document", get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{api_operations, probe_operations};
    use std::collections::BTreeSet;

    const PUBLIC: [&str; 5] =
        ["/healthz", "/readyz", "/v1/openapi.json", "/v1/oauth/token", "/v1/inbound/{source}/{token}"];

    fn documented() -> serde_json::Value {
        serde_json::from_str(document()).expect("the document is JSON")
    }

    fn operations(doc: &serde_json::Value) -> impl Iterator<Item = (String, String, &serde_json::Value)> {
        doc["paths"].as_object().into_iter().flatten().flat_map(|(path, item)| {
            item.as_object().into_iter().flatten().map(move |(method, op)| (method.to_uppercase(), path.clone(), op))
        })
    }

    #[test]
    fn every_route_is_documented_and_every_documented_operation_is_routed() {
        let routed: BTreeSet<(String, String)> = probe_operations()
            .into_iter()
            .chain(api_operations())
            .map(|op| (op.method.to_string(), op.path.to_owned()))
            .collect();
        let doc = documented();
        let documented: BTreeSet<(String, String)> = operations(&doc).map(|(m, p, _)| (m, p)).collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(undocumented.is_empty(), "routes missing from the OpenAPI `paths(...)` list: {undocumented:?}");
        assert!(unrouted.is_empty(), "documented operations with no route: {unrouted:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_unique_operation_ids_and_declared_security() {
        let doc = documented();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(ids.insert(id.clone()), "{method} {path}: operationId {id:?} is not unique");
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let success = op["responses"].as_object().is_some_and(|r| r.keys().any(|c| c.starts_with('2')));
            assert!(success, "{method} {path} documents no success answer");
            let bearer = op["security"].as_array().into_iter().flatten().any(|s| s.get("bearer").is_some());
            assert_eq!(bearer, !PUBLIC.contains(&path.as_str()), "{method} {path}: security does not match the API");
            if bearer {
                assert!(op["responses"]["401"].is_object(), "{method} {path} lacks the standard errors");
            }
        }
    }

    /// `docs/openapi.json` is what the code generates, so reviewers see API
    /// changes in diffs and tools can read the API without running it.
    /// `HOOKHUB_UPDATE_OPENAPI=1 cargo test -p hookhub-ingest openapi` rewrites it.
    #[test]
    fn the_committed_document_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        let generated = format!("{}\n", document());
        if std::env::var_os("HOOKHUB_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write docs/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date: run `HOOKHUB_UPDATE_OPENAPI=1 cargo test -p hookhub-ingest openapi`"
        );
    }
}
