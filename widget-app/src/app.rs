//! The chat panel: state, the answer stream, history and the layout.

use std::cell::RefCell;
use std::rc::Rc;

use protocol::frame::{FRAME_PROTOCOL_VERSION, HostToWidget, WidgetToHost};
use protocol::i18n::Text;
use protocol::widget::WidgetConfig;
use protocol::{ErrorCode, StreamEvent};
use stylist::yew::use_style;
use wasm_bindgen::JsCast;
use web_sys::AbortController;
use yew::prelude::*;

use crate::api::{self, Cursor, Failure};
use crate::composer::Composer;
use crate::header::Header;
use crate::host;
use crate::messages::{Messages, Rate};
use crate::session;
use crate::state::{Action, Chat};
use crate::theme::ThemeRoot;

/// The server's default message limit; the server still checks.
const MAX_CHARS: usize = 4_000;

#[derive(Properties, PartialEq, Debug)]
pub struct AppProps {
    pub config: Rc<WidgetConfig>,
}

#[function_component(App)]
pub fn app(props: &AppProps) -> Html {
    let config = props.config.clone();
    let chat = use_reducer(Chat::default);
    let abort = use_mut_ref(|| None::<AbortController>);

    // At start: take back the earlier session, then show the saved conversation.
    {
        let (config, chat) = (config.clone(), chat.dispatcher());
        use_effect_with((), move |_| {
            session::track(async move {
                session::start(&config).await;
                if let Some(id) = host::saved_conversation(&config.widget_id) {
                    match api::history(&config, &id).await {
                        Ok(Some(view)) => chat.dispatch(Action::Restore {
                            conversation_id: view.conversation_id,
                            messages: view.messages,
                        }),
                        // Forgotten by the server: start afresh.
                        Ok(None) => host::save_conversation(&config.widget_id, None),
                        // Offline for now: keep the id for the next load.
                        Err(_) => {}
                    }
                }
            });
        });
    }
    // Remember the conversation across reloads.
    {
        let widget_id = config.widget_id.clone();
        use_effect_with(chat.conversation_id.clone(), move |id| {
            if let Some(id) = id {
                host::save_conversation(&widget_id, Some(id));
            }
        });
    }

    let cursor = use_mut_ref(Cursor::default);
    let ask = {
        let (config, chat, abort, cursor) =
            (config.clone(), chat.clone(), abort.clone(), cursor.clone());
        Callback::from(move |text: String| {
            if chat.is_streaming() || text.trim().is_empty() {
                return;
            }
            let Ok(controller) = AbortController::new() else {
                return;
            };
            let signal = controller.signal();
            *abort.borrow_mut() = Some(controller);
            *cursor.borrow_mut() = Cursor::default();
            let conversation_id = chat.conversation_id.clone();
            let dispatch = chat.dispatcher();
            dispatch.dispatch(Action::Ask(text.clone()));
            host::tell_host(&WidgetToHost::Message {
                v: FRAME_PROTOCOL_VERSION,
                text: text.clone(),
            });
            let (config, cursor) = (config.clone(), cursor.clone());
            wasm_bindgen_futures::spawn_local(async move {
                session::settled().await;
                let stored = dispatch.clone();
                let answer = Rc::new(RefCell::new(String::new()));
                let mut result = api::ask(
                    &config,
                    &text,
                    conversation_id,
                    &signal,
                    &cursor,
                    on_event(&dispatch, &answer),
                    move |id| stored.dispatch(Action::Conversation(id)),
                )
                .await;
                // The connection dropped mid-answer: the answer goes on on
                // the server; follow it again after the last event seen.
                if result == Err(Failure::Network) && cursor.borrow().message_id.is_some() {
                    result = follow(&config, &signal, &cursor, &dispatch, &answer, false).await;
                }
                finish(&config, &dispatch, result, &answer);
            });
        })
    };
    // A reload mid-answer: the history shows it streaming; follow it.
    {
        let (config, chat, abort, cursor) =
            (config.clone(), chat.clone(), abort.clone(), cursor.clone());
        use_effect_with(chat.resuming.clone(), move |resuming| {
            if let (Some(id), Ok(controller)) = (resuming.clone(), AbortController::new()) {
                let signal = controller.signal();
                *abort.borrow_mut() = Some(controller);
                *cursor.borrow_mut() = Cursor {
                    message_id: Some(id),
                    last_id: None,
                };
                let dispatch = chat.dispatcher();
                wasm_bindgen_futures::spawn_local(async move {
                    let answer = Rc::new(RefCell::new(String::new()));
                    let result = follow(&config, &signal, &cursor, &dispatch, &answer, true).await;
                    finish(&config, &dispatch, result, &answer);
                });
            }
        });
    }
    let stop = {
        let (config, abort, cursor) = (config.clone(), abort.clone(), cursor.clone());
        Callback::from(move |_: ()| {
            if let Some(controller) = abort.borrow_mut().take() {
                controller.abort();
                // The answer runs on the server: stop it there too.
                if let Some(id) = cursor.borrow().message_id.clone() {
                    let config = config.clone();
                    wasm_bindgen_futures::spawn_local(async move { api::stop(&config, &id).await });
                }
            }
        })
    };
    // A rating shows at once; one the server refused is taken back.
    let rate = {
        let (config, chat) = (config.clone(), chat.clone());
        Callback::from(move |r: Rate| {
            let Some(m) = chat.messages.iter().find(|m| m.key == r.key) else {
                return;
            };
            let (Some(id), before) = (m.id.clone(), m.rating) else {
                return;
            };
            chat.dispatch(Action::Rate(r.key, r.rating));
            let (config, dispatch) = (config.clone(), chat.dispatcher());
            wasm_bindgen_futures::spawn_local(async move {
                if api::rate(&config, &id, r.rating, r.comment.as_deref())
                    .await
                    .is_err()
                {
                    dispatch.dispatch(Action::Rate(r.key, before));
                }
            });
        })
    };
    let retry = {
        let (ask, chat) = (ask.clone(), chat.clone());
        Callback::from(move |_: MouseEvent| {
            if let Some(q) = chat.last_question.clone() {
                ask.emit(q);
            }
        })
    };
    let restart = {
        let (chat, stop, widget_id) = (chat.clone(), stop.clone(), config.widget_id.clone());
        Callback::from(move |_: ()| {
            stop.emit(());
            host::save_conversation(&widget_id, None);
            chat.dispatch(Action::NewConversation);
        })
    };
    let close = Callback::from(|_: ()| {
        host::tell_host(&WidgetToHost::Close {
            v: FRAME_PROTOCOL_VERSION,
        })
    });
    let onkeydown = {
        let close = close.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                close.emit(());
            }
        })
    };

    // The loader's commands (Porthole('send', …), 'reset', opening). The
    // listener is installed once; it calls the latest callbacks, which see
    // the current conversation.
    let latest = use_mut_ref(|| (ask.clone(), restart.clone()));
    *latest.borrow_mut() = (ask.clone(), restart.clone());
    let host_config = config.clone();
    use_effect_with((), move |_| {
        // The panel is on screen: the page's loading skeleton goes.
        if let Some(skeleton) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("ph-skeleton"))
        {
            skeleton.remove();
        }
        let ready = host_config.clone();
        host::listen(move |command| {
            let (ask, restart) = latest.borrow().clone();
            match command {
                HostToWidget::Send { text, .. } => ask.emit(text),
                // A logout: a new anonymous visitor, a new conversation.
                HostToWidget::Reset { .. } => {
                    let config = host_config.clone();
                    session::track(async move { session::reset(&config).await });
                    restart.emit(());
                }
                HostToWidget::Open { .. } => focus_composer(),
                // The site's signed user. A wrong hash leaves the visitor
                // anonymous (the server decides); another user than before
                // must not see the conversation on screen.
                HostToWidget::Identify { id, hash, .. } => {
                    let config = host_config.clone();
                    session::track(async move {
                        if session::identify(&config, id, hash).await {
                            restart.emit(());
                        }
                    });
                }
                HostToWidget::Close { .. } | HostToWidget::Connect { .. } => {}
            }
        });
        host::tell_host(&WidgetToHost::Ready {
            v: FRAME_PROTOCOL_VERSION,
            open: ready.text(Text::Open).to_owned(),
            close: ready.text(Text::Close).to_owned(),
            title: ready.text(Text::FrameTitle).to_owned(),
        });
    });

    let error_style = use_style!(
        r#"
        display: flex; align-items: center; gap: 10px; margin: 0 12px 8px; padding: 8px 12px;
        border-radius: var(--ph-radius); background: var(--ph-error-bg); color: var(--ph-error-fg); font-size: 14px;
        span { flex: 1; }
        button { font: inherit; font-weight: 600; border: 1px solid currentColor; background: transparent; color: inherit;
                 border-radius: 8px; padding: 4px 12px; cursor: pointer; }
        "#
    );
    let can_restart = !chat.messages.is_empty();
    let streaming = chat.is_streaming();
    html! {
        <ThemeRoot theme={config.theme.clone()} {onkeydown}>
            <Header config={config.clone()} on_new={restart} on_close={close} {can_restart} />
            <Messages chat={Rc::new((*chat).clone())} config={config.clone()} on_starter={ask.clone()} on_rate={rate} />
            // Each finished answer, once, for screen readers.
            <div class="sr-only" role="status" aria-live="polite">{ chat.announce.clone() }</div>
            if chat.reconnecting {
                <div class={error_style.clone()} role="status" data-state="reconnecting">
                    <span>{ config.text(Text::Reconnecting).to_owned() }</span>
                </div>
            }
            if let Some(error) = &chat.error {
                <div class={error_style} role="alert">
                    <span>{ error.clone() }</span>
                    <button type="button" onclick={retry}>{ config.text(Text::Retry).to_owned() }</button>
                </div>
            }
            <Composer config={config.clone()} {streaming} on_send={ask} on_stop={stop} max_chars={MAX_CHARS} />
        </ThemeRoot>
    }
}

