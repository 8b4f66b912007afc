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
//! | the legacy protocol's `start`, `stop` or `connection_terminate` | close 4400 | takes them |
//! | an operation id over 256 bytes | close 4400 | takes it |
//! | (an operation refused before it ran: it does not validate, the token no longer holds) | `error` with the list of errors, and no `complete` | `next` and `complete` |
//!
//! A close reason is cut to the 123 bytes a close frame holds. The legacy graphql-ws protocol
//! (subscriptions-transport-ws) keeps async-graphql's behaviour, plus its keep-alive message
//! `ka` ([`Rules::keepalive`]), which its clients need to notice a dead connection.
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
use serde_json::Value;

use crate::live::REFUSAL_MARK;

/// The longest operation id taken: ids are UUIDs or counters, and a reused one must fit the
/// 4409 close reason's frame.
pub const MAX_OPERATION_ID_BYTES: usize = 256;

/// The most a close frame's reason holds (125 bytes of payload, less the code's two).
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// One connection's rules; cheap to clone (the incoming and outgoing sides and the supervisor
/// share them). Holds no state for a legacy-protocol connection.
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
    /// Ids of operations refused with `error`, whose `complete` is not sent.
    refused: HashSet<String>,
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
/// How the server's results begin: graphql-transport-ws's `next`, the legacy protocol's `data`.
const NEXT_PREFIX: &str = r#"{"type":"next""#;
const DATA_PREFIX: &str = r#"{"type":"data""#;

