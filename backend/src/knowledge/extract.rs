//! Documents into markdown, the one form the chunker reads.
//!
//! HTML goes through dom_smoothie (a port of Mozilla's readability.js, the
//! reader view's algorithm): navigation, headers, footers, cookie banners
//! and sidebars are dropped and the main content comes out as markdown. The
//! ids of the page's headings are read with dom_query (the DOM dom_smoothie
//! is built on), so a citation can link to the section. FAQs come from a
//! CSV of question and answer (the csv crate, quoted fields and all).

use std::collections::HashMap;

use dom_smoothie::{Config, Readability, TextMode};

/// Why a document could not be read; shown on its page or source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    #[error("the page has no readable content")]
    Empty,
    #[error("the HTML could not be read: {0}")]
    Html(String),
    #[error("the CSV could not be read: {0}")]
    Csv(String),
    #[error("the PDF could not be read: {0}")]
    Pdf(String),
    #[error("{0}")]
    Unsupported(String),
}

/// A document as markdown, with its title and its headings' anchors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub title: String,
    pub markdown: String,
    /// Heading text -> its `id` in the page.
    pub anchors: HashMap<String, String>,
    /// For a PDF: the markdown of each page, from page 1.
    pub pages: Vec<String>,
}

/// The most elements readability looks at: a page of a million nested
/// elements is refused rather than parsed for minutes.
const MAX_ELEMENTS: usize = 100_000;

/// Text that must be UTF-8 (a byte-order mark is dropped).
pub fn utf8(bytes: &[u8]) -> Result<&str, ExtractError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// The main content of an HTML page as markdown.
pub fn html(html: &str, url: Option<&str>) -> Result<Extracted, ExtractError> {
    let config = Config {
        text_mode: TextMode::Markdown,
        max_elements_to_parse: MAX_ELEMENTS,
        ..Default::default()
    };
    let doc = dom_query::Document::from(html);
    let anchors = heading_anchors(&doc);
    // Consent banners of the well-known consent managers go first:
    // readability keeps them when a page's own text is short.
    doc.select(CONSENT_BANNERS).remove();
    let mut readability = Readability::with_document(doc, url, Some(config))
        .map_err(|e| ExtractError::Html(e.to_string()))?;
    let article = readability.parse().map_err(|e| match e {
        dom_smoothie::ReadabilityError::GrabFailed => ExtractError::Empty,
        other => ExtractError::Html(other.to_string()),
    })?;
    let markdown = article.text_content.trim().to_owned();
    if markdown.is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(Extracted {
        title: article.title.trim().to_owned(),
        markdown,
        anchors,
        pages: Vec::new(),
    })
}

/// Cookie and consent banners, by the ids and classes of the common consent
/// managers (OneTrust, Cookiebot, Didomi, Osano, cookieconsent, Complianz,
/// Quantcast) and the usual names of home-made ones. Not `[id*=cookie]`:
/// a documentation page's section about HTTP cookies must stay.
const CONSENT_BANNERS: &str = "#onetrust-consent-sdk, #onetrust-banner-sdk, #CybotCookiebotDialog, \
    #didomi-host, .osano-cm-window, .cc-window, .cc-banner, #cmplz-cookiebanner-container, \
    .qc-cmp2-container, .cookie-banner, .cookie-consent, .cookie-notice, .cookie-bar, \
    #cookie-banner, #cookie-consent, #cookie-notice, #cookie-bar, .consent-banner, #consent-banner, \
    .gdpr-banner, #gdpr-banner";

/// `id`s of the page's headings (or of an anchor inside one), by text.
fn heading_anchors(doc: &dom_query::Document) -> HashMap<String, String> {
    let mut anchors = HashMap::new();
    for h in doc.select("h1, h2, h3, h4, h5, h6").iter() {
        let text = h.text().split_whitespace().collect::<Vec<_>>().join(" ");
        let id = h
            .attr("id")
            .or_else(|| h.select("[id]").attr("id"))
            .or_else(|| {
                // Sphinx and friends: <section id="…"><h2>…
                let parent = h.parent();
                parent.is("section").then(|| parent.attr("id")).flatten()
            });
        if let Some(id) = id
            && !text.is_empty()
        {
            let text = text.trim_end_matches(['¶', '#', ' ']).to_owned();
            anchors.entry(text).or_insert_with(|| id.to_string());
        }
    }
    anchors
}

