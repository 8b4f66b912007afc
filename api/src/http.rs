//! HTTP routes: `/graphql` (POST queries, GET GraphiQL), health, readiness and metrics.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_poem::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use futures_util::StreamExt;
use poem::http::{HeaderMap, StatusCode};
use poem::middleware::SizeLimit;
use poem::web::websocket::{WebSocket, WebSocketConfig};
use poem::web::{Data, Html};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use service::Service;

use crate::client_ip::TrustedProxies;
use crate::graphql::{self, AppSchema};
use crate::live::protocol::Rules;
use crate::live::{
    ConnectionOps, ReadOnWake, SessionToken, SharedSink, SharedSubscriptions, supervise,
};
use crate::parsed::ParsedQueries;

/// The largest GraphQL request body taken over HTTP, as over WebSocket.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

pub fn routes(
    schema: AppSchema,
    svc: Service,
    window: graphql::BatchWindow,
    live: SharedSubscriptions,
    proxies: TrustedProxies,
) -> impl poem::Endpoint {
    Route::new()
        .at(
            "/graphql",
            // A body larger than a GraphQL request needs is refused before it is read (413; one
            // without a Content-Length, 411), as a WebSocket message is by `websocket_config`.
            get(graphql_get).post(graphql_post.with(SizeLimit::new(MAX_REQUEST_BYTES))),
        )
        .at("/consent/:token", get(crate::pages::consent_get))
        // The candidate pages' forms are small: a larger body is refused before it is read.
        .at(
            "/consent/:token/sections/:key",
            poem::post(crate::pages::consent_section.with(SizeLimit::new(crate::pages::FORM_MAX))),
        )
        .at(
            "/consent/:token/sign",
            poem::post(crate::pages::consent_sign.with(SizeLimit::new(crate::pages::FORM_MAX))),
        )
        .at("/report/:token", get(crate::pages::report_get))
        .at(
            "/report/:token/dispute",
            poem::post(crate::pages::report_dispute.with(SizeLimit::new(crate::pages::FORM_MAX))),
        )
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(live)
        .data(std::sync::Arc::new(ParsedQueries::default()))
        .data(schema)
        .data(svc)
        .data(window)
        .data(proxies)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[handler]
async fn graphql_post(
    schema: Data<&AppSchema>,
    svc: Data<&Service>,
    window: Data<&graphql::BatchWindow>,
    parsed: Data<&std::sync::Arc<ParsedQueries>>,
    headers: &HeaderMap,
    req: GraphQLRequest,
) -> GraphQLResponse {
    let req = req.0;
    if let Err(e) = graphql::without_nul(&req) {
        return error(e);
    }
    let mut req = match bearer(headers) {
        None if headers.contains_key("authorization") => {
            return unauthenticated("the Authorization header must be `Bearer <token>`");
        }
        None => req,
        Some(token) => match svc.authenticate(token).await {
            Ok(actor) => graphql::with_actor(req, &svc, actor, *window.0),
            // A refused token is UNAUTHENTICATED; a failure to check it (the database
            // unreachable) is an internal error, logged, so a partner does not throw away a
            // good token.
            Err(e) => return error(e),
        },
    };
    parsed.prepare(&mut req);
    graphql::error::with_codes(schema.execute(req).await).into()
}

fn unauthenticated(message: &str) -> GraphQLResponse {
    error(service::ServiceError::Unauthenticated(message.to_string()))
}

fn error(e: service::ServiceError) -> GraphQLResponse {
    graphql::error::response(graphql::error::gql(e)).into()
}

/// Per-connection WebSocket buffers. The library's 128 KiB read buffer is zero-filled on the
/// first read, so it would be resident for every idle subscriber; subscription clients send
/// small control messages (connection_init, subscribe, ping), so 4 KiB is plenty and the buffer
/// still grows for a larger message, up to the 1 MiB cap.
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_REQUEST_BYTES))
        .max_frame_size(Some(MAX_REQUEST_BYTES))
}

