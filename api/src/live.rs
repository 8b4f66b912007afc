//! The WebSocket side of live subscriptions, made for many subscribers on one process.
//!
//! - **Shared executions.** Subscribers of one partner and role that send the same subscription
//!   (query text, operation name, variables) share one execution: it filters the bus and resolves
//!   the selection once per event, and each subscriber gets a copy of the response. Without this,
//!   every subscriber ran the whole subscription pipeline for every event of the process.
//!   An execution runs with the session data of the subscriber that started it, which is right
//!   only while subscription resolvers depend on nothing of the caller but partner and role (the
//!   key): a resolver that reads more of the caller must add it to `Key`.
//! - **Reads on wake-up only.** A connection reads its socket when the socket woke it, not every
//!   time one of its subscriptions has a message to send.
//! - **The token is checked again.** A connection keeps the token it was opened with
//!   ([`SessionToken`]): every operation authenticates it anew (a revoked token, a removed or
//!   demoted member is refused), and a running subscription checks it every
//!   `CLEARHIRE_LIVE_TOKEN_CHECK_SECS` (each check is a lookup in the token cache, and a
//!   database read once its entry has expired, so with many subscribers this is kept well above
//!   the cache's time to live), ending with an error once it no longer holds (revoked, expired, or
//!   another role). Queries and mutations sent over the socket run on their own, as over HTTP,
//!   never joined to another caller's execution. A connection runs at most
//!   [`MAX_OPERATIONS_PER_CONNECTION`] operations at once.
use std::any::TypeId;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};

use std::time::Duration;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Data, ErrorExtensions, Executor, Request, Response};
use futures_util::sink::{Sink, SinkExt};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use futures_util::task::{ArcWake, AtomicWaker, waker_ref};
use service::{Actor, Service, ServiceError};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::graphql::error::{gql, lagged, response, with_codes};
use crate::graphql::{AppSchema, BatchWindow};
use crate::live::protocol::Rules;

pub mod protocol;

/// How many responses a member of a shared execution may fall behind before it lags (and is
/// told how many it missed). Slots are allocated up front, so this is kept small.
pub const MEMBER_CAPACITY: usize = 256;

/// Operations one connection may run at once; the next is refused until one ends.
pub const MAX_OPERATIONS_PER_CONNECTION: usize = 100;

/// The token a WebSocket connection was opened with (its `connection_init`), in the connection's
/// session data.
pub struct SessionToken(pub String);

/// The operations a connection is running, in its session data.
#[derive(Default)]
pub struct ConnectionOps(Arc<AtomicUsize>);

/// One running operation of a connection; counted down when its stream is dropped.
struct OpSlot(Arc<AtomicUsize>);

impl Drop for OpSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What makes two subscriptions the same: who asks (a partner's events, seen with a role's
/// rights) and what they ask (a SHA-256 of the query text, operation name and variables: the
/// text itself, up to a message's 1 MiB, is not kept a second time for every execution).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    partner_id: String,
    role: entity::Role,
    request: [u8; 32],
}

/// The running executions by key, each with the number it was started under.
type Registry = Mutex<HashMap<Key, (u64, Weak<Execution>)>>;

/// Numbers the executions, so that one ending removes its own registry entry and no newer one.
static EXECUTIONS_STARTED: AtomicU64 = AtomicU64::new(0);

/// Removes execution `number`'s entry for `key`, if the entry is still its own.
fn unregister(registry: &Registry, key: &Key, number: u64) {
    let mut map = registry.lock().unwrap_or_else(PoisonError::into_inner);
    if map.get(key).is_some_and(|(n, _)| *n == number) {
        map.remove(key);
    }
}

/// One running execution and its members. The last member to leave stops it.
struct Execution {
    key: Key,
    number: u64,
    responses: broadcast::WeakSender<Arc<Response>>,
    task: tokio::task::AbortHandle,
    registry: Weak<Registry>,
}

