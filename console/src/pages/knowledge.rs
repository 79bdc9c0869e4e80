//! Knowledge: a widget's sources with their sync's progress and per-page
//! errors; adding a site, a page, a file, text or FAQs; re-syncing and
//! removing; and "try a question", which shows the chunks a turn would be
//! grounded in, with their scores and links.

use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen_futures::JsFuture;
use web_sys::{FileReader, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use super::shell::SectionProps;
use super::{encode, sleep, use_widgets, value, when, widget_picker};
use crate::api::{self, Failure, NONE};

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Source {
    id: String,
    kind: String,
    name: String,
    url: Option<String>,
    status: String,
    pages_total: u32,
    pages_done: u32,
    pages_failed: u32,
    chunks: u32,
    chunks_embedded: u32,
    error: Option<String>,
    synced_at: Option<u64>,
}

impl Source {
    fn busy(&self) -> bool {
        self.status == "pending" || self.status == "syncing"
    }

    fn progress(&self) -> String {
        let failed = if self.pages_failed > 0 {
            format!(", {} failed", self.pages_failed)
        } else {
            String::new()
        };
        if self.pages_total == 0 {
            return if self.busy() {
                "Looking for pages…".into()
            } else {
                String::new()
            };
        }
        format!(
            "{} of {} pages{failed}",
            self.pages_done.min(self.pages_total),
            self.pages_total
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct PageError {
    url: String,
    error: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Detail {
    #[serde(flatten)]
    source: Source,
    page_errors: Vec<PageError>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Candidate {
    n: Option<u32>,
    title: String,
    url: Option<String>,
    origin: String,
    kind: String,
    snippet: String,
    coverage: f64,
    similarity: Option<f32>,
    relevant: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Preview {
    total_chunks: u64,
    unanswered: bool,
    faq_verbatim: bool,
    min_relevance: f64,
    min_similarity: Option<f32>,
    candidates: Vec<Candidate>,
}

/// The chosen file's name and its bytes in base64 (the browser's
/// `FileReader` encodes them, so no encoder is compiled in).
async fn read_file(input: &NodeRef) -> Result<(String, String), String> {
    let file = input
        .cast::<HtmlInputElement>()
        .and_then(|i| i.files())
        .and_then(|f| f.get(0))
        .ok_or("Choose a file first.")?;
    let reader = FileReader::new().map_err(|_| "The browser cannot read files.")?;
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        let ok = Closure::once_into_js(move || {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        });
        let bad = Closure::once_into_js(move || {
            let _ = reject.call0(&wasm_bindgen::JsValue::NULL);
        });
        reader.set_onload(Some(ok.unchecked_ref()));
        reader.set_onerror(Some(bad.unchecked_ref()));
    });
    reader
        .read_as_data_url(&file)
        .map_err(|_| "The file could not be read.")?;
    JsFuture::from(done)
        .await
        .map_err(|_| "The file could not be read.")?;
    let url = reader
        .result()
        .ok()
        .and_then(|r| r.as_string())
        .unwrap_or_default();
    let base64 = url.split_once(',').map(|(_, b)| b).unwrap_or_default();
    Ok((file.name(), base64.to_owned()))
}

fn status_label(s: &Source) -> &'static str {
    match s.status.as_str() {
        "pending" => "Waiting",
        "syncing" => "Syncing",
        "ready" => "Ready",
        "failed" => "Failed",
        _ => "Unknown",
    }
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "site" => "Site",
        "url" => "Page",
        "file" => "File",
        "text" => "Text",
        "faq" => "FAQ",
        _ => "Other",
    }
}

#[function_component(Knowledge)]
pub fn knowledge(props: &SectionProps) -> Html {
    let (widgets, widget) = use_widgets(props.on_failure.clone());
    let list = use_state(|| None::<Result<Vec<Source>, String>>);
    // Bumped to load the list again: after a change, and each second
    // while a sync runs.
    let tick = use_state(|| 0u32);
    let detail = use_state(|| None::<Result<Detail, String>>);
    let notice = use_state(|| None::<Result<String, String>>);
    let kind = use_state(|| "site".to_owned());
    let preview = use_state(|| None::<Result<Preview, String>>);
    let (url, name, text, file, question) = (
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    );
    let can_edit = props.session.user.can_edit();
    let csrf = props.session.csrf.clone();

    {
        let (list, tick, on_failure) = (list.clone(), tick.clone(), props.on_failure.clone());
        use_effect_with(((*widget).clone(), *tick), move |(id, n)| {
            let (id, n) = (id.clone(), *n);
            if let Some(id) = id {
                wasm_bindgen_futures::spawn_local(async move {
                    let path = format!("/api/v1/admin/widgets/{}/sources", encode(&id));
                    match api::json::<Vec<Source>>("GET", &path, NONE, None).await {
                        Ok(sources) => {
                            let busy = sources.iter().any(Source::busy);
                            list.set(Some(Ok(sources)));
                            if busy {
                                sleep(1000).await;
                                tick.set(n.wrapping_add(1));
                            }
                        }
                        Err(f) => {
                            list.set(Some(Err(f.message.clone())));
                            on_failure.emit(f);
                        }
                    }
                });
            }
        });
    }
    {
        let (detail, preview, notice) = (detail.clone(), preview.clone(), notice.clone());
        use_effect_with((*widget).clone(), move |_| {
            detail.set(None);
            preview.set(None);
            notice.set(None);
        });
    }

    // What a change's answer does: a notice, the list again.
    let finish = {
        let (notice, tick, on_failure) = (notice.clone(), tick.clone(), props.on_failure.clone());
        move |result: Result<String, Failure>| {
            match result {
                Ok(done) => notice.set(Some(Ok(done))),
                Err(f) => {
                    notice.set(Some(Err(f.message.clone())));
                    on_failure.emit(f);
                }
            }
            tick.set(tick.wrapping_add(1));
        }
    };

    let onadd = {
        let (widget, kind, csrf, finish) =
            (widget.clone(), kind.clone(), csrf.clone(), finish.clone());
        let (url_ref, name_ref, text_ref, file) =
            (url.clone(), name.clone(), text.clone(), file.clone());
        let notice = notice.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(id) = (*widget).clone() else { return };
            let kind = (*kind).clone();
            let name_given = value(&name_ref);
            let name_given = (!name_given.trim().is_empty()).then(|| name_given.trim().to_owned());
            let url = value(&url_ref);
            let text = text_ref
                .cast::<HtmlTextAreaElement>()
                .map(|t| t.value())
                .unwrap_or_default();
            let (file, csrf, finish, notice) =
                (file.clone(), csrf.clone(), finish.clone(), notice.clone());
            let (url_node, name_node, text_node) =
                (url_ref.clone(), name_ref.clone(), text_ref.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let body = match kind.as_str() {
                    "site" | "url" => json!({"kind": kind, "url": url.trim(), "name": name_given}),
                    "file" => match read_file(&file).await {
                        Ok((file_name, content)) => json!({
                            "kind": "file",
                            "name": name_given.unwrap_or(file_name),
                            "content_base64": content,
                        }),
                        Err(e) => {
                            notice.set(Some(Err(e)));
                            return;
                        }
                    },
                    _ => json!({"kind": kind, "text": text, "name": name_given}),
                };
                let path = format!("/api/v1/admin/widgets/{}/sources", encode(&id));
                let added = api::json::<Source>("POST", &path, Some(&body), Some(&csrf)).await;
                if added.is_ok() {
                    // Accepted: the form is ready for the next one.
                    for node in [&url_node, &name_node, &file] {
                        if let Some(i) = node.cast::<HtmlInputElement>() {
                            i.set_value("");
                        }
                    }
                    if let Some(t) = text_node.cast::<HtmlTextAreaElement>() {
                        t.set_value("");
                    }
                }
                finish(added.map(|s| format!("Added “{}”.", s.name)));
            });
        })
    };

    let resync = |s: &Source| {
        let (widget, csrf, finish) = (widget.clone(), csrf.clone(), finish.clone());
        let (source, label) = (s.id.clone(), s.name.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(id) = (*widget).clone() else { return };
            let (csrf, finish, source, label) =
                (csrf.clone(), finish.clone(), source.clone(), label.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!(
                    "/api/v1/admin/widgets/{}/sources/{}/sync",
                    encode(&id),
                    encode(&source)
                );
                let done = api::empty("POST", &path, NONE, Some(&csrf)).await;
                finish(done.map(|()| format!("Syncing “{label}” again.")));
            });
        })
    };
    let remove = |s: &Source| {
        let (widget, csrf, finish, detail) =
            (widget.clone(), csrf.clone(), finish.clone(), detail.clone());
        let (source, label, chunks) = (s.id.clone(), s.name.clone(), s.chunks);
        Callback::from(move |_: MouseEvent| {
            let Some(id) = (*widget).clone() else { return };
            let ask = format!(
                "Remove “{label}”? Its {chunks} chunks leave the index now, and answers stop citing it."
            );
            let sure = web_sys::window()
                .and_then(|w| w.confirm_with_message(&ask).ok())
                .unwrap_or(false);
            if !sure {
                return;
            }
            let (csrf, finish, source, label, detail) = (
                csrf.clone(),
                finish.clone(),
                source.clone(),
                label.clone(),
                detail.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!(
                    "/api/v1/admin/widgets/{}/sources/{}",
                    encode(&id),
                    encode(&source)
                );
                let done = api::empty("DELETE", &path, NONE, Some(&csrf)).await;
                if done.is_ok() {
                    detail.set(None);
                }
                finish(done.map(|()| format!("Removed “{label}”.")));
            });
        })
    };
    let show = |s: &Source| {
        let (widget, detail, on_failure) =
            (widget.clone(), detail.clone(), props.on_failure.clone());
        let source = s.id.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(id) = (*widget).clone() else { return };
            let (detail, on_failure, source) = (detail.clone(), on_failure.clone(), source.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!(
                    "/api/v1/admin/widgets/{}/sources/{}",
                    encode(&id),
                    encode(&source)
                );
                match api::json::<Detail>("GET", &path, NONE, None).await {
                    Ok(d) => detail.set(Some(Ok(d))),
                    Err(f) => {
                        detail.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    let ontry = {
        let (widget, preview, question, on_failure) = (
            widget.clone(),
            preview.clone(),
            question.clone(),
            props.on_failure.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(id) = (*widget).clone() else { return };
            let q = value(&question);
            let (preview, on_failure) = (preview.clone(), on_failure.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!(
                    "/api/v1/admin/widgets/{}/retrieval?q={}",
                    encode(&id),
                    encode(&q)
                );
                match api::json::<Preview>("GET", &path, NONE, None).await {
                    Ok(p) => preview.set(Some(Ok(p))),
                    Err(f) => {
                        preview.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    let choose_kind = {
        let kind = kind.clone();
        Callback::from(move |e: Event| {
            if let Some(s) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlSelectElement>().ok())
            {
                kind.set(s.value());
            }
        })
    };

    let rows = match &*list {
        None => html! { <p class="muted" role="status">{ "Loading sources…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(sources)) if sources.is_empty() => html! {
            <p class="muted">{ "No knowledge yet: the assistant answers from its system prompt alone." }</p>
        },
        Some(Ok(sources)) => html! {
            <table aria-label="Sources">
                <thead><tr>
                    <th>{ "Source" }</th><th>{ "Kind" }</th><th>{ "Status" }</th><th>{ "Progress" }</th>
                    <th>{ "Chunks" }</th><th>{ "Last synced" }</th><th></th>
                </tr></thead>
                <tbody>
                    { for sources.iter().map(|s| {
                        let total = s.pages_total.max(1);
                        let embedded = if s.chunks_embedded > 0 {
                            format!(" ({} embedded)", s.chunks_embedded)
                        } else {
                            String::new()
                        };
                        html! {
                            <tr key={s.id.clone()}>
                                <td>
                                    { s.name.clone() }
                                    if let Some(u) = &s.url {
                                        if u != &s.name { <br /><span class="muted small">{ u.clone() }</span> }
                                    }
                                    if let Some(e) = &s.error { <br /><span class="bad small">{ e.clone() }</span> }
                                </td>
                                <td>{ kind_label(&s.kind) }</td>
                                <td><span class={classes!("pill", s.status.clone())}>{ status_label(s) }</span></td>
                                <td>
                                    if s.busy() && s.pages_total > 0 {
                                        <progress max={total.to_string()} value={s.pages_done.min(total).to_string()}
                                            aria-label={format!("{} progress", s.name)}></progress>
                                    }
                                    <span class="small">{ s.progress() }</span>
                                </td>
                                <td>{ format!("{}{embedded}", s.chunks) }</td>
                                <td>{ s.synced_at.map(when).unwrap_or_else(|| "never".into()) }</td>
                                <td class="buttons">
                                    <button type="button" aria-label={format!("Details of {}", s.name)} onclick={show(s)}>{ "Details" }</button>
                                    if can_edit {
                                        <button type="button" aria-label={format!("Re-sync {}", s.name)} disabled={s.busy()} onclick={resync(s)}>{ "Re-sync" }</button>
                                        <button type="button" aria-label={format!("Remove {}", s.name)} onclick={remove(s)}>{ "Remove" }</button>
                                    }
                                </td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };

    let details = match &*detail {
        None => html! {},
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(d)) => html! {
            <section aria-label="Source details" class="card">
                <h2>{ d.source.name.clone() }</h2>
                <p class="muted">{ format!("{} · {} · {} chunks", kind_label(&d.source.kind), status_label(&d.source), d.source.chunks) }</p>
                if d.page_errors.is_empty() {
                    <p>{ "Every page was read." }</p>
                } else {
                    <h3>{ match d.page_errors.len() {
                        1 => "1 page could not be read".to_owned(),
                        n => format!("{n} pages could not be read"),
                    } }</h3>
                    <table aria-label="Page errors">
                        <thead><tr><th>{ "Page" }</th><th>{ "Why" }</th></tr></thead>
                        <tbody>
                            { for d.page_errors.iter().map(|e| html! {
                                <tr><td><code>{ e.url.clone() }</code></td><td>{ e.error.clone() }</td></tr>
                            }) }
                        </tbody>
                    </table>
                }
            </section>
        },
    };

    let input_for_kind = match kind.as_str() {
        "site" | "url" => html! {
            <div>
                <label for="source-url">{ if *kind == "site" { "The site's address or sitemap" } else { "The page's address" } }</label>
                <input id="source-url" ref={url.clone()} type="url" required=true placeholder="https://docs.example.com/" />
            </div>
        },
        "file" => html! {
            <div>
                <label for="source-file">{ "File (PDF, Word, HTML, markdown, text, or an FAQ CSV)" }</label>
                <input id="source-file" ref={file.clone()} type="file" required=true
                    accept=".pdf,.docx,.html,.htm,.md,.markdown,.txt,.csv" />
            </div>
        },
        "faq" => html! {
            <div>
                <label for="source-text">{ "Questions and answers, one per line as CSV: question,answer" }</label>
                <textarea id="source-text" ref={text.clone()} rows="6" required=true
                    placeholder={"question,answer\nDo you ship abroad?,Yes: to 40 countries."} />
            </div>
        },
        _ => html! {
            <div>
                <label for="source-text">{ "Text (markdown)" }</label>
                <textarea id="source-text" ref={text.clone()} rows="6" required=true />
            </div>
        },
    };

    let tried = match &*preview {
        None => html! {},
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(p)) => {
            let verdict = if p.total_chunks == 0 {
                "This widget has no knowledge yet: the model would answer from its system prompt alone.".to_owned()
            } else if p.unanswered {
                "Nothing covers this question: the visitor would get the “I don't know” reply, and it would be listed under questions to fix.".to_owned()
            } else if p.faq_verbatim {
                "A FAQ matches closely: its answer would be given as written.".to_owned()
            } else {
                let used = p.candidates.iter().filter(|c| c.n.is_some()).count();
                format!("The answer would be grounded in {used} of these passages.")
            };
            let threshold = match p.min_similarity {
                Some(s) => format!(
                    "Relevant: coverage at least {:.2} or similarity at least {s:.2}; searched {} chunks.",
                    p.min_relevance, p.total_chunks
                ),
                None => format!(
                    "Relevant: coverage at least {:.2}; searched {} chunks.",
                    p.min_relevance, p.total_chunks
                ),
            };
            html! {
                <section aria-label="Retrieval">
                    <p class={if p.unanswered { "error" } else { "ok" }} role="status">{ verdict }</p>
                    <p class="muted small">{ threshold }</p>
                    if !p.candidates.is_empty() {
                        <table aria-label="Retrieved chunks">
                            <thead><tr><th>{ "#" }</th><th>{ "Passage" }</th><th>{ "Coverage" }</th><th>{ "Similarity" }</th></tr></thead>
                            <tbody>
                                { for p.candidates.iter().map(|c| html! {
                                    <tr class={classes!((!c.relevant).then_some("faded"))}>
                                        <td>{ c.n.map(|n| format!("[{n}]")).unwrap_or_else(|| if c.relevant { "unused".into() } else { "below threshold".into() }) }</td>
                                        <td>
                                            if let Some(u) = &c.url {
                                                <a href={u.clone()} target="_blank" rel="noopener noreferrer">{ c.title.clone() }</a>
                                            } else {
                                                <strong>{ c.title.clone() }</strong>
                                            }
                                            <span class="muted small">{ format!(" · {} · {}", kind_label(&c.kind), c.origin) }</span>
                                            <br /><span class="small" dir="auto">{ c.snippet.clone() }</span>
                                        </td>
                                        <td>{ format!("{:.2}", c.coverage) }</td>
                                        <td>{ c.similarity.map(|s| format!("{s:.2}")).unwrap_or_else(|| "–".into()) }</td>
                                    </tr>
                                }) }
                            </tbody>
                        </table>
                    }
                </section>
            }
        }
    };

    html! {
        <>
            <h1>{ "Knowledge" }</h1>
            { widget_picker("knowledge-widget", &widgets, &widget) }
            <h2>{ "Sources" }</h2>
            { rows }
            if let Some(n) = &*notice {
                { match n {
                    Ok(m) => html! { <p class="ok" role="status">{ m.clone() }</p> },
                    Err(m) => html! { <p class="error" role="alert">{ m.clone() }</p> },
                } }
            }
            { details }
            if can_edit {
                <h2>{ "Add knowledge" }</h2>
                <form class="card" onsubmit={onadd} aria-label="Add knowledge">
                    <label for="source-kind">{ "What" }</label>
                    <select id="source-kind" onchange={choose_kind}>
                        <option value="site" selected={*kind == "site"}>{ "A whole site (follows its sitemap or links)" }</option>
                        <option value="url" selected={*kind == "url"}>{ "One page" }</option>
                        <option value="file" selected={*kind == "file"}>{ "A file" }</option>
                        <option value="faq" selected={*kind == "faq"}>{ "FAQs" }</option>
                        <option value="text" selected={*kind == "text"}>{ "Text" }</option>
                    </select>
                    { input_for_kind }
                    <label for="source-name">{ "Name (optional)" }</label>
                    <input id="source-name" ref={name.clone()} maxlength="200" />
                    <div class="actions"><button class="primary" type="submit">{ "Add" }</button></div>
                </form>
            }
            <h2>{ "Try a question" }</h2>
            <form class="row try" onsubmit={ontry} aria-label="Try a question">
                <div>
                    <label for="try-question">{ "A question a visitor might ask" }</label>
                    <input id="try-question" ref={question.clone()} required=true maxlength="2000" />
                </div>
                <div></div>
                <button type="submit">{ "Show what it retrieves" }</button>
            </form>
            { tried }
        </>
    }
}
