//! The chat's state as a pure reducer, tested natively without a browser.

use std::rc::Rc;

use protocol::SourceRef;
use protocol::widget::{MessageStatus, MessageView, Rating, Role};
use yew::Reducible;

/// How a message on screen stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Complete,
    /// Arriving now.
    Streaming,
    /// Cut short (Stop, a reload mid-answer, a server restart).
    Interrupted,
    /// Failed; what arrived is kept.
    Failed,
}

impl Shown {
    /// The name used in the DOM (`data-state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Complete => "complete",
            Shown::Streaming => "streaming",
            Shown::Interrupted => "interrupted",
            Shown::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// A key for rendering, unique in this page.
    pub key: u64,
    pub role: Role,
    pub text: String,
    pub shown: Shown,
    /// The knowledge an answer used, shown as links under it.
    pub sources: Rc<Vec<SourceRef>>,
    /// The server's id of an answer, once known: what a rating names.
    pub id: Option<String>,
    /// The visitor's rating of an answer.
    pub rating: Option<Rating>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chat {
    pub messages: Vec<Message>,
    pub conversation_id: Option<String>,
    /// An error to show with a Retry button.
    pub error: Option<String>,
    /// What Retry sends again.
    pub last_question: Option<String>,
    /// The connection dropped mid-answer and the panel is getting it back.
    pub reconnecting: bool,
    /// An answer the history shows still streaming (the page was reloaded
    /// mid-answer): the panel resumes it by this message id.
    pub resuming: Option<String>,
    /// The last finished answer as plain text, for the screen-reader
    /// announcer: set once when an answer completes, never per token.
    pub announce: String,
    next_key: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The history fetched after a reload.
    Restore {
        conversation_id: String,
        messages: Vec<MessageView>,
    },
    /// The visitor sent a message; an answer starts.
    Ask(String),
    /// The server named the conversation.
    Conversation(String),
    /// The server named the answer arriving now.
    AnswerId(String),
    /// The visitor rated the answer shown with this key (or took it back).
    Rate(u64, Option<Rating>),
    /// The sources of the answer arriving now.
    Sources(Vec<SourceRef>),
    Chunk(String),
    Done,
    /// The answer failed with this message for the visitor.
    Failed(String),
    /// The visitor pressed Stop.
    Stopped,
    /// Start over: forget the conversation.
    NewConversation,
    /// The connection dropped (`true`) or is back (`false`).
    Reconnecting(bool),
    /// A resumed answer replays from its start: what the history showed of
    /// it goes, the replay writes it again.
    Rewind,
}

impl Chat {
    pub fn is_streaming(&self) -> bool {
        self.messages
            .last()
            .is_some_and(|m| m.shown == Shown::Streaming)
    }

    /// Whether the answer has started but no text arrived yet.
    pub fn is_waiting_for_first_token(&self) -> bool {
        self.messages
            .last()
            .is_some_and(|m| m.shown == Shown::Streaming && m.text.is_empty())
    }

    fn push(&mut self, role: Role, text: String, shown: Shown) {
        self.next_key += 1;
        self.messages.push(Message {
            key: self.next_key,
            role,
            text,
            shown,
            sources: Rc::default(),
            id: None,
            rating: None,
        });
    }

