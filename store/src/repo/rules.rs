//! Rules: events derived from other events (offboarding:
//! `subscription.cancelled` emits `client.archived`).
use super::stored;
use crate::domain::{now, EventType, RuleId, TenantId};
use crate::entity::rule;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

/// "When `on` arrives, also emit `emit`" (for example offboarding:
/// `subscription.cancelled` → `client.archived`).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Its id.
    pub id: RuleId,
    /// The type that triggers it.
    pub on: EventType,
    /// The type it emits, with the trigger's data.
    pub emit: EventType,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<rule::Model> for Rule {
    type Error = StoreError;
    fn try_from(m: rule::Model) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("rule {}", m.id));
        Ok(Self {
            id: stored(&m.id)?,
            on: m.on_type.parse().map_err(|_| corrupt())?,
            emit: m.emit_type.parse().map_err(|_| corrupt())?,
            created_at: m.created_at,
        })
    }
}

impl Store {
    /// Creates a rule; the same pair twice conflicts.
    pub async fn create_rule(&self, tenant: &TenantId, on: EventType, emit: EventType) -> Result<Rule, StoreError> {
        let row = rule::ActiveModel {
            id: Set(RuleId::generate().to_string()),
            tenant_id: Set(tenant.to_string()),
            on_type: Set(on.to_string()),
            emit_type: Set(emit.to_string()),
            created_at: Set(now()),
        };
        let row = self.insert_as_tenant(tenant, row).await.map_err(|e| match e {
            StoreError::Db(db) if StoreError::is_unique_violation(&db) => {
                StoreError::Conflict("that rule exists already".into())
            }
            other => other,
        })?;
        row.try_into()
    }

    /// The tenant's rules, oldest first.
    pub async fn list_rules(&self, tenant: &TenantId) -> Result<Vec<Rule>, StoreError> {
        let select =
            rule::Entity::find().filter(rule::Column::TenantId.eq(tenant.as_str())).order_by_asc(rule::Column::Id);
        self.all_as_tenant(tenant, select).await?.into_iter().map(Rule::try_from).collect()
    }

    /// Deletes a rule.
    pub async fn delete_rule(&self, tenant: &TenantId, id: &RuleId) -> Result<(), StoreError> {
        let delete = rule::Entity::delete_many()
            .filter(rule::Column::TenantId.eq(tenant.as_str()))
            .filter(rule::Column::Id.eq(id.as_str()));
        self.delete_one_as_tenant(tenant, delete, "rule").await
    }

    /// The rules events of these types trigger, inside the ingest transaction.
    pub(crate) async fn rules_triggered_by(
        db: &impl ConnectionTrait,
        tenant: &TenantId,
        event_types: impl IntoIterator<Item = &EventType>,
    ) -> Result<Vec<Rule>, StoreError> {
        rule::Entity::find()
            .filter(rule::Column::TenantId.eq(tenant.as_str()))
            .filter(rule::Column::OnType.is_in(event_types.into_iter().map(EventType::as_str)))
            .order_by_asc(rule::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .map(Rule::try_from)
            .collect()
    }
}
