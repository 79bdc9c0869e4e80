//! A turn of the chat: stores the visitor's message, builds the prompt
//! (history within its budget, the widget's knowledge), asks the provider,
//! and relays the answer as SSE frames while storing it (the answer's
//! lifecycle: streaming, then complete, interrupted or error). The HTTP side
//! (`http::chat`) reads the request and hands over the body stream.
//!
//! May use: `store`, `tenants`, `provider`, `knowledge`, `limits`, `state`.
//! Never `http`.
//!
//! The response is committed only once the provider has produced its first
//! delta, so a provider that fails or stays silent before that becomes a real
//! HTTP status with a JSON `ApiError`. After that, failures are `error`
//! events. A relay task owns the upstream stream: when the visitor goes away
//! the response body is dropped, the task sees its channel close, and
//! dropping the upstream stream cancels the request at once.

pub mod grounding;
pub mod log;
pub mod shared_log;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use protocol::event::{DoneEvent, MetaEvent};
use protocol::{ApiError, ChatRequest, ErrorCode, StreamEvent, Usage};
use salvo::http::StatusCode;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::AppError;
use crate::ids::new_id;
use crate::limits::shared::SharedReserve;
use crate::limits::{
    Budget, Ledger, Limits, Reserved, StreamPermit, estimate_tokens, until_refill,
};
use crate::metrics::Outcome;
use crate::provider::{
    Delta, DeltaStream, PromptMessage, PromptRequest, PromptRole, ProviderError,
};
use crate::state::AppState;
use crate::store::{MessageStatus, NewAnswer, Owner, Role, StoreError, StoredMessage};
use crate::tenants::Widget;

/// A store failure: logged, counted, and a 503 for the visitor.
fn store_failed(state: &AppState, e: impl std::fmt::Display) -> AppError {
    state.metrics.store_error();
    tracing::error!(error = %e, "store failed");
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal,
        "Your message could not be saved. Please try again.",
    )
}

/// Refuses a new turn while the server shuts down (503 + Retry-After).
pub fn accepting(state: &AppState) -> Result<(), AppError> {
    if state.lifecycle.is_shutting_down() {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "The server is restarting. Please try again in a moment.",
        )
        .with_retry_after(2));
    }
    Ok(())
}