/// GET /graphql: the WebSocket for subscriptions (graphql-transport-ws or the legacy
/// graphql-ws; the token goes in the `connection_init` payload as `Authorization` or `token`),
/// otherwise GraphiQL.
#[handler]
fn graphql_get(
    live: Data<&SharedSubscriptions>,
    svc: Data<&Service>,
    protocol: Option<GraphQLProtocol>,
    ws: Option<WebSocket>,
) -> Response {
    let (Some(ws), Some(protocol)) = (ws, protocol) else {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .title("clearhire GraphiQL")
                .finish(),
        )
        .into_response();
    };
    let executor = live.clone();
    let times = live.socket_times();
    let svc = svc.clone();
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .config(websocket_config())
        .on_upgrade(move |stream| {
            let (sink, incoming) = stream.split();
            let sink = SharedSink::new(sink);
            let initialised = Arc::new(AtomicBool::new(false));
            let flag = initialised.clone();
            let received = Arc::new(AtomicBool::new(false));
            let init_arrived = received.clone();
            let rules = Rules::new(protocol.0, initialised);
            let incoming = ReadOnWake::new(incoming);
            let heard = incoming.heard();
            let serve = GraphQLWebSocket::new_with_pair(
                rules.outgoing(sink.clone()),
                rules.incoming(incoming),
                executor,
                protocol,
            )
            .on_connection_init(move |payload| async move {
                init_arrived.store(true, Ordering::Release);
                let token = ["Authorization", "authorization", "token"]
                    .iter()
                    .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                    .map(|t| {
                        t.strip_prefix("Bearer ")
                            .or_else(|| t.strip_prefix("bearer "))
                            .unwrap_or(t)
                            .trim()
                            .to_string()
                    })
                    .ok_or_else(|| {
                        graphql::error::gql(service::ServiceError::Unauthenticated(
                            "send the token in the connection_init payload as Authorization".into(),
                        ))
                    })?;
                // Checked now, and again at every operation (`live`).
                svc.authenticate(&token)
                    .await
                    .map_err(graphql::error::gql)?;
                let mut data = async_graphql::Data::default();
                data.insert(SessionToken(token));
                data.insert(ConnectionOps::default());
                flag.store(true, Ordering::Release);
                Ok(data)
            })
            .serve();
            supervise(Box::pin(serve), sink, received, heard, times, rules)
        })
        .into_response()
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

#[handler]
async fn readyz(svc: Data<&Service>) -> Response {
    match svc.db().ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

#[handler]
async fn metrics(svc: Data<&Service>, live: Data<&SharedSubscriptions>) -> String {
    // Backlogs are read before the statement counter, so their own queries are counted too.
    let outbox = svc.outbox_backlog().await.ok();
    let tasks = svc.due_task_count().await.ok();
    let failed = svc.failed_task_count().await.ok();
    let gauge = |name: &str, help: &str, v: Option<u64>| match v {
        Some(v) => format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"),
        None => String::new(),
    };
    format!(
        "# HELP clearhire_db_statements_total SQL statements executed by this process.\n\
         # TYPE clearhire_db_statements_total counter\n\
         clearhire_db_statements_total {}\n{}{}{}{}",
        svc.statements_executed(),
        gauge(
            "clearhire_outbox_backlog",
            "Events committed but not yet relayed to the bus and webhooks.",
            outbox
        ),
        gauge(
            "clearhire_tasks_due",
            "Timed steps due now and not yet done.",
            tasks
        ),
        gauge(
            "clearhire_tasks_failed",
            "Timed steps given up after their last run failed, ever (a rise is the signal).",
            failed
        ),
        gauge(
            "clearhire_subscription_executions",
            "Live subscription executions running; identical subscriptions share one.",
            Some(live.executions() as u64)
        ),
    )
}
