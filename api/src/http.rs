//! HTTP routes: `/graphql` (POST queries, GET GraphiQL), health, readiness and metrics.
use async_graphql::http::GraphiQLSource;
use async_graphql_poem::{GraphQLRequest, GraphQLResponse};
use poem::http::{HeaderMap, StatusCode};
use poem::web::{Data, Html};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use service::Service;

use crate::graphql::{self, AppSchema};

pub fn routes(
    schema: AppSchema,
    svc: Service,
    window: graphql::BatchWindow,
) -> impl poem::Endpoint {
    Route::new()
        .at("/graphql", get(graphiql).post(graphql_post))
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(schema)
        .data(svc)
        .data(window)
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
    headers: &HeaderMap,
    req: GraphQLRequest,
) -> GraphQLResponse {
    let req = req.0;
    let req = match bearer(headers) {
        None if headers.contains_key("authorization") => {
            return unauthenticated("the Authorization header must be `Bearer <token>`");
        }
        None => req,
        Some(token) => match svc.authenticate(token).await {
            Ok(actor) => graphql::with_actor(req, &svc, actor, *window.0),
            Err(e) => return unauthenticated(&e.to_string()),
        },
    };
    schema.execute(req).await.into()
}

fn unauthenticated(message: &str) -> GraphQLResponse {
    let err = graphql::error::gql(service::ServiceError::Unauthenticated(message.to_string()));
    async_graphql::Response::from_errors(vec![err.into_server_error(Default::default())]).into()
}

#[handler]
fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .title("clearhire GraphiQL")
            .finish(),
    )
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
fn metrics(svc: Data<&Service>) -> String {
    format!(
        "# HELP clearhire_db_statements_total SQL statements executed by this process.\n\
         # TYPE clearhire_db_statements_total counter\n\
         clearhire_db_statements_total {}\n",
        svc.statements_executed()
    )
}