/// Everything up to the first delta; returns the SSE body.
pub async fn start(
    state: &Arc<AppState>,
    widget: &Arc<Widget>,
    owner: &Owner,
    limits: Limits,
    permit: StreamPermit,
    request: ChatRequest,
) -> Result<impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static, AppError>
{
    let began = Instant::now();
    // The history of a continued conversation, for the prompt.
    let not_found = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ConversationNotFound,
            "There is no such conversation. Start a new one.",
        )
    };
    let earlier = match &request.conversation_id {
        Some(id) => state
            .store
            .messages(&widget.id, owner, id)
            .await
            .map_err(|e| store_failed(state, e))?
            .ok_or_else(not_found)?,
        None => Vec::new(),
    };
    // The newest earlier messages that fit the history budget (and count).
    let keep = state.settings.chat.history_messages;
    let budget = u64::from(limits.history_tokens);
    // The tokens of the messages kept.
    let mut history_tokens = 0;
    // A question the model failed on before saying anything (its answer an
    // empty `error`) stays stored but is left out: the visitor asked it
    // again or moved on.
    let unanswered = |i: usize| {
        earlier.get(i + 1).is_some_and(|next| {
            next.role == Role::Assistant
                && next.status == MessageStatus::Error
                && next.content.is_empty()
        })
    };
    let mut history: Vec<PromptMessage> = earlier
        .iter()
        .enumerate()
        .filter(|&(i, m)| !(m.role == Role::User && unanswered(i)))
        .map(|(_, m)| m)
        .rev()
        .filter(|m| !m.content.is_empty())
        .take(keep)
        .take_while(|m| {
            let cost = estimate_tokens(&m.content) + MESSAGE_OVERHEAD_TOKENS;
            let fits = history_tokens + cost <= budget;
            if fits {
                history_tokens += cost;
            }
            fits
        })
        .map(|m| PromptMessage {
            role: match m.role {
                Role::User => PromptRole::User,
                Role::Assistant => PromptRole::Assistant,
            },
            content: m.content.clone(),
        })
        .collect();
    history.reverse();
    // The knowledge it rests on; nothing relevant means no model call.
    let grounding = grounding::ground(
        &*state.knowledge,
        state.embedder.as_deref(),
        widget,
        &request.message,
    )
    .await;
    let knowledge_tokens: u64 = grounding
        .passages
        .iter()
        .map(|p| estimate_tokens(&p.text) + estimate_tokens(&p.title) + MESSAGE_OVERHEAD_TOKENS)
        .sum();
    let prompt_tokens = estimate_tokens(&widget.system_prompt)
        + knowledge_tokens
        + history_tokens
        + estimate_tokens(&request.message)
        + MESSAGE_OVERHEAD_TOKENS;

    // The budget: the answer's tokens (its prompt, and its completion up
    // to the model's cap) are reserved before anything is stored or asked,
    // so answers running at once cannot together overspend it.
    let max_completion = u64::from(
        widget
            .max_tokens
            .unwrap_or(state.settings.upstream.max_tokens),
    );
    let hold = reserve_budget(state, widget, &limits, prompt_tokens, max_completion).await?;

    // The visitor's message is committed, and the answer's row exists (so a
    // crash leaves a trace), before the model is asked: one transaction.
    let user_message_id = new_id("msg");
    let answer_id = new_id("msg");
    let question = StoredMessage {
        id: user_message_id.clone(),
        role: Role::User,
        content: request.message.clone(),
        status: MessageStatus::Complete,
        usage: None,
        created_at: SystemTime::now(),
        sources: Vec::new(),
        rating: None,
    };
    let new_answer = NewAnswer {
        id: answer_id.clone(),
        sources: grounding.sources.clone(),
        unanswered: grounding.unanswered,
    };
    let turn = state
        .store
        .begin_turn(
            &widget.id,
            owner,
            request.conversation_id.as_deref(),
            question,
            &new_answer,
        )
        .await;
    let conversation_id = match turn {
        Ok(id) => id,
        Err(e) => {
            if let Some(hold) = &hold {
                release(state, widget.id.as_str(), hold, 0).await;
            }
            return Err(match e {
                StoreError::NoSuchConversation(_) => not_found(),
                other => store_failed(state, other),
            });
        }
    };
    if request.conversation_id.is_none() {
        state.webhooks.emit(
            widget.id.as_str(),
            "conversation.created",
            serde_json::json!({
                "widget_id": widget.id.as_str(),
                "conversation_id": conversation_id,
                "user_id": owner.user,
                "message": {"id": user_message_id, "content": request.message},
            }),
        );
    }
    let answer = Answer {
        state: state.clone(),
        widget: widget.id.to_string(),
        conversation_id: conversation_id.clone(),
        message_id: answer_id,
        prompt_tokens,
        hold: hold.clone(),
    };
    let prompt = PromptRequest {
        history,
        question: request.message,
        knowledge: grounding.passages,
    };
    // Nothing relevant: the widget's "I don't know"; a matching FAQ: its
    // answer. Neither asks the model.
    let canned = if grounding.unanswered {
        Some(grounding::unknown_reply(&*state.knowledge, widget).await)
    } else {
        grounding.faq_answer
    };
    let sources = grounding.sources;
    let upstream = &state.settings.upstream;
    let first_timeout = Duration::from_millis(upstream.first_token_timeout_ms);
    let provider = state.provider.clone();
    let first = tokio::time::timeout(first_timeout, async {
        let mut stream = match &canned {
            Some(text) => crate::provider::canned(text),
            None => provider.start(widget, prompt).await?,
        };
        let first = stream.next().await;
        Ok::<_, ProviderError>((stream, first))
    })
    .await;
    // Before the first delta a failure is an HTTP error; the answer's row
    // is closed as `error` either way.
    let outcome = match first {
        Ok(Ok((stream, Some(Ok(first))))) => Ok((stream, first)),
        Err(_) => {
            state.metrics.upstream_error("first_token_timeout");
            tracing::warn!(widget = %widget.id, provider = provider.name(), "no first token in time");
            Err(AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::UpstreamTimeout,
                "The assistant took too long to answer. Please try again.",
            ))
        }
        Ok(Err(e)) | Ok(Ok((_, Some(Err(e))))) => {
            state.metrics.upstream_error(error_kind(&e));
            Err(provider_error(&e, provider.name()))
        }
        Ok(Ok((_, None))) => {
            state.metrics.upstream_error("empty");
            tracing::warn!(
                provider = provider.name(),
                "upstream ended without any output"
            );
            Err(AppError::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::UpstreamError,
                "The assistant could not answer. Please try again.",
            ))
        }
    };
    let (stream, first) = match outcome {
        Ok(started) => {
            state.metrics.first_token(began.elapsed().as_secs_f64());
            started
        }
        Err(error) => {
            answer
                .store(String::new(), MessageStatus::Error, None)
                .await;
            return Err(error.in_conversation(answer.conversation_id));
        }
    };

    let log = state.answers.open(
        &answer.message_id,
        widget.id.as_str(),
        owner,
        &conversation_id,
    );
    // With Redis, the log is mirrored there: resumable, and stoppable, on
    // any replica.
    if let Some(redis) = state.limiter.shared() {
        shared_log::mirror(
            redis,
            log.clone(),
            &answer.message_id,
            Duration::from_secs(state.settings.chat.resume_ttl_secs),
        );
    }
    let meta = StreamEvent::Meta(MetaEvent {
        conversation_id,
        user_message_id,
        message_id: answer.message_id.clone(),
    });
    let chat = &state.settings.chat;
    let heartbeat = Duration::from_secs(chat.heartbeat_secs.max(1));
    // The visitor reads through the log, as a resuming visitor does.
    let body = log.follow(None, heartbeat);
    let relay = Relay {
        log,
        seq: 0,
        grace: Duration::from_secs(chat.resume_grace_secs),
        idle_timeout: Duration::from_millis(upstream.idle_timeout_ms),
        text: String::new(),
        finish: None,
        usage: None,
        budget_left: hold.map(|h| h.tokens.saturating_sub(prompt_tokens)),
        _permit: permit,
        failed: None,
        terminal: None,
    };
    let shutdown = state.lifecycle.cut_token();
    // `meta` first; `sources`, when there are some, before the first chunk.
    let mut opening = vec![meta];
    if !sources.is_empty() {
        opening.push(StreamEvent::Sources(sources));
    }
    // The relay outlives the request: it keeps the request's span, so its
    // log lines carry the request id too.
    state.lifecycle.tracker().spawn(
        relay
            .run(opening, first, stream, answer, shutdown, provider.name())
            .instrument(tracing::Span::current()),
    );
    Ok(body)
}

