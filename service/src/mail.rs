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
        Ok(q.order_by_desc(email::Column::CreatedAt)
            .order_by_desc(email::Column::Id)
            .all(&self.db)
            .await?)
    }
}
