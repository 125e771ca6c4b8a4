//! The SLA service's rows (see `matrix/mod.rs` for the format). Not written
//! yet: the service landed after the matrix, so each method is listed as pending, printed as
//! `PENDING` (its tokens and fuzzing are checked like every method's). Replace each
//! `Row::pending` with `Row::new` rows as `tickets.rs` does.

use super::{Row, Table};

const PENDING: &str = "rows to write (role x own/same/other); its tokens and fuzzing are checked";

pub fn rows() -> Table {
    Table {
        service: "desk.sla.v1.SlaService",
        file: "tests/security/matrix/sla.rs",
        rows: vec![
            Row::pending("CreateCalendar", PENDING),
            Row::pending("GetCalendar", PENDING),
            Row::pending("ListCalendars", PENDING),
            Row::pending("UpdateCalendar", PENDING),
            Row::pending("PreviewCalendarUpdate", PENDING),
            Row::pending("ImportHolidays", PENDING),
            Row::pending("CreatePolicy", PENDING),
            Row::pending("GetPolicy", PENDING),
            Row::pending("ListPolicies", PENDING),
            Row::pending("UpdatePolicy", PENDING),
            Row::pending("PreviewPolicyUpdate", PENDING),
            Row::pending("GetTicketSla", PENDING),
            Row::pending("ListBreachingSoon", PENDING),
            Row::pending("GetKpis", PENDING),
        ],
    }
}
