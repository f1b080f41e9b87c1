//! The event-type catalogue: the built-in types and a tenant's own, with their
//! schemas and examples.
use crate::domain::catalog::{builtin_type, builtins};
use crate::domain::{now, EventType, EventTypeId, TenantId};
use crate::entity::event_type;
use crate::{Store, StoreError};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde_json::Value;

/// An event type as a tenant sees it: built-in or custom, with its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct EventTypeInfo {
    /// Its name.
    pub name: String,
    /// What it means.
    pub description: String,
    /// JSON Schema of `data`, if one is known.
    pub schema: Option<Value>,
    /// An example `data`, if one is known.
    pub example: Option<Value>,
    /// Built into Hookhub (true) or registered by the tenant.
    pub builtin: bool,
    /// Whether ingest checks `data` against `schema`.
    pub validate: bool,
}

/// A custom event type to register.
#[derive(Clone, Debug)]
pub struct NewEventType {
    /// Its name.
    pub name: EventType,
    /// What it means.
    pub description: String,
    /// JSON Schema of `data` (already checked to compile).
    pub schema: Option<Value>,
    /// An example `data`.
    pub example: Option<Value>,
    /// Whether ingest checks `data` against `schema`.
    pub validate: bool,
}

fn merge(row: Option<&event_type::Model>, name: &str) -> Option<EventTypeInfo> {
    match (builtin_type(name), row) {
        (Some(b), row) => Some(EventTypeInfo {
            name: b.name.to_owned(),
            description: b.description.to_owned(),
            schema: Some(b.schema.clone()),
            example: Some(b.example.clone()),
            builtin: true,
            validate: row.is_some_and(|r| r.validate),
        }),
        (None, Some(r)) => Some(EventTypeInfo {
            name: r.name.clone(),
            description: r.description.clone(),
            schema: r.schema.clone(),
            example: r.example.clone(),
            builtin: false,
            validate: r.validate,
        }),
        (None, None) => None,
    }
}

/// The schema events of `name` are validated against when the tenant turned
/// validation on: the built-in one, else the custom type's own.
pub(super) fn validation_schema(name: &str, custom: Option<serde_json::Value>) -> Option<serde_json::Value> {
    match builtin_type(name) {
        Some(b) => Some(b.schema.clone()),
        None => custom,
    }
}

impl Store {
    async fn event_type_row(
        &self,
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<event_type::Model>, StoreError> {
        Ok(event_type::Entity::find()
            .filter(event_type::Column::TenantId.eq(tenant.as_str()))
            .filter(event_type::Column::Name.eq(name))
            .one(db)
            .await?)
    }

    /// The built-in types followed by the tenant's own, by name.
    pub async fn list_event_types(&self, tenant: &TenantId) -> Result<Vec<EventTypeInfo>, StoreError> {
        let select = event_type::Entity::find()
            .filter(event_type::Column::TenantId.eq(tenant.as_str()))
            .order_by_asc(event_type::Column::Name);
        let rows = self.all_as_tenant(tenant, select).await?;
        let row_of = |name: &str| rows.iter().find(|r| r.name == name);
        let mut out: Vec<_> = builtins().iter().filter_map(|b| merge(row_of(b.name), b.name)).collect();
        out.extend(rows.iter().filter(|r| builtin_type(&r.name).is_none()).filter_map(|r| merge(Some(r), &r.name)));
        Ok(out)
    }

    /// One type as the tenant sees it; `None` if it is neither built in nor registered.
    pub async fn event_type(&self, tenant: &TenantId, name: &str) -> Result<Option<EventTypeInfo>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let row = self.event_type_row(&txn, tenant, name).await?;
        txn.commit().await?;
        Ok(merge(row.as_ref(), name))
    }

    /// Registers a custom type; built-in and existing names conflict.
    pub async fn create_event_type(&self, tenant: &TenantId, new: NewEventType) -> Result<EventTypeInfo, StoreError> {
        let name = new.name.to_string();
        let txn = self.tenant_scope(tenant).await?;
        if builtin_type(&name).is_some() || self.event_type_row(&txn, tenant, &name).await?.is_some() {
            return Err(StoreError::Conflict(format!("event type {name} already exists")));
        }
        let row = event_type::ActiveModel {
            id: Set(EventTypeId::generate().to_string()),
            tenant_id: Set(tenant.to_string()),
            name: Set(name.clone()),
            description: Set(new.description),
            schema: Set(new.schema),
            example: Set(new.example),
            validate: Set(new.validate),
            created_at: Set(now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(merge(Some(&row), &name).expect("a row merges"))
    }

    /// Turns schema validation of a type on or off (built-in or custom).
    pub async fn set_event_type_validation(
        &self,
        tenant: &TenantId,
        name: &str,
        validate: bool,
    ) -> Result<EventTypeInfo, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let row = match self.event_type_row(&txn, tenant, name).await? {
            Some(row) => {
                let mut row = row.into_active_model();
                row.validate = Set(validate);
                row.update(&txn).await?
            }
            // A built-in type gets a settings row on first change.
            None if builtin_type(name).is_some() => {
                event_type::ActiveModel {
                    id: Set(EventTypeId::generate().to_string()),
                    tenant_id: Set(tenant.to_string()),
                    name: Set(name.to_owned()),
                    description: Set(String::new()),
                    schema: Set(None),
                    example: Set(None),
                    validate: Set(validate),
                    created_at: Set(now()),
                }
                .insert(&txn)
                .await?
            }
            None => return Err(StoreError::NotFound("event type")),
        };
        txn.commit().await?;
        Ok(merge(Some(&row), name).expect("a row merges"))
    }
}
