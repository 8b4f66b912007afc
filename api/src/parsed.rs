//! Parsed GraphQL documents, kept by query text. Partner frontends send the same few query texts
//! over and over; parsing one costs more than copying the parsed document. Only parsing is
//! skipped: the schema still checks depth, validates (with the request's variables) and executes
//! every request.
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_graphql::parser::types::ExecutableDocument;

/// Query texts longer than this are parsed every time.
const MAX_QUERY_LEN: usize = 4 * 1024;
/// Distinct query texts kept; when full, the cache starts over. With `MAX_QUERY_LEN`, this bounds
/// what a client sending ever-new queries can make it hold.
const CAPACITY: usize = 256;

#[derive(Default)]
pub struct ParsedQueries(Mutex<HashMap<String, ExecutableDocument>>);

impl ParsedQueries {
    fn map(&self) -> MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `req` its parsed document: a copy of the one kept for its text, or a fresh parse,
    /// then kept. A query that does not parse is left for the schema to report.
    pub fn prepare(&self, req: &mut async_graphql::Request) {
        if req.query.len() > MAX_QUERY_LEN {
            return;
        }
        if let Some(doc) = self.map().get(&req.query).cloned() {
            req.set_parsed_query(doc);
            return;
        }
        if let Ok(doc) = req.parsed_query() {
            let doc = doc.clone();
            let mut map = self.map();
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(req.query.clone(), doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debug_doc(req: &mut async_graphql::Request) -> String {
        format!("{:?}", req.parsed_query().expect("parsed"))
    }

    #[test]
    fn keeps_parsed_documents_by_text_within_bounds() {
        let cache = ParsedQueries::default();
        let len = || cache.map().len();
        cache.prepare(&mut async_graphql::Request::new("{ me { id } }"));
        assert_eq!(len(), 1);
        // A kept text is served from the cache: give it a document that is not its own parse
        // and the next request with that text gets that document.
        let other = async_graphql::parser::parse_query("{ other }").expect("parse");
        cache.map().insert("{ me { id } }".into(), other);
        let mut again = async_graphql::Request::new("{ me { id } }");
        cache.prepare(&mut again);
        let mut expected = async_graphql::Request::new("{ other }");
        assert_eq!(debug_doc(&mut again), debug_doc(&mut expected));
        assert_eq!(len(), 1);
        // A query that does not parse is not kept; the schema reports it.
        cache.prepare(&mut async_graphql::Request::new("{ me { id "));
        assert_eq!(len(), 1);
        // Nor is a very long one.
        let long = format!("{{ me {{ id }} }} #{}", "x".repeat(MAX_QUERY_LEN));
        cache.prepare(&mut async_graphql::Request::new(long));
        assert_eq!(len(), 1);
        // Ever-new texts never grow it past its capacity.
        for n in 0..(CAPACITY * 2) {
            cache.prepare(&mut async_graphql::Request::new(format!(
                "{{ me {{ id }} }} #{n}"
            )));
            assert!(len() <= CAPACITY);
        }
    }
}
