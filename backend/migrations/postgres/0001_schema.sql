-- Porthole's tables in PostgreSQL: the same rows as the SQLite store's
-- migrations (backend/migrations/sqlite), in one first step, since a
-- PostgreSQL store starts from this release. Times are milliseconds since
-- the Unix epoch.

-- Server-wide values: the session signing secret, whether the demo was
-- created, and a revision that every widget change bumps, so each replica
-- sees changes made by another (or by the CLI).
CREATE TABLE server_meta (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
INSERT INTO server_meta (name, value) VALUES ('widgets_revision', '0');

CREATE FUNCTION bump_widgets_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE server_meta SET value = (value::bigint + 1)::text WHERE name = 'widgets_revision';
    RETURN NULL;
END $$;

CREATE TABLE widgets (
    id                   TEXT PRIMARY KEY,
    title                TEXT NOT NULL,
    greeting             TEXT NOT NULL DEFAULT '',
    starters             TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    theme                TEXT NOT NULL DEFAULT '{}',  -- JSON object (protocol::widget::Theme)
    system_prompt        TEXT NOT NULL DEFAULT '',
    model                TEXT,
    temperature          DOUBLE PRECISION,
    max_tokens           BIGINT,
    knowledge            TEXT NOT NULL DEFAULT '',
    verification_secret  TEXT,
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    source               TEXT NOT NULL DEFAULT 'admin',
    limits               TEXT NOT NULL DEFAULT '{}',
    unknown_reply        TEXT NOT NULL DEFAULT '',
    min_relevance        DOUBLE PRECISION,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE widget_keys (
    key_hash    TEXT PRIMARY KEY,
    widget_id   TEXT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX widget_keys_by_widget ON widget_keys (widget_id);

CREATE TABLE widget_sites (
    widget_id  TEXT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    origin     TEXT NOT NULL,
    position   BIGSERIAL,
    PRIMARY KEY (widget_id, origin)
);

CREATE TRIGGER widgets_changed AFTER INSERT OR UPDATE OR DELETE ON widgets
    FOR EACH STATEMENT EXECUTE FUNCTION bump_widgets_revision();
CREATE TRIGGER widget_keys_changed AFTER INSERT OR UPDATE OR DELETE ON widget_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_widgets_revision();
CREATE TRIGGER widget_sites_changed AFTER INSERT OR DELETE ON widget_sites
    FOR EACH STATEMENT EXECUTE FUNCTION bump_widgets_revision();

CREATE TABLE admin_keys (
    key_hash    TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    widget_id   TEXT NOT NULL,
    visitor_id  TEXT,
    user_id     TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX conversations_by_widget ON conversations (widget_id, created_at);
CREATE INDEX conversations_by_user ON conversations (widget_id, user_id) WHERE user_id IS NOT NULL;

CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('complete', 'interrupted', 'error', 'streaming')),
    prompt_tokens      BIGINT,
    completion_tokens  BIGINT,
    created_at         BIGINT NOT NULL,
    sources            TEXT,
    unanswered         BOOLEAN NOT NULL DEFAULT FALSE,
    -- A streaming answer's lease: renewed by its replica while it runs; an
    -- answer whose lease ran out is marked interrupted.
    touched_at         BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE INDEX messages_by_time ON messages (created_at);
CREATE INDEX messages_streaming ON messages (touched_at) WHERE status = 'streaming';

CREATE TABLE usage_daily (
    widget_id          TEXT NOT NULL,
    day                TEXT NOT NULL,            -- YYYY-MM-DD, UTC
    answers            BIGINT NOT NULL DEFAULT 0,
    prompt_tokens      BIGINT NOT NULL DEFAULT 0,
    completion_tokens  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (widget_id, day)
);

CREATE TABLE knowledge_sources (
    id              TEXT PRIMARY KEY,
    widget_id       TEXT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('text', 'faq', 'file', 'url', 'site')),
    name            TEXT NOT NULL,
    url             TEXT,
    body            BYTEA,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'syncing', 'ready', 'failed')),
    pages_total     BIGINT NOT NULL DEFAULT 0,
    pages_done      BIGINT NOT NULL DEFAULT 0,
    pages_failed    BIGINT NOT NULL DEFAULT 0,
    error           TEXT,
    claimed_until   BIGINT,
    sync_every_secs BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    synced_at       BIGINT
);
CREATE INDEX knowledge_sources_by_widget ON knowledge_sources (widget_id);

CREATE TABLE knowledge_pages (
    id             BIGSERIAL PRIMARY KEY,
    source_id      TEXT NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    title          TEXT NOT NULL DEFAULT '',
    etag           TEXT,
    last_modified  TEXT,
    content_hash   TEXT,
    error          TEXT,
    fetched_at     BIGINT NOT NULL,
    UNIQUE (source_id, url)
);

-- Chunks with their analysed terms (Porthole's own tokenizer and stemmer,
-- so both stores match the same words): `terms` as text, and `lexemes`, a
-- tsvector of exactly those terms with their positions (built by the store,
-- never parsed by a text-search configuration), under a GIN index.
CREATE TABLE knowledge_chunks (
    id               BIGSERIAL PRIMARY KEY,
    page_id          BIGINT NOT NULL REFERENCES knowledge_pages (id) ON DELETE CASCADE,
    widget_id        TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    heading          TEXT NOT NULL DEFAULT '',
    anchor           TEXT,
    page_no          BIGINT,
    text             TEXT NOT NULL,
    terms            TEXT NOT NULL,
    term_count       INTEGER NOT NULL,
    lexemes          TSVECTOR NOT NULL,
    -- Little-endian f32s from the embeddings endpoint, and the model.
    embedding        BYTEA,
    embedding_model  TEXT
);
CREATE INDEX knowledge_chunks_by_widget ON knowledge_chunks (widget_id, term_count);
CREATE INDEX knowledge_chunks_by_page ON knowledge_chunks (page_id, seq);
CREATE INDEX knowledge_chunks_lexemes ON knowledge_chunks USING GIN (lexemes);
CREATE INDEX knowledge_chunks_by_embedding ON knowledge_chunks (widget_id, embedding_model);

-- A counter per widget that moves whenever one of its vectors is added,
-- changed or deleted, so a replica may keep a widget's vectors in memory
-- and know with one indexed read when they are stale.
CREATE TABLE knowledge_vector_versions (
    widget_id TEXT PRIMARY KEY,
    version   BIGINT NOT NULL
);

CREATE FUNCTION bump_vector_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    w TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.embedding IS NULL THEN RETURN NULL; END IF;
        w := OLD.widget_id;
    ELSIF TG_OP = 'INSERT' THEN
        IF NEW.embedding IS NULL THEN RETURN NULL; END IF;
        w := NEW.widget_id;
    ELSE
        IF NEW.embedding IS NOT DISTINCT FROM OLD.embedding
           AND NEW.embedding_model IS NOT DISTINCT FROM OLD.embedding_model THEN
            RETURN NULL;
        END IF;
        w := NEW.widget_id;
    END IF;
    INSERT INTO knowledge_vector_versions (widget_id, version) VALUES (w, 1)
    ON CONFLICT (widget_id) DO UPDATE SET version = knowledge_vector_versions.version + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER knowledge_vectors_changed AFTER INSERT OR UPDATE OR DELETE ON knowledge_chunks
    FOR EACH ROW EXECUTE FUNCTION bump_vector_version();
