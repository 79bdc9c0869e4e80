//! Webhooks: a widget's endpoints, the events each gets, its signing
//! secret (shown once, when made or replaced), and the delivery log with
//! each attempt's answer and a manual redelivery. Everyone signed in
//! reads; owners change.

use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::shell::SectionProps;
use super::{encode, sleep, use_widgets, value, when, widget_picker};
use crate::api::{self, NONE};

/// The events, with what each means to a site owner.
const EVENTS: [(&str, &str); 3] = [
    ("conversation.created", "a visitor starts a conversation"),
    ("message.completed", "an answer is complete"),
    ("feedback.created", "a visitor rates an answer"),
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Hook {
    id: String,
    url: String,
    events: Vec<String>,
    disabled: bool,
    created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct WithSecret {
    webhook: Hook,
    secret: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Delivery {
    id: String,
    event: String,
    payload: String,
    status: String,
    attempts: u32,
    next_at: u64,
    last_status: Option<u16>,
    last_error: Option<String>,
    created_at: u64,
    finished_at: Option<u64>,
}

fn status_label(d: &Delivery) -> String {
    match d.status.as_str() {
        "delivered" => "Delivered".into(),
        "failed" => "Failed: gave up".into(),
        _ if d.attempts == 0 => "Sending".into(),
        _ => format!("Retrying at {}", when(d.next_at)),
    }
}

#[function_component(Webhooks)]
pub fn webhooks(props: &SectionProps) -> Html {
    let (widgets, widget) = use_widgets(props.on_failure.clone());
    let hooks = use_state(|| None::<Result<Vec<Hook>, String>>);
    let tick = use_state(|| 0u32);
    let notice = use_state(|| None::<Result<String, String>>);
    let secret = use_state(|| None::<(String, String)>);
    let open = use_state(|| None::<String>);
    let log = use_state(|| None::<Result<Vec<Delivery>, String>>);
    let log_tick = use_state(|| 0u32);
    let url = use_node_ref();
    let is_owner = props.session.user.is_owner();
    let csrf = props.session.csrf.clone();

    {
        let (hooks, on_failure) = (hooks.clone(), props.on_failure.clone());
        use_effect_with(((*widget).clone(), *tick), move |(id, _)| {
            if let Some(id) = id.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let path = format!("/api/v1/admin/widgets/{}/webhooks", encode(&id));
                    match api::json::<Vec<Hook>>("GET", &path, NONE, None).await {
                        Ok(all) => hooks.set(Some(Ok(all))),
                        Err(f) => {
                            hooks.set(Some(Err(f.message.clone())));
                            on_failure.emit(f);
                        }
                    }
                });
            }
        });
    }
    // The open log, read again every two seconds while anything is on its way.
    {
        let (log, log_tick, on_failure) = (log.clone(), log_tick.clone(), props.on_failure.clone());
        use_effect_with(
            ((*widget).clone(), (*open).clone(), *log_tick),
            move |(id, hook, n)| {
                let n = *n;
                if let (Some(id), Some(hook)) = (id.clone(), hook.clone()) {
                    wasm_bindgen_futures::spawn_local(async move {
                        let path = format!(
                            "/api/v1/admin/widgets/{}/webhooks/{}/deliveries",
                            encode(&id),
                            encode(&hook)
                        );
                        match api::json::<Vec<Delivery>>("GET", &path, NONE, None).await {
                            Ok(all) => {
                                let busy = all.iter().any(|d| d.status == "pending");
                                log.set(Some(Ok(all)));
                                sleep(if busy { 1000 } else { 3000 }).await;
                                log_tick.set(n.wrapping_add(1));
                            }
                            Err(f) => {
                                log.set(Some(Err(f.message.clone())));
                                on_failure.emit(f);
                            }
                        }
                    });
                } else {
                    log.set(None);
                }
            },
        );
    }

    // After a change: say how it went and read the list again.
    let finish = {
        let (notice, tick, on_failure) = (notice.clone(), tick.clone(), props.on_failure.clone());
        move |r: Result<String, api::Failure>| {
            match r {
                Ok(m) => notice.set(Some(Ok(m))),
                Err(f) => {
                    notice.set(Some(Err(f.message.clone())));
                    on_failure.emit(f);
                }
            }
            tick.set(tick.wrapping_add(1));
        }
    };
    let onadd = {
        let (widget, csrf, url, finish, secret) = (
            widget.clone(),
            csrf.clone(),
            url.clone(),
            finish.clone(),
            secret.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(id) = (*widget).clone() else { return };
            let events: Vec<String> = EVENTS
                .iter()
                .filter(|(name, _)| {
                    web_sys::window()
                        .and_then(|w| w.document())
                        .and_then(|d| d.get_element_by_id(&format!("wh-ev-{name}")))
                        .and_then(|el| el.dyn_into::<HtmlInputElement>().ok())
                        .is_some_and(|i| i.checked())
                })
                .map(|(name, _)| (*name).to_owned())
                .collect();
            let body = json!({ "url": value(&url).trim(), "events": events });
            let (csrf, finish, secret, url) =
                (csrf.clone(), finish.clone(), secret.clone(), url.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!("/api/v1/admin/widgets/{}/webhooks", encode(&id));
                let made = api::json::<WithSecret>("POST", &path, Some(&body), Some(&csrf)).await;
                if let Ok(m) = &made {
                    secret.set(Some((m.webhook.url.clone(), m.secret.clone())));
                    if let Some(i) = url.cast::<HtmlInputElement>() {
                        i.set_value("");
                    }
                }
                finish(made.map(|m| format!("Webhook to {} added.", m.webhook.url)));
            });
        })
    };
    let change = |h: &Hook, what: &'static str| {
        let (widget, csrf, finish, secret, hook) = (
            widget.clone(),
            csrf.clone(),
            finish.clone(),
            secret.clone(),
            h.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let Some(id) = (*widget).clone() else { return };
            let ask = match what {
                "remove" => Some(format!(
                    "Remove the webhook to {}? It stops getting events now, and its delivery log goes with it.",
                    hook.url
                )),
                "rotate" => Some(format!(
                    "Make a new secret for {}? The old one stops signing at once: the receiver must be given the new one.",
                    hook.url
                )),
                _ => None,
            };
            if let Some(ask) = ask {
                let sure = web_sys::window()
                    .and_then(|w| w.confirm_with_message(&ask).ok())
                    .unwrap_or(false);
                if !sure {
                    return;
                }
            }
            let (csrf, finish, secret, hook) =
                (csrf.clone(), finish.clone(), secret.clone(), hook.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let base = format!(
                    "/api/v1/admin/widgets/{}/webhooks/{}",
                    encode(&id),
                    encode(&hook.id)
                );
                let done = match what {
                    "remove" => api::empty("DELETE", &base, NONE, Some(&csrf))
                        .await
                        .map(|()| format!("Webhook to {} removed.", hook.url)),
                    "rotate" => {
                        let path = format!("{base}/rotate-secret");
                        api::json::<WithSecret>("POST", &path, NONE, Some(&csrf))
                            .await
                            .map(|m| {
                                secret.set(Some((m.webhook.url.clone(), m.secret)));
                                format!("A new secret for {}.", m.webhook.url)
                            })
                    }
                    _ => {
                        let body = json!({ "disabled": !hook.disabled });
                        api::json::<Hook>("PATCH", &base, Some(&body), Some(&csrf))
                            .await
                            .map(|h| {
                                format!(
                                    "Webhook to {} {}.",
                                    h.url,
                                    if h.disabled { "paused" } else { "resumed" }
                                )
                            })
                    }
                };
                finish(done);
            });
        })
    };
    let toggle_log = |h: &Hook| {
        let (open, id) = (open.clone(), h.id.clone());
        Callback::from(move |_: MouseEvent| {
            open.set(if open.as_deref() == Some(id.as_str()) {
                None
            } else {
                Some(id.clone())
            })
        })
    };
    let redeliver = |d: &Delivery| {
        let (widget, open, csrf, notice, log_tick, on_failure) = (
            widget.clone(),
            open.clone(),
            csrf.clone(),
            notice.clone(),
            log_tick.clone(),
            props.on_failure.clone(),
        );
        let delivery = d.id.clone();
        Callback::from(move |_: MouseEvent| {
            let (Some(id), Some(hook)) = ((*widget).clone(), (*open).clone()) else {
                return;
            };
            let (csrf, notice, log_tick, on_failure, delivery) = (
                csrf.clone(),
                notice.clone(),
                log_tick.clone(),
                on_failure.clone(),
                delivery.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!(
                    "/api/v1/admin/widgets/{}/webhooks/{}/deliveries/{}/redeliver",
                    encode(&id),
                    encode(&hook),
                    encode(&delivery)
                );
                match api::empty("POST", &path, NONE, Some(&csrf)).await {
                    Ok(()) => notice.set(Some(Ok(format!("Sending {delivery} again.")))),
                    Err(f) => {
                        notice.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
                log_tick.set(log_tick.wrapping_add(1));
            });
        })
    };

    let open_url = match (&*open, &*hooks) {
        (Some(id), Some(Ok(all))) => all.iter().find(|h| &h.id == id).map(|h| h.url.clone()),
        _ => None,
    };
    let log_view = match (&*open, &*log) {
        (None, _) => html! {},
        (Some(_), None) => {
            html! { <p class="muted" role="status">{ "Loading the deliveries…" }</p> }
        }
        (Some(_), Some(Err(e))) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        (Some(_), Some(Ok(all))) if all.is_empty() => html! {
            <p class="muted" role="status">{ "Nothing sent yet: events come as visitors chat." }</p>
        },
        (Some(_), Some(Ok(all))) => html! {
            <table aria-label="Deliveries">
                <thead><tr>
                    <th>{ "Event" }</th><th>{ "Status" }</th><th>{ "Attempts" }</th>
                    <th>{ "Last answer" }</th><th>{ "Queued" }</th><th></th>
                </tr></thead>
                <tbody>
                    { for all.iter().map(|d| html! {
                        <tr key={d.id.clone()} data-status={d.status.clone()}>
                            <td>
                                <code>{ d.event.clone() }</code>
                                <details>
                                    <summary class="small">{ format!("Body ({})", d.id) }</summary>
                                    <pre>{ d.payload.clone() }</pre>
                                </details>
                            </td>
                            <td>
                                <span class={classes!("pill", match d.status.as_str() { "delivered" => "ready", "failed" => "failed", _ => "" })}>
                                    { status_label(d) }
                                </span>
                                if let Some(at) = d.finished_at { <br /><span class="muted small">{ when(at) }</span> }
                            </td>
                            <td>{ d.attempts }</td>
                            <td>
                                { d.last_status.map(|s| format!("HTTP {s}")).unwrap_or_default() }
                                if let Some(e) = d.last_error.as_ref().filter(|_| d.status != "delivered") {
                                    <br /><span class="bad small">{ e.clone() }</span>
                                }
                            </td>
                            <td>{ when(d.created_at) }</td>
                            <td class="buttons">
                                if is_owner && d.status != "pending" {
                                    <button type="button" aria-label={format!("Redeliver {}", d.id)} onclick={redeliver(d)}>{ "Redeliver" }</button>
                                }
                            </td>
                        </tr>
                    }) }
                </tbody>
            </table>
        },
    };
    let list = match &*hooks {
        None => html! { <p class="muted" role="status">{ "Loading webhooks…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(all)) if all.is_empty() => html! {
            <p class="muted">{ "No webhooks yet." }</p>
        },
        Some(Ok(all)) => html! {
            <table aria-label="Webhooks">
                <thead><tr><th>{ "Address" }</th><th>{ "Events" }</th><th>{ "State" }</th><th>{ "Added" }</th><th></th></tr></thead>
                <tbody>
                    { for all.iter().map(|h| {
                        let shown = open.as_deref() == Some(h.id.as_str());
                        html! {
                            <tr key={h.id.clone()}>
                                <td><code>{ h.url.clone() }</code></td>
                                <td>{ h.events.join(", ") }</td>
                                <td>{ if h.disabled { "Paused" } else { "On" } }</td>
                                <td>{ when(h.created_at) }</td>
                                <td class="buttons wrap">
                                    <button type="button" aria-expanded={if shown { "true" } else { "false" }} onclick={toggle_log(h)}>
                                        { if shown { "Hide deliveries" } else { "Deliveries" } }
                                    </button>
                                    if is_owner {
                                        <button type="button" onclick={change(h, "toggle")}>{ if h.disabled { "Resume" } else { "Pause" } }</button>
                                        <button type="button" onclick={change(h, "rotate")}>{ "New secret" }</button>
                                        <button type="button" onclick={change(h, "remove")}>{ "Remove" }</button>
                                    }
                                </td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <>
            <h1>{ "Webhooks" }</h1>
            <p class="muted">{ "Porthole POSTs each event as JSON, signed as the Standard Webhooks spec says (webhook-id, webhook-timestamp, webhook-signature), and retries failures for about a day." }</p>
            <div class="card filters">
                <div>{ widget_picker("wh-widget", &widgets, &widget) }</div>
            </div>
            if let Some(n) = &*notice {
                { match n {
                    Ok(m) => html! { <p class="ok" role="status">{ m.clone() }</p> },
                    Err(e) => html! { <p class="error" role="alert">{ e.clone() }</p> },
                } }
            }
            if let Some((to, s)) = &*secret {
                <div class="ok" role="status">
                    <p>{ format!("The signing secret for {to}, shown only now: give it to the receiver to verify each request.") }</p>
                    <pre id="wh-secret">{ s.clone() }</pre>
                </div>
            }
            { list }
            if let Some(u) = open_url { <h2>{ format!("Deliveries to {u}") }</h2> }
            { log_view }
            if is_owner {
                <section class="card">
                    <h2>{ "Add a webhook" }</h2>
                    <form onsubmit={onadd}>
                        <label for="wh-url">{ "Address (https://…)" }</label>
                        <input id="wh-url" type="url" required=true ref={url} placeholder="https://hooks.example.com/porthole" />
                        <fieldset>
                            <legend class="small">{ "Events" }</legend>
                            { for EVENTS.iter().map(|(name, what)| html! {
                                <div class="check">
                                    <input type="checkbox" id={format!("wh-ev-{name}")} checked=true />
                                    <label for={format!("wh-ev-{name}")}><code>{ *name }</code>{ format!(": {what}") }</label>
                                </div>
                            }) }
                        </fieldset>
                        <div class="actions"><button class="primary" type="submit">{ "Add webhook" }</button></div>
                    </form>
                </section>
            }
        </>
    }
}
