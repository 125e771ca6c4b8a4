//! The directory's schema. One migration per struct, named by date; never edit a landed one, add
//! another. The migration table is `directory_migrations` and every table is `directory_…`, so
//! services can share a database.

use desk_kit::schema::{
    bigint, boolean, index, primary_key, text, text_null, time, time_null, unique_index, uuid,
};
use sea_orm_migration::{prelude::*, sea_orm::DbErr};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            desk_kit::events::migrations::outbox_migration(crate::SERVICE),
            Box::new(CreateDirectory),
            Box::new(CreateIdempotencyKeys),
            desk_kit::events::migrations::outbox_unpublished_migration(crate::SERVICE),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("directory_migrations").into_iden()
    }
}

fn uuid_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).uuid().null().to_owned()
}

struct CreateDirectory;

impl MigrationName for CreateDirectory {
    fn name(&self) -> &str {
        "m20261204_000010_create_directory"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDirectory {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("directory_people"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("subject"))
                    .col(text_null("external_id"))
                    .col(text("display_name"))
                    .col(text_null("email"))
                    .col(text_null("phone"))
                    .col(text_null("locale"))
                    .col(text_null("time_zone"))
                    .col(uuid_null("manager_id"))
                    .col(text_null("department"))
                    .col(text_null("location"))
                    .col(boolean("vip"))
                    .col(text("status"))
                    .col(text_null("agent_profile"))
                    .col(text("source"))
                    .col(text("search_key"))
                    .col(bigint("version"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .col(time_null("deactivated_at"))
                    .to_owned(),
            )
            .await?;
        // A token names its person by subject, an IdP's sync by external id: each is one person.
        // (Both backends let many rows share a NULL external id.)
        manager
            .create_index(unique_index(
                "directory_people_subject",
                "directory_people",
                &["tenant_id", "subject"],
            ))
            .await?;
        manager
            .create_index(unique_index(
                "directory_people_external_id",
                "directory_people",
                &["tenant_id", "external_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "directory_people_list",
                "directory_people",
                &["tenant_id", "status", "display_name", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "directory_people_manager",
                "directory_people",
                &["tenant_id", "manager_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "directory_people_source",
                "directory_people",
                &["tenant_id", "source", "status"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("directory_teams"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("name"))
                    .col(text("name_key"))
                    .col(text_null("description"))
                    .col(text("region"))
                    .col(text_null("time_zone"))
                    .col(text_null("calendar_id"))
                    .col(text_null("tier"))
                    .col(text("skills"))
                    .col(uuid_null("manager_id"))
                    .col(uuid_null("parent_id"))
                    .col(boolean("follow_the_sun"))
                    .col(text("status"))
                    .col(bigint("version"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .col(time_null("retired_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "directory_teams_name",
                "directory_teams",
                &["tenant_id", "name_key"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("directory_team_skills"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(text("skill"))
                    .col(uuid("team_id"))
                    .col(text("region"))
                    .col(boolean("active"))
                    .primary_key(&mut primary_key(&["tenant_id", "skill", "team_id"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "directory_team_skills_region",
                "directory_team_skills",
                &["tenant_id", "skill", "region", "active"],
            ))
            .await?;
        manager
            .create_index(index(
                "directory_team_skills_team",
                "directory_team_skills",
                &["team_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("directory_memberships"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(uuid("team_id"))
                    .col(uuid("person_id"))
                    .col(text("role"))
                    .col(boolean("active"))
                    .col(bigint("version"))
                    .col(time("created_at"))
                    .col(time("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index(
                "directory_memberships_pair",
                "directory_memberships",
                &["tenant_id", "team_id", "person_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "directory_memberships_person",
                "directory_memberships",
                &["tenant_id", "person_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("directory_presence"))
                    .if_not_exists()
                    .col(text("tenant_id"))
                    .col(uuid("person_id"))
                    .col(text("status"))
                    .col(time("set_at"))
                    .col(time_null("expires_at"))
                    .col(bigint("version"))
                    .primary_key(&mut primary_key(&["tenant_id", "person_id"]))
                    .to_owned(),
            )
            .await?;
        // The expiry worker's scan: presences that expire, soonest first.
        manager
            .create_index(index(
                "directory_presence_expiry",
                "directory_presence",
                &["expires_at"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("directory_skill_catalogs"))
                    .if_not_exists()
                    .col(text("tenant_id").primary_key())
                    .col(text("skills"))
                    .col(bigint("version"))
                    .col(time("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("directory_provisioning_batches"))
                    .if_not_exists()
                    .col(uuid("id").primary_key())
                    .col(text("tenant_id"))
                    .col(text("source"))
                    .col(text("state"))
                    .col(text("request"))
                    .col(text("plan"))
                    .col(text("created_by"))
                    .col(time("created_at"))
                    .col(time_null("finished_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "directory_provisioning_batches_tenant",
                "directory_provisioning_batches",
                &["tenant_id", "id"],
            ))
            .await
    }
}

struct CreateIdempotencyKeys;

impl MigrationName for CreateIdempotencyKeys {
    fn name(&self) -> &str {
        "m20261204_000011_create_directory_idempotency_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIdempotencyKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(super::IDEMPOTENCY_KEYS.create_table())
            .await
    }
}
