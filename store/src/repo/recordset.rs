//! Batches of rows as one JSON parameter on PostgreSQL.
//!
//! A multi-row `VALUES` list has a different text for every batch size, so
//! each size is parsed, prepared and planned anew on every connection, and
//! planning then dominates the statement's time. `jsonb_to_recordset($1)` keeps one text for any
//! number of rows: prepared once per connection, planned generically.
//! The rows are written straight into one JSON text, not built as a
//! `serde_json::Value` first: a batch costs one growing buffer.
//!
//! Only for plain inserts. A generic plan is made once, from the table
//! sizes of that moment, and the planner takes the function for 100 rows:
//! a join against a table that was small then (fan-out's events, the
//! recorder's deliveries) became a hash join over a sequential scan that
//! stayed for the life of the connection, and so did `id = ANY($array)`
//! (measured: 13 ms a fan-out statement after 15 s at 1,000 events/s).
//! So a statement that reads another table here does it one row at a time
//! by key (`LATERAL ... LIMIT 1`), which only an index serves; the attempt
//! recorder's `UPDATE ... FROM` cannot, and keeps `VALUES` and custom plans,
//! as does the outbox mark's `IN` list.
use crate::StoreError;
use chrono::SecondsFormat;
use sea_orm::sea_query::{ColumnType, Value};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IdenStatic, Iterable};

/// Rows of one entity's table bound as one parameter.
pub(crate) struct RecordSet {
    table: String,
    columns: Vec<(String, &'static str)>,
    /// The rows so far, as the text of a JSON array without its closing `]`.
    text: Vec<u8>,
}

impl RecordSet {
    /// The table and columns of entity `E`, typed from its definition.
    pub(crate) fn of_entity<E: EntityTrait>() -> Result<Self, StoreError> {
        let columns =
            E::Column::iter().map(|c| Ok((c.as_str().to_owned(), pg_type(&c)?))).collect::<Result<_, StoreError>>()?;
        Ok(Self { table: E::default().table_name().to_owned(), columns, text: b"[".to_vec() })
    }

    /// Adds a row from its values, in column order.
    fn push(&mut self, values: impl IntoIterator<Item = Value>) -> Result<(), StoreError> {
        if self.text.len() > 1 {
            self.text.push(b',');
        }
        self.text.push(b'{');
        for (i, ((name, _), value)) in self.columns.iter().zip(values).enumerate() {
            if i > 0 {
                self.text.push(b',');
            }
            write_json(&mut self.text, name)?;
            self.text.push(b':');
            write_value(&mut self.text, value)?;
        }
        self.text.push(b'}');
        Ok(())
    }

    /// Adds an active model's row; every column of the set must be set.
    pub(crate) fn push_model<A: ActiveModelTrait>(&mut self, model: &A) -> Result<(), StoreError> {
        let columns = <A::Entity as EntityTrait>::Column::iter()
            .filter(|c| self.columns.iter().any(|(name, _)| name == c.as_str()));
        self.push(values_of(model, columns)?)
    }

    /// The column names, comma separated.
    fn names(&self) -> String {
        self.columns.iter().map(|(name, _)| format!("\"{name}\"")).collect::<Vec<_>>().join(", ")
    }

    /// `jsonb_to_recordset($n::jsonb) AS r(col type, ...)`, with the rows
    /// as the `n`th parameter.
    fn source(&self, n: usize) -> String {
        let typed: Vec<String> = self.columns.iter().map(|(name, ty)| format!("\"{name}\" {ty}")).collect();
        format!("jsonb_to_recordset(${n}::jsonb) AS r({})", typed.join(", "))
    }

    /// `INSERT INTO table (cols) SELECT cols FROM` the set, read from the
    /// `n`th parameter.
    pub(crate) fn insert(&self, n: usize) -> String {
        let (table, columns) = (&self.table, self.names());
        format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM {}", self.source(n))
    }

