//! The media read model: every uploaded item, whether it has been collected, and
//! whether its bytes have been deleted since.

use natter_domain::media::{MEDIA_KIND, MediaEvent};
use natter_eventlog::StoredEvent;
use sqlx::PgConnection;

use crate::{Decoded, Projection};

#[derive(Debug, Clone, Copy, Default)]
pub struct Media;

impl Projection for Media {
    const NAME: &'static str = "media";
    const VERSION: i32 = 1;
    const KINDS: &'static [&'static str] = &[MEDIA_KIND];
    const TABLES: &'static [&'static str] = &["media_v1"];
    type Event = MediaEvent;

    fn decode(
        &self,
        stored: &StoredEvent,
    ) -> Result<Option<MediaEvent>, natter_schema::SchemaError> {
        let envelope = &stored.envelope;
        if envelope.aggregate_type != MEDIA_KIND {
            return Ok(None);
        }
        natter_schema::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        )
        .map(Some)
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<MediaEvent>],
    ) -> Result<(), sqlx::Error> {
        for event in events {
            match &event.event {
                MediaEvent::MediaUploaded(item) => {
                    sqlx::query(
                        "INSERT INTO media_v1 (media_id, owner, kind, key, thumbnail_key, uploaded_at)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (media_id) DO UPDATE SET collected = false,
                             collected_at = NULL, purged = false, key = EXCLUDED.key,
                             thumbnail_key = EXCLUDED.thumbnail_key,
                             uploaded_at = EXCLUDED.uploaded_at",
                    )
                    .bind(item.media_id)
                    .bind(item.owner)
                    .bind(&item.kind)
                    .bind(&item.key)
                    .bind(&item.thumbnail_key)
                    .bind(item.uploaded_at)
                    .execute(&mut *connection)
                    .await?;
                }
                MediaEvent::MediaCollected(collected) => {
                    sqlx::query(
                        "UPDATE media_v1 SET collected = true, collected_at = $2
                         WHERE media_id = $1",
                    )
                    .bind(collected.media_id)
                    .bind(collected.collected_at)
                    .execute(&mut *connection)
                    .await?;
                }
                // Shares reserve an item in its aggregate; the references themselves are
                // in other read models.
                MediaEvent::MediaShared(_) => {}
                MediaEvent::MediaPurged(purged) => {
                    sqlx::query("UPDATE media_v1 SET purged = true WHERE media_id = $1")
                        .bind(purged.media_id)
                        .execute(&mut *connection)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
