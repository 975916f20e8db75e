-- When each user's last connection closed (projection user_directory, version 1).
ALTER TABLE user_directory_v1 ADD COLUMN last_seen_at timestamptz;
