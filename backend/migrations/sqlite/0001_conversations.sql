-- Conversations and their messages. Times are milliseconds since the Unix epoch.
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY NOT NULL,
    widget_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX conversations_by_widget ON conversations (widget_id, created_at);

CREATE TABLE messages (
    id                 TEXT PRIMARY KEY NOT NULL,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq                INTEGER NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content            TEXT NOT NULL,
    -- 'streaming' while an answer is being written; a server that died
    -- mid-answer leaves it so, and the next start marks it 'interrupted'.
    status             TEXT NOT NULL CHECK (status IN ('complete', 'interrupted', 'error', 'streaming')),
    prompt_tokens      INTEGER,
    completion_tokens  INTEGER,
    created_at         INTEGER NOT NULL,
    UNIQUE (conversation_id, seq)
);
