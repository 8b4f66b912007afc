//! What graphql-transport-ws (the `graphql-ws` library's protocol) asks of a server beyond what
//! async-graphql's WebSocket protocol does. A client library reads these close codes to decide
//! whether to reconnect, and a reused operation id must not silently replace a running one:
//!
//! | the client sends | the protocol says | async-graphql alone |
//! |---|---|---|
//! | a message that is not one of the protocol's | close 4400 | close 1002 |
//! | `subscribe` before `connection_ack` | close 4401 Unauthorized | close 1011 |
//! | `subscribe` with the id of a running operation | close 4409 `Subscriber for <id> already exists` | replaces the running one, whose client never hears of it again |
//! | a `connection_init` the server rejects | close 4403 Forbidden | close 1002 |
//!
//! The legacy graphql-ws protocol (subscriptions-transport-ws) keeps async-graphql's behaviour.
//! [`Rules::incoming`] sees what the client sends, [`Rules::outgoing`] what the server sends
//! (an operation's `complete` frees its id), and [`Rules::broken`] is the close frame to send
//! once the incoming side has ended the connection over a broken rule.
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_graphql::http::{ClientMessage, WebSocketProtocols as Protocols};
use futures_util::sink::Sink;
use futures_util::stream::{Stream, StreamExt};
use poem::web::websocket::Message;
use serde::Deserialize;

/// One connection's rules; cheap to clone (the incoming and outgoing sides and the supervisor
/// share them). Holds nothing for a legacy-protocol connection.
#[derive(Clone)]
pub struct Rules(Option<Arc<State>>);

struct State {
    /// Set once the connection's `connection_init` has succeeded.
    initialised: Arc<AtomicBool>,
    ops: Mutex<Ops>,
}

#[derive(Default)]
struct Ops {
    /// Ids of the operations the client started and neither side has completed.
    running: HashSet<String>,
    /// The close code and reason of the rule the client broke.
    broken: Option<(u16, String)>,
}

/// The part of the server's `complete` message that names the operation.
#[derive(Deserialize)]
struct Completed {
    id: String,
}

/// How the server's `complete` messages begin (async-graphql writes the type first).
const COMPLETE_PREFIX: &str = r#"{"type":"complete""#;

impl Rules {
    pub fn new(protocol: Protocols, initialised: Arc<AtomicBool>) -> Self {
        Self(match protocol {
            Protocols::GraphQLWS => Some(Arc::new(State {
                initialised,
                ops: Mutex::new(Ops::default()),
            })),
            Protocols::SubscriptionsTransportWS => None,
        })
    }

    /// The client's messages, ended at the first that breaks a rule.
    pub fn incoming<S>(&self, inner: S) -> Incoming<S> {
        Incoming {
            inner,
            rules: self.clone(),
            ended: false,
        }
    }

    /// The server's messages, watched for completed operations.
    pub fn outgoing<S>(&self, inner: S) -> Outgoing<S> {
        Outgoing {
            inner,
            rules: self.clone(),
        }
    }

    /// The close frame owed to a client that broke a rule, once.
    pub fn broken(&self) -> Option<Message> {
        let state = self.0.as_ref()?;
        let (code, reason) = lock(state).broken.take()?;
        Some(Message::close_with(code, reason))
    }

    /// Checks one message from the client; false if it broke a rule (recorded for [`broken`]).
    fn heard(&self, bytes: &[u8]) -> bool {
        let Some(state) = &self.0 else {
            return true;
        };
        let broken = match ClientMessage::from_bytes(bytes) {
            Err(_) => Some((4400, "Invalid message received".to_string())),
            Ok(ClientMessage::Start { id, .. }) => {
                let mut ops = lock(state);
                if !state.initialised.load(Ordering::Acquire) {
                    Some((4401, "Unauthorized".to_string()))
                } else if ops.running.contains(&id) {
                    Some((4409, format!("Subscriber for {id} already exists")))
                } else {
                    ops.running.insert(id);
                    None
                }
            }
            Ok(ClientMessage::Stop { id }) => {
                lock(state).running.remove(&id);
                None
            }
            Ok(_) => None,
        };
        match broken {
            None => true,
            Some(rule) => {
                lock(state).broken = Some(rule);
                false
            }
        }
    }

