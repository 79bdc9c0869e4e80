-- A widget's language settings: the locale (or auto), the fallback, and
-- per-language greetings, starters and string overrides (JSON object,
-- tenants::i18n::WidgetLanguage; '{}' takes the defaults).
ALTER TABLE widgets ADD COLUMN language TEXT NOT NULL DEFAULT '{}';
