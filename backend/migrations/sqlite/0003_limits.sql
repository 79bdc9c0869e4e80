-- Per-widget limits (JSON of overrides; absent fields take the server's
-- defaults) and token usage per widget and day, which the budgets read.
ALTER TABLE widgets ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';

CREATE TABLE usage_daily (
    widget_id          TEXT NOT NULL,
    day                TEXT NOT NULL,            -- YYYY-MM-DD, UTC
    answers            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (widget_id, day)
);

-- What earlier releases recorded.
INSERT INTO usage_daily (widget_id, day, answers, prompt_tokens, completion_tokens)
SELECT c.widget_id, date(m.created_at / 1000, 'unixepoch'), COUNT(*),
       COALESCE(SUM(m.prompt_tokens), 0), COALESCE(SUM(m.completion_tokens), 0)
FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.role = 'assistant' AND m.status != 'streaming'
GROUP BY 1, 2;

-- An answer's tokens join its day's usage when it ends (leaves 'streaming'),
-- in the same statement's transaction: one round trip for the writer.
CREATE TRIGGER usage_on_finish AFTER UPDATE OF status ON messages
WHEN OLD.status = 'streaming' AND NEW.status != 'streaming' AND NEW.role = 'assistant'
BEGIN
    INSERT INTO usage_daily (widget_id, day, answers, prompt_tokens, completion_tokens)
    SELECT c.widget_id, date('now'), 1, COALESCE(NEW.prompt_tokens, 0), COALESCE(NEW.completion_tokens, 0)
    FROM conversations c WHERE c.id = NEW.conversation_id
    ON CONFLICT (widget_id, day) DO UPDATE SET
        answers = answers + 1,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens,
        completion_tokens = completion_tokens + excluded.completion_tokens;
END;
