//! The knowledge base end to end: sources added through the admin API,
//! crawled from a real HTTP site on loopback, indexed, and cited by answers.

use std::time::Duration;

use base64::Engine;
use mock_upstream::{MockUpstream, Script};
use porthole::Settings;
use protocol::StreamEvent;
use serde_json::{Value, json};

use crate::docsite::DocSite;
use crate::helpers::{
    EventReader, TestApp, admin_key, api_error, spawn_app, temp_dir, test_settings, text_of,
    write_config,
};

struct KnowledgeApp {
    app: TestApp,
    key: String,
}

async fn knowledge_app(
    mock: Option<MockUpstream>,
    tweak: impl FnOnce(&mut Settings),
) -> KnowledgeApp {
    let mut settings = test_settings(mock.as_ref().map(|m| m.base_url()));
    let dir = temp_dir("knowledge");
    settings.store.path = dir.join("porthole.db");
    settings.store.url = crate::helpers::postgres_store(&dir);
    // The site is on loopback: the tests allow it, the default does not.
    settings.knowledge.allow_private_addresses = true;
    settings.knowledge.crawl_delay_ms = 0;
    tweak(&mut settings);
    let config = write_config(&dir, "");
    let app = spawn_app(settings, mock, false).await;
    let key = admin_key(&config);
    KnowledgeApp { app, key }
}

impl KnowledgeApp {
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .app
            .client
            .request(
                method,
                self.app.url(&format!("/api/v1/admin/widgets/test{path}")),
            )
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("sent")
    }

    async fn add(&self, body: Value) -> Value {
        let r = self.admin("POST", "/sources", Some(body)).await;
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        assert_eq!(status, 201, "{text}");
        serde_json::from_str(&text).expect("JSON")
    }

    /// Adds a source; its id.
    async fn add_id(&self, body: Value) -> String {
        self.add(body).await["id"].as_str().expect("id").to_owned()
    }

    /// Polls the source until its sync has ended.
    async fn synced(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.admin("GET", &format!("/sources/{id}"), None).await;
            let v: Value = r.json().await.expect("JSON");
            if v["status"] == "ready" || v["status"] == "failed" {
                return v;
            }
            assert!(tokio::time::Instant::now() < deadline, "never synced: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn sync(&self, id: &str) -> Value {
        let r = self
            .admin("POST", &format!("/sources/{id}/sync"), None)
            .await;
        assert_eq!(r.status(), 202);
        // Wait until the new sync has been claimed and finished.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.synced(id).await
    }

    async fn ask(&self, question: &str) -> Vec<StreamEvent> {
        let r = self.app.ask(question).await;
        assert_eq!(r.status(), 200);
        EventReader::new(r).collect().await
    }
}

fn page(title: &str, sections: &[(&str, &str, &str)]) -> String {
    let mut html = format!(
        "<!doctype html><html><head><title>{title} | Acme Docs</title></head><body>\
         <header><nav><a href=\"/\">Home</a> <a href=\"/pricing\">Pricing plans</a></nav></header>\
         <div class=\"cookie-banner\">We use cookies to improve your experience. <button>Accept all cookies</button></div>\
         <main><article><h1>{title}</h1>"
    );
    for (id, heading, text) in sections {
        html.push_str(&format!("<h2 id=\"{id}\">{heading}</h2><p>{text}</p>"));
    }
    html.push_str("</article></main><footer>Copyright Acme Corporation 2026. All rights reserved.</footer></body></html>");
    html
}