/// A provider failure's kind, for the metrics.
fn error_kind(e: &ProviderError) -> &'static str {
    match e {
        ProviderError::Status { status: 429, .. } => "rate_limited",
        ProviderError::Status { status, .. } if *status >= 500 => "server_error",
        ProviderError::Status { .. } => "refused",
        ProviderError::Connect(_) => "connect",
        ProviderError::Stream(_) => "stream",
        ProviderError::Malformed(_) => "malformed",
    }
}

/// The client-facing error for a provider failure; the cause is logged.
fn provider_error(e: &ProviderError, provider: &str) -> AppError {
    tracing::warn!(error = %e, provider, "upstream failed");
    match e {
        ProviderError::Status { status: 429, .. } | ProviderError::Status { status: 503, .. } => {
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::UpstreamUnavailable,
                "The assistant is busy right now. Please try again in a moment.",
            )
            .with_retry_after(5)
        }
        ProviderError::Connect(_) => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UpstreamUnavailable,
            "The assistant cannot be reached right now. Please try again in a moment.",
        )
        .with_retry_after(5),
        _ => AppError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::UpstreamError,
            "The assistant could not answer. Please try again.",
        ),
    }
}

/// Tokens a message costs beyond its text (role and separators), roughly.
const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// The fewest completion tokens worth starting an answer for.
const MIN_COMPLETION_TOKENS: u64 = 16;

