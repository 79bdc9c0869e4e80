//! `GET /api/v1/admin/analytics`: per widget and UTC day, conversations,
//! messages, unanswered answers, ratings, tokens and their estimated cost,
//! for the console's charts and anyone's spreadsheet.

use protocol::ApiError;
use salvo::http::StatusCode;
use salvo::prelude::*;

use super::admin::{respond, state};
use crate::admin::AdminError;
use crate::admin::analytics::{AnalyticsReport, range_ms, report};
use crate::limits::Ledger;

/// The longest range one report covers.
pub const MAX_DAYS: u32 = 366;

/// Per widget (or one) and day, the last `days` UTC days up to today:
/// conversations started, messages, answers, unanswered answers, thumbs up
/// and down, prompt and completion tokens, and the cost they come to at the
/// server's `[prices]` for the widget's model (absent without a price).
/// Quiet days are zeros, so every day of the range is listed.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(
        ("days" = Option<u32>, Query, description = "1 to 366; 30 when absent"),
        ("widget" = Option<String>, Query, description = "One widget's only"),
    ),
    responses(
        (status_code = 200, body = AnalyticsReport),
        (status_code = 401, body = ApiError),
        (status_code = 404, description = "No such widget", body = ApiError),
        (status_code = 422, description = "`days` is not 1 to 366", body = ApiError),
    )
)]
pub async fn analytics(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let days = match req.query::<String>("days").filter(|d| !d.trim().is_empty()) {
            None => 30,
            Some(d) => d
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or_else(|| AdminError::invalid("days", "a whole number from 1 to 366"))?,
        };
        let widget = req
            .query::<String>("widget")
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty());
        let mut widgets = state.tenants.widgets().await.map_err(AdminError::from)?;
        if let Some(id) = &widget {
            widgets.retain(|w| &w.id == id);
            if widgets.is_empty() {
                return Err(AdminError::NotFound(id.clone()).into());
            }
        }
        let today = Ledger::today().0;
        let (from, to) = range_ms(today, days);
        let counts = state
            .tenants
            .analytics(widget.as_deref(), from, to)
            .await
            .map_err(AdminError::from)?;
        Ok(report(
            today,
            days,
            &widgets,
            counts,
            &state.settings.upstream.model,
            &state.settings.prices,
        ))
    }
    .await;
    respond(res, StatusCode::OK, r);
}