    /// Ends the streaming answer, if any, as `shown`.
    fn settle(&mut self, shown: Shown) {
        if let Some(last) = self.messages.last_mut()
            && last.shown == Shown::Streaming
        {
            last.shown = shown;
            // An answer that never started says nothing: drop the bubble.
            if last.text.is_empty() && shown != Shown::Complete {
                self.messages.pop();
            }
        }
    }
}

impl Reducible for Chat {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Restore {
                conversation_id,
                messages,
            } => {
                next.messages.clear();
                next.conversation_id = Some(conversation_id);
                let last = messages.len().saturating_sub(1);
                for (i, m) in messages.into_iter().enumerate() {
                    // The last answer still streaming (a reload mid-answer)
                    // is followed again; an earlier one was cut off.
                    if i == last
                        && m.role == Role::Assistant
                        && m.status == MessageStatus::Streaming
                    {
                        next.resuming = Some(m.id.clone());
                        next.push(m.role, m.content, Shown::Streaming);
                        if let Some(last) = next.messages.last_mut() {
                            last.id = Some(m.id);
                        }
                        continue;
                    }
                    if m.role == Role::Assistant && m.content.is_empty() {
                        continue;
                    }
                    let shown = match m.status {
                        MessageStatus::Complete => Shown::Complete,
                        MessageStatus::Interrupted | MessageStatus::Streaming => Shown::Interrupted,
                        MessageStatus::Error => Shown::Failed,
                    };
                    next.push(m.role, m.content, shown);
                    if let Some(last) = next.messages.last_mut() {
                        last.sources = Rc::new(m.sources);
                        last.id = Some(m.id);
                        last.rating = m.rating;
                    }
                }
            }
            Action::Ask(text) => {
                next.error = None;
                next.settle(Shown::Interrupted);
                next.last_question = Some(text.clone());
                next.push(Role::User, text, Shown::Complete);
                next.push(Role::Assistant, String::new(), Shown::Streaming);
            }
            Action::Conversation(id) => next.conversation_id = Some(id),
            Action::AnswerId(id) => {
                if let Some(last) = next.messages.last_mut()
                    && last.shown == Shown::Streaming
                {
                    last.id = Some(id);
                }
            }
            Action::Rate(key, rating) => {
                if let Some(m) = next.messages.iter_mut().find(|m| m.key == key) {
                    m.rating = rating;
                }
            }
            Action::Sources(sources) => {
                if let Some(last) = next.messages.last_mut()
                    && last.shown == Shown::Streaming
                {
                    last.sources = Rc::new(sources);
                }
            }
            Action::Chunk(text) => {
                if let Some(last) = next.messages.last_mut()
                    && last.shown == Shown::Streaming
                {
                    last.text.push_str(&text);
                }
            }
            Action::Done => {
                next.reconnecting = false;
                next.resuming = None;
                let was_streaming = next.is_streaming();
                next.settle(Shown::Complete);
                if was_streaming && let Some(last) = next.messages.last() {
                    next.announce = plain(&last.text);
                }
            }
            Action::Failed(message) => {
                next.reconnecting = false;
                next.resuming = None;
                next.settle(Shown::Failed);
                next.error = Some(message);
            }
            Action::Stopped => {
                next.reconnecting = false;
                next.resuming = None;
                next.settle(Shown::Interrupted);
            }
            Action::Reconnecting(on) => next.reconnecting = on,
            Action::Rewind => {
                if let Some(last) = next.messages.last_mut()
                    && last.shown == Shown::Streaming
                {
                    last.text.clear();
                    last.sources = Rc::default();
                }
            }
            Action::NewConversation => {
                next = Chat {
                    next_key: next.next_key,
                    ..Chat::default()
                };
            }
        }
        Rc::new(next)
    }
}

