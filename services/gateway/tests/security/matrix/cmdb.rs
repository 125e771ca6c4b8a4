//! The the CMDB service's rows (see `matrix/mod.rs` for the format). Not written yet: each
//! method is listed as pending so the table shows the gap (and a method added to the proto
//! without a line here still fails the suite). Replace a `Row::pending` with `Row::new` rows
//! as `tickets.rs` does.

use super::{Row, Table};

const PENDING: &str = "rows to write (role x own/same/other); its tokens and fuzzing are checked";

pub fn rows() -> Table {
    Table {
        service: "desk.cmdb.v1.CmdbService",
        file: "tests/security/matrix/cmdb.rs",
        rows: vec![
            Row::pending("ListClasses", PENDING),
            Row::pending("CreateClass", PENDING),
            Row::pending("CreateCi", PENDING),
            Row::pending("GetCi", PENDING),
            Row::pending("UpdateCi", PENDING),
            Row::pending("RetireCi", PENDING),
            Row::pending("ListCis", PENDING),
            Row::pending("GetCiHistory", PENDING),
            Row::pending("AddRelationship", PENDING),
            Row::pending("RemoveRelationship", PENDING),
            Row::pending("ListRelationships", PENDING),
            Row::pending("AnalyzeImpact", PENDING),
            Row::pending("StageImport", PENDING),
            Row::pending("GetImport", PENDING),
            Row::pending("CommitImport", PENDING),
            Row::pending("DiscardImport", PENDING),
            Row::pending("ListImports", PENDING),
            Row::pending("GetSourcePrecedence", PENDING),
            Row::pending("SetSourcePrecedence", PENDING),
        ],
    }
}
