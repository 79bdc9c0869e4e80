-- A streaming answer's lease: renewed at each checkpoint while it runs, so
-- an answer whose process is gone can be told from one still running.
ALTER TABLE messages ADD COLUMN touched_at INTEGER;
