-- Widgets as tenants: their settings, hashed keys, allowed sites, and the
-- admin keys that manage them. Times are milliseconds since the Unix epoch.
CREATE TABLE widgets (
    id                   TEXT PRIMARY KEY NOT NULL,
    title                TEXT NOT NULL,
    greeting             TEXT NOT NULL DEFAULT '',
    starters             TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    theme                TEXT NOT NULL DEFAULT '{}',  -- JSON object (protocol::widget::Theme)
    system_prompt        TEXT NOT NULL DEFAULT '',
    model                TEXT,                        -- NULL: the server's default
    temperature          REAL,
    max_tokens           INTEGER,
    knowledge            TEXT NOT NULL DEFAULT '',    -- markdown
    -- The site backend's HMAC secret for identity verification; NULL: off.
    -- Kept readable: verifying an HMAC needs the secret itself.
    verification_secret  TEXT,
    disabled             INTEGER NOT NULL DEFAULT 0,
    -- 'config' (re-applied from the config file at each start), 'demo', 'admin'.
    source               TEXT NOT NULL DEFAULT 'admin',
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- Public keys, stored as SHA-256 hashes. A widget has one live key; a
-- rotated key is kept, revoked, so the audit trail stays.
CREATE TABLE widget_keys (
    key_hash    TEXT PRIMARY KEY NOT NULL,
    widget_id   TEXT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL,                 -- the first characters, to tell keys apart
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX widget_keys_by_widget ON widget_keys (widget_id);

CREATE TABLE widget_sites (
    widget_id  TEXT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    origin     TEXT NOT NULL,
    PRIMARY KEY (widget_id, origin)
);

CREATE TABLE admin_keys (
    key_hash    TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Server-wide values: the session signing secret, whether the demo was
-- created, and a revision that every widget change bumps, so each server
-- process sees changes made by another (the CLI, another replica).
CREATE TABLE server_meta (
    name   TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
);
INSERT INTO server_meta (name, value) VALUES ('widgets_revision', '0');

CREATE TRIGGER widgets_changed_i AFTER INSERT ON widgets BEGIN
    UPDATE server_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'widgets_revision';
END;
CREATE TRIGGER widgets_changed_u AFTER UPDATE ON widgets BEGIN
    UPDATE server_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'widgets_revision';
END;
CREATE TRIGGER widgets_changed_d AFTER DELETE ON widgets BEGIN
    UPDATE server_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'widgets_revision';
END;
CREATE TRIGGER widget_keys_changed_i AFTER INSERT ON widget_keys BEGIN
    UPDATE server_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'widgets_revision';
END;
CREATE TRIGGER widget_keys_changed_u AFTER UPDATE ON widget_keys BEGIN
    UPDATE server_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'widgets_revision';
END;
CREATE TRIGGER widget_sites_changed_i AFTER INSERT ON widget_sites BEGIN
    UPDATE server_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'widgets_revision';
END;
CREATE TRIGGER widget_sites_changed_d AFTER DELETE ON widget_sites BEGIN
    UPDATE server_meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'widgets_revision';
END;

-- Whose a conversation is: the anonymous visitor of the session that
-- started it, and the verified user when the site identified one.
-- Conversations from before this release have neither: only admins see them.
ALTER TABLE conversations ADD COLUMN visitor_id TEXT;
ALTER TABLE conversations ADD COLUMN user_id TEXT;
CREATE INDEX conversations_by_user ON conversations (widget_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX messages_by_time ON messages (created_at);
