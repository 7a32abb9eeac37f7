//! Column builders for the services' migrations, so every table is written the same way:
//! decimals as canonical text (exact on SQLite and PostgreSQL), instants with time zone.

use sea_orm_migration::prelude::*;

/// A required short text column (also canonical decimals).
pub fn text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).string().not_null().to_owned()
}

/// A required long text column.
pub fn long_text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().not_null().to_owned()
}

/// A required 32-bit integer column.
pub fn int(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).integer().not_null().to_owned()
}

/// A required boolean column.
pub fn flag(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).boolean().not_null().to_owned()
}

/// A required calendar date column.
pub fn date(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).date().not_null().to_owned()
}

/// A required UTC timestamp column.
pub fn instant(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

/// A text primary key column.
pub fn key(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string()
        .not_null()
        .primary_key()
        .to_owned()
}

/// A table of these columns.
pub fn table(name: &str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut stmt = Table::create();
    stmt.table(Alias::new(name));
    for mut column in columns {
        stmt.col(&mut column);
    }
    stmt.to_owned()
}

/// An optional calendar date column.
pub fn optional_date(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).date().null().to_owned()
}

/// An optional UTC timestamp column.
pub fn optional_instant(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}
