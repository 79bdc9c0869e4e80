//! Users (owners only): who can sign in, with which role; adding one.

use serde_json::json;
use yew::prelude::*;

use super::shell::SectionProps;
use super::{value, when};
use crate::api::{self, NONE, User};

#[function_component(Users)]
pub fn users(props: &SectionProps) -> Html {
    let list = use_state(|| None::<Result<Vec<User>, String>>);
    let notice = use_state(|| None::<Result<String, String>>);
    let (email, password, role) = (use_node_ref(), use_node_ref(), use_node_ref());
    let reload = {
        let (list, on_failure) = (list.clone(), props.on_failure.clone());
        Callback::from(move |()| {
            let (list, on_failure) = (list.clone(), on_failure.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Vec<User>>("GET", "/api/v1/console/users", NONE, None).await {
                    Ok(u) => list.set(Some(Ok(u))),
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
    let onadd = {
        let (email, password, role, notice, reload, on_failure, csrf) = (
            email.clone(),
            password.clone(),
            role.clone(),
            notice.clone(),
            reload.clone(),
            props.on_failure.clone(),
            props.session.csrf.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let role = role
                .cast::<web_sys::HtmlSelectElement>()
                .map(|s| s.value())
                .unwrap_or_else(|| "viewer".into());
            let body = json!({"email": value(&email), "password": value(&password), "role": role});
            let (notice, reload, on_failure, csrf) = (
                notice.clone(),
                reload.clone(),
                on_failure.clone(),
                csrf.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<User>("POST", "/api/v1/console/users", Some(&body), Some(&csrf))
                    .await
                {
                    Ok(u) => {
                        notice.set(Some(Ok(format!(
                            "{} can now sign in as {}.",
                            u.email, u.role
                        ))));
                        reload.emit(());
                    }
                    Err(f) => {
                        notice.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    let rows = match &*list {
        None => html! { <p class="muted" role="status">{ "Loading users…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(users)) => html! {
            <table>
                <thead><tr><th>{ "Email" }</th><th>{ "Role" }</th><th>{ "Since" }</th></tr></thead>
                <tbody>
                    { for users.iter().map(|u| html! {
                        <tr><td>{ u.email.clone() }</td><td>{ u.role.clone() }</td><td>{ when(u.created_at) }</td></tr>
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <>
            <h1>{ "Users" }</h1>
            <p class="muted">{ "Viewers read; editors also change widgets and knowledge; owners also manage users, keys and the audit log." }</p>
            { rows }
            <h2>{ "Add a user" }</h2>
            <form class="card" onsubmit={onadd}>
                <label for="user-email">{ "Email" }</label>
                <input id="user-email" ref={email} type="email" autocomplete="off" required=true />
                <label for="user-password">{ "First password (at least 10 characters; tell them to change it)" }</label>
                <input id="user-password" ref={password} type="password" autocomplete="new-password" minlength="10" required=true />
                <label for="user-role">{ "Role" }</label>
                <select id="user-role" ref={role}>
                    <option value="viewer">{ "Viewer" }</option>
                    <option value="editor">{ "Editor" }</option>
                    <option value="owner">{ "Owner" }</option>
                </select>
                <div class="actions"><button class="primary" type="submit">{ "Add user" }</button></div>
            </form>
            { match &*notice {
                Some(Ok(m)) => html! { <p class="ok" role="status">{ m.clone() }</p> },
                Some(Err(m)) => html! { <p class="error" role="alert">{ m.clone() }</p> },
                None => html! {},
            } }
        </>
    }
}
