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
use sea_orm::sqlx::{self, Row};
use sea_orm::{DbErr, QueryResult};

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

/// `pub(crate) mod $name` with `COLUMNS` (the column names of `entity::$name::Model`, in order)
/// and `decode(row, at)`, which reads the model from the columns starting at position `at`.
macro_rules! positional {
    ($name:ident { $($field:ident $(: $stored:ty => $conv:expr)?),* $(,)? }) => {
        pub(crate) mod $name {
            #![allow(unused_assignments)]
            use super::*;

            #[cfg(test)]
            pub(crate) const COLUMNS: &[&str] = &[$(stringify!($field)),*];

            fn sqlite(row: &sqlx::sqlite::SqliteRow, at: usize) -> Result<entity::$name::Model, DbErr> {
                let mut i = at;
                Ok(entity::$name::Model { $($field: field!(row, i $(, $stored => $conv)?)),* })
            }

            fn postgres(row: &sqlx::postgres::PgRow, at: usize) -> Result<entity::$name::Model, DbErr> {
                let mut i = at;
                Ok(entity::$name::Model { $($field: field!(row, i $(, $stored => $conv)?)),* })
            }

            /// The model in the columns of `res` from position `at` on.
            pub(crate) fn decode(res: &QueryResult, at: usize) -> Result<entity::$name::Model, DbErr> {
                if let Some(row) = res.try_as_sqlite_row() {
                    return sqlite(row, at);
                }
                if let Some(row) = res.try_as_pg_row() {
                    return postgres(row, at);
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

/// Runs `select` (a sea-orm `Select` of the entity whose model `decode` reads) and decodes its
/// rows.
pub(crate) async fn all<C, Q, M>(
    conn: &C,
    select: Q,
    decode: fn(&QueryResult, usize) -> Result<M, DbErr>,
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

/// The number of columns of `E`, where the next entity's columns start in a join.
pub(crate) fn width<E: sea_orm::EntityTrait>() -> usize {
    use sea_orm::Iterable;
    E::Column::iter().count()
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, IdenStatic, Iterable};

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
}
