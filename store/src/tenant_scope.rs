//! The per-tenant scope: transactions in which PostgreSQL's row-level
//! security shows and accepts only one tenant's rows (the runtime role
//! switch), and the helpers that run one query in such a scope.
use crate::domain::TenantId;
use crate::{Store, StoreError};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, DatabaseBackend, DatabaseTransaction, DeleteMany, EntityTrait,
    IntoActiveModel, Select, TransactionTrait,
};

impl Store {
    /// A transaction in which the database itself shows only `tenant`'s
    /// rows: on PostgreSQL it runs as `hookhub_tenant` with `app.tenant_id`
    /// set, under the row-level security policies of migration m0006.
    /// The API's reads and writes use it on top of their own tenant
    /// filters, so a filter forgotten in a query still leaks nothing, and a
    /// row written for the wrong tenant is refused.
    pub async fn tenant_scope(&self, tenant: &TenantId) -> Result<DatabaseTransaction, StoreError> {
        let txn = self.db().begin().await?;
        if self.backend() == DatabaseBackend::Postgres {
            crate::repo::pg::enter_tenant_scope(&txn, tenant).await?;
        }
        Ok(txn)
    }

    /// Runs `select` as `tenant` (see [`Store::tenant_scope`]) and returns its rows.
    pub(crate) async fn all_as_tenant<E: EntityTrait>(
        &self,
        tenant: &TenantId,
        select: Select<E>,
    ) -> Result<Vec<E::Model>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let rows = select.all(&txn).await?;
        txn.commit().await?;
        Ok(rows)
    }

    /// Runs `select` as `tenant` and returns its first row.
    pub(crate) async fn one_as_tenant<E: EntityTrait>(
        &self,
        tenant: &TenantId,
        select: Select<E>,
    ) -> Result<Option<E::Model>, StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let row = select.one(&txn).await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Inserts `model` as `tenant`: on PostgreSQL the policy's `WITH CHECK`
    /// refuses a row of any other tenant, whatever the code set.
    pub(crate) async fn insert_as_tenant<A>(
        &self,
        tenant: &TenantId,
        model: A,
    ) -> Result<<A::Entity as EntityTrait>::Model, StoreError>
    where
        A: ActiveModelTrait + ActiveModelBehavior + Send,
        <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    {
        let txn = self.tenant_scope(tenant).await?;
        let row = model.insert(&txn).await?;
        txn.commit().await?;
        Ok(row)
    }

    /// Runs `delete` of one resource as `tenant`; `NotFound(what)` when it
    /// removed nothing (no such id, or another tenant's).
    pub(crate) async fn delete_one_as_tenant<E: EntityTrait>(
        &self,
        tenant: &TenantId,
        delete: DeleteMany<E>,
        what: &'static str,
    ) -> Result<(), StoreError> {
        let txn = self.tenant_scope(tenant).await?;
        let deleted = delete.exec(&txn).await?.rows_affected;
        txn.commit().await?;
        if deleted == 0 {
            return Err(StoreError::NotFound(what));
        }
        Ok(())
    }
}
