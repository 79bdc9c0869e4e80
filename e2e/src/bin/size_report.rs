//! Size and speed report for the widget iframe: what a visitor's browser
//! downloads (as Chromium counts it, compressed), where the wasm's bytes go
//! (by crate), the time from navigation to an interactive panel on
//! loopback, and the first open of the panel from a host page on a slow
//! network (1.6 Mbps, 150 ms round trips): cold, and after the loader's
//! idle preload. Medians of several loads. Run with `scripts/size-report`.

use std::time::Duration;

use anyhow::Context;
use chromiumoxide::Page;
#[allow(deprecated)]
use chromiumoxide::cdp::browser_protocol::network::EmulateNetworkConditionsParams;
use chromiumoxide::cdp::browser_protocol::network::{EnableParams, SetCacheDisabledParams};
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use e2e::{Harness, KEY, WIDGET, eval, panel_path, serve_pages, wait_for};
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
        let encoded = *encoded;
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

    // The loader: widget.js, what the host page's tag loads before the
    // launcher shows, and panel.js, which it fetches with the idle preload.
    let loader = reqwest::get(h.url("/widget.js")).await?.text().await?;
    let loader_gzip = gzip_bytes(loader.as_bytes())?;
    println!(
        "\nloader widget.js (on the host page, draws the launcher): {:.2} KB gzip ({:.2} KB minified)   goal <= 2 KB gzip \
         (Botpress's inject.js: 3.6 KB before compression, Dify's embed.min.js: 8.3 KB)",
        loader_gzip as f64 / 1000.0,
        loader.len() as f64 / 1000.0
    );
    let panel = reqwest::get(h.url(loader::panel_path()))
        .await?
        .error_for_status()?
        .text()
        .await?;
    let panel_gzip = gzip_bytes(panel.as_bytes())?;
    println!(
        "loader {} (with the idle preload, kept a year): {:.2} KB gzip ({:.2} KB minified); both {:.2} KB",
        loader::panel_path(),
        panel_gzip as f64 / 1000.0,
        panel.len() as f64 / 1000.0,
        (loader_gzip + panel_gzip) as f64 / 1000.0
    );

    let wasm_gzip = files
        .iter()
        .find(|f| f.0.ends_with(".wasm"))
        .map_or(0, |f| f.1);
    wasm_by_crate(wasm_gzip)?;

    times.sort_by(f64::total_cmp);
    println!(
        "\nnavigation to interactive panel (loopback): median {:.0} ms (min {:.0}, max {:.0}) over {LOADS} cold loads",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );

    slow_network(&h).await?;
    console(&h).await?;
    Ok(())
}