    /// The parameter that [`Self::source`] reads.
    pub(crate) fn into_param(mut self) -> Value {
        self.text.push(b']');
        // Only serde_json and ASCII punctuation wrote it.
        Value::String(Some(Box::new(String::from_utf8(self.text).expect("JSON text is UTF-8"))))
    }
}

/// The values of `columns` in an active model; each must be set (an unset
/// column is an error, not a NULL).
pub(crate) fn values_of<A: ActiveModelTrait>(
    model: &A,
    columns: impl IntoIterator<Item = <A::Entity as EntityTrait>::Column>,
) -> Result<Vec<Value>, StoreError> {
    columns
        .into_iter()
        .map(|c| {
            model.get(c).into_value().ok_or_else(|| StoreError::Corrupt(format!("column {} was not set", c.as_str())))
        })
        .collect()
}

/// The PostgreSQL type `column` was created with (see `migration::schema`).
pub(crate) fn pg_type(column: &impl ColumnTrait) -> Result<&'static str, StoreError> {
    Ok(match column.def().get_column_type() {
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => "text",
        ColumnType::Integer => "int4",
        ColumnType::BigInteger => "int8",
        ColumnType::Boolean => "bool",
        ColumnType::Json => "json",
        ColumnType::JsonBinary => "jsonb",
        ColumnType::TimestampWithTimeZone => "timestamptz",
        other => return Err(StoreError::Corrupt(format!("no record set type for {other:?}"))),
    })
}

/// Appends a bound value as JSON that `jsonb_to_recordset` reads back as
/// the same value (timestamps as RFC 3339 with microseconds, PostgreSQL's
/// precision).
fn write_value(out: &mut Vec<u8>, value: Value) -> Result<(), StoreError> {
    match value {
        Value::String(s) => write_json(out, &s),
        Value::Int(i) => write_json(out, &i),
        Value::BigInt(i) => write_json(out, &i),
        Value::Bool(b) => write_json(out, &b),
        Value::Json(j) => write_json(out, &j),
        Value::ChronoDateTimeUtc(t) => write_json(out, &t.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))),
        other => Err(StoreError::Corrupt(format!("no record set encoding for {other:?}"))),
    }
}

fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<(), StoreError> {
    serde_json::to_writer(out, value).map_err(|e| StoreError::Corrupt(format!("record set: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::rule;
    use sea_orm::ActiveValue::Set;
    use serde_json::Value as Json;

    #[test]
    fn rows_become_one_json_array_with_typed_columns() {
        let mut set = RecordSet::of_entity::<rule::Entity>().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-26T13:00:00.123456Z").unwrap().to_utc();
        let row = rule::ActiveModel {
            id: Set("rul_1".into()),
            tenant_id: Set("ten_1".into()),
            on_type: Set("a.b".into()),
            emit_type: Set("c.d".into()),
            created_at: Set(at),
        };
        set.push_model(&row).unwrap();
        assert_eq!(
            set.insert(2),
            r#"INSERT INTO rules ("id", "tenant_id", "on_type", "emit_type", "created_at") SELECT "id", "tenant_id", "on_type", "emit_type", "created_at" FROM jsonb_to_recordset($2::jsonb) AS r("id" text, "tenant_id" text, "on_type" text, "emit_type" text, "created_at" timestamptz)"#
        );
        let Value::String(Some(text)) = set.into_param() else { panic!("a JSON text parameter") };
        let rows: Json = serde_json::from_str(&text).unwrap();
        let expected = serde_json::json!([{"id": "rul_1", "tenant_id": "ten_1", "on_type": "a.b", "emit_type": "c.d",
            "created_at": "2026-11-26T13:00:00.123456Z"}]);
        assert_eq!(rows, expected);
    }

    #[test]
    fn an_unset_column_is_an_error_not_a_null() {
        let mut set = RecordSet::of_entity::<rule::Entity>().unwrap();
        assert!(set.push_model(&rule::ActiveModel { id: Set("rul_1".into()), ..Default::default() }).is_err());
    }
}
