//! Size and speed report for the widget iframe: what a visitor's browser
//! downloads (as Chromium counts it, compressed) and the time from
//! navigation to an interactive panel, cold cache, median of several loads.
//! Run with `scripts/size-report`.

use std::time::Duration;

use anyhow::Context;
use chromiumoxide::cdp::browser_protocol::network::SetCacheDisabledParams;
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use e2e::{Harness, eval, panel_path, wait_for};
use mock_upstream::Script;

/// Records when the composer first exists, i.e. the panel can be used.
const PROBE: &str = "new MutationObserver((_, o) => { if (document.querySelector('textarea')) \
    { window.__interactive = performance.now(); o.disconnect(); } })\
    .observe(document, { childList: true, subtree: true });";

const LOADS: usize = 9;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let h = Harness::start(Script::default(), |_| {}).await?;
    println!("Porthole widget size and speed (headless Chromium, loopback, cold cache)\n");

    let mut times = Vec::new();
    let mut files: Vec<(String, u64, u64)> = Vec::new();
    for i in 0..LOADS {
        let page = h.browser.new_page("about:blank").await?;
        page.execute(SetCacheDisabledParams::new(true)).await?;
        page.execute(AddScriptToEvaluateOnNewDocumentParams::new(PROBE))
            .await?;
        page.goto(h.url(&panel_path())).await?;
        let t = wait_for(&page, "window.__interactive", Duration::from_secs(20))
            .await
            .context("the panel never became interactive")?;
        times.push(t.as_f64().unwrap_or(0.0));
        if i == 0 {
            let entries = eval(
                &page,
                "[performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]\
                 .map(e => [e.name, e.encodedBodySize, e.decodedBodySize])",
            )
            .await?;
            for e in entries.as_array().into_iter().flatten() {
                let name = e[0].as_str().unwrap_or_default();
                let short = name.rsplit('/').next().unwrap_or(name).to_owned();
                files.push((
                    short,
                    e[1].as_u64().unwrap_or(0),
                    e[2].as_u64().unwrap_or(0),
                ));
            }
        }
        page.close().await?;
    }

    println!(
        "{:<44} {:>12} {:>12}",
        "downloaded by the iframe", "on the wire", "decoded"
    );
    let mut wire = 0;
    for (name, encoded, decoded) in &files {
        // The page itself is sent uncompressed; count it as gzip would send it.
        let encoded = if name == "e2e" {
            gzip_len(&h.url(&panel_path())).await?
        } else {
            *encoded
        };
        wire += encoded;
        println!(
            "{name:<44} {:>9.1} KB {:>9.1} KB",
            encoded as f64 / 1000.0,
            *decoded as f64 / 1000.0
        );
    }
    println!(
        "{:<44} {:>9.1} KB              goal <= 110 KB gzip (Typebot's embed: 196 KB, Flowise's: 284 KB)",
        "total (gzip)",
        wire as f64 / 1000.0
    );

    let loader = reqwest::get(h.url("/widget.js")).await?.text().await?;
    let loader_gzip = gzip_bytes(loader.as_bytes())?;
    println!(
        "\nloader widget.js (on the host page): {:.2} KB gzip ({:.2} KB minified)   goal <= 2 KB gzip \
         (Botpress's inject.js: 3.6 KB before compression, Dify's embed.min.js: 8.3 KB)",
        loader_gzip as f64 / 1000.0,
        loader.len() as f64 / 1000.0
    );

    times.sort_by(f64::total_cmp);
    println!(
        "\nnavigation to interactive panel: median {:.0} ms (min {:.0}, max {:.0}) over {LOADS} cold loads",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

/// The gzip size of what `url` serves.
async fn gzip_len(url: &str) -> anyhow::Result<u64> {
    let body = reqwest::get(url).await?.bytes().await?;
    gzip_bytes(&body)
}

fn gzip_bytes(body: &[u8]) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body)?;
    Ok(enc.finish()?.len() as u64)
}
