//! One widget's settings, with a live preview: the real widget panel in an
//! iframe, showing the draft before it is saved.

use serde_json::{Map, Value, json};
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use super::encode;
use super::shell::SectionProps;
use crate::api::{self, NONE};

#[derive(Properties, PartialEq, Debug)]
pub struct EditorProps {
    pub id: String,
    pub section: SectionProps,
    pub on_close: Callback<()>,
}

/// The fields the editor changes, as the admin API names them.
#[derive(Debug, Clone, PartialEq, Default)]
struct Draft {
    title: String,
    greeting: String,
    starters: String,
    primary: String,
    mode: String,
    radius: String,
    system_prompt: String,
    unknown_reply: String,
    allowed_sites: String,
    font: String,
    /// An https:// image for the header; empty: the title's first letter.
    avatar: String,
    /// Empty: the server's model and settings.
    model: String,
    temperature: String,
    max_tokens: String,
    /// Each of [`LIMITS`], as typed; empty: the server's default.
    limits: Vec<String>,
    /// The stored theme, for any field the editor does not show.
    theme: Value,
}

/// The font stacks offered (system fonts only: the panel downloads none).
const FONTS: [(&str, &str); 4] = [
    (
        "System sans-serif",
        "system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif",
    ),
    ("Serif", "Georgia, \"Times New Roman\", serif"),
    (
        "Rounded",
        "ui-rounded, \"SF Pro Rounded\", system-ui, sans-serif",
    ),
    (
        "Monospace",
        "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    ),
];

/// The widget's own limits: the API's name, the label, the input's id.
const LIMITS: [(&str, &str, &str); 7] = [
    (
        "requests_per_minute_per_session",
        "Questions a minute per visitor",
        "w-rpm-session",
    ),
    (
        "requests_per_minute_per_ip",
        "Questions a minute per address",
        "w-rpm-ip",
    ),
    (
        "requests_per_minute_per_key",
        "Questions a minute for the widget",
        "w-rpm-key",
    ),
    (
        "concurrent_streams_per_session",
        "Answers at once per visitor",
        "w-streams",
    ),
    (
        "history_tokens",
        "Earlier conversation sent to the model (tokens)",
        "w-history",
    ),
    (
        "daily_tokens",
        "Tokens a day (0: no limit)",
        "w-daily-tokens",
    ),
    (
        "monthly_tokens",
        "Tokens a month (0: no limit)",
        "w-monthly-tokens",
    ),
];

/// A number field: `null` when empty (the default), the number, or the
/// text as typed so the server names what is wrong with it.
fn number(text: &str) -> Value {
    let t = text.trim();
    if t.is_empty() {
        Value::Null
    } else if let Ok(n) = t.parse::<u64>() {
        json!(n)
    } else if let Ok(f) = t.parse::<f64>() {
        json!(f)
    } else {
        json!(t)
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Draft {
    fn from_def(def: &Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let list = |v: &Value| {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default()
        };
        Self {
            title: text(&def["title"]),
            greeting: text(&def["greeting"]),
            starters: list(&def["starters"]),
            primary: text(&def["theme"]["primary"]),
            mode: text(&def["theme"]["mode"]),
            radius: def["theme"]["radius"].as_u64().unwrap_or(12).to_string(),
            system_prompt: text(&def["system_prompt"]),
            unknown_reply: text(&def["unknown_reply"]),
            allowed_sites: list(&def["allowed_sites"]),
            font: text(&def["theme"]["font"]),
            avatar: text(&def["theme"]["avatar"]),
            model: text(&def["model"]),
            temperature: def["temperature"]
                .as_f64()
                .map(|t| {
                    // Stored as a 32-bit float: shown to two places, as typed.
                    ((t * 100.0).round() / 100.0).to_string()
                })
                .unwrap_or_default(),
            max_tokens: def["max_tokens"]
                .as_u64()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            limits: LIMITS
                .iter()
                .map(|(k, _, _)| {
                    def["limits"][*k]
                        .as_u64()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                })
                .collect(),
            theme: def["theme"].clone(),
        }
    }

    /// The PATCH body (and the preview's draft).
    fn body(&self) -> Value {
        let mut theme = self.theme.as_object().cloned().unwrap_or_else(Map::new);
        theme.insert("primary".into(), json!(self.primary));
        theme.insert("mode".into(), json!(self.mode));
        theme.insert(
            "radius".into(),
            json!(self.radius.trim().parse::<u8>().unwrap_or(12)),
        );
        if !self.font.is_empty() {
            theme.insert("font".into(), json!(self.font));
        }
        theme.insert("avatar".into(), json!(self.avatar.trim()));
        let limits: Map<String, Value> = LIMITS
            .iter()
            .zip(&self.limits)
            .map(|((k, _, _), v)| ((*k).to_owned(), number(v)))
            .collect();
        let model = self.model.trim();
        json!({
            "model": if model.is_empty() { Value::Null } else { json!(model) },
            "temperature": number(&self.temperature),
            "max_tokens": number(&self.max_tokens),
            "limits": limits,
            "title": self.title,
            "greeting": self.greeting,
            "starters": lines(&self.starters),
            "theme": theme,
            "system_prompt": self.system_prompt,
            "unknown_reply": self.unknown_reply,
            "allowed_sites": lines(&self.allowed_sites),
        })
    }
}

/// The value of the input, select or textarea an event came from.
fn event_value(e: &Event) -> String {
    let Some(target) = e.target() else {
        return String::new();
    };
    if let Some(i) = target.dyn_ref::<HtmlInputElement>() {
        i.value()
    } else if let Some(s) = target.dyn_ref::<HtmlSelectElement>() {
        s.value()
    } else if let Some(t) = target.dyn_ref::<HtmlTextAreaElement>() {
        t.value()
    } else {
        String::new()
    }
}

#[function_component(Editor)]
pub fn editor(props: &EditorProps) -> Html {
    let draft = use_state(|| None::<Draft>);
    let saved = use_state(|| None::<Draft>);
    let notice = use_state(|| None::<Result<String, String>>);
    let confirm_rotate = use_state(|| false);
    let session = &props.section.session;
    let can_edit = session.user.can_edit();
    {
        let (draft, saved, on_failure, id) = (
            draft.clone(),
            saved.clone(),
            props.section.on_failure.clone(),
            props.id.clone(),
        );
        use_effect_with(props.id.clone(), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!("/api/v1/admin/widgets/{}", encode(&id));
                match api::json::<Value>("GET", &path, NONE, None).await {
                    Ok(def) => {
                        let d = Draft::from_def(&def);
                        saved.set(Some(d.clone()));
                        draft.set(Some(d));
                    }
                    Err(f) => on_failure.emit(f),
                }
            });
        });
    }
    let Some(current) = (*draft).clone() else {
        return html! { <p class="muted" role="status">{ "Loading the widget…" }</p> };
    };
    let field = |set: fn(&mut Draft, String)| {
        let draft = draft.clone();
        Callback::from(move |e: Event| {
            if let Some(mut d) = (*draft).clone() {
                set(&mut d, event_value(&e));
                draft.set(Some(d));
            }
        })
    };
    let input = |set: fn(&mut Draft, String)| {
        let change = field(set);
        Callback::from(move |e: InputEvent| change.emit(e.into()))
    };
    let onsave = {
        let (draft, saved, notice, on_failure, csrf, id) = (
            draft.clone(),
            saved.clone(),
            notice.clone(),
            props.section.on_failure.clone(),
            session.csrf.clone(),
            props.id.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(d) = (*draft).clone() else { return };
            let (saved, notice, on_failure, csrf, id, draft) = (
                saved.clone(),
                notice.clone(),
                on_failure.clone(),
                csrf.clone(),
                id.clone(),
                draft.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!("/api/v1/admin/widgets/{}", encode(&id));
                match api::json::<Value>("PATCH", &path, Some(&d.body()), Some(&csrf)).await {
                    Ok(def) => {
                        let fresh = Draft::from_def(&def);
                        saved.set(Some(fresh.clone()));
                        draft.set(Some(fresh));
                        notice.set(Some(Ok(
                            "Saved. Visitors see it on their next page load.".into()
                        )));
                    }
                    Err(f) => {
                        notice.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    let onrotate = {
        let (notice, confirm, on_failure, csrf, id) = (
            notice.clone(),
            confirm_rotate.clone(),
            props.section.on_failure.clone(),
            session.csrf.clone(),
            props.id.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            if !*confirm {
                confirm.set(true);
                return;
            }
            confirm.set(false);
            let (notice, on_failure, csrf, id) =
                (notice.clone(), on_failure.clone(), csrf.clone(), id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!("/api/v1/admin/widgets/{}/rotate-key", encode(&id));
                match api::json::<Value>("POST", &path, NONE, Some(&csrf)).await {
                    Ok(r) => notice.set(Some(Ok(format!(
                        "New key made; pages with the old one no longer show the chat. The new snippet:\n{}",
                        r["embed"].as_str().unwrap_or_default()
                    )))),
                    Err(f) => {
                        notice.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    let preview = format!(
        "/console/preview/{}?draft={}",
        encode(&props.id),
        encode(&current.body().to_string())
    );
    let changed = saved.as_ref() != Some(&current);
    let back = props.on_close.reform(|_: MouseEvent| ());
    html! {
        <>
            <div class="actions"><button type="button" onclick={back}>{ "← All widgets" }</button></div>
            <h1>{ format!("{} ", current.title) }<code>{ props.id.clone() }</code></h1>
            <div class="editor">
                <form class="card" onsubmit={onsave}>
                    <fieldset disabled={!can_edit}>
                        <label for="w-title">{ "Title" }</label>
                        <input id="w-title" value={current.title.clone()} oninput={input(|d, v| d.title = v)} />
                        <label for="w-primary">{ "Colour" }</label>
                        <div class="pair">
                            <input id="w-primary-picker" type="color" aria-label="Colour picker" value={current.primary.clone()} oninput={input(|d, v| d.primary = v)} />
                            <input id="w-primary" value={current.primary.clone()} oninput={input(|d, v| d.primary = v)} aria-describedby="w-primary-note" />
                        </div>
                        <p id="w-primary-note" class="muted small" role="status">{ contrast_note(&current.primary) }</p>
                        <label for="w-mode">{ "Light or dark" }</label>
                        <select id="w-mode" onchange={field(|d, v| d.mode = v)}>
                            { for [("auto", "As the visitor's system"), ("light", "Light"), ("dark", "Dark")].into_iter().map(|(v, l)| html! {
                                <option value={v} selected={current.mode == v}>{ l }</option>
                            }) }
                        </select>
                        <label for="w-radius">{ "Corner radius (px)" }</label>
                        <input id="w-radius" type="number" min="0" max="32" value={current.radius.clone()} oninput={input(|d, v| d.radius = v)} />
                        <label for="w-font">{ "Font" }</label>
                        <select id="w-font" onchange={field(|d, v| d.font = v)}>
                            { for FONTS.iter().map(|(label, stack)| html! {
                                <option value={*stack} selected={current.font == *stack}>{ *label }</option>
                            }) }
                            if !current.font.is_empty() && !FONTS.iter().any(|(_, f)| *f == current.font) {
                                <option value={current.font.clone()} selected=true>{ format!("Custom: {}", current.font) }</option>
                            }
                        </select>
                        <label for="w-avatar">{ "Avatar: an https:// image address (empty: the title's first letter)" }</label>
                        <input id="w-avatar" type="url" value={current.avatar.clone()} placeholder="https://www.example.com/logo.png" oninput={input(|d, v| d.avatar = v)} />
                        <label for="w-greeting">{ "Greeting" }</label>
                        <textarea id="w-greeting" rows="2" value={current.greeting.clone()} oninput={input(|d, v| d.greeting = v)} />
                        <label for="w-starters">{ "Starter questions (one per line)" }</label>
                        <textarea id="w-starters" rows="3" value={current.starters.clone()} oninput={input(|d, v| d.starters = v)} />
                        <label for="w-prompt">{ "System prompt" }</label>
                        <textarea id="w-prompt" rows="4" value={current.system_prompt.clone()} oninput={input(|d, v| d.system_prompt = v)} />
                        <label for="w-unknown">{ "Reply when the knowledge has nothing (empty: the default)" }</label>
                        <textarea id="w-unknown" rows="2" value={current.unknown_reply.clone()} oninput={input(|d, v| d.unknown_reply = v)} />
                        <label for="w-sites">{ "Allowed sites (one origin per line; none: any site)" }</label>
                        <textarea id="w-sites" rows="2" value={current.allowed_sites.clone()} oninput={input(|d, v| d.allowed_sites = v)} />
                        <h2>{ "Model" }</h2>
                        <p class="muted small">{ "Empty fields use the server's settings." }</p>
                        <label for="w-model">{ "Model" }</label>
                        <input id="w-model" value={current.model.clone()} placeholder="the server's model" oninput={input(|d, v| d.model = v)} />
                        <div class="pair2">
                            <div>
                                <label for="w-temperature">{ "Temperature (0 to 2)" }</label>
                                <input id="w-temperature" type="number" min="0" max="2" step="0.1" value={current.temperature.clone()} oninput={input(|d, v| d.temperature = v)} />
                            </div>
                            <div>
                                <label for="w-max-tokens">{ "Longest answer (tokens)" }</label>
                                <input id="w-max-tokens" type="number" min="1" value={current.max_tokens.clone()} oninput={input(|d, v| d.max_tokens = v)} />
                            </div>
                        </div>
                        <h2>{ "Limits" }</h2>
                        <p class="muted small">{ "Empty fields use the server's [limits]." }</p>
                        <div class="pair2">
                            { for LIMITS.iter().enumerate().map(|(at, (_, label, id))| {
                                let draft = draft.clone();
                                let oninput = Callback::from(move |e: InputEvent| {
                                    if let Some(mut d) = (*draft).clone() {
                                        if let Some(slot) = d.limits.get_mut(at) {
                                            *slot = event_value(&e.into());
                                        }
                                        draft.set(Some(d));
                                    }
                                });
                                html! {
                                    <div>
                                        <label for={*id}>{ *label }</label>
                                        <input id={*id} type="number" min="0" value={current.limits.get(at).cloned().unwrap_or_default()} {oninput} />
                                    </div>
                                }
                            }) }
                        </div>
                        <div class="actions">
                            <button class="primary" type="submit" disabled={!changed}>{ "Save" }</button>
                            if changed { <span class="muted">{ "Unsaved changes: the preview shows them." }</span> }
                        </div>
                    </fieldset>
                    if session.user.is_owner() {
                        <h2>{ "Public key" }</h2>
                        <p class="muted">{ "A new key stops the chat at once on every page that still has the old snippet, until you paste the new one." }</p>
                        <div class="actions">
                            <button type="button" onclick={onrotate}>
                                { if *confirm_rotate { "Yes: make a new key; the old one stops working now" } else { "Make a new key…" } }
                            </button>
                        </div>
                    }
                    { match &*notice {
                        Some(Ok(m)) => html! { <pre class="ok" role="status">{ m.clone() }</pre> },
                        Some(Err(m)) => html! { <p class="error" role="alert">{ m.clone() }</p> },
                        None => html! {},
                    } }
                </form>
                <div class="preview">
                    <p class="muted">{ "Preview (the real panel, with the draft)" }</p>
                    <iframe title="Widget preview" src={preview}></iframe>
                </div>
            </div>
        </>
    }
}

/// What the server will do with an accent colour white text cannot be read
/// on (WCAG AA asks 4.5:1): it darkens it for visitors, and says so here
/// while the owner picks, as the CLI does when it is saved.
fn contrast_note(primary: &str) -> String {
    let theme = protocol::widget::Theme {
        primary: primary.to_owned(),
        ..Default::default()
    };
    match (
        protocol::widget::Theme::contrast_on_white(primary),
        theme.readable_primary(),
    ) {
        (Some(ratio), Some(readable)) => format!(
            "White text on {primary} has a contrast of {ratio:.1}:1, below the 4.5:1 WCAG AA asks: visitors see {readable} instead, as the preview shows."
        ),
        _ => String::new(),
    }
}
