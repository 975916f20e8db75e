-- A lease on completing a resumable upload: one request or sweep joins and records its
-- parts at a time, and one that died leaves the lease to run out.
ALTER TABLE media_uploads ADD COLUMN completing_until timestamptz;
