//! The audit log (owners only): every change, who made it and when.

use yew::prelude::*;

use super::shell::SectionProps;
use super::when;
use crate::api::{self, NONE};

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Entry {
    id: i64,
    at: u64,
    actor: String,
    action: String,
    target: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Page {
    entries: Vec<Entry>,
    next: Option<i64>,
}

#[function_component(Audit)]
pub fn audit(props: &SectionProps) -> Html {
    let entries = use_state(Vec::<Entry>::new);
    let next = use_state(|| None::<i64>);
    let error = use_state(|| None::<String>);
    let load = {
        let (entries, next, error, on_failure) = (
            entries.clone(),
            next.clone(),
            error.clone(),
            props.on_failure.clone(),
        );
        Callback::from(move |before: Option<i64>| {
            let (entries, next, error, on_failure) = (
                entries.clone(),
                next.clone(),
                error.clone(),
                on_failure.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                let path = match before {
                    Some(b) => format!("/api/v1/console/audit?limit=50&before={b}"),
                    None => "/api/v1/console/audit?limit=50".to_owned(),
                };
                match api::json::<Page>("GET", &path, NONE, None).await {
                    Ok(page) => {
                        let mut all = if before.is_some() {
                            (*entries).clone()
                        } else {
                            Vec::new()
                        };
                        all.extend(page.entries);
                        entries.set(all);
                        next.set(page.next);
                    }
                    Err(f) => {
                        error.set(Some(f.message.clone()));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    {
        let load = load.clone();
        use_effect_with((), move |_| load.emit(None));
    }
    let more = next.map(|n| {
        let load = load.clone();
        html! { <div class="actions"><button type="button" onclick={Callback::from(move |_| load.emit(Some(n)))}>{ "Older changes" }</button></div> }
    });
    html! {
        <>
            <h1>{ "Audit log" }</h1>
            if let Some(e) = &*error { <p class="error" role="alert">{ e.clone() }</p> }
            <table>
                <thead><tr><th>{ "When" }</th><th>{ "Who" }</th><th>{ "What" }</th><th>{ "Result" }</th></tr></thead>
                <tbody>
                    { for entries.iter().map(|e| html! {
                        <tr key={e.id}>
                            <td>{ when(e.at) }</td>
                            <td>{ e.actor.clone() }</td>
                            <td><code>{ format!("{} {}", e.action, e.target) }</code></td>
                            <td>{ e.status }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            { for more }
        </>
    }
}
