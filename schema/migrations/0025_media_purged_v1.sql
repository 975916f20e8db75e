-- When an item was collected, and whether its bytes have been deleted since
-- (MediaPurged). The collector deletes the bytes of items collected a while ago that
-- nothing refers to, and restores the others. Items collected before this column
-- existed count as collected long ago.
ALTER TABLE media_v1 ADD COLUMN collected_at timestamptz;
ALTER TABLE media_v1 ADD COLUMN purged boolean NOT NULL DEFAULT false;
UPDATE media_v1 SET collected_at = '-infinity' WHERE collected;
CREATE INDEX media_v1_collecting ON media_v1 (collected_at) WHERE collected AND NOT purged;
