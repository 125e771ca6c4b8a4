//! `string_enum!`: closed sets of values that travel as snake_case strings.
//!
//! Statuses, priorities, roles and the like are stored as text columns, appear in event subjects
//! and JWT claims, and are read back from tenant settings. One macro gives every such enum the
//! same surface — `as_str`, `parse`, `ALL`, `NAMES`, `Display` and serde as the same strings — so
//! the wire name of a value is written exactly once and cannot drift between the database, the
//! events and the JSON settings.

/// Declares a fieldless enum whose values map one-to-one onto `&'static str` names.
///
/// ```ignore
/// string_enum! {
///     /// Doc comment for the enum.
///     pub enum Visibility {
///         /// Doc comment for the value.
///         Public => "public",
///         Internal => "internal",
///     }
/// }
/// ```
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire name of every value, in the same order as [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The wire name: a database column value, an event subject part, a JSON string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// The value with this exact wire name, if any (case-sensitive).
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> Result<Self, D::Error>
            where
                D: ::serde::Deserializer<'de>,
            {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&text)
                    .ok_or_else(|| ::serde::de::Error::unknown_variant(&text, Self::NAMES))
            }
        }
    };
}
