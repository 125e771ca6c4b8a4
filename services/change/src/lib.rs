//! Change enablement: standard, normal and emergency changes — assessed for risk, authorized by
//! the CAB of their risk level, scheduled against the change calendar with conflicts found
//! across the CMDB's whole dependency graph, implemented (their CI updates applied to the
//! CMDB with the change as provenance) and reviewed — behind `desk.change.v1.ChangeService`.

pub mod domain;
