//! Porthole's loader: the small plain-JS `widget.js` that a host page
//! includes with one `<script>` tag. Its source is `src/widget.js` (readable,
//! commented); the build minifies it, and [`script`] fills in the values
//! that differ per deployment, the way ripgrep fills its help templates.
//! The backend serves the result at `/widget.js`; `cargo run -p loader --
//! --out widget.js --origin https://chat.example.com` writes it for a CDN.

/// The minified template.
const TEMPLATE: &str = include_str!(concat!(env!("OUT_DIR"), "/widget.min.js"));

/// The loader for a server at `origin` (`https://chat.example.com`, no
/// trailing slash). An empty origin makes the loader use its own script's
/// origin, which is right whenever the server also serves `widget.js`.
pub fn script(origin: &str) -> String {
    let origin: String = origin
        .trim_end_matches('/')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || ":/.-[]".contains(*c))
        .collect();
    TEMPLATE.replace("__ORIGIN__", &origin).replace(
        "__VERSION__",
        &protocol::frame::FRAME_PROTOCOL_VERSION.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_filled_and_minified() {
        let js = script("https://chat.example.com/");
        // The minifier writes strings as template literals.
        assert!(js.contains("`https://chat.example.com`"), "{js}");
        assert!(!js.contains("__ORIGIN__") && !js.contains("__VERSION__"));
        assert!(!js.contains("// "), "comments survive minification");
        assert!(js.len() < 7_000, "{} bytes", js.len());
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
