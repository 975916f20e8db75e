-- The file name a resumable upload was created with, for the item it becomes.
ALTER TABLE media_uploads ADD COLUMN file_name text;
