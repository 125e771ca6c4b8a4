//! The notifications service's rows (see `matrix/mod.rs` for the format). Not written
//! yet: the service landed after the matrix, so each method is listed as pending, printed as
//! `PENDING` (its tokens and fuzzing are checked like every method's). Replace each
//! `Row::pending` with `Row::new` rows as `tickets.rs` does.

use super::{Row, Table};

const PENDING: &str = "rows to write (role x own/same/other); its tokens and fuzzing are checked";

pub fn rows() -> Table {
    Table {
        service: "desk.notifications.v1.NotificationService",
        file: "tests/security/matrix/notifications.rs",
        rows: vec![
            Row::pending("CreateRule", PENDING),
            Row::pending("UpdateRule", PENDING),
            Row::pending("DeleteRule", PENDING),
            Row::pending("ListRules", PENDING),
            Row::pending("PutTemplate", PENDING),
            Row::pending("ListTemplates", PENDING),
            Row::pending("PreviewTemplate", PENDING),
            Row::pending("GetPreferences", PENDING),
            Row::pending("SetPreferences", PENDING),
            Row::pending("CreateWebhookEndpoint", PENDING),
            Row::pending("UpdateWebhookEndpoint", PENDING),
            Row::pending("DeleteWebhookEndpoint", PENDING),
            Row::pending("ListWebhookEndpoints", PENDING),
            Row::pending("RotateWebhookSecret", PENDING),
            Row::pending("ListDeliveries", PENDING),
            Row::pending("ListDeadLetters", PENDING),
            Row::pending("ReplayDeadLetter", PENDING),
            Row::pending("StreamFeed", PENDING),
            Row::pending("MarkRead", PENDING),
        ],
    }
}
