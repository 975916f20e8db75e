//! The collector of unreferenced uploads (`sweep`, run by `collect_unreferenced_forever`
//! in one instance at a time), and of stalled and expired resumable uploads.
//!
//! Unreferenced uploads are collected in two steps (`sweep`), all state in the log and
//! `media_v1`, so a restart loses nothing. Every `NATTER_MEDIA_SWEEP_SECS` one instance
//! (an advisory lock) waits for the read models to reach the log's end (else it sweeps
//! next time), then:
//! 1. items collected more than 5 s ago are looked at again: one that something now
//!    refers to (a message from a send that found it live a moment before its
//!    collection) is restored, `MediaUploaded` again with its bytes untouched; the others
//!    get `MediaPurged`, which names the keys, and then those keys are deleted;
//! 2. items older than `NATTER_MEDIA_KEEP_UNREFERENCED_SECS` (a day) that no message,
//!    group avatar or profile photo refers to get `MediaCollected`: from then on they are
//!    neither served nor attachable.
//!
//! Restore and purge are commands on the item's aggregate, so they cannot both happen.
//! The same bytes uploaded again restore a collected item, or record a new one with new
//! keys once purged.

use natter_projections::reads;

use crate::ApiError;
use crate::routes::metadata;

/// What media needs: where bytes go, the log's record of them, and the limits.
use crate::media::MediaService;

/// How long a collected item stays restorable before its bytes are deleted: time for a
/// send that found the item live just before its collection to finish appending.
pub const COLLECT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the collector waits for the read models to reach the log's end before it
/// gives the sweep up until the next.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The advisory lock that makes one collector at a time sweep, of all instances.
const SWEEP_LOCK: i64 = 0x6e61_7474_6572_6d63; // "natter" "mc"

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Collections recorded: from then on the items are neither served nor attachable.
    pub collected: u64,
    /// Collections undone: something referred to the item after all.
    pub restored: u64,
    /// Items whose bytes were deleted.
    pub purged: u64,
}

/// One sweep of the collector, once the read models have reached the log's end (else
/// nothing, until the next): items collected more than `grace` ago are restored if
/// something now refers to them and purged if not ([`finish_collections`]); then items
/// uploaded more than `older_than` ago that nothing refers to are collected
/// ([`mark_unreferenced`]). One instance sweeps at a time.
pub async fn sweep(
    media: &MediaService,
    pool: &sqlx::PgPool,
    log: &natter_eventlog::EventLog,
    older_than: std::time::Duration,
    grace: std::time::Duration,
) -> Result<Swept, ApiError> {
    let sweeping = sweep_unless(media, pool, log, older_than, grace, std::future::pending());
    sweeping.await.unwrap_or(Ok(Swept::default()))
}

