//! The widget's session: the token minted into the page, renewed when it
//! lapses, carried across reloads (so the visitor's conversations stay
//! readable), upgraded to a verified user when the host page calls
//! `identify` with a hash from the site's backend, and started afresh on
//! `reset`.
//!
//! The bodies of `POST /api/v1/session` (`protocol::api::SessionRequest`
//! and `SessionGrant`) are written and read field by field: serde's derive
//! code for them cost several KB of wasm.

use std::cell::RefCell;

use js_sys::{JSON, Object, Reflect};
use protocol::widget::WidgetConfig;
use wasm_bindgen::JsValue;
use web_sys::RequestInit;

use crate::fetch::{self, Failure};
use crate::host;

#[derive(Default)]
struct Current {
    token: String,
    /// The host page's `identify`: user id and hash.
    identity: Option<(String, String)>,
    user: Option<String>,
}

thread_local! {
    static CURRENT: RefCell<Current> = RefCell::default();
    /// The session change under way (resume at start, identify, reset), as
    /// a promise questions wait for, so none goes out with the token it
    /// replaces.
    static PENDING: RefCell<Option<js_sys::Promise>> = const { RefCell::new(None) };
}

/// Runs a session change after the ones before it; questions asked
/// meanwhile wait for it.
pub fn track(change: impl std::future::Future<Output = ()> + 'static) {
    let earlier = PENDING.with(|p| p.borrow().clone());
    let promise = wasm_bindgen_futures::future_to_promise(async move {
        if let Some(earlier) = earlier {
            let _ = wasm_bindgen_futures::JsFuture::from(earlier).await;
        }
        change.await;
        Ok(JsValue::UNDEFINED)
    });
    PENDING.with(|p| *p.borrow_mut() = Some(promise));
}

/// Resolves once no session change is under way.
pub async fn settled() {
    if let Some(p) = PENDING.with(|p| p.borrow().clone()) {
        let _ = wasm_bindgen_futures::JsFuture::from(p).await;
    }
}

/// The token to send now.
pub fn token() -> String {
    CURRENT.with(|c| c.borrow().token.clone())
}

/// Before anything is sent: the page's own token.
pub fn init(config: &WidgetConfig) {
    CURRENT.with(|c| c.borrow_mut().token = config.session.clone());
}

/// Takes `token` (with its verified user), or the page's own, and keeps it
/// for the next visit.
fn set(config: &WidgetConfig, grant: Option<(String, Option<String>)>) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        (c.token, c.user) = grant.unwrap_or_else(|| (config.session.clone(), None));
        host::keep(&config.widget_id, "session", Some(&c.token));
    });
}

/// What to ask for: an earlier visitor, a user, or a fresh start.
#[derive(Default)]
struct Ask {
    resume: Option<String>,
    identity: Option<(String, String)>,
    fresh: bool,
}

fn body(ask: &Ask) -> Option<String> {
    let o = Object::new();
    let put = |k: &str, v: JsValue| Reflect::set(&o, &k.into(), &v).ok();
    if let Some(r) = &ask.resume {
        put("resume", r.into())?;
    }
    if let Some((id, hash)) = &ask.identity {
        let i = Object::new();
        Reflect::set(&i, &"user_id".into(), &id.into()).ok()?;
        Reflect::set(&i, &"user_hash".into(), &hash.into()).ok()?;
        put("identity", i.into())?;
    }
    if ask.fresh {
        put("fresh", true.into())?;
    }
    JSON::stringify(&o).ok()?.as_string()
}

/// Asks the server for a new token in place of the current one.
async fn renew_with(config: &WidgetConfig, ask: &Ask) -> Result<(), Failure> {
    let body = body(ask).ok_or(Failure::Network)?;
    let headers = fetch::headers(config, &token())?;
    headers
        .set("Content-Type", "application/json")
        .map_err(|_| Failure::Network)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers.into());
    init.set_body(&JsValue::from_str(&body));
    let text = fetch::fetch_text(&fetch::url(config, "/api/v1/session"), &init).await?;
    let grant = JSON::parse(&text).map_err(|_| Failure::Network)?;
    let field = |k: &str| {
        Reflect::get(&grant, &k.into())
            .ok()
            .and_then(|v| v.as_string())
    };
    let token = field("session").ok_or(Failure::Network)?;
    set(config, Some((token, field("user_id"))));
    Ok(())
}

/// At start: takes back the visitor of the token kept from an earlier
/// visit, if the server still honours it; otherwise the page's own.
pub async fn start(config: &WidgetConfig) {
    let Some(saved) = host::load(&config.widget_id, "session").filter(|t| *t != config.session)
    else {
        set(config, None);
        return;
    };
    let ask = Ask {
        resume: Some(saved),
        ..Default::default()
    };
    if renew_with(config, &ask).await.is_err() {
        set(config, None);
    }
}

/// Renews an expired token, keeping the visitor and the identity.
pub async fn renew(config: &WidgetConfig) -> Result<(), Failure> {
    let identity = CURRENT.with(|c| c.borrow().identity.clone());
    renew_with(
        config,
        &Ask {
            identity,
            ..Default::default()
        },
    )
    .await
}

/// The host page's `identify`: proves the user with the site's hash.
/// Returns whether the session now speaks for another user than before
/// (then the conversation on screen is no longer theirs).
pub async fn identify(config: &WidgetConfig, user_id: String, user_hash: String) -> bool {
    let before = CURRENT.with(|c| c.borrow().user.clone());
    let identity = (user_id, user_hash);
    CURRENT.with(|c| c.borrow_mut().identity = Some(identity.clone()));
    let ask = Ask {
        identity: Some(identity),
        ..Default::default()
    };
    if renew_with(config, &ask).await.is_err() {
        return false;
    }
    let after = CURRENT.with(|c| c.borrow().user.clone());
    before.is_some() && before != after
}

/// The host page's `reset` (a logout): a new anonymous visitor, so nothing
/// of the one before is readable from this browser.
pub async fn reset(config: &WidgetConfig) {
    CURRENT.with(|c| c.borrow_mut().identity = None);
    let ask = Ask {
        fresh: true,
        ..Default::default()
    };
    if renew_with(config, &ask).await.is_err() {
        // The page's own token is the best left; its visitor may be the
        // one before, but no verified user's conversations are readable.
        set(config, None);
    }
}
