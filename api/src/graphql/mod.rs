//! The GraphQL schema: queries and mutations over the service layer.
pub mod candidate;
pub mod check;
pub mod error;
pub mod loaders;
pub mod package;
pub mod partner;
pub mod screening;
pub mod subscription;
pub mod types;
pub mod webhook;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, Request, Schema};
use service::{Actor, Service};

#[derive(MergedObject, Default)]
pub struct Query(
    partner::PartnerQuery,
    package::PackageQuery,
    candidate::CandidateQuery,
    check::CheckQuery,
    screening::ScreeningQuery,
    webhook::WebhookQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    partner::PartnerMutation,
    package::PackageMutation,
    candidate::CandidateMutation,
    check::CheckMutation,
    screening::ScreeningMutation,
    webhook::WebhookMutation,
);

pub type AppSchema = Schema<Query, Mutation, subscription::Subscription>;

pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
}

/// Per-request settings of batch loading.
#[derive(Clone, Copy)]
pub struct BatchWindow(pub std::time::Duration);

pub fn build_schema(
    svc: Service,
    bus: worker::Bus,
    queue: worker::queue::JobQueue,
    limits: &Limits,
) -> AppSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        subscription::Subscription,
    )
    .data(svc)
    .data(bus)
    .data(queue)
    .limit_depth(limits.depth)
    .limit_complexity(limits.complexity)
    .finish()
}

/// The schema without runtime data, for printing the SDL.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        subscription::Subscription,
    )
    .finish()
    .sdl()
}

/// Refuses a request carrying the NUL character (U+0000) in a variable or in the query's
/// text (as a `\u0000` escape): no field takes one, and PostgreSQL refuses it in any text
/// parameter, so an id or a search holding one would be an internal error there and a plain
/// "not found" on SQLite.
pub fn without_nul(req: &Request) -> Result<(), service::ServiceError> {
    fn holds_nul(v: &async_graphql::Value) -> bool {
        match v {
            async_graphql::Value::String(s) => s.contains('\0'),
            async_graphql::Value::List(items) => items.iter().any(holds_nul),
            async_graphql::Value::Object(fields) => {
                fields.iter().any(|(k, v)| k.contains('\0') || holds_nul(v))
            }
            _ => false,
        }
    }
    let refused = |field: &str| {
        Err(service::ServiceError::invalid(
            field,
            "text may not contain the NUL character (U+0000)",
        ))
    };
    if let Some((name, _)) = req.variables.iter().find(|(_, v)| holds_nul(v)) {
        return refused(name.as_str());
    }
    if req.query.contains('\0') || escapes_nul(&req.query) {
        return refused("query");
    }
    Ok(())
}

/// Whether GraphQL text holds an escape of NUL: `\u0000`, or the braced form `\u{0}` (any
/// number of zeros).
fn escapes_nul(text: &str) -> bool {
    text.match_indices("\\u").any(|(at, _)| {
        let rest = &text[at + 2..];
        match rest.strip_prefix('{') {
            Some(braced) => braced
                .split_once('}')
                .is_some_and(|(hex, _)| !hex.is_empty() && hex.bytes().all(|b| b == b'0')),
            None => rest.starts_with("0000"),
        }
    })
}

/// Adds the caller and per-request, caller-scoped batch loaders to a request.
pub fn with_actor(req: Request, svc: &Service, actor: Actor, window: BatchWindow) -> Request {
    // Cached per request, so `candidates` can feed it the page's checks in one query.
    let checks = DataLoader::with_cache(
        loaders::ChecksByCandidate {
            svc: svc.clone(),
            actor: actor.clone(),
        },
        tokio::spawn,
        async_graphql::dataloader::HashMapCache::default(),
    )
    .delay(window.0);
    let history = DataLoader::new(
        loaders::HistoryByCheck {
            svc: svc.clone(),
            actor: actor.clone(),
        },
        tokio::spawn,
    )
    .delay(window.0);
    let packages = DataLoader::new(
        loaders::PackageById {
            svc: svc.clone(),
            actor: actor.clone(),
        },
        tokio::spawn,
    )
    .delay(window.0);
    let candidates = DataLoader::new(
        loaders::CandidateById {
            svc: svc.clone(),
            actor: actor.clone(),
        },
        tokio::spawn,
    )
    .delay(window.0);
    req.data(actor)
        .data(checks)
        .data(history)
        .data(packages)
        .data(candidates)
}

#[cfg(test)]
mod tests {
    use super::escapes_nul;

    #[test]
    fn nul_escapes_are_found_and_others_are_not() {
        for text in [r#""a\u0000""#, r#""\u{0}""#, r#""x\u{0000}y""#] {
            assert!(escapes_nul(text), "{text}");
        }
        for text in [
            r#""caf\u00e9""#,
            r#""\u{1F600}""#,
            r#""\u{}""#,
            r#""u0000""#,
            "{ a }",
        ] {
            assert!(!escapes_nul(text), "{text}");
        }
    }
}
