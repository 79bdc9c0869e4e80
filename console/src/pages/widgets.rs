//! Widgets: the list, and creating one (its embed snippet shown once).

use serde_json::{Value, json};
use yew::prelude::*;

use super::editor::Editor;
use super::shell::SectionProps;
use super::value;
use crate::api::{self, NONE};

#[function_component(Widgets)]
pub fn widgets(props: &SectionProps) -> Html {
    let list = use_state(|| None::<Result<Vec<Value>, String>>);
    let created = use_state(|| None::<Value>);
    let error = use_state(|| None::<String>);
    let title = use_node_ref();
    let editing = use_state(|| None::<String>);
    let reload = {
        let (list, on_failure) = (list.clone(), props.on_failure.clone());
        Callback::from(move |()| {
            let (list, on_failure) = (list.clone(), on_failure.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Vec<Value>>("GET", "/api/v1/admin/widgets", NONE, None).await {
                    Ok(w) => list.set(Some(Ok(w))),
                    Err(f) => {
                        list.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    {
        let reload = reload.clone();
        use_effect_with((), move |_| reload.emit(()));
    }
    let oncreate = {
        let (title, created, error, reload, on_failure, csrf) = (
            title.clone(),
            created.clone(),
            error.clone(),
            reload.clone(),
            props.on_failure.clone(),
            props.session.csrf.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let body = json!({"title": value(&title)});
            let (created, error, reload, on_failure, csrf) = (
                created.clone(),
                error.clone(),
                reload.clone(),
                on_failure.clone(),
                csrf.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Value>("POST", "/api/v1/admin/widgets", Some(&body), Some(&csrf))
                    .await
                {
                    Ok(w) => {
                        error.set(None);
                        created.set(Some(w));
                        reload.emit(());
                    }
                    Err(f) => {
                        error.set(Some(f.message.clone()));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    let rows = match &*list {
        None => html! { <p class="muted" role="status">{ "Loading widgets…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(w)) if w.is_empty() => html! { <p class="muted">{ "No widgets yet." }</p> },
        Some(Ok(w)) => html! {
            <table>
                <thead><tr><th>{ "Title" }</th><th>{ "Id" }</th><th>{ "Status" }</th><th>{ "Allowed sites" }</th><th></th></tr></thead>
                <tbody>
                    { for w.iter().map(|w| {
                        let id = w["id"].as_str().unwrap_or_default().to_owned();
                        let open = {
                            let (editing, id) = (editing.clone(), id.clone());
                            Callback::from(move |_: MouseEvent| editing.set(Some(id.clone())))
                        };
                        let sites = w["allowed_sites"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default();
                        html! {
                            <tr>
                                <td>{ w["title"].as_str().unwrap_or_default().to_owned() }</td>
                                <td><code>{ w["id"].as_str().unwrap_or_default().to_owned() }</code></td>
                                <td>{ if w["disabled"].as_bool().unwrap_or(false) { "Disabled" } else { "Live" } }</td>
                                <td>{ if sites.is_empty() { "Any site".to_owned() } else { sites } }</td>
                                <td><button type="button" aria-label={format!("Open {id}")} onclick={open}>{ "Open" }</button></td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    if let Some(id) = &*editing {
        let (editing, reload) = (editing.clone(), reload.clone());
        let on_close = Callback::from(move |()| {
            editing.set(None);
            reload.emit(());
        });
        return html! { <Editor id={id.clone()} section={props.clone()} {on_close} /> };
    }
    html! {
        <>
            <h1>{ "Widgets" }</h1>
            { rows }
            if props.session.user.can_edit() {
                <h2>{ "Create a widget" }</h2>
                <form class="card row" onsubmit={oncreate}>
                    <div>
                        <label for="new-title">{ "Title visitors see" }</label>
                        <input id="new-title" ref={title} required=true maxlength="80" />
                    </div>
                    <div></div>
                    <button class="primary" type="submit">{ "Create" }</button>
                </form>
                if let Some(e) = &*error { <p class="error" role="alert">{ e.clone() }</p> }
                if let Some(w) = &*created {
                    <div class="ok" role="status">
                        <p>{ format!("Created “{}”. Paste this into your site's pages (the key is shown only now):",
                            w["widget"]["title"].as_str().unwrap_or_default()) }</p>
                        <pre>{ w["embed"].as_str().unwrap_or_default().to_owned() }</pre>
                    </div>
                }
            }
        </>
    }
}
