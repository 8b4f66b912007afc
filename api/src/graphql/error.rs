//! Service errors as GraphQL errors with `extensions.code` (and `field` for bad input).
use async_graphql::{Error, ErrorExtensions};
use service::{Actor, ServiceError};

pub fn gql(err: ServiceError) -> Error {
    let code = err.code();
    match &err {
        ServiceError::Internal(e) => {
            tracing::error!(error = ?e, "internal error");
            Error::new("internal error").extend_with(|_, ext| ext.set("code", code))
        }
        ServiceError::Invalid { field, message } => {
            let field = field.clone();
            Error::new(format!("{field}: {message}")).extend_with(|_, ext| {
                ext.set("code", code);
                ext.set("field", field.as_str());
            })
        }
        ServiceError::Conflict {
            field,
            message,
            existing_id,
        } => {
            let (field, existing) = (field.clone(), existing_id.clone());
            Error::new(message.clone()).extend_with(|_, ext| {
                ext.set("code", code);
                if let Some(f) = &field {
                    ext.set("field", f.as_str());
                }
                if let Some(id) = &existing {
                    ext.set("existingId", id.as_str());
                }
            })
        }
        _ => Error::new(err.to_string()).extend_with(|_, ext| ext.set("code", code)),
    }
}

pub type GqlResult<T> = async_graphql::Result<T>;

/// The caller, or UNAUTHENTICATED.
pub fn actor<'a>(ctx: &'a async_graphql::Context<'_>) -> GqlResult<&'a Actor> {
    ctx.data_opt::<Actor>().ok_or_else(|| {
        gql(ServiceError::Unauthenticated(
            "send an API token as `Authorization: Bearer <token>`".into(),
        ))
    })
}

pub fn svc<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a service::Service {
    // Inserted by the schema builder: absence is a programming error caught by every test.
    ctx.data_unchecked::<service::Service>()
}

/// A response carrying one error (a request refused before it runs, a subscription's error
/// item).
pub fn response(e: Error) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![e.into_server_error(Default::default())])
}

/// The error item a subscriber gets when it fell behind and `n` events were dropped for it.
pub fn lagged(n: u64) -> Error {
    Error::new(format!("subscriber too slow: {n} events missed"))
        .extend_with(|_, ext| ext.set("code", "SUBSCRIBER_LAGGED"))
}

/// The error item subscribers get after a break in the event bus: events published while the
/// process was cut off from Redis never reached it.
pub fn events_missed() -> Error {
    Error::new(
        "the event stream was interrupted: events during the interruption may be missing; reload what you show",
    )
    .extend_with(|_, ext| ext.set("code", "EVENTS_MISSED"))
}

/// async-graphql's own errors (a query that does not parse or validate, an argument value of the
/// wrong type or missing a required field, the depth and complexity limits) come without
/// `extensions.code`; this gives them one, and an argument value error the name of its field,
/// as the service's own errors have. Errors that already carry a code are left as they are.
pub fn with_codes(mut resp: async_graphql::Response) -> async_graphql::Response {
    for e in &mut resp.errors {
        if e.extensions
            .as_ref()
            .is_some_and(|x| x.get("code").is_some())
        {
            continue;
        }
        let Some((code, field)) = classify(&e.message, e.path.is_empty()) else {
            continue;
        };
        let ext = e.extensions.get_or_insert_with(Default::default);
        ext.set("code", code);
        if let Some(f) = field {
            ext.set("field", f);
        }
    }
    resp
}

/// The code of an error async-graphql raised (and the input field it names), from its message;
/// `None` for an error of a resolver (`top_level` false) that is not an input value error.
fn classify(message: &str, top_level: bool) -> Option<(&'static str, Option<String>)> {
    // `"input.email", field "email" of type "String!" is required but not provided`, or
    // `"input.status", enumeration type "CheckStatus" does not contain the value "x"`.
    let quoted_after = |marker: &str| {
        let rest = &message[message.find(marker)? + marker.len()..];
        rest.split('"').next().map(str::to_string)
    };
    if message.starts_with("Query is nested too deep")
        || message.starts_with("Query is too complex")
    {
        return Some(("QUERY_TOO_COMPLEX", None));
    }
    if message.starts_with("Invalid value for argument") {
        let field = quoted_after(r#"field ""#).or_else(|| {
            quoted_after("argument \"").and_then(|p| p.rsplit('.').next().map(str::to_string))
        });
        return Some(("BAD_USER_INPUT", field));
    }
    if message.contains("is required but not provided") {
        // `Field "startCheck" argument "input" of type "StartCheckInput!" is required …`
        return Some(("BAD_USER_INPUT", quoted_after(r#"argument ""#)));
    }
    if message.starts_with("Failed to parse") {
        return Some(("BAD_USER_INPUT", None));
    }
    if !top_level {
        return None;
    }
    if message.contains(" --> ") {
        return Some(("GRAPHQL_PARSE_FAILED", None));
    }
    Some(("GRAPHQL_VALIDATION_FAILED", None))
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn async_graphql_errors_get_a_code_and_their_field() {
        let c = |m: &str| classify(m, true).expect("classified");
        assert_eq!(
            c(
                r#"Invalid value for argument "input", field "email" of type "String!" is required but not provided"#
            ),
            ("BAD_USER_INPUT", Some("email".into()))
        );
        assert_eq!(
            c(
                r#"Invalid value for argument "input.status", enumeration type "CheckStatus" does not contain the value "x""#
            ),
            ("BAD_USER_INPUT", Some("status".into()))
        );
        assert_eq!(
            c(
                r#"Field "startCheck" argument "input" of type "StartCheckInput!" is required but not provided"#
            ),
            ("BAD_USER_INPUT", Some("input".into()))
        );
        assert_eq!(c("Query is nested too deep."), ("QUERY_TOO_COMPLEX", None));
        assert_eq!(c("Query is too complex."), ("QUERY_TOO_COMPLEX", None));
        assert_eq!(
            c(r#"Unknown field "nope" on type "Query"."#),
            ("GRAPHQL_VALIDATION_FAILED", None)
        );
        assert_eq!(classify("internal error", false), None);
    }
}