/// An answer's hold on its widget's budget: the tokens granted, and the
/// reservation's id when the budgets are shared through Redis.
#[derive(Debug, Clone)]
struct Hold {
    tokens: u64,
    shared: Option<String>,
}

/// Reserves the answer's tokens from the widget's budget: `Ok(None)` when
/// it has no budget, else its hold; 429 `budget_exceeded` when it is spent
/// (`Retry-After`: until it refills) or held by answers in flight
/// (`Retry-After`: a few seconds); with Redis configured and unreachable,
/// 503 `budget_unavailable` (no answer starts without its budget checked).
async fn reserve_budget(
    state: &AppState,
    widget: &Widget,
    limits: &Limits,
    prompt_tokens: u64,
    max_completion: u64,
) -> Result<Option<Hold>, AppError> {
    if limits.daily_tokens == 0 && limits.monthly_tokens == 0 {
        // No budget: nothing to reserve, here or in Redis.
        return Ok(None);
    }
    let want = prompt_tokens + max_completion;
    let min = prompt_tokens + MIN_COMPLETION_TOKENS;
    let (reserved, shared) = if state.settings.redis.url.is_some() {
        reserve_shared(state, widget, limits, want, min).await?
    } else {
        (reserve_local(state, widget, limits, want, min).await?, None)
    };
    match reserved {
        None => Ok(None),
        Some(Reserved::Granted(tokens)) => Ok(Some(Hold { tokens, shared })),
        Some(Reserved::Exhausted(budget)) => {
            let which = match budget {
                Budget::Daily => "today",
                Budget::Monthly => "this month",
            };
            Err(AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::BudgetExceeded,
                format!("This assistant has answered all it can {which}. Please try again later."),
            )
            .with_retry_after(until_refill(budget)))
        }
        Some(Reserved::Busy) => Err(AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::BudgetExceeded,
            "This assistant is answering many questions right now. Please try again in a few seconds.",
        )
        .with_retry_after(5)),
    }
}

/// The store's tokens of the widget today and this month.
async fn spent_today(state: &AppState, widget: &Widget) -> Result<(u64, u64), AppError> {
    let today = Ledger::today();
    state
        .store
        .spent(&widget.id, &crate::limits::day_string(today.0))
        .await
        .map_err(|e| store_failed(state, e))
}

/// [`reserve_budget`] in this process's ledger (loading the widget's
/// totals from the store the first time each day).
async fn reserve_local(
    state: &AppState,
    widget: &Widget,
    limits: &Limits,
    want: u64,
    min: u64,
) -> Result<Option<Reserved>, AppError> {
    let today = Ledger::today();
    if !state.ledger.knows(widget.id.as_str(), today) {
        let (day, month) = spent_today(state, widget).await?;
        state.ledger.load(widget.id.as_str(), today, day, month);
    }
    Ok(state.ledger.reserve(widget.id.as_str(), limits, want, min))
}