/// Question and answer pairs from a CSV: the first two columns; a header
/// row (`question,answer`) is skipped; empty rows are ignored.
pub fn faq_csv(bytes: &[u8]) -> Result<Vec<(String, String)>, ExtractError> {
    let text = utf8(bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut pairs = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ExtractError::Csv(e.to_string()))?;
        let q = record.get(0).unwrap_or("").trim();
        let a = record.get(1).unwrap_or("").trim();
        if i == 0 && q.eq_ignore_ascii_case("question") {
            continue;
        }
        if q.is_empty() && a.is_empty() {
            continue;
        }
        if q.is_empty() || a.is_empty() {
            return Err(ExtractError::Csv(format!(
                "row {} needs a question and an answer",
                i + 1
            )));
        }
        pairs.push((q.to_owned(), a.to_owned()));
    }
    if pairs.is_empty() {
        return Err(ExtractError::Csv("no question and answer rows".into()));
    }
    Ok(pairs)
}

/// What kind of document a file is, by its name and its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Markdown,
    Html,
    Text,
    Pdf,
    Docx,
}

impl FileKind {
    /// The kind of `name`, checked against its content: a ".pdf" that does
    /// not start like a PDF is refused.
    pub fn detect(name: &str, bytes: &[u8]) -> Result<Self, ExtractError> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let looks_pdf = bytes.starts_with(b"%PDF-");
        match ext {
            "pdf" if looks_pdf => Ok(Self::Pdf),
            "pdf" => Err(ExtractError::Pdf(
                "the file does not start like a PDF".into(),
            )),
            _ if looks_pdf => Ok(Self::Pdf),
            "docx" if bytes.starts_with(b"PK\x03\x04") => Ok(Self::Docx),
            "docx" => Err(ExtractError::Unsupported(
                "the file does not look like a Word document (.docx)".into(),
            )),
            "md" | "markdown" | "mdx" => Ok(Self::Markdown),
            "html" | "htm" | "xhtml" => Ok(Self::Html),
            "txt" | "text" | "" => Ok(Self::Text),
            other => Err(ExtractError::Unsupported(format!(
                "files of type .{other} are not supported: use Markdown, HTML, plain text, PDF or Word (.docx)"
            ))),
        }
    }
}

/// An uploaded file as markdown.
pub fn file(name: &str, bytes: &[u8]) -> Result<Extracted, ExtractError> {
    match FileKind::detect(name, bytes)? {
        FileKind::Markdown | FileKind::Text => {
            let text = utf8(bytes)?.trim();
            if text.is_empty() {
                return Err(ExtractError::Empty);
            }
            Ok(Extracted {
                title: title_of(name),
                markdown: text.to_owned(),
                ..Default::default()
            })
        }
        FileKind::Html => {
            let mut out = html(utf8(bytes)?, None)?;
            if out.title.is_empty() {
                out.title = title_of(name);
            }
            Ok(out)
        }
        FileKind::Pdf => pdf(name, bytes),
        FileKind::Docx => {
            let (markdown, title) = super::docx::to_markdown(bytes, DOCX_MAX_XML_BYTES)
                .map_err(ExtractError::Unsupported)?;
            if markdown.is_empty() {
                return Err(ExtractError::Empty);
            }
            Ok(Extracted {
                title: if title.is_empty() {
                    title_of(name)
                } else {
                    title
                },
                markdown,
                ..Default::default()
            })
        }
    }
}

/// The most XML a Word document's part may unpack to.
const DOCX_MAX_XML_BYTES: u64 = 64 * 1024 * 1024;

/// A PDF's text, page by page (pdf-extract, on lopdf).
fn pdf(name: &str, bytes: &[u8]) -> Result<Extracted, ExtractError> {
    // pdf-extract panics on some malformed files: a bad upload must fail
    // its source, not the server.
    let pages = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes))
        .map_err(|_| ExtractError::Pdf("the file is damaged".into()))?
        .map_err(|e| ExtractError::Pdf(e.to_string()))?;
    let pages: Vec<String> = pages.into_iter().map(|p| p.trim().to_owned()).collect();
    if pages.iter().all(String::is_empty) {
        return Err(ExtractError::Pdf(
            "no text in it (a scanned PDF needs OCR first)".into(),
        ));
    }
    Ok(Extracted {
        title: title_of(name),
        markdown: String::new(),
        anchors: HashMap::new(),
        pages,
    })
}