impl Drop for Execution {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(registry) = self.registry.upgrade() {
            // Only this execution's own entry: a newer one may already hold the key.
            unregister(&registry, &self.key, self.number);
        }
    }
}

/// The executor the WebSocket endpoint runs subscriptions with: queries and mutations go to the
/// schema; subscriptions join a shared execution when an identical one is running.
#[derive(Clone)]
pub struct SharedSubscriptions {
    schema: AppSchema,
    svc: Service,
    window: BatchWindow,
    /// How often a running subscription checks its token.
    token_check: Duration,
    /// How long a connection may wait for its `connection_init`, and how often it is pinged.
    socket: SocketTimes,
    running: Arc<Registry>,
}

impl SharedSubscriptions {
    /// The schema's stream for a subscription, its errors given codes as over HTTP, and a
    /// refusal marked as one ([`MarkRefusal`]).
    fn stream(&self, request: Request, session: Arc<Data>) -> BoxStream<'static, Response> {
        MarkRefusal::new(
            self.schema
                .execute_stream_with_session_data(request, session)
                .map(with_codes),
        )
        .boxed()
    }

    pub fn new(
        schema: AppSchema,
        svc: Service,
        window: BatchWindow,
        token_check: Duration,
        socket: SocketTimes,
    ) -> Self {
        Self {
            schema,
            svc,
            window,
            token_check,
            socket,
            running: Arc::default(),
        }
    }

    /// How long a connection may wait for its `connection_init`, and how often it is pinged.
    pub fn socket_times(&self) -> SocketTimes {
        self.socket
    }

    /// Executions running now (each serves one or more subscribers).
    pub fn executions(&self) -> usize {
        let map = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        map.values().filter(|(_, w)| w.strong_count() > 0).count()
    }

    /// Joins the running execution for `key`, or starts one. Returns it with a receiver that
    /// sees every response it makes from now on.
    fn join(
        &self,
        key: Key,
        request: Request,
        session: Arc<Data>,
    ) -> (Arc<Execution>, broadcast::Receiver<Arc<Response>>) {
        let mut map = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        // An execution whose stream has ended: dropped only once the lock is released, since
        // dropping the last reference takes the lock.
        let mut ended = None;
        if let Some(running) = map.get(&key).and_then(|(_, w)| w.upgrade()) {
            if let Some(tx) = running.responses.upgrade() {
                let rx = tx.subscribe();
                return (running, rx);
            }
            ended = Some(running);
        }
        let (tx, rx) = broadcast::channel(MEMBER_CAPACITY);
        let responses = tx.downgrade();
        let mut stream = self.stream(request, session);
        let number = EXECUTIONS_STARTED.fetch_add(1, Ordering::Relaxed);
        let registry = Arc::downgrade(&self.running);
        let (task_registry, task_key) = (registry.clone(), key.clone());
        // The stream ends (an invalid request, say) → the sender drops → members see the end.
        let task = tokio::spawn(async move {
            while let Some(response) = stream.next().await {
                // A refusal is the whole answer: the execution leaves the registry before
                // sending it, so a subscriber arriving after it starts an execution of its own
                // (and is refused in turn) instead of joining one that has nothing more to say.
                if is_refusal(&response)
                    && let Some(registry) = task_registry.upgrade()
                {
                    unregister(&registry, &task_key, number);
                }
                // No receivers means every member has left; dropping the execution aborts this.
                let _ = tx.send(Arc::new(response));
            }
        })
        .abort_handle();
        let execution = Arc::new(Execution {
            key: key.clone(),
            number,
            responses,
            task,
            registry,
        });
        map.insert(key, (number, Arc::downgrade(&execution)));
        drop(map);
        drop(ended);
        (execution, rx)
    }
}

