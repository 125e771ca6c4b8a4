//! Column and index shorthands for migrations, so every service's schema reads the same way and
//! runs on PostgreSQL and SQLite alike.

use sea_orm_migration::prelude::*;

pub fn uuid(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .uuid()
        .not_null()
        .to_owned()
}
pub fn text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .text()
        .not_null()
        .to_owned()
}
pub fn text_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().null().to_owned()
}
pub fn int(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .to_owned()
}
pub fn int_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).integer().null().to_owned()
}
pub fn bigint(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .to_owned()
}
pub fn boolean(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .boolean()
        .not_null()
        .to_owned()
}
pub fn time(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}
pub fn time_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

/// `CREATE INDEX IF NOT EXISTS name ON table (columns...)`.
pub fn index(name: &str, table: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(Alias::new(table));
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}

/// A unique index.
pub fn unique_index(name: &str, table: &str, columns: &[&str]) -> IndexCreateStatement {
    index(name, table, columns).unique().to_owned()
}

/// A composite primary key.
pub fn primary_key(columns: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}