/// "install-guide.md" -> "install-guide".
fn title_of(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.rsplit_once('.')
        .map(|(b, _)| b)
        .unwrap_or(base)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!doctype html><html><head><title>Install | Acme Docs</title></head><body>
<header><nav><a href="/">Home</a> <a href="/pricing">Pricing</a> <a href="/blog">Blog</a></nav></header>
<div class="cookie-banner">We use cookies. <button>Accept all cookies</button></div>
<main><article>
<h1>Install</h1>
<p>Acme runs on Linux, macOS and Windows. This guide walks through every way to install it, from the
container image to a build from source, and explains what each way needs before you start.</p>
<h2 id="docker">Docker</h2>
<p>Pull the image and run it with the data folder mounted as a volume, so that the database survives
restarts and upgrades. The image is about twenty megabytes and needs no other services.</p>
<section id="from-source"><h2>From source</h2>
<p>Install the Rust toolchain, clone the repository and build the release binary. The build takes a few
minutes on a laptop and produces one static file that you can copy anywhere.</p></section>
</article></main>
<footer>Copyright Acme 2026. <a href="/privacy">Privacy</a> <a href="/terms">Terms</a></footer>
</body></html>"#;

    #[test]
    fn html_keeps_the_main_content_and_drops_navigation_banners_and_footers() {
        let out = html(PAGE, Some("https://docs.acme.test/install")).unwrap();
        assert!(out.markdown.contains("Pull the image"), "{}", out.markdown);
        assert!(out.markdown.contains("Install the Rust toolchain"));
        for gone in ["Accept all cookies", "Copyright Acme", "Pricing"] {
            assert!(!out.markdown.contains(gone), "{gone} in {}", out.markdown);
        }
        assert!(out.title.contains("Install"), "{}", out.title);
        assert_eq!(
            out.anchors.get("Docker").map(String::as_str),
            Some("docker")
        );
        assert_eq!(
            out.anchors.get("From source").map(String::as_str),
            Some("from-source")
        );
    }

    #[test]
    fn a_short_page_loses_its_cookie_banner_but_keeps_a_section_about_cookies() {
        let page = r#"<html><head><title>Sessions</title></head><body>
<div id="onetrust-banner-sdk">We value your privacy. Accept all cookies to continue browsing.</div>
<div class="cookie-banner">This site uses cookies. <button>Accept all cookies</button></div>
<main><h1>Sessions</h1><h2 id="cookies">Cookies</h2>
<p>The session cookie is HttpOnly and expires after one hour of inactivity.</p></main></body></html>"#;
        let out = html(page, None).unwrap();
        assert!(
            out.markdown.contains("session cookie is HttpOnly"),
            "{}",
            out.markdown
        );
        assert!(
            !out.markdown.contains("Accept all cookies"),
            "{}",
            out.markdown
        );
        assert!(
            !out.markdown.contains("We value your privacy"),
            "{}",
            out.markdown
        );
        assert_eq!(
            out.anchors.get("Cookies").map(String::as_str),
            Some("cookies")
        );
    }

    #[test]
    fn faq_csv_reads_quoted_answers_and_skips_the_header() {
        let csv = b"question,answer\n\"Do you ship abroad?\",\"Yes, to 40 countries.\"\n\nCan I return it?,Within 30 days.\n";
        let pairs = faq_csv(csv).unwrap();
        assert_eq!(
            pairs,
            [
                ("Do you ship abroad?".into(), "Yes, to 40 countries.".into()),
                ("Can I return it?".into(), "Within 30 days.".into()),
            ]
        );
        assert!(matches!(
            faq_csv(b"only a question\n"),
            Err(ExtractError::Csv(_))
        ));
        assert_eq!(faq_csv(&[0xff, 0xfe, 0x00]), Err(ExtractError::NotUtf8));
    }

    #[test]
    fn files_are_read_by_kind_and_lies_are_refused() {
        let md = file("guide.md", b"# Guide\n\nText.").unwrap();
        assert_eq!(md.title, "guide");
        assert_eq!(md.markdown, "# Guide\n\nText.");
        assert!(matches!(
            file("manual.pdf", b"<html>not a pdf</html>"),
            Err(ExtractError::Pdf(_))
        ));
        assert!(matches!(
            file("truncated.pdf", b"%PDF-1.4\n1 0 obj garbage"),
            Err(ExtractError::Pdf(_))
        ));
        assert_eq!(file("notes.txt", &[0xc3, 0x28]), Err(ExtractError::NotUtf8));
        assert!(matches!(
            file("sheet.xlsx", b"PK"),
            Err(ExtractError::Unsupported(_))
        ));
        assert_eq!(file("empty.md", b"  \n"), Err(ExtractError::Empty));
    }
}
