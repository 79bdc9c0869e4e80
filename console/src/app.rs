//! The console's top level: find out who is here (signed in, or the first
//! run), then show the setup, the sign-in form, or the console itself.

use std::rc::Rc;

use yew::prelude::*;

use crate::api::{self, NONE, Session};
use crate::pages::shell::Shell;
use crate::pages::sign_in::{Setup, SignIn};
use crate::style::ConsoleStyle;

/// What the console shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Loading,
    /// No user exists yet; `allowed` when this browser is on the server's
    /// own machine.
    Setup {
        allowed: bool,
    },
    SignIn {
        notice: Option<String>,
    },
    Console(Rc<Session>),
    /// The server could not be reached.
    Unreachable(String),
}

#[derive(Debug, serde::Deserialize)]
struct SetupState {
    needed: bool,
    allowed: bool,
}

/// Who is here: a live session, the first run, or someone to sign in.
async fn find_screen() -> Screen {
    match api::json::<Session>("GET", "/api/v1/console/session", NONE, None).await {
        Ok(s) => return Screen::Console(Rc::new(s)),
        Err(e) if e.status == 0 => return Screen::Unreachable(e.message),
        Err(_) => {}
    }
    match api::json::<SetupState>("GET", "/api/v1/console/setup", NONE, None).await {
        Ok(s) if s.needed => Screen::Setup { allowed: s.allowed },
        Ok(_) => Screen::SignIn { notice: None },
        Err(e) => Screen::Unreachable(e.message),
    }
}

#[function_component(App)]
pub fn app() -> Html {
    let screen = use_state(|| Screen::Loading);
    {
        let screen = screen.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move { screen.set(find_screen().await) });
        });
    }
    let go = {
        let screen = screen.clone();
        Callback::from(move |next: Screen| screen.set(next))
    };
    let body = match &*screen {
        Screen::Loading => html! {
            <div class="center"><p class="muted" role="status">{ "Loading…" }</p></div>
        },
        Screen::Setup { allowed } => html! { <Setup allowed={*allowed} go={go.clone()} /> },
        Screen::SignIn { notice } => html! { <SignIn notice={notice.clone()} go={go.clone()} /> },
        Screen::Console(session) => html! { <Shell session={session.clone()} go={go.clone()} /> },
        Screen::Unreachable(message) => html! {
            <div class="center"><div class="card" role="alert">
                <h1>{ "The console cannot reach the server" }</h1>
                <p>{ message.clone() }</p>
            </div></div>
        },
    };
    html! { <><ConsoleStyle />{ body }</> }
}
