//! The signed-in console: the bar (sections, the user, signing out) and
//! the section on show.

use std::rc::Rc;

use yew::prelude::*;

use super::analytics::Analytics;
use super::audit::Audit;
use super::fix::QuestionsToFix;
use super::inbox::Inbox;
use super::knowledge::Knowledge;
use super::users::Users;
use super::webhooks::Webhooks;
use super::widgets::Widgets;
use crate::api::{self, Failure, NONE, Session};
use crate::app::Screen;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Widgets,
    Knowledge,
    Conversations,
    ToFix,
    Analytics,
    Webhooks,
    Users,
    Audit,
}

#[derive(Properties, PartialEq, Debug)]
pub struct ShellProps {
    pub session: Rc<Session>,
    pub go: Callback<Screen>,
}

/// What every section gets: the session, and where to send a failure
/// (a session that ended goes back to the sign-in form).
#[derive(Properties, PartialEq, Debug, Clone)]
pub struct SectionProps {
    pub session: Rc<Session>,
    pub on_failure: Callback<Failure>,
}

#[function_component(Shell)]
pub fn shell(props: &ShellProps) -> Html {
    let section = use_state(|| Section::Widgets);
    let user = &props.session.user;
    let on_failure = {
        let go = props.go.clone();
        Callback::from(move |f: Failure| {
            if f.status == 401 {
                go.emit(Screen::SignIn {
                    notice: Some("Your session has ended. Sign in again.".into()),
                });
            }
        })
    };
    let sign_out = |everywhere: bool| {
        let (go, csrf) = (props.go.clone(), props.session.csrf.clone());
        Callback::from(move |_: MouseEvent| {
            let (go, csrf) = (go.clone(), csrf.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let path = if everywhere {
                    "/api/v1/console/session/everywhere"
                } else {
                    "/api/v1/console/session"
                };
                let method = if everywhere { "POST" } else { "DELETE" };
                let notice = match api::empty(method, path, NONE, Some(&csrf)).await {
                    Ok(()) if everywhere => "Signed out on every browser.".to_owned(),
                    Ok(()) => "Signed out.".to_owned(),
                    Err(f) => f.message,
                };
                go.emit(Screen::SignIn {
                    notice: Some(notice),
                });
            });
        })
    };
    let tab = |s: Section, label: &str| {
        let section = section.clone();
        let current = (*section == s).then_some("page");
        html! {
            <button type="button" aria-current={current} onclick={Callback::from(move |_| section.set(s))}>
                { label.to_owned() }
            </button>
        }
    };
    let props_for = SectionProps {
        session: props.session.clone(),
        on_failure,
    };
    html! {
        <>
            <header class="bar">
                <span class="brand">{ "Porthole" }</span>
                <nav aria-label="Sections">
                    { tab(Section::Widgets, "Widgets") }
                    { tab(Section::Knowledge, "Knowledge") }
                    { tab(Section::Conversations, "Conversations") }
                    { tab(Section::ToFix, "Questions to fix") }
                    { tab(Section::Analytics, "Analytics") }
                    { tab(Section::Webhooks, "Webhooks") }
                    if user.is_owner() {
                        { tab(Section::Users, "Users") }
                        { tab(Section::Audit, "Audit log") }
                    }
                </nav>
                <div class="who">
                    <span class="muted">{ format!("{} ({})", user.email, user.role) }</span>
                    <button type="button" onclick={sign_out(false)}>{ "Sign out" }</button>
                    <button type="button" onclick={sign_out(true)}>{ "Sign out everywhere" }</button>
                </div>
            </header>
            <main>
                {
                    match *section {
                        Section::Widgets => html! { <Widgets ..props_for.clone() /> },
                        Section::Knowledge => html! { <Knowledge ..props_for.clone() /> },
                        Section::Conversations => html! { <Inbox section={props_for.clone()} /> },
                        Section::ToFix => html! { <QuestionsToFix ..props_for.clone() /> },
                        Section::Analytics => html! { <Analytics ..props_for.clone() /> },
                        Section::Webhooks => html! { <Webhooks ..props_for.clone() /> },
                        Section::Users => html! { <Users ..props_for.clone() /> },
                        Section::Audit => html! { <Audit ..props_for.clone() /> },
                    }
                }
            </main>
        </>
    }
}
