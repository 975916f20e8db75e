-- Which log a read model was built from: the stream's creation time. A log made anew
-- (a wiped NATS store) starts its sequences again, and a checkpoint of the old one means
-- nothing there: the projection stops and says so instead of skipping events.
ALTER TABLE projection_checkpoints ADD COLUMN log_created timestamptz;
