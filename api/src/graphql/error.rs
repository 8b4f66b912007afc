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
