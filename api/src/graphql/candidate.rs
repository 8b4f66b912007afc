//! Candidates: profile, checks, lookup and cursor-paginated listing.
use std::borrow::Cow;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{Context, ID, InputObject, Object, SelectionField, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, NaiveDate, Utc};
use entity::{candidate, check};
use service::candidate::{CandidateFilter, CandidateInput};
use service::page::PageRequest;
use service::{Columns, ServiceError};

use super::check::Check;
use super::error::{GqlResult, actor, gql, svc};
use super::loaders::ChecksByCandidate;
use super::types::CheckStatus;

/// A candidate (Turn's "worker"): the person checks are run on.
pub struct Candidate {
    model: candidate::Model,
    /// Its checks when they were read with it (from the columns the query selects); otherwise
    /// `checks` loads them.
    checks: Option<Vec<Check>>,
}

impl From<candidate::Model> for Candidate {
    fn from(model: candidate::Model) -> Self {
        Self {
            model,
            checks: None,
        }
    }
}

/// The candidate columns the `fields` selected on a `Candidate` read, and the check columns their
/// `checks` read (`None` without `checks`). A field not listed here reads every column, so a
/// field added to `Candidate` costs a full read until it is, never a wrong answer; a test
/// compares every field read this way with its full read.
pub(crate) fn columns_read<'a>(
    fields: impl IntoIterator<Item = SelectionField<'a>>,
) -> (Columns<candidate::Entity>, Option<Columns<check::Entity>>) {
    use candidate::Column as C;
    let (mut cols, mut checks) = (Columns::none(), None::<Columns<check::Entity>>);
    for f in fields {
        let read: &[C] = match f.name() {
            "__typename" => &[],
            "checks" => {
                let c = super::check::columns_read(f.selection_set());
                checks = Some(checks.map_or(c, |had| had.union(c)));
                &[C::Id]
            }
            "id" => &[C::Id],
            "turnId" => &[C::TurnId],
            "referenceId" => &[C::ReferenceId],
            "firstName" => &[C::FirstName],
            "middleName" => &[C::MiddleName],
            "lastName" => &[C::LastName],
            "email" => &[C::Email],
            "phone" => &[C::Phone],
            "dateOfBirth" => &[C::DateOfBirthEnc],
            "ssn" => &[C::SsnLast4, C::SsnEnc],
            "zip" => &[C::Zip],
            "city" => &[C::City],
            "state" => &[C::State],
            "address" => &[C::Address],
            "experience" => &[C::Experience],
            "interests" => &[C::Interests],
            "transportationMethod" => &[C::TransportationMethod],
            "driversLicenseNumber" => &[C::DriversLicenseNumber],
            "driversLicenseState" => &[C::DriversLicenseState],
            "createdAt" => &[C::CreatedAt],
            "updatedAt" => &[C::UpdatedAt],
            _ => {
                cols = Columns::all();
                &[]
            }
        };
        cols = cols.with_all(read);
    }
    (cols, checks)
}

