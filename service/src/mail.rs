//! Mail to candidates. Each message is written in the transaction of the change that sends it,
//! so a notice exists exactly when its status does, together with a task that hands it to the
//! configured [`Mailer`] (SMTP), retried with backoff. Without a mailer it is kept, logged and
//! readable through GraphQL (`emails`), which is all the embedded default needs.
use chrono::{DateTime, Utc};
use entity::{candidate, email};
use sea_orm::sea_query::SubQueryStatement;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait, Set};

use crate::db::SelectUnique;
use crate::screening::provider::BoxFut;
use crate::tasks::{self, TaskKind, TaskOutcome};
use crate::{Actor, Service, ServiceResult, ids};

/// Hands a message to a mail server.
pub trait Mailer: Send + Sync + 'static {
    fn send<'a>(&'a self, email: &'a email::Model) -> BoxFut<'a, ()>;
}

/// Kinds of mail, as stored in `emails.kind`.
pub mod kind {
    pub const INVITATION: &str = "invitation";
    pub const REMINDER: &str = "reminder";
    pub const REPORT_COPY: &str = "report_copy";
    pub const PRE_ADVERSE: &str = "pre_adverse_notice";
    pub const FINAL_ADVERSE: &str = "final_adverse_notice";
    pub const DISPUTE_RECEIVED: &str = "dispute_received";
    /// How a dispute ended: the report upheld (with the new date) or corrected.
    pub const DISPUTE_RESOLVED: &str = "dispute_resolved";
    /// The partner cancelled an adverse action after the candidate had been sent its notice.
    pub const ADVERSE_CANCELLED: &str = "adverse_action_cancelled";
    /// Continuous monitoring in a state that is not evergreen: fresh consent for a recheck.
    pub const MONITORING_CONSENT: &str = "monitoring_consent";
    /// A recheck where each background check needs the candidate's consent (California).
    pub const RECHECK_CONSENT: &str = "recheck_consent";
}

/// When a mailed link stops working, as the message says it: the day and the time of day, in
/// UTC (a date alone would read as the whole day in the candidate's own zone, and the link would
/// stop working hours before it ends there).
pub(crate) fn link_expiry(at: DateTime<Utc>) -> String {
    at.format("%B %-d, %Y at %H:%M UTC").to_string()
}

/// Kinds of mail that ask the candidate to sign on the consent page.
const CONSENT_REQUESTS: [&str; 4] = [
    kind::INVITATION,
    kind::REMINDER,
    kind::MONITORING_CONSENT,
    kind::RECHECK_CONSENT,
];

/// A message to `cand` and the task that hands it to the mail server, as the writes
/// ([`crate::db::write_all`]) of the change that sends it.
pub(crate) fn sending(
    cand: &candidate::Model,
    check_id: &str,
    kind: &str,
    subject: &str,
    body: String,
    now: DateTime<Utc>,
) -> Vec<SubQueryStatement> {
    let id = ids::uuid();
    tracing::info!(email = %id, to = %cand.email, kind, subject, check = check_id, "mail queued");
    let message = email::Entity::insert(email::ActiveModel {
        id: Set(id.clone()),
        partner_id: Set(cand.partner_id.clone()),
        candidate_id: Set(Some(cand.id.clone())),
        check_id: Set(Some(check_id.to_string())),
        to_address: Set(cand.email.clone()),
        kind: Set(kind.to_string()),
        subject: Set(subject.to_string()),
        body: Set(body),
        created_at: Set(now),
        sent_at: Set(None),
    })
    .into_query();
    let task = tasks::scheduling(
        &cand.partner_id,
        Some(check_id),
        TaskKind::SendEmail,
        serde_json::json!({"email_id": id}),
        now,
        now,
    );
    vec![message.into(), task.into()]
}

impl Service {
    /// Task: hand one message to the mail server (nothing to do without one).
    pub(crate) async fn deliver_email(
        &self,
        partner_id: &str,
        email_id: &str,
    ) -> ServiceResult<TaskOutcome> {
        let Some(mailer) = self.mailer.clone() else {
            return Ok(TaskOutcome::Done);
        };
        let Some(m) = email::Entity::find_by_id(email_id.to_string())
            .owned_by(&self.db, email::Column::PartnerId, partner_id)
            .await?
        else {
            return Ok(TaskOutcome::Done);
        };
        if m.sent_at.is_some() {
            return Ok(TaskOutcome::Done);
        }
        if CONSENT_REQUESTS.contains(&m.kind.as_str())
            && self.consent_request_open(&m.body).await? == Some(false)
        {
            // Signed, withdrawn or replaced while the message waited (a mail server down, a
            // retry): a request whose link no longer opens the page is not sent (`sentAt`
            // stays empty).
            tracing::info!(email = %m.id, kind = %m.kind, check = ?m.check_id, "consent request no longer needed: not sent");
            return Ok(TaskOutcome::Done);
        }
        mailer.send(&m).await?;
        email::Entity::update_many()
            .col_expr(
                email::Column::SentAt,
                sea_orm::sea_query::Expr::value(self.clock.now()),
            )
            .filter(email::Column::Id.eq(&m.id))
            .exec(&self.db)
            .await?;
        Ok(TaskOutcome::Done)
    }

    /// Mail sent about one check (or, with `None`, all of the partner's), newest first.
    pub async fn emails(
        &self,
        actor: &Actor,
        check_id: Option<&str>,
    ) -> ServiceResult<Vec<email::Model>> {
        actor.require(entity::Role::TeamMember)?;
        let mut q = email::Entity::find().filter(email::Column::PartnerId.eq(&actor.partner_id));
        if let Some(c) = check_id {
            q = q.filter(email::Column::CheckId.eq(c));
        }
        let mut mail = q
            .order_by_desc(email::Column::CreatedAt)
            .order_by_desc(email::Column::Id)
            .all(&self.db)
            .await?;
        if self.mailer.is_some() {
            // Mail goes out to candidates: their links are credentials (whoever holds one may
            // sign as the candidate, or read their report), so the partner sees the message
            // with the links' tokens blanked. Without a mail server nothing reaches a
            // candidate and this list is the developer's outbox, links and all.
            for m in &mut mail {
                m.body = without_link_tokens(&m.body);
            }
        }
        Ok(mail)
    }
}

/// The paths of the links mailed to candidates, each followed by its token.
const LINK_PATHS: [&str; 2] = ["/consent/", "/report/"];

/// `body` with the token after each candidate link's path replaced by `…`.
pub(crate) fn without_link_tokens(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some((at, path)) = LINK_PATHS
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, *p)))
        .min_by_key(|(i, _)| *i)
    {
        let after = at + path.len();
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let token_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        if token_end > 0 {
            out.push('…');
        }
        rest = &rest[token_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_link_tokens;

    #[test]
    fn link_tokens_are_blanked_and_the_rest_kept() {
        assert_eq!(
            without_link_tokens(
                "Sign at\n\n  https://x.example/consent/AbC-12_x\n\nand read https://x.example/report/Zz9 today.\n/consent/"
            ),
            "Sign at\n\n  https://x.example/consent/…\n\nand read https://x.example/report/… today.\n/consent/"
        );
    }
}
