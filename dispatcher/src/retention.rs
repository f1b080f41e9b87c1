//! Retention: finished events older than the retention period are purged,
//! with their deliveries and attempts, in small batches.
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
    let cutoff = now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let mut total = 0;
    loop {
        let n = store.purge_audit_batch(cutoff, BATCH).await?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
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
        if let Err(e) = store.purge_rate_counters(now().timestamp()).await {
            tracing::warn!(error = %e, "rate counter purge failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}