/// A candidate (Turn's "worker"): the person checks are run on.
#[Object]
impl Candidate {
    /// The worker id (a UUID).
    async fn id(&self) -> ID {
        ID(self.model.id.clone())
    }
    /// Turn's short id: `C` + 10 digits.
    async fn turn_id(&self) -> &str {
        &self.model.turn_id
    }
    /// Your own id for this candidate; unique within your partner.
    async fn reference_id(&self) -> Option<&str> {
        self.model.reference_id.as_deref()
    }
    /// Given name.
    async fn first_name(&self) -> &str {
        &self.model.first_name
    }
    /// Middle name.
    async fn middle_name(&self) -> Option<&str> {
        self.model.middle_name.as_deref()
    }
    /// Family name.
    async fn last_name(&self) -> &str {
        &self.model.last_name
    }
    /// Unique within your partner.
    async fn email(&self) -> &str {
        &self.model.email
    }
    /// E.164, e.g. `+14155550134`.
    async fn phone(&self) -> Option<&str> {
        self.model.phone.as_deref()
    }
    /// Date of birth. Team members and above; FORBIDDEN for limited team members.
    async fn date_of_birth(&self, ctx: &Context<'_>) -> GqlResult<Option<NaiveDate>> {
        svc(ctx)
            .reveal_date_of_birth(actor(ctx)?, &self.model)
            .map_err(gql)
    }
    /// SSN, masked as `***-**-6789` unless `unmasked: true`. Team members and above; FORBIDDEN for
    /// limited team members.
    async fn ssn(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] unmasked: bool,
    ) -> GqlResult<Option<String>> {
        svc(ctx)
            .reveal_ssn(actor(ctx)?, &self.model, unmasked)
            .map_err(gql)
    }
    /// 5-digit ZIP code.
    async fn zip(&self) -> Option<&str> {
        self.model.zip.as_deref()
    }
    /// City.
    async fn city(&self) -> Option<&str> {
        self.model.city.as_deref()
    }
    /// Two-letter state code.
    async fn state(&self) -> Option<&str> {
        self.model.state.as_deref()
    }
    /// Street address.
    async fn address(&self) -> Option<&str> {
        self.model.address.as_deref()
    }
    /// Work experience, free text.
    async fn experience(&self) -> Option<&str> {
        self.model.experience.as_deref()
    }
    /// Kinds of work the candidate is interested in.
    async fn interests(&self) -> Option<&str> {
        self.model.interests.as_deref()
    }
    /// How the candidate gets to work (e.g. car, bike, public transit).
    async fn transportation_method(&self) -> Option<&str> {
        self.model.transportation_method.as_deref()
    }
    /// Driver's licence number.
    async fn drivers_license_number(&self) -> Option<&str> {
        self.model.drivers_license_number.as_deref()
    }
    /// Two-letter state that issued the driver's licence.
    async fn drivers_license_state(&self) -> Option<&str> {
        self.model.drivers_license_state.as_deref()
    }
    /// The candidate's checks, newest first.
    async fn checks(&self, ctx: &Context<'_>) -> GqlResult<Cow<'_, Vec<Check>>> {
        if let Some(checks) = &self.checks {
            return Ok(Cow::Borrowed(checks));
        }
        let loader = ctx.data_unchecked::<DataLoader<ChecksByCandidate, HashMapCache>>();
        Ok(Cow::Owned(
            loader
                .load_one(self.model.id.clone())
                .await?
                .unwrap_or_default()
                .into_iter()
                .map(Check)
                .collect(),
        ))
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}

/// Every profile field of the seeds. First name, last name and email are required.
#[derive(InputObject)]
pub struct CreateCandidateInput {
    /// Given name.
    pub first_name: String,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Family name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// A US phone number, any common format.
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    /// Nine digits, dashes allowed. Stored encrypted.
    pub ssn: Option<String>,
    /// 5 digits.
    pub zip: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Two-letter code.
    pub state: Option<String>,
    /// Street address.
    pub address: Option<String>,
    /// Work experience, free text.
    pub experience: Option<String>,
    /// Kinds of work the candidate is interested in.
    pub interests: Option<String>,
    /// How the candidate gets to work (e.g. car, bike, public transit).
    pub transportation_method: Option<String>,
    /// Driver's licence number (needed for packages with an MVR search).
    pub drivers_license_number: Option<String>,
    /// Two-letter state that issued the driver's licence.
    pub drivers_license_state: Option<String>,
    /// Your own id for this candidate.
    pub reference_id: Option<String>,
}

/// Fields to change; omitted fields stay, an empty string clears an optional field.
#[derive(InputObject, Default)]
pub struct UpdateCandidateInput {
    /// Given name.
    pub first_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// US phone number, any common format; stored as E.164.
    pub phone: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    /// Social Security number: nine digits, dashes allowed. Stored encrypted.
    pub ssn: Option<String>,
    /// 5-digit ZIP code.
    pub zip: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Two-letter US state code.
    pub state: Option<String>,
    /// Street address.
    pub address: Option<String>,
    /// Work experience, free text.
    pub experience: Option<String>,
    /// Kinds of work the candidate is interested in.
    pub interests: Option<String>,
    /// How the candidate gets to work (e.g. car, bike, public transit).
    pub transportation_method: Option<String>,
    /// Driver's licence number (needed for packages with an MVR search).
    pub drivers_license_number: Option<String>,
    /// Two-letter state that issued the driver's licence.
    pub drivers_license_state: Option<String>,
    /// Your own id for this candidate; unique within your partner.
    pub reference_id: Option<String>,
}

impl From<CreateCandidateInput> for CandidateInput {
    fn from(i: CreateCandidateInput) -> Self {
        CandidateInput {
            first_name: Some(i.first_name),
            middle_name: i.middle_name,
            last_name: Some(i.last_name),
            email: Some(i.email),
            phone: i.phone,
            date_of_birth: i.date_of_birth,
            ssn: i.ssn,
            zip: i.zip,
            city: i.city,
            state: i.state,
            address: i.address,
            experience: i.experience,
            interests: i.interests,
            transportation_method: i.transportation_method,
            drivers_license_number: i.drivers_license_number,
            drivers_license_state: i.drivers_license_state,
            reference_id: i.reference_id,
        }
    }
}

impl From<UpdateCandidateInput> for CandidateInput {
    fn from(i: UpdateCandidateInput) -> Self {
        CandidateInput {
            first_name: i.first_name,
            middle_name: i.middle_name,
            last_name: i.last_name,
            email: i.email,
            phone: i.phone,
            date_of_birth: i.date_of_birth,
            ssn: i.ssn,
            zip: i.zip,
            city: i.city,
            state: i.state,
            address: i.address,
            experience: i.experience,
            interests: i.interests,
            transportation_method: i.transportation_method,
            drivers_license_number: i.drivers_license_number,
            drivers_license_state: i.drivers_license_state,
            reference_id: i.reference_id,
        }
    }
}

/// Filters for `candidates`; all given filters must match.
#[derive(InputObject, Default, Clone)]
pub struct CandidateFilterInput {
    /// Candidates with at least one check in this status.
    pub status: Option<CheckStatus>,
    /// Case-insensitive text in first, middle or last name or email.
    pub search: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

/// Relay page info.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether more candidates follow this page (older ones when paging forward).
    pub has_next_page: bool,
    /// Whether candidates precede this page.
    pub has_previous_page: bool,
    /// Cursor of the first candidate of the page.
    pub start_cursor: Option<String>,
    /// Cursor of the last candidate of the page.
    pub end_cursor: Option<String>,
}

/// One candidate in a page.
#[derive(SimpleObject)]
pub struct CandidateEdge {
    /// Opaque position of this candidate in the list; pass it as `after` or `before`.
    pub cursor: String,
    /// The candidate.
    pub node: Candidate,
}

/// A page of candidates, newest first.
pub struct CandidateConnection {
    edges: Vec<CandidateEdge>,
    page_info: PageInfo,
    filter: CandidateFilter,
}

/// A page of candidates, newest first (Relay connection).
#[Object]
impl CandidateConnection {
    /// The candidates of this page with their cursors.
    async fn edges(&self) -> &[CandidateEdge] {
        &self.edges
    }
    /// The candidates of this page (same as `edges { node }`).
    async fn nodes(&self) -> Vec<&Candidate> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    /// Where this page sits in the whole list.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// How many candidates match the filter, across all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> GqlResult<u64> {
        svc(ctx)
            .count_candidates(actor(ctx)?, &self.filter)
            .await
            .map_err(gql)
    }
}

