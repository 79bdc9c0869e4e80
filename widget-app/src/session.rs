//! The widget's session: the token minted into the page, renewed before it
//! lapses, carried across reloads (so the visitor's conversations stay
//! readable), and upgraded to a verified user when the host page calls
//! `identify` with a hash from the site's backend.

use std::cell::RefCell;

use protocol::api::{Identity, SessionGrant, SessionRequest};
use protocol::widget::WidgetConfig;
use wasm_bindgen::JsValue;
use web_sys::RequestInit;

use crate::api::{self, Failure};
use crate::host;

#[derive(Default)]
struct Current {
    token: String,
    identity: Option<Identity>,
    user: Option<String>,
}

thread_local! {
    static CURRENT: RefCell<Current> = RefCell::default();
}

/// The token to send now.
pub fn token() -> String {
    CURRENT.with(|c| c.borrow().token.clone())
}

fn set(config: &WidgetConfig, grant: Option<SessionGrant>) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        match grant {
            Some(g) => {
                c.token = g.session;
                c.user = g.user_id;
            }
            None => {
                c.token = config.session.clone();
                c.user = None;
            }
        }
        host::keep(&config.widget_id, "session", Some(&c.token));
    });
}

/// Asks the server for a new token in place of the current one.
async fn renew_with(config: &WidgetConfig, request: &SessionRequest) -> Result<(), Failure> {
    let body = serde_wasm_bindgen::to_value(request)
        .ok()
        .and_then(|v| js_sys::JSON::stringify(&v).ok())
        .and_then(|s| s.as_string())
        .ok_or(Failure::Network)?;
    let headers = api::headers(config)?;
    headers
        .set("Content-Type", "application/json")
        .map_err(|_| Failure::Network)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers.into());
    init.set_body(&JsValue::from_str(&body));
    let text = api::fetch_text(&api::url(config, "/api/v1/session"), &init).await?;
    let grant = crate::from_json::<SessionGrant>(&text).ok_or(Failure::Network)?;
    set(config, Some(grant));
    Ok(())
}

/// Before anything is sent: the page's own token.
pub fn init(config: &WidgetConfig) {
    CURRENT.with(|c| c.borrow_mut().token = config.session.clone());
}

/// At start: takes back the visitor of the token kept from an earlier
/// visit, if the server still honours it; otherwise the page's own.
pub async fn start(config: &WidgetConfig) {
    let Some(saved) = host::load(&config.widget_id, "session").filter(|t| *t != config.session)
    else {
        set(config, None);
        return;
    };
    let request = SessionRequest {
        resume: Some(saved),
        identity: None,
    };
    if renew_with(config, &request).await.is_err() {
        set(config, None);
    }
}

/// Renews an expired token, keeping the visitor and the identity.
pub async fn renew(config: &WidgetConfig) -> Result<(), Failure> {
    let identity = CURRENT.with(|c| c.borrow().identity.clone());
    renew_with(
        config,
        &SessionRequest {
            resume: None,
            identity,
        },
    )
    .await
}

/// The host page's `identify`: proves the user with the site's hash.
/// Returns whether the session now speaks for another user than before
/// (then the conversation on screen is no longer theirs).
pub async fn identify(config: &WidgetConfig, user_id: String, user_hash: String) -> bool {
    let before = CURRENT.with(|c| c.borrow().user.clone());
    let identity = Identity { user_id, user_hash };
    CURRENT.with(|c| c.borrow_mut().identity = Some(identity.clone()));
    let request = SessionRequest {
        resume: None,
        identity: Some(identity),
    };
    if renew_with(config, &request).await.is_err() {
        return false;
    }
    let after = CURRENT.with(|c| c.borrow().user.clone());
    before.is_some() && before != after
}

/// The host page's `reset` (a logout): back to a new anonymous visitor.
pub fn reset(config: &WidgetConfig) {
    CURRENT.with(|c| c.borrow_mut().identity = None);
    set(config, None);
}
