-- Which model made each chunk's vector: vectors of different models are
-- never compared, and a new model re-embeds what the old one made.
ALTER TABLE knowledge_chunks ADD COLUMN embedding_model TEXT;
CREATE INDEX knowledge_chunks_by_embedding ON knowledge_chunks (widget_id, embedding_model);

-- A counter per widget that moves whenever one of its vectors is added,
-- changed or deleted (by this process or another, such as the CLI), so a
-- process may keep the widget's vectors in memory and know when they are
-- stale with one indexed read.
CREATE TABLE knowledge_vector_versions (
    widget_id TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER knowledge_vectors_added AFTER INSERT ON knowledge_chunks
WHEN NEW.embedding IS NOT NULL BEGIN
    INSERT INTO knowledge_vector_versions (widget_id, version) VALUES (NEW.widget_id, 1)
    ON CONFLICT (widget_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER knowledge_vectors_changed AFTER UPDATE OF embedding, embedding_model ON knowledge_chunks BEGIN
    INSERT INTO knowledge_vector_versions (widget_id, version) VALUES (NEW.widget_id, 1)
    ON CONFLICT (widget_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER knowledge_vectors_deleted AFTER DELETE ON knowledge_chunks
WHEN OLD.embedding IS NOT NULL BEGIN
    INSERT INTO knowledge_vector_versions (widget_id, version) VALUES (OLD.widget_id, 1)
    ON CONFLICT (widget_id) DO UPDATE SET version = version + 1;
END;
