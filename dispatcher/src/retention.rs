//! Retention: finished events older than the retention period are purged,
//! with their deliveries and attempts, in small batches; so are old audit
//! rows, and subscriptions a `410 Gone` disabled long enough ago.
use hookhub_store::domain::now;
use hookhub_store::repo::Purged;
use hookhub_store::Store;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows per purge transaction: small enough that the hot tables' locks stay short.
const BATCH: u64 = 1_000;

/// How long to keep events, and how often to look.
#[derive(Clone, Copy, Debug)]
pub struct RetentionConfig {
    /// Events older than this (and finished) go; zero keeps everything.
    pub keep: Duration,
    /// How often the purge runs.
    pub interval: Duration,
    /// Audit rows older than this go; zero keeps them forever.
    pub keep_audit: Duration,
    /// Subscriptions disabled by a `410 Gone` longer ago than this go; zero keeps them.
    pub keep_gone_subscriptions: Duration,
}

/// Purges once: every batch until none is left. Returns the totals.
pub async fn purge(store: &Store, keep: Duration) -> Result<Purged, hookhub_store::StoreError> {
    let cutoff = now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let mut total = Purged::default();
    loop {
        let batch = store.purge_batch(cutoff, BATCH).await?;
        total.events += batch.events;
        total.deliveries += batch.deliveries;
        total.attempts += batch.attempts;
        if batch.events < BATCH {
            return Ok(total);
        }
        // Let the hot path have the tables between batches.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Purges audit rows older than `keep`, in batches.
pub async fn purge_audit(store: &Store, keep: Duration) -> Result<u64, hookhub_store::StoreError> {
    purge_rows(keep, |cutoff| store.purge_audit_batch(cutoff, BATCH)).await
}

/// Purges subscriptions a `410 Gone` disabled more than `keep` ago, in batches.
pub async fn purge_gone_subscriptions(store: &Store, keep: Duration) -> Result<u64, hookhub_store::StoreError> {
    purge_rows(keep, |cutoff| store.purge_gone_subscriptions(cutoff, BATCH)).await
}

/// Runs `batch` (which deletes up to [`BATCH`] rows older than its cutoff)
/// until a batch comes back short. Returns the total.
async fn purge_rows<F, Fut>(keep: Duration, mut batch: F) -> Result<u64, hookhub_store::StoreError>
where
    F: FnMut(chrono::DateTime<chrono::Utc>) -> Fut,
    Fut: std::future::Future<Output = Result<u64, hookhub_store::StoreError>>,
{
    let cutoff = now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let mut total = 0;
    loop {
        let n = batch(cutoff).await?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
        // Let the hot path have the tables between batches.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Purges every `interval` until `shutdown`.
pub async fn run(store: Store, config: RetentionConfig, shutdown: CancellationToken) {
    loop {
        if !config.keep.is_zero() {
            match purge(&store, config.keep).await {
                Ok(p) if p.events > 0 => {
                    tracing::info!(events = p.events, deliveries = p.deliveries, attempts = p.attempts, "purged")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed; next run will retry"),
            }
        }
        if !config.keep_audit.is_zero() {
            if let Err(e) = purge_audit(&store, config.keep_audit).await {
                tracing::warn!(error = %e, "audit purge failed; next run will retry");
            }
        }
        if !config.keep_gone_subscriptions.is_zero() {
            match purge_gone_subscriptions(&store, config.keep_gone_subscriptions).await {
                Ok(n) if n > 0 => tracing::info!(subscriptions = n, "purged subscriptions disabled by 410 Gone"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "gone subscription purge failed; next run will retry"),
            }
        }
        if let Err(e) = store.purge_rate_counters(now().timestamp()).await {
            tracing::warn!(error = %e, "rate counter purge failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}
