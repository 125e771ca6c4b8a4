//! Field-by-field change records, shared by every service's history (see `desk_kit::history`).

pub use desk_kit::history::{Changes, FieldChange};