/// The caller and request a shared execution is keyed on, or `None` when the request carries
/// anything else that could change its answer (request data, uploads, extensions).
fn key(request: &Request, actor: &Actor) -> Option<Key> {
    if !request.data.is_empty() || !request.uploads.is_empty() || !request.extensions.is_empty() {
        return None;
    }
    use sha2::Digest;
    // A BTreeMap: the same variables always give the same text.
    let variables = serde_json::to_string(&request.variables).ok()?;
    let mut digest = sha2::Sha256::new();
    // Each part with its length first, so no two different requests run together into one.
    for part in [
        request.query.as_str(),
        request.operation_name.as_deref().unwrap_or("\0none"),
        &variables,
    ] {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part.as_bytes());
    }
    Some(Key {
        partner_id: actor.partner_id.clone(),
        role: actor.role,
        request: digest.finalize().into(),
    })
}

/// A member's copy of a shared response. (`Response` is not `Clone`; what a subscription message
/// carries is its data, errors and extensions.)
fn copy(r: &Response) -> Response {
    let mut out = Response::new(r.data.clone());
    out.errors.clone_from(&r.errors);
    out.extensions.clone_from(&r.extensions);
    out
}

fn member(
    execution: Arc<Execution>,
    rx: broadcast::Receiver<Arc<Response>>,
) -> BoxStream<'static, Response> {
    futures_util::stream::unfold((rx, execution), |(mut rx, execution)| async move {
        let item = match rx.recv().await {
            Ok(r) => copy(&r),
            Err(RecvError::Lagged(n)) => response(lagged(n)),
            Err(RecvError::Closed) => return None,
        };
        Some((item, (rx, execution)))
    })
    .boxed()
}

/// The response extension that marks an operation refused before it ran: a request the schema
/// refuses (it does not parse or validate), a token that no longer holds, one operation too
/// many. [`protocol`] sends such a response as graphql-transport-ws's `error` message (the legacy
/// protocol's `data`), and takes the mark out.
pub const REFUSAL_MARK: &str = "clearhireRefusal";

/// `r`, marked as a refusal.
fn refusal(mut r: Response) -> Response {
    r.extensions.insert(
        REFUSAL_MARK.to_string(),
        async_graphql::Value::Boolean(true),
    );
    r
}

fn is_refusal(r: &Response) -> bool {
    r.extensions.contains_key(REFUSAL_MARK)
}

/// A subscription's stream, its refusal marked: a first response of errors alone (no data)
/// after which the stream ends at once is the schema refusing the request (it does not
/// validate, or its resolver refused to start). A first response of errors that the stream
/// goes on after is an event's, and stays as it is.
struct MarkRefusal<S> {
    inner: S,
    first: bool,
    /// An item read while looking past the first.
    ahead: Option<Response>,
    ended: bool,
}

impl<S> MarkRefusal<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            first: true,
            ahead: None,
            ended: false,
        }
    }
}

impl<S: Stream<Item = Response> + Unpin> Stream for MarkRefusal<S> {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Response>> {
        if let Some(r) = self.ahead.take() {
            return Poll::Ready(Some(r));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let r = match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(r)) => r,
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => return Poll::Pending,
        };
        if !std::mem::take(&mut self.first)
            || r.data != async_graphql::Value::Null
            || r.errors.is_empty()
        {
            return Poll::Ready(Some(r));
        }
        // Looked past without waiting: a refusal's stream has already ended. (A `Pending` here
        // registered a waker that does nothing, which is harmless: the caller polls again after
        // this item, with its own.)
        let mut look = Context::from_waker(futures_util::task::noop_waker_ref());
        match self.inner.poll_next_unpin(&mut look) {
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(refusal(r)))
            }
            Poll::Ready(Some(next)) => {
                self.ahead = Some(next);
                Poll::Ready(Some(r))
            }
            Poll::Pending => Poll::Ready(Some(r)),
        }
    }
}

/// A stream of one response.
fn only(r: Response) -> BoxStream<'static, Response> {
    futures_util::stream::once(std::future::ready(r)).boxed()
}

fn session_get<T: 'static>(session: &Data) -> Option<&T> {
    session.get(&TypeId::of::<T>())?.downcast_ref::<T>()
}