/// [`reserve_budget`] in Redis, shared by every replica (the store's
/// totals are read when Redis has none for the day or month yet).
async fn reserve_shared(
    state: &AppState,
    widget: &Widget,
    limits: &Limits,
    want: u64,
    min: u64,
) -> Result<(Option<Reserved>, Option<String>), AppError> {
    let unavailable = |why: &dyn std::fmt::Display| {
        tracing::warn!(error = %why, widget = %widget.id, "the shared budget is unreachable: the answer is refused");
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::BudgetUnavailable,
            "This assistant cannot check its budget right now. Please try again in a few seconds.",
        )
        .with_retry_after(5)
    };
    let Some(shared) = state.limiter.shared() else {
        return Err(unavailable(&"Redis has not been reached since the start"));
    };
    let mut totals = None;
    loop {
        let reply = shared
            .reserve_budget(widget.id.as_str(), limits, want, min, totals)
            .await
            .map_err(|e| unavailable(&e))?;
        return Ok(match reply {
            SharedReserve::NeedTotals if totals.is_none() => {
                totals = Some(spent_today(state, widget).await?);
                continue;
            }
            SharedReserve::NeedTotals => {
                return Err(unavailable(&"Redis lost the totals it was just given"));
            }
            SharedReserve::NoBudget => (None, None),
            SharedReserve::Granted { id, tokens } => (Some(Reserved::Granted(tokens)), Some(id)),
            SharedReserve::Exhausted(budget) => (Some(Reserved::Exhausted(budget)), None),
            SharedReserve::Busy => (Some(Reserved::Busy), None),
        });
    }
}

/// Ends an answer's hold, counting the `spent` tokens, where it was made.
async fn release(state: &AppState, widget: &str, hold: &Hold, spent: u64) {
    match (&hold.shared, state.limiter.shared()) {
        (Some(id), Some(shared)) => {
            if let Err(e) = shared.settle_budget(widget, id, spent).await {
                tracing::warn!(error = %e, widget, "settling the shared budget failed (the reservation expires by itself)");
            }
        }
        _ => state.ledger.settle(widget, hold.tokens, spent),
    }
}

/// Where the answer is stored.
struct Answer {
    state: Arc<AppState>,
    widget: String,
    conversation_id: String,
    message_id: String,
    /// The prompt's tokens, estimated, for when the provider sends no count.
    prompt_tokens: u64,
    /// Its reservation from the widget's budget (none without a budget).
    hold: Option<Hold>,
}

impl Answer {
    /// Stores the answer with its usage (the provider's, or estimated when
    /// it sent none, e.g. because the visitor left first) and counts it
    /// against the budget.
    async fn store(&self, content: String, status: MessageStatus, usage: Option<Usage>) {
        let usage = usage.or_else(|| {
            (status != MessageStatus::Error || !content.is_empty()).then(|| {
                let prompt = self.prompt_tokens.min(u64::from(u32::MAX)) as u32;
                let completion = estimate_tokens(&content).min(u64::from(u32::MAX)) as u32;
                Usage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    total_tokens: prompt.saturating_add(completion),
                }
            })
        });
        let spent = usage.map_or(0, |u| {
            u64::from(u.prompt_tokens) + u64::from(u.completion_tokens)
        });
        if let Some(u) = usage {
            self.state.metrics.tokens(
                &self.widget,
                u64::from(u.prompt_tokens),
                u64::from(u.completion_tokens),
            );
        }
        if let Some(hold) = &self.hold {
            release(&self.state, &self.widget, hold, spent).await;
        }
        let stored = self
            .state
            .store
            .finish_answer(&self.message_id, &content, status, usage)
            .await;
        match stored {
            Err(e) => {
                tracing::error!(error = %e, conversation = %self.conversation_id, "storing the answer failed");
            }
            Ok(_) if status == MessageStatus::Complete => self.state.webhooks.emit(
                &self.widget,
                "message.completed",
                serde_json::json!({
                    "widget_id": self.widget,
                    "conversation_id": self.conversation_id,
                    "message_id": self.message_id,
                    "role": "assistant",
                    "content": content,
                    "usage": usage,
                }),
            ),
            Ok(_) => {}
        }
    }

    /// Saves the answer so far; a failure is logged and streaming goes on.
    async fn checkpoint(&self, content: &str) {
        if let Err(e) = self
            .state
            .store
            .checkpoint_answer(&self.message_id, content)
            .await
        {
            tracing::warn!(error = %e, conversation = %self.conversation_id, "checkpointing the answer failed");
        }
    }
}

