//! The service layer's one error type. The api maps it once to GraphQL error codes and once to
//! HTTP status codes.
use sea_orm::{DbErr, RuntimeErr, SqlErr};

pub type ServiceResult<T> = Result<T, ServiceError>;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// Also what another partner's row answers: it does not exist for the caller.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
        existing_id: Option<String>,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &'static str) -> Self {
        Self::NotFound { what }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            field: None,
            message: message.into(),
            existing_id: None,
        }
    }

    /// The whole story, for logs and records: an internal error's chain of causes too (its
    /// `Display` says only "internal error", which is all a caller is shown).
    pub fn detail(&self) -> String {
        match self {
            Self::Internal(inner) => format!("{inner:#}"),
            other => other.to_string(),
        }
    }

    /// A `NOT_FOUND` of a row an input names, as that input's error (`field`, `message`);
    /// any other error (a database failure) stays as it is.
    pub fn missing_as_invalid(self, field: &str, message: impl Into<String>) -> Self {
        match self {
            Self::NotFound { .. } => Self::invalid(field, message),
            other => other,
        }
    }

    /// Whether this is an error of the database or of the way to it (as opposed to one of the
    /// data read, such as a secret that does not open).
    pub(crate) fn is_database_error(&self) -> bool {
        matches!(self, Self::Internal(e) if e.downcast_ref::<DbErr>().is_some())
    }

    /// Whether the database (or the service) refused the statement for what it was asked to
    /// write, as opposed to the statement being lost on its way (a connection, a pool, a
    /// timeout): the former is about the items, the latter about the moment.
    pub(crate) fn is_refused_by_database(&self) -> bool {
        match self {
            Self::Internal(e) => matches!(
                e.downcast_ref::<DbErr>(),
                Some(DbErr::Query(RuntimeErr::SqlxError(s)) | DbErr::Exec(RuntimeErr::SqlxError(s)))
                    if matches!(**s, sea_orm::sqlx::Error::Database(_))
            ),
            Self::Unauthenticated(_) | Self::Forbidden(_) => false,
            Self::NotFound { .. } | Self::Invalid { .. } | Self::Conflict { .. } => true,
        }
    }

    /// A stable machine-readable code, the `extensions.code` of GraphQL errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::Invalid { .. } => "BAD_USER_INPUT",
            Self::Conflict { .. } => "CONFLICT",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl From<DbErr> for ServiceError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Self::conflict("a record with the same unique value already exists")
            }
            _ => Self::Internal(anyhow::Error::new(err).context("database")),
        }
    }
}

/// Whether a database error is a unique-constraint violation whose message names `needle`
/// (an index or column name).
pub(crate) fn is_unique_violation(err: &DbErr, needle: &str) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(msg)) if msg.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_error_is_told_from_one_of_the_data() {
        let db: ServiceError = DbErr::Conn(RuntimeErr::Internal("connection reset".into())).into();
        assert!(db.is_database_error());
        let data = ServiceError::Internal(anyhow::anyhow!("the secret does not open"));
        assert!(!data.is_database_error());
        assert!(!ServiceError::not_found("candidate").is_database_error());
    }
}