/// Whether the request's operation is a subscription. A request that does not parse, or names
/// no operation it has (or several, none named), is not: the schema answers it with the error.
fn is_subscription(request: &Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let ty = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        // One named operation needs no name to be chosen (`subscription Watch { … }` sent
        // without `operationName`, as the graphql-ws client does).
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    ty == Some(OperationType::Subscription)
}

/// `stream` until the connection's token stops holding for `actor` (checked every `every`, the
/// first check at a spread-out offset within the first `every`, so subscribers that started
/// together don't check together); then one error item, and the end.
fn until_revoked(
    stream: BoxStream<'static, Response>,
    svc: Service,
    token: String,
    actor: Actor,
    every: Duration,
) -> BoxStream<'static, Response> {
    let spread = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()))
        % (every.as_millis() as u64).max(1);
    let ended = Box::pin(async move {
        let mut wait = Duration::from_millis(spread);
        loop {
            tokio::time::sleep(wait).await;
            wait = every;
            // Boxed: the check's state is allocated only while it runs, not held by every
            // idle subscriber.
            match Box::pin(svc.authenticate(&token)).await {
                Ok(now) if now.partner_id == actor.partner_id && now.role == actor.role => {}
                Ok(_) => {
                    return response(gql(ServiceError::Forbidden(
                        "the token's role has changed: subscribe again".into(),
                    )));
                }
                // The database unreachable for a moment: keep serving, check again later.
                Err(ServiceError::Internal(e)) => {
                    tracing::warn!(error = %e, "subscription: token check failed; retrying later");
                }
                Err(e) => return response(gql(e)),
            }
        }
    });
    futures_util::stream::unfold(Some((stream, ended)), |state| async move {
        let (mut stream, mut ended) = state?;
        tokio::select! {
            item = stream.next() => item.map(|r| (r, Some((stream, ended)))),
            refusal = &mut ended => Some((refusal, None)),
        }
    })
    .boxed()
}

impl SharedSubscriptions {
    /// One operation of a connection whose token is `token`, authenticated now.
    async fn operation(self, request: Request, token: String) -> BoxStream<'static, Response> {
        let actor = match self.svc.authenticate(&token).await {
            Ok(a) => a,
            Err(e) => return only(refusal(response(gql(e)))),
        };
        if let Err(e) = crate::graphql::without_nul(&request) {
            return only(refusal(response(gql(e))));
        }
        if !is_subscription(&request) {
            // A query or mutation: run for this caller alone, as over HTTP. One that did not
            // run at all (it does not parse or validate: data null, no error with a path) is a
            // refusal; errors of a run are part of its result.
            let request = crate::graphql::with_actor(request, &self.svc, actor, self.window);
            let answer = with_codes(self.schema.execute(request).await);
            let never_ran = answer.data == async_graphql::Value::Null
                && !answer.errors.is_empty()
                && answer.errors.iter().all(|e| e.path.is_empty());
            return only(if never_ran { refusal(answer) } else { answer });
        }
        let key = key(&request, &actor);
        let mut data = Data::default();
        data.insert(actor.clone());
        let session = Arc::new(data);
        let stream = match key {
            Some(key) => {
                let (execution, rx) = self.join(key, request, session);
                member(execution, rx)
            }
            None => self.stream(request, session),
        };
        until_revoked(stream, self.svc, token, actor, self.token_check)
    }
}

impl Executor for SharedSubscriptions {
    async fn execute(&self, request: Request) -> Response {
        with_codes(self.schema.execute(request).await)
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let session = session_data.unwrap_or_default();
        let Some(token) = session_get::<SessionToken>(&session).map(|t| t.0.clone()) else {
            return only(refusal(response(gql(ServiceError::Unauthenticated(
                "send the token in the connection_init payload as Authorization".into(),
            )))));
        };
        // Operations the connection was running before this one.
        let mut running = 0;
        let slot = session_get::<ConnectionOps>(&session).map(|ops| {
            running = ops.0.fetch_add(1, Ordering::AcqRel);
            OpSlot(ops.0.clone())
        });
        if running >= MAX_OPERATIONS_PER_CONNECTION {
            return only(refusal(response(
                async_graphql::Error::new(format!(
                    "at most {MAX_OPERATIONS_PER_CONNECTION} operations at once on one connection"
                ))
                .extend_with(|_, ext| ext.set("code", "TOO_MANY_OPERATIONS")),
            )));
        }
        // Boxed: the operation's future (the authentication, a query's whole execution) is
        // freed once it has made the stream, not kept inline beside every idle subscription.
        futures_util::stream::once(Box::pin(self.clone().operation(request, token)))
            .flatten()
            // The slot is held as long as the stream lives.
            .map(move |r| {
                let _held = &slot;
                r
            })
            .boxed()
    }
}