/// How often a streaming answer is saved, so a crash loses at most this much.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How a relay ended.
enum End {
    /// `done` was sent.
    Done,
    /// An `error` event was sent.
    Failed,
    /// Nobody read the answer for the grace period.
    ClientGone,
    /// The visitor pressed Stop.
    Stopped,
}

struct Relay {
    /// Where each event goes; readers follow it.
    log: Arc<log::AnswerLog>,
    seq: u64,
    /// How long the answer goes on with nobody reading.
    grace: Duration,
    idle_timeout: Duration,
    text: String,
    finish: Option<String>,
    usage: Option<Usage>,
    /// Completion tokens the budget still allows, if it has a limit.
    budget_left: Option<u64>,
    /// The session's stream slot, given back when the relay ends.
    _permit: StreamPermit,
    /// The code of the `error` event that ended it, if one did.
    failed: Option<ErrorCode>,
    /// The event that ends the answer (`done` or `error`), sent once the
    /// answer is stored: a visitor who has seen the end finds the answer
    /// in the history.
    terminal: Option<StreamEvent>,
}

/// What applying a delta led to.
#[derive(PartialEq, Eq)]
enum Step {
    Go,
    OverBudget,
}

impl Relay {
    /// Appends an event to the answer's log.
    fn send(&mut self, event: &StreamEvent) {
        let frame = Bytes::from(event.to_sse(self.seq));
        self.seq += 1;
        self.log.push(frame);
    }

    /// Applies a delta.
    async fn apply(&mut self, delta: Delta) -> Step {
        match delta {
            Delta::Text(text) => {
                self.text.push_str(&text);
                self.send(&StreamEvent::chunk(text));
                if self
                    .budget_left
                    .is_some_and(|left| estimate_tokens(&self.text) > left)
                {
                    return Step::OverBudget;
                }
                Step::Go
            }
            Delta::Finish(reason) => {
                self.finish = Some(reason);
                Step::Go
            }
            Delta::Usage(usage) => {
                self.usage = Some(usage);
                Step::Go
            }
        }
    }

    fn fail(&mut self, code: ErrorCode, message: &str) -> End {
        self.failed = Some(code);
        self.terminal = Some(StreamEvent::Error(ApiError::new(code, message)));
        End::Failed
    }

    fn over_budget(&mut self) -> End {
        self.fail(
            ErrorCode::BudgetExceeded,
            "This assistant has used up its budget for now; the answer was cut short.",
        )
    }

    fn finish_done(&mut self) -> End {
        self.terminal = Some(StreamEvent::Done(DoneEvent {
            finish_reason: self.finish.clone().unwrap_or_else(|| "stop".into()),
            usage: self.usage,
        }));
        End::Done
    }

