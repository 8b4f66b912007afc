//! Positional decoding of the rows the hot reads return (a candidate by any of its keys, a page
//! of candidates, their checks), straight from sqlx. sea-orm's derived decoding looks every
//! column up by name and, for each NULL in an optional column, formats the column's name into an
//! error that it then drops: with the column copies that follow, decoding took about a quarter
//! of the CPU of a `candidates(first: 50)` read on SQLite. The values and their types are sqlx's
//! either way; only the lookup by name and the NULL error go.
//!
//! A model's columns are listed here in their declaration order, which is the order of its
//! `Column::iter()`, so a sea-orm `Select` of the entity (or [`crate::db::select_prefixed`])
//! returns them at these positions; a test checks each list against its entity. A field missing
//! from a list does not compile.
//!
//! A read may fetch only some of a model's columns ([`Columns`]): the ones the GraphQL selection
//! reads. SQLite copies every column of a row it hands over, so a page of candidates with their
//! checks spent about a quarter of its CPU on columns no field showed.
use std::marker::PhantomData;

use sea_orm::sqlx::{self, Row};
use sea_orm::{DbErr, EntityTrait, IdenStatic, Iterable, QueryResult, QuerySelect, Select};

/// A set of `E`'s columns: the ones a read fetches. A model decoded from some of its columns
/// holds its type's default (empty, zero, `None`, the epoch) in every field not read, so it may
/// only go where none of those fields is looked at.
pub struct Columns<E> {
    /// Bit `k` for the `k`-th column of `E::Column::iter()`.
    bits: u64,
    entity: PhantomData<fn() -> E>,
}

impl<E> Clone for Columns<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Columns<E> {}

impl<E> PartialEq for Columns<E> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl<E> std::fmt::Debug for Columns<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Columns({:#x})", self.bits)
    }
}

impl<E: EntityTrait> Columns<E> {
    const fn from_bits(bits: u64) -> Self {
        Self {
            bits,
            entity: PhantomData,
        }
    }

    /// Every column.
    pub const fn all() -> Self {
        Self::from_bits(u64::MAX)
    }

    /// No column (add to it with [`Columns::with`]).
    pub const fn none() -> Self {
        Self::from_bits(0)
    }

    fn bit(col: E::Column) -> u64 {
        let k = E::Column::iter()
            .position(|c| c.as_str() == col.as_str())
            .expect("a column of its own entity");
        1 << k
    }

    /// These columns and `col`.
    #[must_use]
    pub fn with(self, col: E::Column) -> Self {
        Self::from_bits(self.bits | Self::bit(col))
    }

    /// These columns and `cols`.
    #[must_use]
    pub fn with_all(self, cols: &[E::Column]) -> Self {
        cols.iter().fold(self, |c, col| c.with(*col))
    }

    /// The columns of either set.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self::from_bits(self.bits | other.bits)
    }

    /// The columns, in the order of `E::Column::iter()` (the order they are decoded in).
    pub(crate) fn selected(self) -> impl Iterator<Item = E::Column> {
        E::Column::iter()
            .enumerate()
            .filter(move |(k, _)| self.bits & (1 << k) != 0)
            .map(|(_, c)| c)
    }

    /// `select` fetching these columns only (all of them: `select` as it is).
    pub(crate) fn select(self, select: Select<E>) -> Select<E> {
        if self.bits == u64::MAX {
            return select;
        }
        select.select_only().columns(self.selected())
    }
}

fn decode_error(e: sqlx::Error) -> DbErr {
    DbErr::Type(e.to_string())
}

/// Decodes one value of a model's field from `row` at `$i`, then moves `$i` on; with a
/// conversion, the column is read as its stored type and converted.
macro_rules! field {
    ($row:ident, $i:ident) => {{
        let v = $row.try_get($i).map_err(decode_error)?;
        $i += 1;
        v
    }};
    ($row:ident, $i:ident, $stored:ty => $conv:expr) => {{
        let v: $stored = $row.try_get($i).map_err(decode_error)?;
        $i += 1;
        ($conv)(v)?
    }};
}

/// `fn $backend(row: &$row, at, only)`: the model's columns `only` from the columns of a row of
/// one backend, starting at position `at`; its other fields at their default. One body for both
/// backends: sqlx's `Row::try_get` is generic over the row, but its bounds name each field's type.
macro_rules! decode_from {
    ($backend:ident, $row:ty, $name:ident { $($field:ident $(: $stored:ty => $conv:expr)?),* }) => {
        fn $backend(
            row: &$row,
            at: usize,
            only: Columns<entity::$name::Entity>,
        ) -> Result<entity::$name::Model, DbErr> {
            let (mut i, mut k) = (at, 0);
            Ok(entity::$name::Model { $($field: {
                let read = only.bits & (1 << k) != 0;
                k += 1;
                if read { field!(row, i $(, $stored => $conv)?) } else { Default::default() }
            }),* })
        }
    };
}

