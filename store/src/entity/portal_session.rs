//! `portal_sessions`: a portal's magic link and the browser session it became.
use sea_orm::entity::prelude::*;

/// One portal session, from its magic link on.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "portal_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The one tenant it can see.
    pub tenant_id: String,
    /// SHA-256 (hex) of the magic link's token.
    pub link_hash: String,
    /// The link opens nothing after this.
    pub link_expires_at: DateTimeUtc,
    /// When the link was exchanged; a used link opens nothing.
    pub link_used_at: Option<DateTimeUtc>,
    /// SHA-256 (hex) of the session cookie, once the link was opened.
    pub session_hash: Option<String>,
    /// The session ends at this time.
    pub session_expires_at: Option<DateTimeUtc>,
    /// How long the session lasts from the link's opening.
    pub session_ttl_secs: i64,
    /// Whether the session may only look.
    pub read_only: bool,
    /// JSON list of the event types the portal offers, when restricted.
    pub event_types: Option<String>,
    /// JSON `{primary_color, logo_url, dark}` of the platform's brand.
    pub theme: Option<String>,
    /// The credential that asked for it (an id, never a secret).
    pub created_by: Option<String>,
    pub created_at: DateTimeUtc,
}

/// No navigable relations: queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