    async fn run(
        mut self,
        opening: Vec<StreamEvent>,
        first: Delta,
        mut stream: DeltaStream,
        answer: Answer,
        shutdown: tokio_util::sync::CancellationToken,
        provider: &'static str,
    ) {
        let began = Instant::now();
        let log = self.log.clone();
        let abandoned = log.abandoned(self.grace);
        tokio::pin!(abandoned);
        let end = 'relay: {
            for event in &opening {
                self.send(event);
            }
            if self.apply(first).await == Step::OverBudget {
                break 'relay self.over_budget();
            }
            let mut idle_deadline = Instant::now() + self.idle_timeout;
            let mut checkpoint =
                tokio::time::interval_at(Instant::now() + CHECKPOINT_EVERY, CHECKPOINT_EVERY);
            let mut saved_len = 0;
            // The answer's lease on its row is renewed at least this often,
            // new text or not (a replica that dies stops renewing it).
            let renew_every =
                Duration::from_secs(answer.state.settings.chat.answer_lease_secs.max(1)) / 3;
            let mut saved_at = Instant::now();
            loop {
                tokio::select! {
                    biased;
                    _ = log.stopped() => break 'relay End::Stopped,
                    _ = &mut abandoned => break 'relay End::ClientGone,
                    _ = shutdown.cancelled() => {
                        break 'relay self.fail(ErrorCode::ShuttingDown, "The server is restarting; the answer was cut short. Please ask again.");
                    }
                    item = stream.next() => {
                        idle_deadline = Instant::now() + self.idle_timeout;
                        match item {
                            Some(Ok(delta)) => if self.apply(delta).await == Step::OverBudget {
                                break 'relay self.over_budget();
                            },
                            Some(Err(e)) => {
                                answer.state.metrics.upstream_error(error_kind(&e));
                                tracing::warn!(error = %e, provider, "upstream failed mid-answer");
                                break 'relay self.fail(ErrorCode::UpstreamError, "The answer was interrupted. Please try again.");
                            }
                            None if self.finish.is_some() => break 'relay self.finish_done(),
                            None => {
                                answer.state.metrics.upstream_error("no_finish");
                                tracing::warn!(provider, "upstream ended without a finish reason");
                                break 'relay self.fail(ErrorCode::UpstreamError, "The answer ended early. Please try again.");
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(idle_deadline) => {
                        if self.finish.is_some() {
                            // The answer is complete; only the end marker is late.
                            break 'relay self.finish_done();
                        }
                        answer.state.metrics.upstream_error("idle_timeout");
                        tracing::warn!(provider, "upstream went silent");
                        break 'relay self.fail(ErrorCode::UpstreamTimeout, "The assistant stopped answering. Please try again.");
                    }
                    _ = checkpoint.tick() => {
                        if self.text.len() != saved_len || saved_at.elapsed() >= renew_every {
                            answer.checkpoint(&self.text).await;
                            saved_len = self.text.len();
                            saved_at = Instant::now();
                        }
                    }
                }
            }
        };
        // Cancel upstream now, before the store write.
        drop(stream);
        // Each end: the event readers get last, its count, and how the
        // answer is stored.
        let (outcome, status) = match end {
            End::Done => (Outcome::Answered, MessageStatus::Complete),
            // A failure mid-answer keeps what came as `interrupted`;
            // `error` is for an answer that has nothing to keep.
            End::Failed if self.text.is_empty() => (Outcome::Failed, MessageStatus::Error),
            End::Failed => (Outcome::Failed, MessageStatus::Interrupted),
            End::ClientGone => {
                self.terminal = Some(StreamEvent::Error(ApiError::new(
                    ErrorCode::Interrupted,
                    "Nobody was reading, so the answer was stopped. Please ask again.",
                )));
                tracing::info!(conversation = %answer.conversation_id, "nobody read the answer for the grace period; upstream cancelled");
                (Outcome::Abandoned, MessageStatus::Interrupted)
            }
            End::Stopped => {
                self.terminal = Some(StreamEvent::Done(DoneEvent {
                    finish_reason: "stopped".into(),
                    usage: None,
                }));
                tracing::info!(conversation = %answer.conversation_id, "the visitor stopped the answer; upstream cancelled");
                (Outcome::Stopped, MessageStatus::Interrupted)
            }
        };
        let metrics = &answer.state.metrics;
        metrics.answer_duration(began.elapsed().as_secs_f64());
        // Only a failure has a code (`fail` sets it).
        metrics.chat(outcome, self.failed.map(ErrorCode::as_str));
        // Stored first, then the end: whoever has seen `done` (and asks
        // again at once) finds the answer in the history.
        answer
            .store(std::mem::take(&mut self.text), status, self.usage)
            .await;
        if let Some(terminal) = self.terminal.take() {
            self.send(&terminal);
        }
        self.log.end();
        answer.state.answers.finished(&answer.message_id);
    }
}