/// The first `max` bytes of `reason`, cut at a character's boundary.
fn limited(mut reason: String, max: usize) -> String {
    if reason.len() > max {
        let mut end = max;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// A close frame with `reason` cut to what a frame holds.
fn close(code: u16, reason: String) -> Message {
    Message::close_with(code, limited(reason, MAX_CLOSE_REASON_BYTES))
}

/// The operation id of a server message and its payload with the refusal mark taken out, if it
/// carries the mark.
fn refused(text: &str) -> Option<(String, Value)> {
    if !text.contains(REFUSAL_MARK) {
        return None;
    }
    let mut message: Value = serde_json::from_str(text).ok()?;
    let extensions = message.get_mut("payload")?.get_mut("extensions")?;
    let map = extensions.as_object_mut()?;
    map.remove(REFUSAL_MARK)?;
    if map.is_empty()
        && let Some(payload) = message["payload"].as_object_mut()
    {
        payload.remove("extensions");
    }
    Some((
        message["id"].as_str()?.to_string(),
        message["payload"].take(),
    ))
}

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
        Some(close(code, reason))
    }

    /// The message sent with every keep-alive ping: the legacy protocol's `ka` (its clients
    /// cannot see WebSocket pings, and take a connection whose `ka` stopped coming for dead);
    /// none for graphql-transport-ws, whose clients answer the pings themselves.
    pub fn keepalive(&self) -> Option<Message> {
        self.0.is_none().then(|| Message::text(r#"{"type":"ka"}"#))
    }

    /// Checks one message from the client; false if it broke a rule (recorded for [`broken`]).
    fn heard(&self, bytes: &[u8]) -> bool {
        let Some(state) = &self.0 else {
            return true;
        };
        let invalid = || Some((4400, "Invalid message received".to_string()));
        let broken = match ClientMessage::from_bytes(bytes) {
            Err(_) => invalid(),
            // async-graphql takes the legacy protocol's messages on either protocol.
            Ok(_) if !is_transport_ws_message(bytes) => invalid(),
            Ok(ClientMessage::Start { id, .. }) if id.len() > MAX_OPERATION_ID_BYTES => invalid(),
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

    /// Notes what the server sends, and what goes out instead: a `complete` frees its
    /// operation's id (and is not sent after a refusal's `error`); a refusal goes out as
    /// `error`; a rejected `connection_init` (async-graphql's 1002 before the connection is
    /// initialised) is closed with 4403 and the reason. `None`: nothing goes out.
    fn sent(&self, message: Message) -> Option<Message> {
        let Some(state) = &self.0 else {
            // The legacy protocol: a refusal goes out as its `data`, without the mark.
            return Some(match message {
                Message::Text(ref text) if text.starts_with(DATA_PREFIX) => match refused(text) {
                    Some((id, payload)) => Message::text(
                        serde_json::json!({"type": "data", "id": id, "payload": payload})
                            .to_string(),
                    ),
                    None => message,
                },
                other => other,
            });
        };
        match message {
            Message::Text(ref text) if text.starts_with(COMPLETE_PREFIX) => {
                if let Ok(done) = serde_json::from_str::<Completed>(text) {
                    let mut ops = lock(state);
                    ops.running.remove(&done.id);
                    if ops.refused.remove(&done.id) {
                        return None;
                    }
                }
                Some(message)
            }
            Message::Text(ref text) if text.starts_with(NEXT_PREFIX) => match refused(text) {
                Some((id, mut payload)) => {
                    let errors = payload["errors"].take();
                    let mut ops = lock(state);
                    ops.running.remove(&id);
                    ops.refused.insert(id.clone());
                    Some(Message::text(
                        serde_json::json!({"type": "error", "id": id, "payload": errors})
                            .to_string(),
                    ))
                }
                None => Some(message),
            },
            Message::Close(Some((code, reason)))
                if u16::from(code) == 1002 && !state.initialised.load(Ordering::Acquire) =>
            {
                Some(close(4403, reason))
            }
            Message::Close(Some((code, reason))) => Some(close(code.into(), reason)),
            other => Some(other),
        }
    }
}

/// Whether a client message's `type` is one of graphql-transport-ws's.
fn is_transport_ws_message(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_slice::<Typed<'_>>(bytes).is_ok_and(|m| {
        matches!(
            m.kind.as_ref(),
            "connection_init" | "subscribe" | "complete" | "ping" | "pong"
        )
    })
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
        match self.rules.sent(item) {
            Some(item) => Pin::new(&mut self.inner).start_send(item),
            // Held back (a refusal's `complete`): the slot `poll_ready` made stays unused.
            None => Ok(()),
        }
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
    use serde_json::json;

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
        assert!(
            matches!(rules.sent(close), Some(Message::Close(Some((c, _)))) if u16::from(c) == 1002)
        );
        assert!(rules.keepalive().is_some(), "its clients wait for `ka`");
        // A refusal goes out as `data`, without the mark; other results as they are.
        let refusal = format!(
            r#"{{"type":"data","id":"1","payload":{{"data":null,"extensions":{{"{REFUSAL_MARK}":true}},"errors":[{{"message":"no"}}]}}}}"#
        );
        assert_eq!(
            text(rules.sent(Message::text(refusal))),
            json!({"type": "data", "id": "1", "payload": {"data": null, "errors": [{"message": "no"}]}})
        );
        let complete = r#"{"type":"complete","id":"1"}"#;
        assert_eq!(
            text(rules.sent(Message::text(complete))),
            json!({"type": "complete", "id": "1"})
        );
    }

    fn text(m: Option<Message>) -> Value {
        match m {
            Some(Message::Text(t)) => serde_json::from_str(&t).expect("json"),
            other => panic!("a text message, not {other:?}"),
        }
    }

    #[test]
    fn a_refusal_goes_out_as_error_without_complete() {
        let rules = transport_ws(true);
        assert!(rules.keepalive().is_none(), "pings do");
        assert!(rules.heard(&subscribe("r")));
        let refusal = format!(
            r#"{{"type":"next","id":"r","payload":{{"data":null,"extensions":{{"{REFUSAL_MARK}":true,"other":1}},"errors":[{{"message":"no","extensions":{{"code":"GRAPHQL_VALIDATION_FAILED"}}}}]}}}}"#
        );
        assert_eq!(
            text(rules.sent(Message::text(refusal))),
            json!({"type": "error", "id": "r", "payload": [{"message": "no", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]})
        );
        assert!(
            rules
                .sent(Message::text(r#"{"type":"complete","id":"r"}"#))
                .is_none(),
            "no complete after error"
        );
        // The id is free again, and a later operation on it completes as usual.
        assert!(rules.heard(&subscribe("r")));
        let result = r#"{"type":"next","id":"r","payload":{"data":{"a":"clearhireRefusal"}}}"#;
        assert_eq!(text(rules.sent(Message::text(result)))["type"], "next");
        assert!(
            rules
                .sent(Message::text(r#"{"type":"complete","id":"r"}"#))
                .is_some()
        );
    }

    #[test]
    fn legacy_messages_and_long_ids_close_with_4400() {
        for message in [
            r#"{"type":"start","id":"1","payload":{"query":"{ __typename }"}}"#.to_string(),
            r#"{"type":"stop","id":"1"}"#.to_string(),
            r#"{"type":"connection_terminate"}"#.to_string(),
            String::from_utf8(subscribe(&"x".repeat(MAX_OPERATION_ID_BYTES + 1))).expect("utf-8"),
        ] {
            let rules = transport_ws(true);
            assert!(!rules.heard(message.as_bytes()), "{message}");
            assert_eq!(
                close_code(rules.broken()),
                Some((4400, "Invalid message received".to_string()))
            );
        }
        let rules = transport_ws(true);
        assert!(rules.heard(&subscribe(&"x".repeat(MAX_OPERATION_ID_BYTES))));
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let rules = transport_ws(true);
        let id = "é".repeat(100);
        assert!(rules.heard(&subscribe(&id)));
        assert!(!rules.heard(&subscribe(&id)));
        let (code, reason) = close_code(rules.broken()).expect("closed");
        assert_eq!(code, 4409);
        assert!(
            reason.len() <= 123 && reason.len() >= 122,
            "{}",
            reason.len()
        );
        assert!(reason.starts_with("Subscriber for é"));
        let rejected = transport_ws(false);
        let (code, reason) =
            close_code(rejected.sent(Message::close_with(1002u16, "y".repeat(300))))
                .expect("close");
        assert_eq!((code, reason.len()), (4403, 123));
    }

    #[test]
    fn a_rejected_init_closes_with_4403_and_the_reason() {
        let rules = transport_ws(false);
        let sent = rules.sent(Message::close_with(1002u16, "token expired"));
        assert!(
            matches!(&sent, Some(Message::Close(Some((c, r)))) if u16::from(*c) == 4403 && r == "token expired"),
            "{sent:?}"
        );
    }
}
