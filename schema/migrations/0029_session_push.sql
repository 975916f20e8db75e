-- Web Push (issue 17): a session's device may subscribe to pushes
-- (PushSubscribed / PushUnsubscribed on the session aggregate). No event before this
-- migration carries a subscription, so the columns are exact empty; no rebuild needed.
ALTER TABLE sessions_v1
    ADD COLUMN push_endpoint text,
    ADD COLUMN push_p256dh   text,
    ADD COLUMN push_auth     text,
    ADD COLUMN push_previews boolean NOT NULL DEFAULT true;
-- The notifier's question: which live sessions of these users take pushes.
CREATE INDEX sessions_v1_push ON sessions_v1 (user_id)
    WHERE push_endpoint IS NOT NULL AND ended_at IS NULL;
