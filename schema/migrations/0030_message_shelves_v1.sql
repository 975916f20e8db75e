-- The shelves of a chat's gallery (projection chats, version 1): photos and videos,
-- documents, and links, each paged by sequence within a chat. Partial indexes keep a
-- shelf's page from scanning the chat's other messages.
CREATE INDEX messages_v1_media_shelf ON messages_v1 (chat_id, sequence)
    WHERE NOT deleted AND attachment ->> 'type' = 'media' AND attachment ->> 'kind' IN ('image', 'video');
CREATE INDEX messages_v1_document_shelf ON messages_v1 (chat_id, sequence)
    WHERE NOT deleted AND attachment ->> 'type' = 'media' AND attachment ->> 'kind' = 'document';
CREATE INDEX messages_v1_link_shelf ON messages_v1 (chat_id, sequence)
    WHERE NOT deleted AND body ~* 'https?://';