/// `pub(crate) mod $name` with `COLUMNS` (the column names of `entity::$name::Model`, in order)
/// and `decode(row, at, only)`, which reads the model's columns `only` from the columns of `row`
/// starting at position `at` and leaves its other fields at their default.
macro_rules! positional {
    ($name:ident { $($field:ident $(: $stored:ty => $conv:expr)?),* $(,)? }) => {
        pub(crate) mod $name {
            #![allow(unused_assignments)]
            use super::*;

            #[cfg(test)]
            pub(crate) const COLUMNS: &[&str] = &[$(stringify!($field)),*];

            decode_from!(sqlite, sqlx::sqlite::SqliteRow, $name { $($field $(: $stored => $conv)?),* });
            decode_from!(postgres, sqlx::postgres::PgRow, $name { $($field $(: $stored => $conv)?),* });

            /// The model's `only` columns, in the columns of `res` from position `at` on; the
            /// other fields hold their default.
            pub(crate) fn decode(
                res: &QueryResult,
                at: usize,
                only: Columns<entity::$name::Entity>,
            ) -> Result<entity::$name::Model, DbErr> {
                if let Some(row) = res.try_as_sqlite_row() {
                    return sqlite(row, at, only);
                }
                if let Some(row) = res.try_as_pg_row() {
                    return postgres(row, at, only);
                }
                Err(DbErr::Type("a row of neither SQLite nor PostgreSQL".into()))
            }
        }
    };
}

fn status(s: String) -> Result<entity::CheckStatus, DbErr> {
    use sea_orm::ActiveEnum;
    entity::CheckStatus::try_from_value(&s)
}

positional!(candidate {
    seq,
    id,
    turn_id,
    partner_id,
    reference_id,
    first_name,
    middle_name,
    last_name,
    email,
    phone,
    date_of_birth_enc,
    ssn_enc,
    ssn_last4,
    ssn_fingerprint,
    zip,
    city,
    state,
    address,
    experience,
    interests,
    transportation_method,
    drivers_license_number,
    drivers_license_state,
    search_text,
    created_at,
    updated_at,
});

positional!(check {
    id,
    partner_id,
    candidate_id,
    package_id,
    searches,
    status: String => status,
    callback_url,
    reference_id,
    consent_date,
    recheck_date,
    cm_criminal_enroll,
    criminal_monitoring_triggered,
    report_enc,
    created_by,
    created_at,
    updated_at,
});

/// Runs `select` (a sea-orm `Select` of the columns `decode` reads) and decodes its rows.
pub(crate) async fn all<C, Q, M>(
    conn: &C,
    select: Q,
    decode: impl Fn(&QueryResult, usize) -> Result<M, DbErr>,
) -> Result<Vec<M>, DbErr>
where
    C: sea_orm::ConnectionTrait,
    Q: sea_orm::QueryTrait<QueryStatement = sea_orm::sea_query::SelectStatement>,
{
    conn.query_all(&select.into_query())
        .await?
        .iter()
        .map(|row| decode(row, 0))
        .collect()
}

/// The number of columns of `E` a read of `cols` fetches, where the next entity's columns start
/// in a join.
pub(crate) fn width<E: EntityTrait>(cols: Columns<E>) -> usize {
    cols.selected().count()
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, IdenStatic, Iterable};

    use super::Columns;

    fn columns<E: EntityTrait>() -> Vec<&'static str> {
        E::Column::iter().map(|c| c.as_str()).collect()
    }

    #[test]
    fn lists_each_model_in_the_order_its_entity_selects() {
        assert_eq!(
            super::candidate::COLUMNS,
            columns::<entity::candidate::Entity>()
        );
        assert_eq!(super::check::COLUMNS, columns::<entity::check::Entity>());
    }

    #[test]
    fn a_column_set_selects_its_columns_in_entity_order() {
        use entity::candidate::{Column as C, Entity};
        // Sixty-four columns at most fit the bit set.
        assert!(columns::<Entity>().len() <= 64);
        assert!(columns::<entity::check::Entity>().len() <= 64);
        let some = Columns::<Entity>::none().with(C::Email).with(C::Id);
        let names: Vec<&str> = some.selected().map(|c| c.as_str()).collect();
        assert_eq!(names, ["id", "email"]);
        assert_eq!(
            some.union(Columns::none().with(C::Seq)).selected().count(),
            3
        );
        assert_eq!(
            Columns::<Entity>::all().selected().count(),
            columns::<Entity>().len()
        );
        assert_eq!(Columns::<Entity>::all().with(C::Id), Columns::all());
    }
}