/// An answer's markdown as a screen reader should say it: without the
/// markup characters that would be read out.
fn plain(markdown: &str) -> String {
    markdown
        .chars()
        .filter(|c| !matches!(c, '*' | '`' | '#'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(actions: Vec<Action>) -> Chat {
        let mut chat = Rc::new(Chat::default());
        for a in actions {
            chat = chat.reduce(a);
        }
        (*chat).clone()
    }

    #[test]
    fn an_answer_streams_into_one_message_and_completes() {
        let chat = run(vec![
            Action::Ask("hi".into()),
            Action::Conversation("conv_1".into()),
            Action::Chunk("Hel".into()),
            Action::Chunk("lo".into()),
        ]);
        assert!(chat.is_streaming());
        assert!(!chat.is_waiting_for_first_token());
        let chat = Rc::new(chat).reduce(Action::Done);
        assert_eq!(chat.messages.len(), 2);
        assert_eq!(chat.messages[1].text, "Hello");
        assert_eq!(chat.messages[1].shown, Shown::Complete);
        assert_eq!(chat.conversation_id.as_deref(), Some("conv_1"));
    }

    #[test]
    fn a_finished_answer_is_announced_once_and_only_when_finished() {
        let chat = run(vec![
            Action::Ask("q".into()),
            Action::Chunk("**Yes**, ".into()),
        ]);
        assert_eq!(chat.announce, "", "nothing is announced while it streams");
        let chat = Rc::new(chat).reduce(Action::Chunk("it `works`.".into()));
        assert_eq!(chat.announce, "");
        let chat = Rc::new((*chat).clone()).reduce(Action::Done);
        assert_eq!(chat.announce, "Yes, it works.");
        // A second Done (a replayed terminal event) announces nothing new.
        let again = chat.clone().reduce(Action::Done);
        assert_eq!(again.announce, chat.announce);
        // History restored after a reload is not read out.
        let restored = run(vec![Action::Restore {
            conversation_id: "c".into(),
            messages: Vec::new(),
        }]);
        assert_eq!(restored.announce, "");
    }

    #[test]
    fn an_answer_knows_its_id_and_its_rating_changes_with_the_visitor() {
        let chat = run(vec![
            Action::Ask("q".into()),
            Action::AnswerId("msg_1".into()),
            Action::Chunk("a".into()),
            Action::Done,
            // Late: the answer is finished, its id stays.
            Action::AnswerId("msg_2".into()),
        ]);
        let answer = &chat.messages[1];
        assert_eq!(answer.id.as_deref(), Some("msg_1"));
        assert_eq!(chat.messages[0].id, None, "the question has none");
        let key = answer.key;
        let chat = Rc::new(chat).reduce(Action::Rate(key, Some(Rating::Down)));
        assert_eq!(chat.messages[1].rating, Some(Rating::Down));
        let chat = chat.reduce(Action::Rate(key, None));
        assert_eq!(chat.messages[1].rating, None);
    }

    #[test]
    fn stop_keeps_what_arrived() {
        let chat = run(vec![
            Action::Ask("q".into()),
            Action::Chunk("part".into()),
            Action::Stopped,
        ]);
        assert_eq!(chat.messages[1].text, "part");
        assert_eq!(chat.messages[1].shown, Shown::Interrupted);
        assert!(!chat.is_streaming());
    }

    #[test]
    fn a_failure_before_any_text_leaves_no_empty_bubble_and_offers_retry() {
        let chat = run(vec![Action::Ask("q".into()), Action::Failed("busy".into())]);
        assert_eq!(chat.messages.len(), 1);
        assert_eq!(chat.error.as_deref(), Some("busy"));
        assert_eq!(chat.last_question.as_deref(), Some("q"));
        let chat = Rc::new(chat).reduce(Action::Ask("q".into()));
        assert!(chat.error.is_none());
    }

    #[test]
    fn chunks_after_the_end_are_ignored() {
        let chat = run(vec![
            Action::Ask("q".into()),
            Action::Chunk("a".into()),
            Action::Done,
            Action::Chunk("late".into()),
        ]);
        assert_eq!(chat.messages[1].text, "a");
    }

    #[test]
    fn a_reload_mid_answer_resumes_the_last_answer_and_its_replay_rewrites_it() {
        let view = |id: &str, role, content: &str, status| MessageView {
            id: id.into(),
            role,
            content: content.into(),
            status,
            created_at: 0,
            sources: Vec::new(),
            rating: None,
        };
        let chat = run(vec![Action::Restore {
            conversation_id: "c".into(),
            messages: vec![
                view("m1", Role::User, "q", MessageStatus::Complete),
                view("m2", Role::Assistant, "half", MessageStatus::Streaming),
            ],
        }]);
        assert_eq!(chat.resuming.as_deref(), Some("m2"));
        assert!(chat.is_streaming());
        assert_eq!(chat.messages[1].text, "half");
        let chat = run(vec![
            Action::Restore {
                conversation_id: "c".into(),
                messages: vec![
                    view("m1", Role::User, "q", MessageStatus::Complete),
                    view("m2", Role::Assistant, "half", MessageStatus::Streaming),
                ],
            },
            Action::Rewind,
            Action::Chunk("half and ".into()),
            Action::Reconnecting(true),
            Action::Chunk("whole".into()),
            Action::Done,
        ]);
        assert_eq!(chat.messages[1].text, "half and whole");
        assert_eq!(chat.messages[1].shown, Shown::Complete);
        assert!(!chat.reconnecting && chat.resuming.is_none());
    }

    #[test]
    fn restore_shows_stored_messages_with_their_status() {
        let view = |role, content: &str, status| MessageView {
            id: "m".into(),
            role,
            content: content.into(),
            status,
            created_at: 0,
            sources: Vec::new(),
            rating: None,
        };
        let chat = run(vec![Action::Restore {
            conversation_id: "conv_9".into(),
            messages: vec![
                view(Role::User, "q1", MessageStatus::Complete),
                view(Role::Assistant, "a1", MessageStatus::Complete),
                view(Role::User, "q2", MessageStatus::Complete),
                view(Role::Assistant, "half", MessageStatus::Interrupted),
                view(Role::User, "q3", MessageStatus::Complete),
                view(Role::Assistant, "", MessageStatus::Error),
            ],
        }]);
        let shown: Vec<_> = chat
            .messages
            .iter()
            .map(|m| (m.text.as_str(), m.shown))
            .collect();
        assert_eq!(
            shown,
            [
                ("q1", Shown::Complete),
                ("a1", Shown::Complete),
                ("q2", Shown::Complete),
                ("half", Shown::Interrupted),
                ("q3", Shown::Complete),
            ]
        );
        let keys: std::collections::HashSet<_> = chat.messages.iter().map(|m| m.key).collect();
        assert_eq!(keys.len(), chat.messages.len());
    }

    #[test]
    fn sources_go_with_the_answer_arriving_now_and_come_back_with_the_history() {
        let source = |n: u32| SourceRef {
            n,
            title: format!("Page {n}"),
            url: Some(format!("https://docs.example.com/{n}")),
            snippet: "s".into(),
        };
        let chat = run(vec![
            Action::Ask("q".into()),
            Action::Sources(vec![source(1), source(2)]),
            Action::Chunk("a [1]".into()),
            Action::Done,
            Action::Sources(vec![source(3)]),
        ]);
        assert_eq!(*chat.messages[1].sources, vec![source(1), source(2)]);
        assert!(chat.messages[0].sources.is_empty());
        let restored = run(vec![Action::Restore {
            conversation_id: "c".into(),
            messages: vec![MessageView {
                id: "m".into(),
                role: Role::Assistant,
                content: "a".into(),
                status: MessageStatus::Complete,
                created_at: 0,
                sources: vec![source(1)],
                rating: Some(Rating::Up),
            }],
        }]);
        assert_eq!(*restored.messages[0].sources, vec![source(1)]);
        assert_eq!(restored.messages[0].rating, Some(Rating::Up));
        assert_eq!(restored.messages[0].id.as_deref(), Some("m"));
    }

    #[test]
    fn new_conversation_forgets_everything_but_keeps_keys_unique() {
        let chat = run(vec![
            Action::Ask("q".into()),
            Action::Conversation("c".into()),
            Action::NewConversation,
            Action::Ask("again".into()),
        ]);
        assert_eq!(chat.conversation_id, None);
        assert_eq!(chat.messages.len(), 2);
        assert!(chat.messages[0].key > 2);
    }
}