fn sources_of(events: &[StreamEvent]) -> Vec<protocol::SourceRef> {
    events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Sources(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn acme_site(site: &DocSite) {
    site.put(
        "/robots.txt",
        "text/plain",
        format!(
            "User-agent: *\nDisallow: /private/\nSitemap: {}\n",
            site.url("/sitemap_index.xml")
        ),
    );
    site.put(
        "/sitemap_index.xml",
        "application/xml",
        format!(
            "<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"><sitemap><loc>{}</loc></sitemap><sitemap><loc>{}</loc></sitemap></sitemapindex>",
            site.url("/sitemap-docs.xml"),
            // Listed twice: a loop is read once.
            site.url("/sitemap_index.xml")
        ),
    );
    site.sitemap(
        "/sitemap-docs.xml",
        &[
            "/docs/install",
            "/docs/billing",
            "/docs/teams",
            "/private/salaries",
        ],
    );
    site.html(
        "/docs/install",
        &page(
            "Install",
            &[
                ("docker", "Docker", "Pull the acme image and run it with the data folder mounted as a volume, so the database survives restarts and upgrades of the container."),
                ("from-source", "From source", "Install the Rust toolchain, clone the repository and build the release binary with cargo; the build takes a few minutes on a laptop."),
            ],
        ),
    );
    site.html(
        "/docs/billing",
        &page(
            "Billing",
            &[("invoices", "Invoices", "Invoices are emailed on the first day of each month and can be downloaded as PDF from the billing page of the account settings.")],
        ),
    );
    site.html(
        "/docs/teams",
        &page(
            "Teams",
            &[("roles", "Roles", "A team has owners, editors and viewers; owners invite members and choose their role from the members page.")],
        ),
    );
    site.html(
        "/private/salaries",
        &page(
            "Salaries",
            &[("all", "All", "The salaries of every employee of Acme.")],
        ),
    );
}

#[tokio::test]
async fn a_site_is_crawled_from_its_sitemap_and_answers_cite_its_pages() {
    let site = DocSite::start().await;
    acme_site(&site);
    let k = knowledge_app(None, |_| {}).await;
    let source = k.add(json!({"kind": "site", "url": site.url("/")})).await;
    assert_eq!(source["status"], "pending");
    let id = source["id"].as_str().expect("id").to_owned();
    let done = k.synced(&id).await;
    assert_eq!(done["status"], "ready", "{done}");
    // Three pages: the disallowed one is not listed, the looped index read once.
    assert_eq!(
        (done["pages_total"].as_u64(), done["pages_failed"].as_u64()),
        (Some(3), Some(0)),
        "{done}"
    );
    assert_eq!(site.fetched("/private/salaries"), 0);
    assert_eq!(site.fetched("/sitemap_index.xml"), 1);

    let events = k.ask("How do I run the docker image with a volume?").await;
    let sources = sources_of(&events);
    assert!(!sources.is_empty(), "no sources event: {events:?}");
    assert!(
        matches!(events[1], StreamEvent::Sources(_)),
        "sources come right after meta"
    );
    assert_eq!(sources[0].n, 1);
    assert_eq!(
        sources[0].url.as_deref(),
        Some(site.url("/docs/install#docker").as_str())
    );
    assert!(sources[0].title.contains("Docker"), "{sources:?}");
    let text = text_of(&events);
    assert!(
        text.contains("data folder mounted as a volume") && text.ends_with("[1]"),
        "{text}"
    );
    // Navigation, banners and footers are not knowledge.
    let banner = k.ask("Do you use cookies? Accept all cookies").await;
    assert!(sources_of(&banner).is_empty(), "{banner:?}");

    // The history shows the same sources.
    let meta = match &events[0] {
        StreamEvent::Meta(m) => m.clone(),
        other => panic!("{other:?}"),
    };
    let history: Value = k
        .app
        .client
        .get(
            k.app
                .url(&format!("/api/v1/conversations/{}", meta.conversation_id)),
        )
        .header("x-api-key", crate::helpers::KEY)
        .bearer_auth(&k.app.session)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        history["messages"][1]["sources"][0]["url"],
        json!(site.url("/docs/install#docker"))
    );
    assert!(history["messages"][0].get("sources").is_none());
}

#[tokio::test]
async fn a_resync_takes_exactly_the_changed_removed_and_added_pages() {
    let site = DocSite::start().await;
    acme_site(&site);
    let k = knowledge_app(None, |_| {}).await;
    let id = k
        .add_id(json!({"kind": "site", "url": site.url("/sitemap-docs.xml")}))
        .await;
    k.synced(&id).await;
    assert_eq!(site.fetched("/docs/install"), 1);

    // Billing changes, teams goes away, security arrives.
    site.html(
        "/docs/billing",
        &page("Billing", &[("refunds", "Refunds", "Refunds are paid back to the original card within ten working days of the cancellation request.")]),
    );
    site.remove("/docs/teams");
    site.html(
        "/docs/security",
        &page("Security", &[("sso", "Single sign-on", "Single sign-on works with any SAML identity provider such as Okta or Azure Active Directory.")]),
    );
    site.sitemap(
        "/sitemap-docs.xml",
        &["/docs/install", "/docs/billing", "/docs/security"],
    );
    let done = k.sync(&id).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["pages_total"], 3);

    // The unchanged page was asked conditionally and answered 304.
    assert_eq!(
        (
            site.fetched("/docs/install"),
            site.not_modified("/docs/install")
        ),
        (1, 1)
    );
    assert_eq!(site.fetched("/docs/billing"), 2);
    let refunds = sources_of(&k.ask("How long do refunds to the card take?").await);
    assert_eq!(
        refunds.first().and_then(|s| s.url.clone()),
        Some(site.url("/docs/billing#refunds"))
    );
    let invoices = k.ask("When are invoices emailed each month?").await;
    assert!(
        sources_of(&invoices)
            .iter()
            .all(|s| !s.url.as_deref().unwrap_or("").contains("billing")),
        "{invoices:?}"
    );
    let roles = k
        .ask("Which roles does a team have, owners editors viewers?")
        .await;
    assert!(
        sources_of(&roles).is_empty(),
        "the removed page left the index: {roles:?}"
    );
    let sso = sources_of(&k.ask("Does single sign-on work with Okta SAML?").await);
    assert_eq!(
        sso.first().and_then(|s| s.url.clone()),
        Some(site.url("/docs/security#sso"))
    );
    // No duplicates after re-ingesting: one source for the docker question.
    let docker = sources_of(&k.ask("How do I run the docker image with a volume?").await);
    assert_eq!(
        docker
            .iter()
            .filter(|s| s.url.as_deref() == Some(&site.url("/docs/install#docker")))
            .count(),
        1
    );
}

