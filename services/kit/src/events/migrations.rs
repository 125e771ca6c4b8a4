//! The outbox and inbox tables. Each service owns its own pair (`<service>_outbox`,
//! `<service>_inbox`), so services can share one database without sharing tables; a service's
//! migrator lists [`outbox_migration`] and [`inbox_migration`] beside its own migrations.

use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub fn outbox_table(service: &str) -> String {
    format!("{service}_outbox")
}

pub fn inbox_table(service: &str) -> String {
    format!("{service}_inbox")
}

pub fn outbox_migration(service: &'static str) -> Box<dyn MigrationTrait> {
    Box::new(ServiceMigration {
        name: format!("m20261125_000001_create_{service}_outbox"),
        service,
        step: Step::CreateOutbox,
    })
}

/// A partial index of the rows still to publish, listed after a service's own migrations. The
/// relay asks for `published_at IS NULL ORDER BY seq`: with published rows kept for a day, the
/// `(published_at, seq)` index alone leaves PostgreSQL, whose statistics trail the churn, free to
/// walk the primary key from the oldest row and skip every published one on each pass.
pub fn outbox_unpublished_migration(service: &'static str) -> Box<dyn MigrationTrait> {
    Box::new(ServiceMigration {
        name: format!("m20261201_000003_index_{service}_outbox_unpublished"),
        service,
        step: Step::IndexUnpublished,
    })
}

pub fn inbox_migration(service: &'static str) -> Box<dyn MigrationTrait> {
    Box::new(ServiceMigration {
        name: format!("m20261125_000002_create_{service}_inbox"),
        service,
        step: Step::CreateInbox,
    })
}

/// One of the kit's migrations, for one service's tables.
struct ServiceMigration {
    name: String,
    service: &'static str,
    step: Step,
}

enum Step {
    CreateOutbox,
    IndexUnpublished,
    CreateInbox,
}

impl MigrationName for ServiceMigration {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ServiceMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match self.step {
            Step::CreateOutbox => create_outbox(manager, self.service).await,
            Step::IndexUnpublished => index_unpublished(manager, self.service).await,
            Step::CreateInbox => create_inbox(manager, self.service).await,
        }
    }
}

async fn create_outbox(manager: &SchemaManager<'_>, service: &str) -> Result<(), DbErr> {
    let table = Alias::new(outbox_table(service));
    manager
        .create_table(
            Table::create()
                .table(table.clone())
                .if_not_exists()
                // Publication order; also the relay's cursor.
                .col(
                    ColumnDef::new("seq")
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new("event_id").uuid().not_null().unique_key())
                .col(ColumnDef::new("nats_subject").string().not_null())
                .col(ColumnDef::new("ce_type").string().not_null())
                .col(ColumnDef::new("ce_source").string().not_null())
                .col(ColumnDef::new("ce_subject").string().not_null())
                .col(ColumnDef::new("tenant").string().not_null())
                .col(
                    ColumnDef::new("ce_time")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new("traceparent").string().null())
                .col(ColumnDef::new("payload").blob().not_null())
                .col(
                    ColumnDef::new("published_at")
                        .timestamp_with_time_zone()
                        .null(),
                )
                // The JetStream sequence the ack gave; lets the relay re-publish what a NATS crash lost.
                .col(ColumnDef::new("stream_seq").big_integer().null())
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .if_not_exists()
                .name(format!("{}_pending", outbox_table(service)))
                .table(table)
                .col("published_at")
                .col("seq")
                .to_owned(),
        )
        .await
}

async fn index_unpublished(manager: &SchemaManager<'_>, service: &str) -> Result<(), DbErr> {
    let table = outbox_table(service);
    // The same statement on PostgreSQL and SQLite; sea-query has no partial-index builder.
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS {table}_unpublished ON {table} (seq) \
             WHERE published_at IS NULL"
        ))
        .await?;
    Ok(())
}

async fn create_inbox(manager: &SchemaManager<'_>, service: &str) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Alias::new(inbox_table(service)))
                .if_not_exists()
                .col(ColumnDef::new("consumer").string().not_null())
                .col(ColumnDef::new("event_id").uuid().not_null())
                .col(
                    ColumnDef::new("processed_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(Index::create().col("consumer").col("event_id"))
                .to_owned(),
        )
        .await
}
