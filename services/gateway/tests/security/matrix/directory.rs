//! The the directory service's rows (see `matrix/mod.rs` for the format). Not written yet: each
//! method is listed as pending so the table shows the gap (and a method added to the proto
//! without a line here still fails the suite). Replace a `Row::pending` with `Row::new` rows
//! as `tickets.rs` does.

use super::{Row, Table};

const PENDING: &str = "rows to write (role x own/same/other); its tokens and fuzzing are checked";

pub fn rows() -> Table {
    Table {
        service: "desk.directory.v1.DirectoryService",
        file: "tests/security/matrix/directory.rs",
        rows: vec![
            Row::pending("WhoAmI", PENDING),
            Row::pending("CreatePerson", PENDING),
            Row::pending("GetPerson", PENDING),
            Row::pending("UpdatePerson", PENDING),
            Row::pending("DeactivatePerson", PENDING),
            Row::pending("ReactivatePerson", PENDING),
            Row::pending("ListPeople", PENDING),
            Row::pending("GetManagerChain", PENDING),
            Row::pending("SetAgentProfile", PENDING),
            Row::pending("CreateTeam", PENDING),
            Row::pending("GetTeam", PENDING),
            Row::pending("UpdateTeam", PENDING),
            Row::pending("RetireTeam", PENDING),
            Row::pending("ListTeams", PENDING),
            Row::pending("FindTeams", PENDING),
            Row::pending("AddMembership", PENDING),
            Row::pending("RemoveMembership", PENDING),
            Row::pending("ListTeamMembers", PENDING),
            Row::pending("SetPresence", PENDING),
            Row::pending("GetSkillCatalog", PENDING),
            Row::pending("SetSkillCatalog", PENDING),
            Row::pending("StageProvisioning", PENDING),
            Row::pending("GetProvisioning", PENDING),
            Row::pending("CommitProvisioning", PENDING),
            Row::pending("DiscardProvisioning", PENDING),
            Row::pending("ListProvisionings", PENDING),
        ],
    }
}
