//! sea-orm entities: one module per table. Enum columns hold the domain's snake_case names; list
//! columns hold JSON arrays of strings (they are read whole and never queried inside: the one
//! list a query needs, the watchers, is kept again as rows of `ticket_watchers`).

pub mod ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub number: String,
        pub ticket_type: String,
        pub title: String,
        pub description: String,
        pub requester_id: String,
        pub channel: String,
        pub category: Option<String>,
        pub impact: String,
        pub urgency: String,
        pub priority: String,
        /// 1..=5, for ordering and filtering without parsing.
        pub priority_rank: i32,
        pub status: String,
        pub pending_reason: Option<String>,
        pub assignment_group_id: Option<String>,
        pub assignee_id: Option<String>,
        pub tier: String,
        pub affected_service_ids: String,
        pub affected_ci_ids: String,
        pub major_incident: bool,
        pub watcher_ids: String,
        pub resolution_code: Option<String>,
        pub resolution_notes: Option<String>,
        pub resolved_by: Option<String>,
        pub resolved_at: Option<DateTimeUtc>,
        pub root_cause: Option<String>,
        pub workaround: Option<String>,
        pub known_error: bool,
        pub csat_rating: Option<i32>,
        pub csat_comment: Option<String>,
        pub rated_at: Option<DateTimeUtc>,
        pub version: i64,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod comment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_comments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub ticket_id: Uuid,
        pub author_id: String,
        pub author_name: Option<String>,
        pub body: String,
        pub visibility: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod worklog {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_worklog")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub ticket_id: Uuid,
        pub agent_id: String,
        pub minutes: i32,
        pub note: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod link {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub ticket_id: Uuid,
        pub kind: String,
        /// A public ticket id, or an external id (change, article).
        pub target_id: String,
        pub target_number: Option<String>,
        pub created_by: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub ticket_id: Uuid,
        pub version: i64,
        pub actor_id: String,
        pub actor_name: Option<String>,
        pub actor_roles: String,
        pub action: String,
        /// JSON array of `{field, old, new}`.
        pub changes: String,
        pub note: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod settings {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        /// The domain's `PriorityMatrix` as JSON.
        pub priority_matrix: String,
        pub reopen_window_hours: i32,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One watcher of one ticket: the index behind a requester's list of the tickets they watch.
pub mod watcher {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_watchers")]
    pub struct Model {
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub watcher_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
