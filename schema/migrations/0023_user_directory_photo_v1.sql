-- Profile photos (projection user_directory, version 1): the media item a user shows.
-- No earlier event set one, so existing rows are right as they are.
ALTER TABLE user_directory_v1 ADD COLUMN photo_media_id uuid;
CREATE INDEX user_directory_v1_photo ON user_directory_v1 (photo_media_id)
    WHERE photo_media_id IS NOT NULL;