    /// Notes what the server sends: a `complete` frees its operation's id, and a rejected
    /// `connection_init` (async-graphql's 1002 before the connection is initialised) is closed
    /// with 4403 and the reason.
    fn sent(&self, message: Message) -> Message {
        let Some(state) = &self.0 else {
            return message;
        };
        match message {
            Message::Text(ref text) if text.starts_with(COMPLETE_PREFIX) => {
                if let Ok(done) = serde_json::from_str::<Completed>(text) {
                    lock(state).running.remove(&done.id);
                }
                message
            }
            Message::Close(Some((code, reason)))
                if u16::from(code) == 1002 && !state.initialised.load(Ordering::Acquire) =>
            {
                Message::close_with(4403u16, reason)
            }
            other => other,
        }
    }
}

fn lock(state: &State) -> std::sync::MutexGuard<'_, Ops> {
    state.ops.lock().unwrap_or_else(PoisonError::into_inner)
}

/// See [`Rules::incoming`].
pub struct Incoming<S> {
    inner: S,
    rules: Rules,
    ended: bool,
}

impl<S, E> Stream for Incoming<S>
where
    S: Stream<Item = Result<Message, E>> + Unpin,
{
    type Item = Result<Message, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = self.inner.poll_next_unpin(cx);
        let bytes = match &polled {
            Poll::Ready(Some(Ok(Message::Text(text)))) => Some(text.as_bytes()),
            Poll::Ready(Some(Ok(Message::Binary(bytes)))) => Some(bytes.as_slice()),
            _ => None,
        };
        if bytes.is_some_and(|b| !self.rules.heard(b)) {
            self.ended = true;
            return Poll::Ready(None);
        }
        polled
    }
}

/// See [`Rules::outgoing`].
pub struct Outgoing<S> {
    inner: S,
    rules: Rules,
}

impl<S: Sink<Message> + Unpin> Sink<Message> for Outgoing<S> {
    type Error = S::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), S::Error> {
        let item = self.rules.sent(item);
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport_ws(initialised: bool) -> Rules {
        Rules::new(Protocols::GraphQLWS, Arc::new(AtomicBool::new(initialised)))
    }

    fn subscribe(id: &str) -> Vec<u8> {
        format!(r#"{{"type":"subscribe","id":"{id}","payload":{{"query":"{{ __typename }}"}}}}"#)
            .into_bytes()
    }

    fn close_code(m: Option<Message>) -> Option<(u16, String)> {
        match m {
            Some(Message::Close(Some((code, reason)))) => Some((u16::from(code), reason)),
            _ => None,
        }
    }

    #[test]
    fn an_id_is_free_again_once_either_side_completes_it() {
        let rules = transport_ws(true);
        assert!(rules.heard(&subscribe("a")));
        assert!(rules.heard(&subscribe("b")));
        // The client completes "a"; the server completes "b".
        assert!(rules.heard(br#"{"type":"complete","id":"a"}"#));
        rules.sent(Message::text(r#"{"type":"complete","id":"b"}"#));
        assert!(rules.heard(&subscribe("a")));
        assert!(rules.heard(&subscribe("b")));
        assert!(rules.broken().is_none());
        // A `next` for "a" does not free it.
        rules.sent(Message::text(r#"{"type":"next","id":"a","payload":{}}"#));
        assert!(!rules.heard(&subscribe("a")));
        assert_eq!(
            close_code(rules.broken()),
            Some((4409, "Subscriber for a already exists".to_string()))
        );
        assert!(rules.broken().is_none(), "owed once");
    }

    #[test]
    fn the_legacy_protocol_is_left_as_it_is() {
        let rules = Rules::new(
            Protocols::SubscriptionsTransportWS,
            Arc::new(AtomicBool::new(false)),
        );
        assert!(rules.heard(b"not json"));
        assert!(rules.heard(&subscribe("a")));
        assert!(rules.heard(&subscribe("a")));
        let close = Message::close_with(1002u16, "bad token");
        assert!(matches!(rules.sent(close), Message::Close(Some((c, _))) if u16::from(c) == 1002));
    }

    #[test]
    fn a_rejected_init_closes_with_4403_and_the_reason() {
        let rules = transport_ws(false);
        let sent = rules.sent(Message::close_with(1002u16, "token expired"));
        assert!(
            matches!(&sent, Message::Close(Some((c, r))) if u16::from(*c) == 4403 && r == "token expired"),
            "{sent:?}"
        );
    }
}