/// The console at `/console`: what it downloads and how soon its first
/// form is usable, cold, on loopback. Its own wasm: the widget's figures
/// above do not include it.
async fn console(h: &Harness) -> anyhow::Result<()> {
    let mut times = Vec::new();
    let mut wire = 0u64;
    for i in 0..LOADS {
        let page = h.browser.new_page("about:blank").await?;
        page.execute(SetCacheDisabledParams::new(true)).await?;
        page.goto(h.url("/console")).await?;
        let t = wait_for(
            &page,
            "document.querySelector('#setup-title, #sign-in-title') && performance.now()",
            Duration::from_secs(20),
        )
        .await
        .context("the console never showed its first form")?;
        times.push(t.as_f64().unwrap_or(0.0));
        if i == 0 {
            let sizes = eval(
                &page,
                "[performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]\
                 .filter(e => e.name.includes('/console')).map(e => e.encodedBodySize)",
            )
            .await?;
            wire = sizes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_u64())
                .sum();
        }
        page.close().await?;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "\nconsole (/console, its own wasm): {:.1} KB gzip on the wire; navigation to its first usable form \
         median {:.0} ms (min {:.0}, max {:.0}) over {LOADS} cold loads on loopback",
        wire as f64 / 1000.0,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

/// A slow mobile network: 1.6 Mbps down, 750 kbps up, 150 ms round trips.
const SLOW: (f64, f64, f64) = (150.0, 1_600_000.0 / 8.0, 750_000.0 / 8.0);

const SLOW_LOADS: usize = 5;

/// The first open of the panel from a host page on [`SLOW`]: cold (the
/// visitor clicks the launcher before anything of the panel has loaded)
/// and preloaded (they click after the loader's idle preload). Timed from
/// the click to the panel's hello (its composer is live), or to the panel
/// shown when it had already said hello. The host page is served from
/// 127.0.0.1 like the server, so the iframe shares the page's renderer and
/// its throttling.
async fn slow_network(h: &Harness) -> anyhow::Result<()> {
    let host = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title></head>\
         <body><h1>Acme shop</h1><script>window.__t = {{}}; window.PortholeReady = 0;</script>\
         <script src=\"{}/widget.js\" data-widget-id=\"{WIDGET}\" data-key=\"{KEY}\"></script>\
         <script>Porthole('on', 'ready', () => {{ __t.ready = performance.now(); }}); \
         Porthole('on', 'open', () => {{ __t.open = performance.now(); }});</script></body></html>",
        h.base
    );
    let addr = serve_pages(std::collections::HashMap::from([(
        "/".to_owned(),
        (host, vec![]),
    )]))
    .await?;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let launcher = "document.querySelector('porthole-widget').shadowRoot.querySelector('button')";
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..SLOW_LOADS {
        // Cold: click as soon as the launcher is there.
        let page = slow_page(h).await?;
        page.goto(&url).await?;
        wait_for(
            &page,
            &format!("!!document.querySelector('porthole-widget') && !!{launcher}"),
            Duration::from_secs(30),
        )
        .await?;
        eval(
            &page,
            &format!("__t.click = performance.now(); {launcher}.click(); 1"),
        )
        .await?;
        let t = wait_for(
            &page,
            "__t.ready && __t.ready - __t.click",
            Duration::from_secs(60),
        )
        .await
        .context("the cold panel never said hello")?;
        cold.push(t.as_f64().unwrap_or(0.0));
        page.close().await?;

        // Preloaded: wait for the idle preload's hello, then click.
        let page = slow_page(h).await?;
        page.goto(&url).await?;
        wait_for(&page, "__t.ready", Duration::from_secs(60))
            .await
            .context("the idle preload never finished")?;
        eval(
            &page,
            &format!("__t.click = performance.now(); {launcher}.click(); 1"),
        )
        .await?;
        let shown = "document.querySelector('porthole-widget').shadowRoot.querySelector('div.shown') \
             ? performance.now() - __t.click : null";
        let t = wait_for(&page, shown, Duration::from_secs(30)).await?;
        warm.push(t.as_f64().unwrap_or(0.0));
        page.close().await?;
    }
    cold.sort_by(f64::total_cmp);
    warm.sort_by(f64::total_cmp);
    println!(
        "\nfirst open on a slow network (1.6 Mbps, 150 ms round trips), median of {SLOW_LOADS}:\n\
         {:<44} {:>7.0} ms   goal <= 2500 ms  (min {:.0}, max {:.0})\n\
         {:<44} {:>7.0} ms   goal <= 300 ms   (min {:.0}, max {:.0})",
        "cold: click to interactive panel",
        cold[cold.len() / 2],
        cold[0],
        cold[cold.len() - 1],
        "after the idle preload: click to panel",
        warm[warm.len() / 2],
        warm[0],
        warm[warm.len() - 1],
    );
    Ok(())
}

/// A tab with an empty cache on the slow network. (The protocol marks
/// `emulateNetworkConditions` deprecated for a per-rule form; the old one
/// still throttles the whole tab in one call, in every Chromium we meet.)
#[allow(deprecated)]
async fn slow_page(h: &Harness) -> anyhow::Result<Page> {
    let page = h.browser.new_page("about:blank").await?;
    page.execute(EnableParams::default()).await?;
    page.execute(SetCacheDisabledParams::new(true)).await?;
    page.execute(EmulateNetworkConditionsParams::new(
        false, SLOW.0, SLOW.1, SLOW.2,
    ))
    .await?;
    Ok(page)
}