/// As [`sweep`], given up (`None`, nothing done) if `stop` completes while it waits for
/// the read models: at shutdown they stop too, and would be waited for in vain.
async fn sweep_unless(
    media: &MediaService,
    pool: &sqlx::PgPool,
    log: &natter_eventlog::EventLog,
    older_than: std::time::Duration,
    grace: std::time::Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Option<Result<Swept, ApiError>> {
    let mut connection = match pool.acquire().await {
        Ok(connection) => connection,
        Err(error) => return Some(Err(ApiError::internal(error))),
    };
    let locked = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(&mut *connection)
        .await;
    match locked {
        Ok(true) => {}
        Ok(false) => return Some(Ok(Swept::default())),
        Err(error) => return Some(Err(ApiError::internal(error))),
    }
    let swept = async {
        tokio::select! {
            () = stop => return None,
            settled = settle(pool, log) => match settled {
                Ok(true) => {}
                Ok(false) => return Some(Ok(Swept::default())),
                Err(error) => return Some(Err(error)),
            },
        }
        Some(sweep_settled(media, pool, older_than, grace).await)
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SWEEP_LOCK)
        .execute(&mut *connection)
        .await;
    swept
}

/// The sweep's two steps, once the read models have reached the log's end.
async fn sweep_settled(
    media: &MediaService,
    pool: &sqlx::PgPool,
    older_than: std::time::Duration,
    grace: std::time::Duration,
) -> Result<Swept, ApiError> {
    let (restored, purged) = finish_collections(media, pool, grace).await?;
    let collected = mark_unreferenced(media, pool, older_than).await?;
    Ok(Swept {
        collected,
        restored,
        purged,
    })
}

/// Records the collection of every item uploaded more than `older_than` ago that the
/// read models show nothing referring to. From then on an item is neither served nor
/// attachable; its bytes stay until [`finish_collections`]. Returns how many.
pub async fn mark_unreferenced(
    media: &MediaService,
    pool: &sqlx::PgPool,
    older_than: std::time::Duration,
) -> Result<u64, ApiError> {
    let older_than = time::Duration::try_from(older_than).map_err(ApiError::internal)?;
    let candidates = reads::media::unreferenced(pool, time::OffsetDateTime::now_utc() - older_than)
        .await
        .map_err(ApiError::internal)?;
    let mut collected = 0;
    for media_id in candidates {
        match media.records.collect(media_id, metadata(None)).await {
            Ok(done) => collected += u64::from(done),
            // One item's failure (a concurrent upload, say) is not the others'.
            Err(error) => tracing::warn!(%media_id, %error, "collecting an item failed"),
        }
    }
    Ok(collected)
}

/// Ends the collections recorded more than `grace` ago, as the read models now stand
/// (the caller has let them reach the log's end): an item something refers to after
/// all (a message sent as it was collected, by a send that found it live a moment
/// before) is restored; the others' bytes are deleted, the purge recorded first. An
/// item restored, uploaded again or purged by then is left as it is. Returns how many
/// were restored and purged.
pub async fn finish_collections(
    media: &MediaService,
    pool: &sqlx::PgPool,
    grace: std::time::Duration,
) -> Result<(u64, u64), ApiError> {
    let grace = time::Duration::try_from(grace).map_err(ApiError::internal)?;
    let collected = reads::media::collected(pool, time::OffsetDateTime::now_utc() - grace)
        .await
        .map_err(ApiError::internal)?;
    let (mut restored, mut purged) = (0, 0);
    for reads::media::Collected {
        media_id,
        referenced,
    } in collected
    {
        if referenced {
            let item = media.records.restore(media_id, metadata(None)).await;
            restored += u64::from(item.map_err(ApiError::internal)?.is_some());
            continue;
        }
        let keys = media.records.purge(media_id, metadata(None)).await;
        for key in keys.map_err(ApiError::internal)?.unwrap_or_default() {
            media.store.delete(&key).await.map_err(ApiError::internal)?;
        }
        purged += 1;
    }
    Ok((restored, purged))
}

/// Waits until the read models that refer to media have reached the log's end; false
/// if they do not within [`SETTLE_TIMEOUT`].
async fn settle(pool: &sqlx::PgPool, log: &natter_eventlog::EventLog) -> Result<bool, ApiError> {
    let end = log.last_sequence().await.map_err(ApiError::internal)?;
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    for (name, version) in [
        crate::routes::chats::CHATS,
        crate::routes::accounts::DIRECTORY,
        (
            <natter_projections::Media as natter_projections::Projection>::NAME,
            <natter_projections::Media as natter_projections::Projection>::VERSION,
        ),
    ] {
        loop {
            let reached = natter_projections::checkpoint(pool, name, version)
                .await
                .map_err(ApiError::internal)?;
            if reached >= end {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(true)
}

/// Every `sweep_every` until `stop` completes: sweeps unreferenced uploads, completes
/// stalled resumable uploads and deletes expired ones. Failures are logged and retried
/// at the next sweep.
pub async fn collect_unreferenced_forever(
    media: &std::sync::Arc<MediaService>,
    pool: &sqlx::PgPool,
    log: &natter_eventlog::EventLog,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(media.sweep_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        let sweeping = sweep_unless(
            media,
            pool,
            log,
            media.keep_unreferenced,
            COLLECT_GRACE,
            &mut stop,
        );
        // Stopped while it waited for the read models: `stop` is done, so no more.
        let Some(swept) = sweeping.await else { return };
        match swept {
            Ok(swept) if swept == Swept::default() => {}
            Ok(swept) => tracing::info!(
                collected = swept.collected,
                restored = swept.restored,
                purged = swept.purged,
                "swept unreferenced uploads"
            ),
            Err(error) => {
                tracing::warn!(error = error.code(), "sweeping unreferenced uploads failed")
            }
        }
        if let Err(error) = crate::uploads::complete_stalled(pool, media).await {
            tracing::warn!(
                error = error.code(),
                "completing stalled resumable uploads failed"
            );
        }
        match crate::uploads::delete_expired(pool, media).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted expired resumable uploads"),
            Err(error) => tracing::warn!(
                error = error.code(),
                "deleting expired resumable uploads failed"
            ),
        }
    }
}