/// What each event of an answer does to the panel; the text is collected
/// for the host page's `answer` callback.
fn on_event(
    dispatch: &UseReducerDispatcher<Chat>,
    answer: &Rc<RefCell<String>>,
) -> impl FnMut(StreamEvent) + 'static {
    let (events, collected) = (dispatch.clone(), answer.clone());
    move |event| match event {
        StreamEvent::Meta(meta) => {
            events.dispatch(Action::Conversation(meta.conversation_id));
            events.dispatch(Action::AnswerId(meta.message_id));
        }
        StreamEvent::Sources(sources) => events.dispatch(Action::Sources(sources)),
        StreamEvent::Chunk(c) => {
            collected.borrow_mut().push_str(&c.chunk);
            events.dispatch(Action::Chunk(c.chunk))
        }
        _ => {}
    }
}

/// How long the panel keeps trying to get a dropped answer back: the
/// server keeps it going this long (`resume_grace_secs`) with nobody
/// reading.
const RESUME_FOR_MS: f64 = 30_000.0;

/// Follows the answer `cursor` names after its last event, trying again
/// while the network is down, with "reconnecting…" shown meanwhile. A
/// resume from the start (a reload's: no event seen yet) replays the whole
/// answer, which rewrites what the history showed of it. `reloaded`: the
/// first try is at once and without the notice.
async fn follow(
    config: &WidgetConfig,
    signal: &web_sys::AbortSignal,
    cursor: &RefCell<Cursor>,
    dispatch: &UseReducerDispatcher<Chat>,
    answer: &Rc<RefCell<String>>,
    reloaded: bool,
) -> Result<(), Failure> {
    let started = js_sys::Date::now();
    let mut wait_ms = 250;
    let mut first = true;
    loop {
        if !(reloaded && first) {
            dispatch.dispatch(Action::Reconnecting(true));
            sleep(wait_ms).await;
        }
        first = false;
        if signal.aborted() {
            return Err(Failure::Aborted);
        }
        let from_start = cursor.borrow().last_id.is_none();
        let (opened, collected) = (dispatch.clone(), answer.clone());
        let result = api::resume(
            config,
            signal,
            cursor,
            move || {
                opened.dispatch(Action::Reconnecting(false));
                if from_start {
                    collected.borrow_mut().clear();
                    opened.dispatch(Action::Rewind);
                }
            },
            on_event(dispatch, answer),
        )
        .await;
        match result {
            Err(Failure::Network) if js_sys::Date::now() - started < RESUME_FOR_MS => {
                wait_ms = (wait_ms * 2).min(4_000);
            }
            other => return other,
        }
    }
}

/// Ends an answer in the panel and tells the host page.
fn finish(
    config: &WidgetConfig,
    dispatch: &UseReducerDispatcher<Chat>,
    result: Result<(), Failure>,
    answer: &Rc<RefCell<String>>,
) {
    match result {
        Ok(()) => {
            dispatch.dispatch(Action::Done);
            host::tell_host(&WidgetToHost::Answer {
                v: FRAME_PROTOCOL_VERSION,
                text: answer.take(),
            });
        }
        Err(Failure::Aborted) => dispatch.dispatch(Action::Stopped),
        Err(Failure::Api(e)) if e.code == ErrorCode::ConversationNotFound => {
            host::save_conversation(&config.widget_id, None);
            dispatch.dispatch(Action::NewConversation);
            dispatch.dispatch(Action::Failed(
                config.text(Text::ErrorConversationEnded).to_owned(),
            ));
        }
        Err(failure) => dispatch.dispatch(Action::Failed(config.text(failure.text()).to_owned())),
    }
}

/// Resolves after `ms` milliseconds.
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn focus_composer() {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("textarea").ok().flatten())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}
