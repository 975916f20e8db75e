-- The search index takes each message as it comes (projection chats, version 1). With
-- GIN's pending list, inserts were cheap until the list filled and one insert paid for
-- merging it all, which showed as tens of milliseconds of stalls in send latency.
ALTER INDEX messages_v1_search SET (fastupdate = off);
