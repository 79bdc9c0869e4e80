//! The console's users, sessions and audit log in PostgreSQL (the
//! statements are shared with SQLite: [`crate::store::accounts`]).

use super::PgStore;

/// PostgreSQL numbers its placeholders: `?` becomes `$1`, `$2`, …
fn sql(statement: &'static str) -> String {
    let mut out = String::with_capacity(statement.len() + 8);
    let mut n = 0;
    for c in statement.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

crate::store::accounts::account_store!(PgStore, pool, pool, sql);

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(
            super::sql("UPDATE t SET a = ? WHERE b = ? AND c > ?"),
            "UPDATE t SET a = $1 WHERE b = $2 AND c > $3"
        );
    }
}
