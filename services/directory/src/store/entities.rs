//! sea-orm entities of the directory, one module per table. Every table has `tenant_id`;
//! aggregates have `version`. Lists of values (an agent profile, a team's skills, a catalog) are
//! JSON text; a team's skills are repeated in `directory_team_skills` so "teams with skill X" is
//! an index lookup on both PostgreSQL and SQLite (`FindTeams` itself answers from each replica's
//! memory, `api::TeamIndex`).

pub mod person {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_people")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub subject: String,
        pub external_id: Option<String>,
        pub display_name: String,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub locale: Option<String>,
        pub time_zone: Option<String>,
        pub manager_id: Option<Uuid>,
        pub department: Option<String>,
        pub location: Option<String>,
        pub vip: bool,
        pub status: String,
        /// JSON `{skills: [[name, level]], languages, capacity}`; null for people who are no agents.
        pub agent_profile: Option<String>,
        pub source: String,
        /// Lower-case display name, e-mail and subject, for `ListPeople`'s text filter.
        pub search_key: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deactivated_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod team {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_teams")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub name: String,
        /// Lower-case name: names are unique in a tenant without regard to case.
        pub name_key: String,
        pub description: Option<String>,
        pub region: String,
        pub time_zone: Option<String>,
        pub calendar_id: Option<String>,
        pub tier: Option<String>,
        /// JSON array of skill names, sorted.
        pub skills: String,
        pub manager_id: Option<Uuid>,
        pub parent_id: Option<Uuid>,
        pub follow_the_sun: bool,
        pub status: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub retired_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod team_skill {
    use sea_orm::entity::prelude::*;

    /// One skill of one team, with what `FindTeams` filters on beside it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_team_skills")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub skill: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub team_id: Uuid,
        pub region: String,
        pub active: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod membership {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_memberships")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub team_id: Uuid,
        pub person_id: Uuid,
        pub role: String,
        /// Removed memberships stay, inactive, for history.
        pub active: bool,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod presence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_presence")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub person_id: Uuid,
        pub status: String,
        pub set_at: DateTimeUtc,
        /// Null for offline: the expiry worker looks only at rows that expire.
        pub expires_at: Option<DateTimeUtc>,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod skill_catalog {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_skill_catalogs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        /// JSON object: name → description.
        pub skills: String,
        pub version: i64,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod provisioning {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_provisioning_batches")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub source: String,
        pub state: String,
        /// The batch as staged (`StageProvisioningRequest`, protobuf, base64), planned again at commit.
        pub request: String,
        /// The plan as previewed (`ProvisioningBatch`, protobuf, base64).
        pub plan: String,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
