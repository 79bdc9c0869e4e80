//! Porthole's loader: the small plain-JS `widget.js` that a host page
//! includes with one `<script>` tag, and `panel.js`, the rest of it, which
//! `widget.js` fetches when the browser is idle or the visitor reaches for
//! the launcher. `widget.js` draws the launcher and queues the API's
//! commands; `panel.js` opens the panel's iframe, talks to it and runs the
//! commands. Their sources are `src/*.js` (readable, commented); the build
//! minifies them, and [`script`] and [`panel`] fill in the values that differ
//! per deployment, the way ripgrep fills its help templates. The backend
//! serves them at `/widget.js` and [`panel_path`]; `cargo run -p loader --
//! --out widget.js --origin https://chat.example.com` writes `widget.js` for
//! a CDN (it fetches `panel.js` from the server).

use std::sync::LazyLock;

use sha2::Digest;

/// The minified templates.
const TEMPLATE: &str = include_str!(concat!(env!("OUT_DIR"), "/widget.min.js"));
const PANEL_TEMPLATE: &str = include_str!(concat!(env!("OUT_DIR"), "/panel.min.js"));

static PANEL: LazyLock<(String, String)> = LazyLock::new(|| {
    let body = PANEL_TEMPLATE.replace(
        "__VERSION__",
        &protocol::frame::FRAME_PROTOCOL_VERSION.to_string(),
    );
    let digest = sha2::Sha256::digest(body.as_bytes());
    let path = format!("/loader/panel.{}.js", hex::encode(&digest[..HASH_BYTES]));
    (body, path)
});

/// How much of the SHA-256 names `panel.js`: 6 bytes, 12 hex digits.
const HASH_BYTES: usize = 6;

/// `panel.js`, the same for every deployment.
pub fn panel() -> &'static str {
    &PANEL.0
}

/// Where the server serves [`panel`]: a path named by its content
/// (`/loader/panel.<hash>.js`), so it may be cached for a year.
pub fn panel_path() -> &'static str {
    &PANEL.1
}

/// Whether `path` is where some release serves its `panel.js`: this one's
/// ([`panel_path`]) or another's, with a hash of the same form.
pub fn is_panel_path(path: &str) -> bool {
    path.strip_prefix("/loader/panel.")
        .and_then(|p| p.strip_suffix(".js"))
        .is_some_and(|hash| {
            hash.len() == 2 * HASH_BYTES
                && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// The loader for a server at `origin` (`https://chat.example.com`, no
/// trailing slash). An empty origin makes the loader use its own script's
/// origin, which is right whenever the server also serves `widget.js`.
pub fn script(origin: &str) -> String {
    let origin: String = origin
        .trim_end_matches('/')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(*c))
        .collect();
    TEMPLATE
        .replace("__ORIGIN__", &origin)
        .replace("__PANEL__", panel_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_are_filled_and_minified() {
        let js = script("https://chat.example.com/");
        // The minifier writes strings as template literals.
        assert!(js.contains("`https://chat.example.com`"), "{js}");
        assert!(js.contains(&format!("`{}`", panel_path())), "{js}");
        for js in [js.as_str(), panel()] {
            assert!(!js.contains("__"), "a value is not filled in: {js}");
            assert!(!js.contains("// "), "comments survive minification");
            assert!(js.len() < 5_000, "{} bytes", js.len());
        }
        assert!(panel().contains(&protocol::frame::FRAME_PROTOCOL_VERSION.to_string()));
    }

    #[test]
    fn the_panel_path_names_its_content() {
        let path = panel_path();
        let hash = path
            .strip_prefix("/loader/panel.")
            .and_then(|p| p.strip_suffix(".js"))
            .unwrap_or_default();
        assert_eq!(hash.len(), 12, "{path}");
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{path}");
        assert!(is_panel_path(path));
        assert!(is_panel_path("/loader/panel.000000abcdef.js"));
        for other in [
            "/loader/panel.js",
            "/loader/panel.00000000000G.js",
            "/loader/panel.000000ABCDEF.js",
            "/loader/panel.0000000000000.js",
            "/loader/widget.js",
        ] {
            assert!(!is_panel_path(other), "{other}");
        }
    }

    #[test]
    fn an_origin_cannot_break_out_of_its_string() {
        for hostile in [
            "https://x.example\";alert(1);\"",
            "https://x.example`+alert(1)+`",
            "https://${alert(1)}",
        ] {
            let js = script(hostile);
            assert!(!js.contains("alert(1)"), "{hostile}");
        }
    }
}