/// Where the wasm's bytes go: each function's code attributed to the crate
/// it comes from (by its mangled name, in the build before wasm-opt, which
/// keeps the names), as a share of the code and of the gzip download.
/// Approximate: wasm-opt shrinks crates unevenly.
fn wasm_by_crate(wasm_gzip: u64) -> anyhow::Result<()> {
    use wasmparser::{KnownCustom, Name, Parser, Payload, TypeRef};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm-nightly/wasm32-unknown-unknown/release-wasm/widget-app.wasm");
    let Ok(bytes) = std::fs::read(&path) else {
        println!(
            "\n(the wasm by crate: {} is missing; scripts/build-widget makes it)",
            path.display()
        );
        return Ok(());
    };
    let mut imported = 0u32;
    let mut bodies = Vec::new();
    let mut names = std::collections::HashMap::new();
    let mut data = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader {
                    if matches!(import?.ty, TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body.range().len()),
            Payload::DataSection(reader) => data += reader.range().len(),
            Payload::CustomSection(reader) => {
                if let KnownCustom::Name(names_reader) = reader.as_known() {
                    for part in names_reader {
                        if let Name::Function(map) = part? {
                            for naming in map {
                                let naming = naming?;
                                names.insert(naming.index, naming.name.to_owned());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut by_crate: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, size) in bodies.iter().enumerate() {
        let name = names.get(&(imported + i as u32)).map_or("", String::as_str);
        // wasm-bindgen runs these at build time and drops them.
        if name.starts_with("__wbindgen_describe") {
            continue;
        }
        *by_crate.entry(crate_of(name)).or_default() += size;
    }
    *by_crate
        .entry("(data: strings, tables)".to_owned())
        .or_default() += data;
    let total: usize = by_crate.values().sum();
    let mut rows: Vec<_> = by_crate.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!(
        "\nthe wasm by crate (share of code and data before wasm-opt; KB of the gzip download by that share)"
    );
    let mut rest = 0;
    for (i, (name, size)) in rows.iter().enumerate() {
        if i >= 14 {
            rest += size;
            continue;
        }
        let share = *size as f64 / total as f64;
        println!(
            "  {name:<42} {:>5.1} %   ~{:>5.1} KB",
            share * 100.0,
            share * wasm_gzip as f64 / 1000.0
        );
    }
    let share = rest as f64 / total as f64;
    println!(
        "  {:<42} {:>5.1} %   ~{:>5.1} KB",
        "(the rest)",
        share * 100.0,
        share * wasm_gzip as f64 / 1000.0
    );
    Ok(())
}

/// The crate a function comes from: the first path segment of its
/// demangled name (the implementing type's crate for `<T as Trait>::f`).
fn crate_of(mangled: &str) -> String {
    if mangled.starts_with("__wbg") || mangled.starts_with("__wbindgen") {
        return "wasm-bindgen (JS bindings)".to_owned();
    }
    let demangled = format!("{:#}", rustc_demangle::demangle(mangled));
    let path = demangled.trim_start_matches(['<', '&', '*', '(', '[']);
    let path = path.strip_prefix("mut ").unwrap_or(path);
    let path = path.strip_prefix("dyn ").unwrap_or(path);
    let first = path.split("::").next().unwrap_or(path);
    if first.is_empty() || !first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return "(other)".to_owned();
    }
    match first {
        "core" | "alloc" | "std" | "dlmalloc" | "hashbrown" => format!("{first} (Rust's library)"),
        _ => first.to_owned(),
    }
}

fn gzip_bytes(body: &[u8]) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body)?;
    Ok(enc.finish()?.len() as u64)
}
