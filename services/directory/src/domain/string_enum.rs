//! The closed, snake_case-named enums of the domain come from the kit's `string_enum!`, so every
//! service spells its vocabulary (database values, subjects, JSON) the same way.

pub(crate) use desk_kit::string_enum;