fn encode_cursor(seq: i64) -> String {
    B64.encode(format!("candidate:{seq}"))
}

fn decode_cursor(field: &str, cursor: &str) -> Result<i64, ServiceError> {
    B64.decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("candidate:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ServiceError::invalid(field, "is not a cursor returned by this API"))
}

#[derive(Default)]
pub struct CandidateQuery;

#[Object]
impl CandidateQuery {
    /// One candidate, by exactly one of: worker `id`, `turnId`, or your `referenceId`.
    async fn candidate(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        turn_id: Option<String>,
        reference_id: Option<String>,
    ) -> GqlResult<Candidate> {
        let actor = actor(ctx)?;
        let (col, value) = match (id, turn_id, reference_id) {
            (Some(v), None, None) => (candidate::Column::Id, v.0),
            (None, Some(v), None) => (candidate::Column::TurnId, v),
            (None, None, Some(v)) => (candidate::Column::ReferenceId, v),
            _ => {
                return Err(gql(ServiceError::invalid(
                    "id",
                    "give exactly one of id, turnId, referenceId",
                )));
            }
        };
        // With its checks in the same statement when they are asked for, each read for the
        // columns the selection shows.
        let (only, checks_only) = columns_read(ctx.field().selection_set());
        let Some(checks_only) = checks_only else {
            return Ok(Candidate::from(
                svc(ctx)
                    .candidate_by(actor, col, &value)
                    .await
                    .map_err(gql)?,
            ));
        };
        let (model, checks) = svc(ctx)
            .candidate_with_checks(actor, col, &value, only, checks_only)
            .await
            .map_err(gql)?;
        Ok(Candidate {
            model,
            checks: Some(checks.into_iter().map(Check).collect()),
        })
    }

    /// Candidates, newest first, with Relay cursor pagination (`first`/`after` or `last`/`before`).
    #[graphql(complexity = "(first.or(last).unwrap_or(20).max(1) as usize) * child_complexity + 1")]
    async fn candidates(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<CandidateFilterInput>,
    ) -> GqlResult<CandidateConnection> {
        let actor = actor(ctx)?;
        let page = PageRequest {
            first: first.map(i64::from),
            after: after
                .as_deref()
                .map(|c| decode_cursor("after", c))
                .transpose()
                .map_err(gql)?,
            last: last.map(i64::from),
            before: before
                .as_deref()
                .map(|c| decode_cursor("before", c))
                .transpose()
                .map_err(gql)?,
        };
        let f = filter.unwrap_or_default();
        let filter = CandidateFilter {
            status: f.status.map(Into::into),
            search: f.search,
            created_after: f.created_after,
            created_before: f.created_before,
        };
        // The columns the nodes' fields read (under `edges { node }` and `nodes`), and the page's
        // checks with the page in one statement rather than through the batch window, so a page
        // costs the same statements however busy the server is.
        let mut nodes = Vec::new();
        for f in ctx.field().selection_set() {
            match f.name() {
                "edges" => {
                    for e in f.selection_set().filter(|e| e.name() == "node") {
                        nodes.extend(e.selection_set());
                    }
                }
                "nodes" => nodes.extend(f.selection_set()),
                _ => {}
            }
        }
        let (only, checks_only) = columns_read(nodes);
        let page = match checks_only {
            None => {
                let page = svc(ctx)
                    .list_candidates(actor, &filter, &page, only)
                    .await
                    .map_err(gql)?;
                page.map(Candidate::from)
            }
            Some(checks_only) => {
                let page = svc(ctx)
                    .list_candidates_with_checks(actor, &filter, &page, only, checks_only)
                    .await
                    .map_err(gql)?;
                page.map(|(model, checks)| Candidate {
                    model,
                    checks: Some(checks.into_iter().map(Check).collect()),
                })
            }
        };
        let edges: Vec<CandidateEdge> = page
            .items
            .into_iter()
            .map(|node| CandidateEdge {
                cursor: encode_cursor(node.model.seq),
                node,
            })
            .collect();
        let page_info = PageInfo {
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
            start_cursor: edges.first().map(|e| e.cursor.clone()),
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        };
        Ok(CandidateConnection {
            edges,
            page_info,
            filter,
        })
    }
}

#[derive(Default)]
pub struct CandidateMutation;

#[Object]
impl CandidateMutation {
    /// Creates a candidate. An email or referenceId another candidate has is a CONFLICT naming it
    /// (`extensions.existingId`).
    async fn create_candidate(
        &self,
        ctx: &Context<'_>,
        input: CreateCandidateInput,
    ) -> GqlResult<Candidate> {
        Ok(Candidate::from(
            svc(ctx)
                .create_candidate(actor(ctx)?, input.into())
                .await
                .map_err(gql)?,
        ))
    }
    /// Updates a candidate's profile.
    async fn update_candidate(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCandidateInput,
    ) -> GqlResult<Candidate> {
        Ok(Candidate::from(
            svc(ctx)
                .update_candidate(actor(ctx)?, &id, input.into())
                .await
                .map_err(gql)?,
        ))
    }
}