/// The mock's embeddings counters: (calls, texts embedded).
fn embedding_counts(k: &KnowledgeApp) -> (usize, usize) {
    let s = k.app.mock().stats();
    (s.embedding_calls, s.embedded_inputs)
}

#[tokio::test]
async fn embeddings_are_made_in_batches_fused_at_query_time_and_never_redone_for_unchanged_pages() {
    let site = DocSite::start().await;
    acme_site(&site);
    let mock = MockUpstream::start(Script::words("Mount a volume [1]", 0))
        .await
        .expect("mock");
    let embeddings = mock.base_url();
    // The endpoint fails from the start: the sync still indexes full text.
    mock.set_embeddings_fault(Some(500));
    let k = knowledge_app(Some(mock), |s| {
        s.embeddings.base_url = Some(embeddings);
        s.embeddings.model = "mock-embed".into();
        s.embeddings.batch_size = 2;
        s.embeddings.max_retries = 1;
    })
    .await;
    let id = k
        .add_id(json!({"kind": "site", "url": site.url("/sitemap-docs.xml")}))
        .await;
    let done = k.synced(&id).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["chunks_embedded"], 0, "{done}");
    assert!(
        done["error"].as_str().unwrap_or("").contains("HTTP 500"),
        "the owner is told why: {done}"
    );
    // One batch, tried twice (one retry), then the sync gave up on vectors.
    assert_eq!(embedding_counts(&k), (2, 0));
    // A failed question embedding falls back to full text: still cited.
    let events = k.ask("How do I run the docker image with a volume?").await;
    assert_eq!(
        sources_of(&events).first().and_then(|s| s.url.clone()),
        Some(site.url("/docs/install#docker")),
        "{events:?}"
    );
    assert_eq!(text_of(&events), "Mount a volume [1]");
    assert_eq!(
        embedding_counts(&k).0,
        3,
        "one try for the question, no retry"
    );

    // The endpoint is back: the next sync embeds every chunk, in batches of two.
    k.app.mock().set_embeddings_fault(None);
    let done = k.sync(&id).await;
    let chunks = done["chunks"].as_u64().expect("chunks") as usize;
    assert!(chunks >= 4, "{done}");
    assert_eq!(
        done["chunks_embedded"].as_u64(),
        Some(chunks as u64),
        "{done}"
    );
    assert_eq!(done["error"], Value::Null, "{done}");
    assert_eq!(embedding_counts(&k), (3 + chunks.div_ceil(2), chunks));

    // Questions are embedded once each and fused with full text.
    let events = k.ask("How do I run the docker image with a volume?").await;
    assert_eq!(
        sources_of(&events).first().and_then(|s| s.url.clone()),
        Some(site.url("/docs/install#docker"))
    );
    let (calls, inputs) = embedding_counts(&k);
    assert_eq!((calls, inputs), (3 + chunks.div_ceil(2) + 1, chunks + 1));

    // Nothing changed: every page answers 304 and nothing is embedded again.
    let done = k.sync(&id).await;
    assert_eq!(done["chunks_embedded"].as_u64(), Some(chunks as u64));
    assert_eq!(embedding_counts(&k), (calls, inputs));
    assert_eq!(site.not_modified("/docs/install"), 2);

    // Billing changes and security arrives: only their chunks are embedded.
    site.html(
        "/docs/billing",
        &page("Billing", &[("refunds", "Refunds", "Refunds are paid back to the original card within ten working days of the cancellation request.")]),
    );
    site.html(
        "/docs/security",
        &page("Security", &[("sso", "Single sign-on", "Single sign-on works with any SAML identity provider such as Okta or Azure Active Directory.")]),
    );
    site.sitemap(
        "/sitemap-docs.xml",
        &[
            "/docs/install",
            "/docs/billing",
            "/docs/teams",
            "/docs/security",
        ],
    );
    let done = k.sync(&id).await;
    let now = done["chunks"].as_u64().expect("chunks") as usize;
    assert_eq!(done["chunks_embedded"].as_u64(), Some(now as u64), "{done}");
    let added = embedding_counts(&k).1 - inputs;
    assert!(
        added >= 2 && added < now,
        "only the changed and the new page's chunks: {added} of {now}"
    );
    let sso = sources_of(&k.ask("Does single sign-on work with Okta SAML?").await);
    assert_eq!(
        sso.first().and_then(|s| s.url.clone()),
        Some(site.url("/docs/security#sso"))
    );
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A real, valid PDF of text pages (Helvetica, one line per `Tj`), with
/// its cross-reference table's byte offsets computed, as a writer makes it.
fn pdf_of(pages: &[&[&str]]) -> Vec<u8> {
    let n = pages.len();
    // Objects: 1 catalog, 2 page tree, 3 font, then a page and its content
    // stream for each page.
    let mut objects: Vec<String> = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            (0..n)
                .map(|i| format!("{} 0 R", 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    ];
    for (i, lines) in pages.iter().enumerate() {
        let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
        for line in *lines {
            content.push_str(&format!(
                "({}) Tj T*\n",
                line.replace('(', "\\(").replace(')', "\\)")
            ));
        }
        content.push_str("ET");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A source says `ready` only once its chunks are embedded: while the
/// batches go out it is still `syncing`, so an owner (or the console) never
/// takes a half-embedded source for a finished one.
#[tokio::test]
async fn a_source_is_syncing_until_its_last_batch_is_embedded() {
    let site = DocSite::start().await;
    acme_site(&site);
    let mock = MockUpstream::start(Script::words("Unused", 0))
        .await
        .expect("mock");
    let embeddings = mock.base_url();
    mock.set_embeddings_delay(Duration::from_millis(150));
    let k = knowledge_app(Some(mock), |s| {
        s.embeddings.base_url = Some(embeddings);
        s.embeddings.model = "mock-embed".into();
        s.embeddings.batch_size = 1;
    })
    .await;
    let id = k
        .add_id(json!({"kind": "site", "url": site.url("/sitemap-docs.xml")}))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen_mid_embedding = false;
    let done = loop {
        let v: Value = k
            .admin("GET", &format!("/sources/{id}"), None)
            .await
            .json()
            .await
            .expect("JSON");
        let (embedded, chunks) = (v["chunks_embedded"].as_u64(), v["chunks"].as_u64());
        if v["status"] == "ready" {
            assert_eq!(embedded, chunks, "ready before its vectors: {v}");
            break v;
        }
        assert!(v["status"] == "syncing" || v["status"] == "pending", "{v}");
        seen_mid_embedding |= embedded.is_some_and(|e| e > 0);
        assert!(tokio::time::Instant::now() < deadline, "never synced: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        seen_mid_embedding,
        "the embedding was never seen under way: {done}"
    );
    assert!(done["chunks"].as_u64() >= Some(4), "{done}");
    assert_eq!(done["error"], Value::Null, "{done}");
}

#[tokio::test]
async fn a_pdf_is_read_page_by_page_and_cited_with_its_page_number() {
    let k = knowledge_app(None, |_| {}).await;
    let pdf = pdf_of(&[
        &[
            "Acme Router Manual",
            "Unpack the router and connect it to power with the supplied adapter.",
        ],
        &[
            "Factory reset",
            "To restore factory settings, hold the recessed reset button for ten seconds",
            "until the status light blinks amber.",
        ],
    ]);
    let source = k
        .add(json!({"kind": "file", "name": "router-manual.pdf", "content_base64": b64(&pdf)}))
        .await;
    let done = k.synced(source["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert!(done["chunks"].as_u64() >= Some(1), "{done}");
    let events = k
        .ask("How long do I hold the reset button to restore factory settings?")
        .await;
    let sources = sources_of(&events);
    assert!(!sources.is_empty(), "{events:?}");
    assert!(
        sources[0].title.starts_with("router-manual") && sources[0].title.ends_with("(p. 2)"),
        "{sources:?}"
    );
    assert_eq!(sources[0].url, None, "an upload has no link");
    assert!(
        sources[0].snippet.contains("recessed reset button"),
        "{sources:?}"
    );
}

/// A Word document (.docx) as Word writes its text parts.
fn docx_of(body: &str) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("[Content_Types].xml", options)
        .expect("part");
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#).expect("write");
    zip.start_file("word/document.xml", options).expect("part");
    zip.write_all(format!(r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#).as_bytes()).expect("write");
    zip.finish().expect("zip");
    out.into_inner()
}

#[tokio::test]
async fn a_word_document_is_read_with_its_headings_and_cited_by_section() {
    let k = knowledge_app(None, |_| {}).await;
    let doc = docx_of(
        r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Returns policy</w:t></w:r></w:p>
<w:p><w:r><w:t>We want you to be happy with every order you place with us.</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Refund window</w:t></w:r></w:p>
<w:p><w:r><w:t>Unused items can be returned within 45 days for a full refund to the original card.</w:t></w:r></w:p>"#,
    );
    let source = k
        .add(json!({"kind": "file", "name": "returns.docx", "content_base64": b64(&doc)}))
        .await;
    let done = k.synced(source["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "ready", "{done}");
    let sources = sources_of(
        &k.ask("How many days do I have to return unused items for a refund?")
            .await,
    );
    assert!(!sources.is_empty());
    assert_eq!(
        sources[0].title, "returns › Returns policy > Refund window",
        "{sources:?}"
    );
    // A ".docx" that is not one is refused when it is added.
    let r = k
        .admin(
            "POST",
            "/sources",
            Some(
                json!({"kind": "file", "name": "fake.docx", "content_base64": b64(b"plain text")}),
            ),
        )
        .await;
    let (status, code) = api_error(r).await;
    assert_eq!((status, code.as_str()), (422, "invalid_field"));
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_by_default() {
    let site = DocSite::start().await;
    acme_site(&site);
    let k = knowledge_app(None, |s| s.knowledge.allow_private_addresses = false).await;
    for url in [
        site.url("/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://localhost:9/".to_owned(),
        "http://[::1]/".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        let r = k
            .admin("POST", "/sources", Some(json!({"kind": "url", "url": url})))
            .await;
        let (status, code) = api_error(r).await;
        assert_eq!((status, code.as_str()), (422, "invalid_field"), "{url}");
    }
    // A redirect or a DNS answer that leads to such an address is refused
    // by the crawler itself (unit tests in knowledge::crawl).
}

#[tokio::test]
async fn redirect_loops_and_long_chains_fail_their_page_only() {
    let site = DocSite::start().await;
    site.redirect("/loop-a", "/loop-b");
    site.redirect("/loop-b", "/loop-a");
    for i in 0..8 {
        site.redirect(&format!("/hop{i}"), &format!("/hop{}", i + 1));
    }
    site.html(
        "/hop8",
        &page(
            "Far",
            &[(
                "f",
                "Far away",
                "Eight redirects away from the start of the chain.",
            )],
        ),
    );
    site.redirect("/moved", "/ok");
    site.html(
        "/ok",
        &page(
            "Fine",
            &[(
                "a",
                "Alpha",
                "An ordinary page about alpha particles and their energy in detail.",
            )],
        ),
    );
    site.sitemap("/sitemap.xml", &["/loop-a", "/hop0", "/moved"]);
    let k = knowledge_app(None, |_| {}).await;
    let id = k
        .add_id(json!({"kind": "site", "url": site.url("/sitemap.xml")}))
        .await;
    let done = k.synced(&id).await;
    assert_eq!(
        (done["status"].as_str(), done["pages_failed"].as_u64()),
        (Some("ready"), Some(2)),
        "{done}"
    );
    let detail: Value = k
        .admin("GET", &format!("/sources/{id}"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let errors = detail["page_errors"].to_string();
    assert!(
        errors.contains("loop-a") && errors.contains("hop0") && errors.contains("redirect"),
        "{errors}"
    );
    // A short, honest redirect is followed.
    let alpha = sources_of(&k.ask("What about alpha particles and their energy?").await);
    assert!(!alpha.is_empty());
    assert_eq!(site.fetched("/hop8"), 0);
}

#[tokio::test]
async fn bad_input_fails_its_page_or_source_and_nothing_else() {
    let site = DocSite::start().await;
    site.html(
        "/good",
        &page(
            "Good",
            &[(
                "g",
                "Gardening",
                "Water the tomatoes every morning during the hot summer weeks.",
            )],
        ),
    );
    site.put(
        "/huge",
        "text/html",
        format!("<html><body><p>{}</p></body></html>", "x".repeat(200_000)),
    );
    site.put("/binary", "application/octet-stream", vec![0u8; 100]);
    site.put("/latin1", "text/plain", vec![0xe9, 0x74, 0xe9]);
    // A sitemap that lists itself.
    site.put(
        "/loop.xml",
        "application/xml",
        format!(
            "<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"><sitemap><loc>{}</loc></sitemap><sitemap><loc>{}</loc></sitemap></sitemapindex>",
            site.url("/loop.xml"),
            site.url("/pages.xml")
        ),
    );
    site.sitemap(
        "/pages.xml",
        &["/good", "/huge", "/binary", "/latin1", "/missing"],
    );
    let k = knowledge_app(None, |s| s.knowledge.max_page_bytes = 64 * 1024).await;

    let id = k
        .add_id(json!({"kind": "site", "url": site.url("/loop.xml")}))
        .await;
    let done = k.synced(&id).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(
        (done["pages_total"].as_u64(), done["pages_failed"].as_u64()),
        (Some(5), Some(4)),
        "{done}"
    );
    let detail: Value = k
        .admin("GET", &format!("/sources/{id}"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let errors: Vec<String> = detail["page_errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| format!("{} {}", e["url"], e["error"]))
        .collect();
    let has = |path: &str, what: &str| errors.iter().any(|e| e.contains(path) && e.contains(what));
    assert!(has("/huge", "larger than"), "{errors:?}");
    assert!(has("/binary", "not supported"), "{errors:?}");
    assert!(has("/latin1", "UTF-8"), "{errors:?}");
    assert!(has("/missing", "404"), "{errors:?}");
    assert!(
        !sources_of(
            &k.ask("How often should I water the tomatoes in summer?")
                .await
        )
        .is_empty()
    );

    // A "PDF" that is not one, and a CSV without pairs, are refused at once.
    let r = k.admin("POST", "/sources", Some(json!({"kind": "file", "name": "manual.pdf", "content_base64": b64(b"<html>no</html>")}))).await;
    assert_eq!(api_error(r).await, (422, "invalid_field".to_owned()));
    let r = k
        .admin(
            "POST",
            "/sources",
            Some(json!({"kind": "faq", "text": "just one column\n"})),
        )
        .await;
    assert_eq!(api_error(r).await, (422, "invalid_field".to_owned()));
    // Too large a file is a 413 before it is read.
    let big = b64(&vec![b'a'; 200 * 1024]);
    let r = k
        .admin(
            "POST",
            "/sources",
            Some(json!({"kind": "file", "name": "big.md", "content_base64": big})),
        )
        .await;
    assert_eq!(api_error(r).await, (413, "payload_too_large".to_owned()));
    // A non-UTF-8 text file fails its own source only.
    let bad = k.add(json!({"kind": "file", "name": "notes.txt", "content_base64": b64(&[0xff, 0xfe, 0x41])})).await;
    let bad = k.synced(bad["id"].as_str().expect("id")).await;
    assert_eq!(bad["status"], "failed");
    assert!(
        bad["error"].as_str().unwrap_or("").contains("UTF-8"),
        "{bad}"
    );
    let again: Value = k
        .admin("GET", &format!("/sources/{id}"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(again["status"], "ready");
}

#[tokio::test]
async fn a_close_faq_is_answered_verbatim_and_nothing_relevant_gets_the_widgets_reply_without_the_model()
 {
    let mock = MockUpstream::start(Script::words("From the model.", 0))
        .await
        .expect("mock");
    let k = knowledge_app(Some(mock), |s| {
        s.widgets[0].unknown_reply = "Sorry, I only know about Acme's shop.".into();
    })
    .await;
    let faq = k
        .add(json!({"kind": "faq", "text": "question,answer\nDo you ship to Canada?,\"Yes, we ship to Canada in 5 days.\"\nCan I pay by invoice?,Invoices are for business accounts only.\n"}))
        .await;
    assert_eq!(
        k.synced(faq["id"].as_str().expect("id")).await["status"],
        "ready"
    );

    let events = k.ask("Do you ship to Canada?").await;
    assert_eq!(text_of(&events), "Yes, we ship to Canada in 5 days.");
    assert_eq!(sources_of(&events)[0].title, "FAQ › Do you ship to Canada?");
    let nothing = k.ask("What is the boiling point of mercury?").await;
    assert_eq!(text_of(&nothing), "Sorry, I only know about Acme's shop.");
    assert!(sources_of(&nothing).is_empty());
    assert!(matches!(nothing.last(), Some(StreamEvent::Done(_))));
    assert_eq!(k.app.mock().stats().opened, 0, "the model was never asked");

    // A related question that is not the FAQ goes to the model, with the
    // numbered passage in its prompt.
    let events = k.ask("Can I pay by invoice with a personal account?").await;
    assert_eq!(text_of(&events), "From the model.");
    let prompt = k.app.mock().requests().pop().expect("a request");
    let system = prompt["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        system
            .contains("[1] FAQ › Can I pay by invoice?\nInvoices are for business accounts only."),
        "{system}"
    );
}

// The CLI runs as a blocking child process: a second worker keeps the doc
// site answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_syncs_lists_and_removes_sources_and_fails_when_a_sync_fails() {
    let site = DocSite::start().await;
    acme_site(&site);
    let dir = temp_dir("knowledge-cli");
    let config = write_config(
        &dir,
        "[knowledge]\nallow_private_addresses = true\ncrawl_delay_ms = 0\n",
    );
    let (ok, out, err) = crate::helpers::cli(
        &config,
        &["widget", "create", "--name", "Acme", "--id", "acme"],
    );
    assert!(ok, "{out}{err}");
    let notes = dir.join("notes.md");
    std::fs::write(
        &notes,
        "# Opening hours\n\nThe shop opens at nine every weekday.\n",
    )
    .expect("written");
    let (ok, out, err) = crate::helpers::cli(
        &config,
        &[
            "knowledge",
            "add",
            "acme",
            "--text",
            notes.to_str().expect("path"),
            "--wait",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("ready") && out.contains("1/1 pages"), "{out}");
    let sitemap = site.url("/sitemap-docs.xml");
    let (ok, out, err) = crate::helpers::cli(
        &config,
        &["knowledge", "add", "acme", "--sitemap", &sitemap, "--wait"],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("3/3 pages, 0 failed"), "{out}");
    let site_id = out
        .split_whitespace()
        .find(|w| w.starts_with("src_"))
        .expect("a source id")
        .to_owned();
    let (ok, out, _) = crate::helpers::cli(&config, &["knowledge", "list", "acme"]);
    assert!(ok);
    assert_eq!(
        out.lines().filter(|l| l.contains(" ready ")).count(),
        2,
        "{out}"
    );

    // A file that cannot be read: the sync fails, and so does the command.
    let bad = dir.join("latin1.txt");
    std::fs::write(&bad, [0xe9, 0x74, 0xe9]).expect("written");
    let (ok, out, err) = crate::helpers::cli(
        &config,
        &[
            "knowledge",
            "add",
            "acme",
            "--file",
            bad.to_str().expect("path"),
            "--wait",
        ],
    );
    assert!(!ok, "{out}");
    assert!(err.contains("UTF-8"), "{err}");
    // Re-sync with nothing changed keeps every page (304s).
    let (ok, out, err) =
        crate::helpers::cli(&config, &["knowledge", "sync", "acme", &site_id, "--wait"]);
    assert!(ok, "{out}{err}");
    assert_eq!(site.not_modified("/docs/install"), 1);
    let (ok, _, _) = crate::helpers::cli(&config, &["knowledge", "remove", "acme", &site_id]);
    assert!(ok);
    let (ok, _, err) = crate::helpers::cli(&config, &["knowledge", "remove", "acme", &site_id]);
    assert!(!ok && err.contains("no source"), "{err}");
}

/// kill -9 mid-sync: the restarted server resumes the source once the dead
/// process's claim lapses, and every page ends with exactly its chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sync_resumes_it_without_duplicate_chunks() {
    let site = DocSite::start().await;
    let mut paths = Vec::new();
    for i in 0..30 {
        let path = format!("/docs/topic-{i}");
        site.html(
            &path,
            &page(
                &format!("Topic {i}"),
                &[("about", &format!("About topic {i}"), &format!("Topic number {i} explains one thing about widgets, in enough words that readability keeps it as the main content of the page."))],
            ),
        );
        paths.push(path);
    }
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    site.sitemap("/sitemap.xml", &refs);
    site.slow(100);
    let dir = temp_dir("knowledge-kill9");
    let config = write_config(
        &dir,
        "[knowledge]\nallow_private_addresses = true\ncrawl_delay_ms = 0\nclaim_lease_secs = 1\nrequest_timeout_ms = 1000\n",
    );
    let (ok, out, err) = crate::helpers::cli(
        &config,
        &["widget", "create", "--name", "Acme", "--id", "acme"],
    );
    assert!(ok, "{out}{err}");
    let key = admin_key(&config);
    let (mut server, base) = crate::helpers::start_binary(&config).await;
    let client = reqwest::Client::new();
    let source: Value = client
        .post(format!("{base}/api/v1/admin/widgets/acme/sources"))
        .bearer_auth(&key)
        .json(&json!({"kind": "site", "url": site.url("/sitemap.xml")}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let id = source["id"].as_str().expect("id").to_owned();
    let read = |base: String| {
        let (client, key, id) = (client.clone(), key.clone(), id.clone());
        async move {
            client
                .get(format!("{base}/api/v1/admin/widgets/acme/sources/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    // Kill it part way through.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = read(base.clone()).await;
        if s["pages_done"].as_u64().unwrap_or(0) >= 5 {
            assert_eq!(s["status"], "syncing", "{s}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no progress: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.start_kill().expect("SIGKILL");
    let _ = server.wait().await;

    let (_server, base) = crate::helpers::start_binary(&config).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let done = loop {
        let s = read(base.clone()).await;
        if s["status"] == "ready" {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "never resumed: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (done["pages_total"].as_u64(), done["pages_failed"].as_u64()),
        (Some(30), Some(0)),
        "{done}"
    );
    // Every page has the same chunks as every other (they are alike), none
    // twice, and the index holds exactly the chunks: nothing was indexed twice.
    let per_page = "SELECT COUNT(*), MIN(n), MAX(n) FROM (SELECT COUNT(*) AS n FROM knowledge_chunks GROUP BY page_id) AS p";
    if let Some(url) = crate::helpers::postgres_store(&dir) {
        // PostgreSQL keeps a chunk's index entry in its own row.
        let db = sqlx::PgPool::connect(&url).await.expect("db");
        let (pages, least, most): (i64, i64, i64) = sqlx::query_as(per_page)
            .fetch_one(&db)
            .await
            .expect("counts");
        assert_eq!(
            (pages, least, most),
            (30, most, least),
            "uneven chunks per page"
        );
        assert_eq!(Some((pages * least) as u64), done["chunks"].as_u64());
        return;
    }
    let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.join("porthole.db").display()))
        .await
        .expect("db");
    let (pages, least, most): (i64, i64, i64) = sqlx::query_as(per_page)
        .fetch_one(&db)
        .await
        .expect("counts");
    assert_eq!(
        (pages, least, most),
        (30, most, least),
        "uneven chunks per page"
    );
    let (chunks, indexed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM knowledge_chunks), (SELECT COUNT(*) FROM knowledge_fts)",
    )
    .fetch_one(&db)
    .await
    .expect("counts");
    assert_eq!(chunks, indexed);
    assert_eq!(Some(chunks as u64), done["chunks"].as_u64());
    assert_eq!(chunks, 30 * least);
}

#[tokio::test]
async fn trying_a_question_shows_what_a_turn_would_be_grounded_in_without_asking_the_model() {
    let site = DocSite::start().await;
    acme_site(&site);
    let mock = MockUpstream::start(Script::words("From the model.", 0))
        .await
        .expect("mock");
    let k = knowledge_app(Some(mock), |_| {}).await;
    let id = k
        .add_id(json!({"kind": "site", "url": site.url("/")}))
        .await;
    assert_eq!(k.synced(&id).await["status"], "ready");

    let question = "How do I run the docker image with a volume?";
    let k = &k;
    let preview = |q: &str| {
        let path = format!(
            "/retrieval?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        async move { k.admin("GET", &path, None).await }
    };
    let r = preview(question).await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.expect("JSON");
    assert_eq!(p["unanswered"], false, "{p}");
    assert!(p["total_chunks"].as_u64().unwrap_or(0) >= 4, "{p}");
    let candidates = p["candidates"].as_array().expect("candidates");
    let first = &candidates[0];
    assert_eq!(first["n"], 1, "{p}");
    assert_eq!(first["relevant"], true);
    assert_eq!(first["url"], site.url("/docs/install#docker"));
    assert_eq!(first["kind"], "site");
    assert!(first["coverage"].as_f64().unwrap_or(0.0) > 0.3, "{p}");
    assert!(
        first["snippet"]
            .as_str()
            .unwrap_or("")
            .starts_with("Pull the acme image"),
        "{p}"
    );
    // Every relevant candidate up to the prompt's four is numbered, the
    // others are not, and the threshold is the widget's.
    for c in candidates {
        let relevant =
            c["coverage"].as_f64().unwrap_or(0.0) >= p["min_relevance"].as_f64().unwrap();
        assert_eq!(c["relevant"], relevant, "{c}");
        if !relevant {
            assert!(c["n"].is_null(), "{c}");
        }
    }
    assert_eq!(k.app.mock().stats().opened, 0, "the model was never asked");

    // The turn itself is grounded in exactly the numbered candidates.
    let cited: Vec<Option<String>> = sources_of(&k.ask(question).await)
        .into_iter()
        .map(|s| s.url)
        .collect();
    let numbered: Vec<Option<String>> = candidates
        .iter()
        .filter(|c| !c["n"].is_null())
        .map(|c| c["url"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(cited, numbered);

    // Nothing relevant: the visitor would get the "I don't know" reply.
    let p: Value = preview("What is the boiling point of mercury?")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(p["unanswered"], true, "{p}");
    assert!(
        p["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .all(|c| c["n"].is_null() && c["relevant"] == false),
        "{p}"
    );

    // No question, or a very long one, is a clear 400; an unknown widget a 404.
    let bad = (400, "invalid_request".to_owned());
    assert_eq!(api_error(preview("   ").await).await, bad);
    assert_eq!(api_error(preview(&"why ".repeat(600)).await).await, bad);
    let r = k
        .app
        .client
        .get(k.app.url("/api/v1/admin/widgets/nope/retrieval?q=docker"))
        .bearer_auth(&k.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(api_error(r).await, (404, "not_found".to_owned()));
}

#[tokio::test]
async fn questions_to_fix_group_the_unanswered_and_the_thumbed_down_by_similar_question() {
    let mock = MockUpstream::start(Script::words("From the model.", 0))
        .await
        .expect("mock");
    let k = knowledge_app(Some(mock), |_| {}).await;
    let faq = k
        .add(json!({"kind": "faq", "text": "question,answer\nDo you ship to Canada?,\"Yes, we ship to Canada in 5 days.\"\nCan I pay by invoice?,Invoices are for business accounts only.\n"}))
        .await;
    assert_eq!(
        k.synced(faq["id"].as_str().expect("id")).await["status"],
        "ready"
    );
    let answered = crate::resume::message_id(&k.ask("Do you ship to Canada?").await);
    let r = k
        .app
        .client
        .post(k.app.url(&format!("/api/v1/chat/{answered}/feedback")))
        .header("x-api-key", crate::helpers::KEY)
        .bearer_auth(&k.app.session)
        .json(&json!({"rating": "down", "comment": "And to Mexico?"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    k.ask("Can I pay by invoice?").await;
    for q in [
        "What is the boiling point of mercury?",
        "Mercury: its boiling point?",
        "Who won the 1998 World Cup?",
    ] {
        k.ask(q).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let fix = |query: &'static str| {
        let k = &k;
        async move {
            let r = k
                .app
                .client
                .get(k.app.url(&format!("/api/v1/admin/questions-to-fix{query}")))
                .bearer_auth(&k.key)
                .send()
                .await
                .expect("sent");
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("JSON");
            assert_eq!(status, 200, "{body}");
            body.as_array().expect("groups").clone()
        }
    };
    let groups = fix("").await;
    let summary: Vec<(String, u64, u64, u64)> = groups
        .iter()
        .map(|g| {
            (
                g["question"].as_str().expect("question").to_owned(),
                g["cases"].as_u64().expect("cases"),
                g["unanswered"].as_u64().expect("unanswered"),
                g["thumbs_down"].as_u64().expect("down"),
            )
        })
        .collect();
    // The two wordings of one question are one group, the biggest first;
    // the well answered invoice question is not there.
    assert_eq!(
        summary,
        [
            ("Mercury: its boiling point?".to_owned(), 2, 2, 0),
            ("Who won the 1998 World Cup?".to_owned(), 1, 1, 0),
            ("Do you ship to Canada?".to_owned(), 1, 0, 1),
        ],
        "{groups:?}"
    );
    let canada = &groups[2]["items"][0];
    assert_eq!(canada["comment"], "And to Mexico?");
    assert_eq!(canada["answer_id"], answered.as_str());
    assert_eq!(canada["widget_id"], "test");
    // Each case links to its conversation.
    let conversation = canada["conversation_id"].as_str().expect("conversation");
    let r = k
        .app
        .client
        .get(k.app.url(&format!(
            "/api/v1/admin/widgets/test/conversations/{conversation}/messages"
        )))
        .bearer_auth(&k.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);

    // The inbox's filters narrow it.
    let down = fix("?rating=down").await;
    assert_eq!(down.len(), 1);
    assert_eq!(down[0]["question"], "Do you ship to Canada?");
    assert_eq!(fix("?widget=another").await.len(), 0);
    let r = k
        .app
        .client
        .get(k.app.url("/api/v1/admin/questions-to-fix?status=lost"))
        .bearer_auth(&k.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(api_error(r).await, (422, "invalid_field".to_owned()));
}
