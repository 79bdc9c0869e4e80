-- The knowledge base: a widget's sources, the pages each source yielded,
-- and the chunks the answers are grounded in, with a full-text index.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE knowledge_sources (
    id              TEXT PRIMARY KEY NOT NULL,
    widget_id       TEXT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    -- 'text' (pasted markdown), 'faq' (question/answer CSV), 'file'
    -- (an uploaded document), 'url' (one page), 'site' (a sitemap).
    kind            TEXT NOT NULL CHECK (kind IN ('text', 'faq', 'file', 'url', 'site')),
    -- What the owner calls it: a file name, a URL, "Widget knowledge".
    name            TEXT NOT NULL,
    -- The URL a 'url' or 'site' source starts from.
    url             TEXT,
    -- The bytes of a 'text', 'faq' or 'file' source, as uploaded.
    body            BLOB,
    -- 'pending' (waiting for a sync), 'syncing', 'ready', 'failed'.
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'syncing', 'ready', 'failed')),
    pages_total     INTEGER NOT NULL DEFAULT 0,
    pages_done      INTEGER NOT NULL DEFAULT 0,
    pages_failed    INTEGER NOT NULL DEFAULT 0,
    -- Why the last sync failed as a whole (each page's error is on the page).
    error           TEXT,
    -- The sync running now holds the source until then (a replica or CLI
    -- that died lets go when it passes, and another resumes the sync).
    claimed_until   INTEGER,
    -- Re-sync this often (seconds); NULL: only when asked.
    sync_every_secs INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    synced_at       INTEGER
);
CREATE INDEX knowledge_sources_by_widget ON knowledge_sources (widget_id);

CREATE TABLE knowledge_pages (
    id             INTEGER PRIMARY KEY,
    source_id      TEXT NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    -- The page's URL, or for an uploaded source its name.
    url            TEXT NOT NULL,
    title          TEXT NOT NULL DEFAULT '',
    etag           TEXT,
    last_modified  TEXT,
    -- SHA-256 of the extracted text: an unchanged page keeps its chunks.
    content_hash   TEXT,
    -- Why this page could not be read, when it could not.
    error          TEXT,
    fetched_at     INTEGER NOT NULL,
    UNIQUE (source_id, url)
);

CREATE TABLE knowledge_chunks (
    id         INTEGER PRIMARY KEY,
    page_id    INTEGER NOT NULL REFERENCES knowledge_pages (id) ON DELETE CASCADE,
    widget_id  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    -- The heading path ("Install > Docker") and its anchor.
    heading    TEXT NOT NULL DEFAULT '',
    anchor     TEXT,
    -- The PDF page it came from, from 1.
    page_no    INTEGER,
    text       TEXT NOT NULL,
    -- Little-endian f32s from the embeddings endpoint, when one is configured.
    embedding  BLOB
);
CREATE INDEX knowledge_chunks_by_widget ON knowledge_chunks (widget_id);
CREATE INDEX knowledge_chunks_by_page ON knowledge_chunks (page_id, seq);

-- The analysed terms of each chunk (Porthole's own stemmer, title and
-- heading terms counted twice), indexed for BM25; rowid is the chunk's id.
-- `widget` holds one token per widget ('w' and the id in hex), so a search
-- stays inside its widget in the index itself; it weighs nothing in rank.
CREATE VIRTUAL TABLE knowledge_fts USING fts5 (widget, terms, tokenize = 'unicode61 remove_diacritics 0');
INSERT INTO knowledge_fts (knowledge_fts, rank) VALUES ('rank', 'bm25(0.0, 1.0)');

CREATE TRIGGER knowledge_chunks_unindex AFTER DELETE ON knowledge_chunks BEGIN
    DELETE FROM knowledge_fts WHERE rowid = old.id;
END;

-- What an answer was grounded in (the JSON of its `sources` event), and
-- whether its question found nothing relevant.
ALTER TABLE messages ADD COLUMN sources TEXT;
ALTER TABLE messages ADD COLUMN unanswered INTEGER NOT NULL DEFAULT 0;

-- The widgets' knowledge markdown becomes each widget's first source,
-- synced when the server next starts. The column stays as that source's
-- editable text (the admin API's `knowledge` field).
INSERT INTO knowledge_sources (id, widget_id, kind, name, body, created_at, updated_at)
SELECT 'src_' || id || '_knowledge', id, 'text', 'Widget knowledge', CAST(knowledge AS BLOB),
       CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000
FROM widgets WHERE knowledge <> '';

-- Per widget: the reply when nothing relevant is found ('' for the
-- built-in one) and how relevant a passage must be (NULL: the default).
ALTER TABLE widgets ADD COLUMN unknown_reply TEXT NOT NULL DEFAULT '';
ALTER TABLE widgets ADD COLUMN min_relevance REAL;
