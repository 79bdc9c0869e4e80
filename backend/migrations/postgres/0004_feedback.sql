-- A visitor's rating of an answer, kept with the message: 1 (up) or -1
-- (down), an optional comment, and when it was last changed (ms since
-- the epoch). A visitor may change it; NULL is no rating.
ALTER TABLE messages ADD COLUMN rating SMALLINT CHECK (rating IN (-1, 1));
ALTER TABLE messages ADD COLUMN rating_comment TEXT;
ALTER TABLE messages ADD COLUMN rated_at BIGINT;
CREATE INDEX messages_rated ON messages (rated_at) WHERE rating IS NOT NULL;
