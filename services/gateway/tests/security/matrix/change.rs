//! The change enablement service's rows (see `matrix/mod.rs` for the format). Not written yet: each
//! method is listed as pending so the table shows the gap (and a method added to the proto
//! without a line here still fails the suite). Replace a `Row::pending` with `Row::new` rows
//! as `tickets.rs` does.

use super::{Row, Table};

const PENDING: &str = "rows to write (role x own/same/other); its tokens and fuzzing are checked";

pub fn rows() -> Table {
    Table {
        service: "desk.change.v1.ChangeService",
        file: "tests/security/matrix/change.rs",
        rows: vec![
            Row::pending("CreateTemplate", PENDING),
            Row::pending("ListTemplates", PENDING),
            Row::pending("CreateChange", PENDING),
            Row::pending("GetChange", PENDING),
            Row::pending("UpdateChange", PENDING),
            Row::pending("ListChanges", PENDING),
            Row::pending("GetChangeHistory", PENDING),
            Row::pending("SubmitChange", PENDING),
            Row::pending("AssessChange", PENDING),
            Row::pending("DecideChange", PENDING),
            Row::pending("DelegateApprovals", PENDING),
            Row::pending("CheckConflicts", PENDING),
            Row::pending("SuggestSlot", PENDING),
            Row::pending("ScheduleChange", PENDING),
            Row::pending("StartImplementation", PENDING),
            Row::pending("CompleteImplementation", PENDING),
            Row::pending("CloseChange", PENDING),
            Row::pending("CancelChange", PENDING),
            Row::pending("CreateFreezeWindow", PENDING),
            Row::pending("CreateMaintenanceWindow", PENDING),
            Row::pending("ListSchedule", PENDING),
            Row::pending("GetChangePolicy", PENDING),
            Row::pending("SetChangePolicy", PENDING),
            Row::pending("GetChangeMetrics", PENDING),
        ],
    }
}
