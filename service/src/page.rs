//! Relay-style keyset pagination over an increasing integer key, newest first.
use crate::{ServiceError, ServiceResult};

/// `first`/`after` pages forward (older), `last`/`before` pages backward (newer).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub first: Option<i64>,
    pub after: Option<i64>,
    pub last: Option<i64>,
    pub before: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// The same page with `f` applied to each item.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// Newest first, strictly older than `after`.
    Forward {
        limit: u64,
        after: Option<i64>,
        before: Option<i64>,
    },
    /// The `limit` oldest of those strictly newer than `before`, returned newest first.
    Backward {
        limit: u64,
        after: Option<i64>,
        before: Option<i64>,
    },
}

impl PageRequest {
    pub(crate) fn validate(&self, max: u64, default: u64) -> ServiceResult<Direction> {
        let check = |field: &str, n: Option<i64>| -> ServiceResult<Option<u64>> {
            match n {
                None => Ok(None),
                Some(n) if n < 0 => Err(ServiceError::invalid(field, "must not be negative")),
                Some(n) if n as u64 > max => Err(ServiceError::invalid(
                    field,
                    format!("must be at most {max}"),
                )),
                Some(n) => Ok(Some(n as u64)),
            }
        };
        let first = check("first", self.first)?;
        let last = check("last", self.last)?;
        match (first, last) {
            (Some(_), Some(_)) => Err(ServiceError::invalid(
                "last",
                "cannot be combined with first",
            )),
            (None, Some(limit)) => Ok(Direction::Backward {
                limit,
                after: self.after,
                before: self.before,
            }),
            (first, None) => Ok(Direction::Forward {
                limit: first.unwrap_or(default),
                after: self.after,
                before: self.before,
            }),
        }
    }
}
