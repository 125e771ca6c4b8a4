//! The service catalog service's rows (see `matrix/mod.rs` for the format). Not written
//! yet: the service landed after the matrix, so each method is listed as pending, printed as
//! `PENDING` (its tokens and fuzzing are checked like every method's). Replace each
//! `Row::pending` with `Row::new` rows as `tickets.rs` does.

use super::{Row, Table};

const PENDING: &str = "rows to write (role x own/same/other); its tokens and fuzzing are checked";

pub fn rows() -> Table {
    Table {
        service: "desk.catalog.v1.CatalogService",
        file: "tests/security/matrix/catalog.rs",
        rows: vec![
            Row::pending("CreateOffering", PENDING),
            Row::pending("UpdateOffering", PENDING),
            Row::pending("GetOffering", PENDING),
            Row::pending("ListOfferings", PENDING),
            Row::pending("SubmitRequest", PENDING),
            Row::pending("GetRequest", PENDING),
            Row::pending("ListMyRequests", PENDING),
            Row::pending("CancelRequest", PENDING),
            Row::pending("ListMyApprovals", PENDING),
            Row::pending("DecideApproval", PENDING),
            Row::pending("SetDelegation", PENDING),
            Row::pending("ListTasks", PENDING),
            Row::pending("ClaimTask", PENDING),
            Row::pending("CompleteTask", PENDING),
        ],
    }
}
