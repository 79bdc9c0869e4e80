//! For tests that need a real server (PostgreSQL, Redis): where it is.
//! Used by the unit tests and, through `store::postgres::testing`, the
//! integration tests.

/// The URL in `var`. Without one, the test is skipped (with a line saying
/// so), unless `PORTHOLE_REQUIRE_SERVICES` is set (as `scripts/test` does),
/// when it fails.
pub fn service_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("PORTHOLE_REQUIRE_SERVICES").is_some() => panic!(
            "PORTHOLE_REQUIRE_SERVICES is set but {var} is not: run the tests through \
             scripts/test, which starts {what}"
        ),
        _ => {
            eprintln!("{what} not configured ({var}): its part of this test is skipped");
            None
        }
    }
}
