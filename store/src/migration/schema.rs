//! A small vocabulary for spelling out tables in migrations.
//!
//! Migrations never derive tables from the entities: an entity describes
//! the schema of today, a migration the change of one day, and the two must
//! not move together.
use sea_orm_migration::prelude::*;

/// A non-null text column.
pub fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).string().not_null().to_owned()
}

/// A nullable text column.
pub fn text_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).string().null().to_owned()
}

/// A non-null integer column with a default.
pub fn int(name: &'static str, default: i32) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).integer().not_null().default(default).to_owned()
}

/// A nullable integer column.
pub fn int_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).integer().null().to_owned()
}

/// A non-null big integer column.
pub fn bigint(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).big_integer().not_null().to_owned()
}

/// A non-null timestamp with time zone.
pub fn ts(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).timestamp_with_time_zone().not_null().to_owned()
}

/// A nullable timestamp with time zone.
pub fn ts_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).timestamp_with_time_zone().null().to_owned()
}

/// A non-null JSON column.
pub fn json(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).json().not_null().to_owned()
}

/// A nullable JSON column.
pub fn json_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).json().null().to_owned()
}

/// A non-null boolean with a default.
pub fn boolean(name: &'static str, default: bool) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).boolean().not_null().default(default).to_owned()
}

/// A table keyed by a text `id`, with these columns.
pub fn table(name: &'static str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Alias::new(name)).if_not_exists().col(text("id").primary_key());
    for mut c in columns {
        t.col(&mut c);
    }
    t.to_owned()
}

/// An index (unique or not) on these columns.
pub fn index(name: &str, table: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table)).if_not_exists();
    for c in cols {
        idx.col(Alias::new(*c));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

/// Adds a column to an existing table.
pub fn add_column(table: &'static str, mut column: ColumnDef) -> TableAlterStatement {
    Table::alter().table(Alias::new(table)).add_column(&mut column).to_owned()
}