/// A sink two owners can write to: the WebSocket protocol, and [`supervise`]'s pings and its
/// close of a connection whose `connection_init` never succeeded.
pub struct SharedSink<S>(Arc<Mutex<S>>);

impl<S> SharedSink<S> {
    pub fn new(sink: S) -> Self {
        Self(Arc::new(Mutex::new(sink)))
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, S> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> Clone for SharedSink<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: Sink<I> + Unpin, I> Sink<I> for SharedSink<S> {
    type Error = S::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner().poll_ready_unpin(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), S::Error> {
        self.inner().start_send_unpin(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner().poll_flush_unpin(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner().poll_close_unpin(cx)
    }
}

/// The longest interval between a legacy-protocol connection's `ka` messages.
const LEGACY_KEEPALIVE_MAX: Duration = Duration::from_secs(10);

/// A connection's timings: `CLEARHIRE_LIVE_INIT_TIMEOUT_SECS` and
/// `CLEARHIRE_LIVE_KEEPALIVE_SECS`.
#[derive(Debug, Clone, Copy)]
pub struct SocketTimes {
    /// How long a connection may wait before its `connection_init` succeeds.
    pub init_timeout: Duration,
    /// How often an initialised connection is pinged; `None`: never.
    pub keepalive: Option<Duration>,
}

/// Runs a connection (`serve`) and watches it:
/// - if its `connection_init` has not arrived (`received`) within the init timeout, it is
///   closed with 4408, graphql-transport-ws's "Connection initialisation timeout" (the legacy
///   protocol names no code, and gets the same), so a socket that never authenticates does not
///   stay open; one that arrived in time is not cut off while its token is being looked up;
/// - it is sent a WebSocket ping every keepalive interval (browsers and client libraries answer
///   pings themselves), and on the legacy protocol its `ka` message too. A connection from
///   which nothing (not even a pong) was `heard` over a whole interval after a ping is dropped:
///   its peer is gone, and an idle subscription would otherwise hold its memory until a write to
///   the peer failed, which for a subscription that sees no events is never.
///
/// - once the connection ends over a broken protocol rule ([`protocol`]), it is closed with that
///   rule's code.
///
/// `serve` comes boxed, and the caller builds it outside any `async` block: a future holding the
/// connection inline (or the upgraded stream it was made from, as an `async` block's captures
/// stay for its whole life) made every idle subscriber 3 KB larger.
pub async fn supervise<S, F>(
    serve: Pin<Box<F>>,
    mut sink: SharedSink<S>,
    received: Arc<AtomicBool>,
    heard: Arc<AtomicBool>,
    times: SocketTimes,
    rules: Rules,
) where
    S: Sink<poem::web::websocket::Message> + Unpin,
    F: Future<Output = ()>,
{
    watch(serve, &mut sink, received, heard, times, rules.keepalive()).await;
    if let Some(close) = rules.broken() {
        // The peer may be gone already.
        let _ = sink.send(close).await;
    }
}

async fn watch<S, F>(
    mut serve: Pin<Box<F>>,
    sink: &mut SharedSink<S>,
    received: Arc<AtomicBool>,
    heard: Arc<AtomicBool>,
    times: SocketTimes,
    keepalive_message: Option<poem::web::websocket::Message>,
) where
    S: Sink<poem::web::websocket::Message> + Unpin,
    F: Future<Output = ()>,
{
    use poem::web::websocket::Message;
    tokio::select! {
        () = &mut serve => return,
        () = tokio::time::sleep(times.init_timeout) => {}
    }
    if !received.load(Ordering::Acquire) {
        let close = Message::close_with(4408u16, "Connection initialisation timeout");
        // The peer may be gone already; the connection ends either way.
        let _ = sink.send(close).await;
        return;
    }
    let Some(mut every) = times.keepalive else {
        serve.await;
        return;
    };
    // A subscriptions-transport-ws client takes a connection whose `ka` did not come within its
    // timeout (30 s by default) for dead: it is sent well within that.
    if keepalive_message.is_some() {
        every = every.min(LEGACY_KEEPALIVE_MAX);
    }
    loop {
        tokio::select! {
            () = &mut serve => return,
            () = tokio::time::sleep(every) => {}
        }
        if !heard.swap(false, Ordering::AcqRel) {
            tracing::debug!("a WebSocket peer stopped answering pings; dropping its connection");
            return;
        }
        // Sent beside the connection, which keeps being served; a peer that does not even take
        // the ping within an interval is gone.
        let keepalive = async {
            if let Some(ka) = keepalive_message.clone() {
                sink.send(ka).await?;
            }
            sink.send(Message::Ping(Vec::new())).await
        };
        tokio::select! {
            () = &mut serve => return,
            _ = keepalive => {}
            () = tokio::time::sleep(every) => return,
        }
    }
}

/// A stream polled only once it has woken its task (or has just yielded an item, after which
/// another may already be buffered). The WebSocket protocol polls a connection's incoming
/// messages every time it is woken, which for a subscriber means every outgoing message; this
/// keeps those polls from reading the socket.
pub struct ReadOnWake<S> {
    inner: S,
    wake: Arc<WakeFlag>,
    /// Set at every message read (pongs too); [`supervise`] clears it at each ping.
    heard: Arc<AtomicBool>,
}

struct WakeFlag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for WakeFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.task.wake();
    }
}

impl<S> ReadOnWake<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            wake: Arc::new(WakeFlag {
                woken: AtomicBool::new(true),
                task: AtomicWaker::new(),
            }),
            heard: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Set whenever a message is read.
    pub fn heard(&self) -> Arc<AtomicBool> {
        self.heard.clone()
    }
}

impl<S: Stream + Unpin> Stream for ReadOnWake<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.wake.task.register(cx.waker());
        if !self.wake.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let wake = self.wake.clone();
        let waker = waker_ref(&wake);
        let polled = self.inner.poll_next_unpin(&mut Context::from_waker(&waker));
        if polled.is_ready() {
            self.wake.woken.store(true, Ordering::Release);
            self.heard.store(true, Ordering::Release);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    /// A stream that is ready only when told, and counts how often it is polled.
    struct Gate {
        items: Vec<u32>,
        polls: usize,
        waker: Option<std::task::Waker>,
    }

    impl Stream for Gate {
        type Item = u32;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.polls += 1;
            match self.items.pop() {
                Some(i) => Poll::Ready(Some(i)),
                None => {
                    self.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    #[test]
    fn read_on_wake_polls_only_after_a_wake_or_an_item() {
        let mut s = ReadOnWake::new(Gate {
            items: vec![2, 1],
            polls: 0,
            waker: None,
        });
        let mut cx = Context::from_waker(noop_waker_ref());
        // Two buffered items come out back to back, then the inner stream is pending.
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Pending);
        assert_eq!(s.inner.polls, 3);
        // Woken by something else: the inner stream is not polled.
        for _ in 0..5 {
            assert_eq!(s.poll_next_unpin(&mut cx), Poll::Pending);
        }
        assert_eq!(s.inner.polls, 3);
        // The inner stream wakes it: polled again, and its item comes out.
        s.inner.items.push(3);
        s.inner.waker.take().expect("registered").wake();
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(3)));
        assert_eq!(s.inner.polls, 4);
    }
}
