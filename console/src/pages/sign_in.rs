//! Signing in, and the first run's setup of the first owner.

use std::rc::Rc;

use serde_json::json;
use yew::prelude::*;

use super::value;
use crate::api::{self, Session};
use crate::app::Screen;

#[derive(Properties, PartialEq, Debug)]
pub struct SignInProps {
    pub notice: Option<String>,
    pub go: Callback<Screen>,
}

#[function_component(SignIn)]
pub fn sign_in(props: &SignInProps) -> Html {
    let (email, password) = (use_node_ref(), use_node_ref());
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let onsubmit = {
        let (email, password, error, busy, go) = (
            email.clone(),
            password.clone(),
            error.clone(),
            busy.clone(),
            props.go.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let body = json!({"email": value(&email), "password": value(&password)});
            let (error, busy, go) = (error.clone(), busy.clone(), go.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Session>("POST", "/api/v1/console/session", Some(&body), None)
                    .await
                {
                    Ok(s) => go.emit(Screen::Console(Rc::new(s))),
                    Err(f) => {
                        error.set(Some(f.message));
                        busy.set(false);
                    }
                }
            });
        })
    };
    html! {
        <div class="center">
            <form class="card" {onsubmit} aria-labelledby="sign-in-title">
                <p class="brand">{ "Porthole" }</p>
                <h1 id="sign-in-title">{ "Sign in to the console" }</h1>
                if let (Some(n), None) = (&props.notice, &*error) { <p class="ok" role="status">{ n.clone() }</p> }
                if let Some(e) = &*error { <p class="error" role="alert">{ e.clone() }</p> }
                <label for="email">{ "Email" }</label>
                <input id="email" ref={email} type="email" autocomplete="username" required=true />
                <label for="password">{ "Password" }</label>
                <input id="password" ref={password} type="password" autocomplete="current-password" required=true />
                <div class="actions">
                    <button class="primary" type="submit" disabled={*busy}>{ "Sign in" }</button>
                </div>
            </form>
        </div>
    }
}

#[derive(Properties, PartialEq, Debug)]
pub struct SetupProps {
    pub allowed: bool,
    pub go: Callback<Screen>,
}

/// The first run: create the first owner (only from the server's machine).
#[function_component(Setup)]
pub fn setup(props: &SetupProps) -> Html {
    let (email, password, again) = (use_node_ref(), use_node_ref(), use_node_ref());
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    if !props.allowed {
        return html! {
            <div class="center"><div class="card">
                <p class="brand">{ "Porthole" }</p>
                <h1>{ "Set up the console" }</h1>
                <p>{ "No one can sign in yet. For safety, the first owner is created on the server itself: open this page on the server's own machine (http://127.0.0.1…), or run:" }</p>
                <pre>{ "porthole user create --email you@example.com --role owner" }</pre>
            </div></div>
        };
    }
    let onsubmit = {
        let (email, password, again, error, busy, go) = (
            email.clone(),
            password.clone(),
            again.clone(),
            error.clone(),
            busy.clone(),
            props.go.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if value(&password) != value(&again) {
                error.set(Some("The two passwords differ.".into()));
                return;
            }
            let body = json!({"email": value(&email), "password": value(&password)});
            let (error, busy, go) = (error.clone(), busy.clone(), go.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Session>("POST", "/api/v1/console/setup", Some(&body), None).await
                {
                    Ok(s) => go.emit(Screen::Console(Rc::new(s))),
                    Err(f) => {
                        error.set(Some(f.message));
                        busy.set(false);
                    }
                }
            });
        })
    };
    html! {
        <div class="center">
            <form class="card" {onsubmit} aria-labelledby="setup-title">
                <p class="brand">{ "Porthole" }</p>
                <h1 id="setup-title">{ "Create the first owner" }</h1>
                <p class="muted">{ "The owner manages widgets, knowledge, users and keys. At least 10 characters for the password." }</p>
                if let Some(e) = &*error { <p class="error" role="alert">{ e.clone() }</p> }
                <label for="email">{ "Email" }</label>
                <input id="email" ref={email} type="email" autocomplete="username" required=true />
                <label for="password">{ "Password" }</label>
                <input id="password" ref={password} type="password" autocomplete="new-password" minlength="10" required=true />
                <label for="again">{ "Password again" }</label>
                <input id="again" ref={again} type="password" autocomplete="new-password" minlength="10" required=true />
                <div class="actions">
                    <button class="primary" type="submit" disabled={*busy}>{ "Create and sign in" }</button>
                </div>
            </form>
        </div>
    }
}
