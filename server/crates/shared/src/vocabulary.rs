//! How the portal's closed sets of words (grant and step states, audit actions, ...) are
//! declared: one `vocabulary!` block gives the enum, its stored text, its label for pages,
//! the list of all values, and serde as the stored text — so the database, the JSON and the
//! pages cannot spell a value two ways.

use std::fmt;

/// A stored or submitted word that is not one of a vocabulary's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What the word should have been, with its article: `a grant state`.
    pub kind: &'static str,
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not {}", self.value, self.kind)
    }
}

impl std::error::Error for UnknownValue {}

/// Declares a vocabulary enum:
///
/// ```ignore
/// vocabulary! {
///     /// Docs.
///     pub enum GrantState: "a grant state" {
///         /// Docs.
///         Approved = "approved", "waiting for a worker";
///     }
/// }
/// ```
///
/// Each value is `Variant = "stored text", "label"`. Generates `as_str`, `parse` (an
/// [`UnknownValue`] naming the word), `label`, `ALL` (in declaration order), `Display` (the
/// stored text), `FromStr`, and serde as the stored text.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, $label:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// What the database, JSON and URLs carry.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// How the value reads to people.
            pub const fn label(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }

            /// The value stored as `raw`, or an error naming it.
            pub fn parse(raw: &str) -> Result<Self, $crate::vocabulary::UnknownValue> {
                match raw {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::vocabulary::UnknownValue {
                        kind: $kind,
                        value: raw.to_string(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::vocabulary::UnknownValue;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use vocabulary;

/// Declares a string id newtype: constructed from the stored text, shown and serialised as
/// it (`#[serde(transparent)]`), so ids of different things cannot be swapped by mistake.
macro_rules! id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

pub(crate) use id;

/// Checks a vocabulary's invariants (for its unit test): every value round-trips through
/// its text, serde carries the same text, no two values share a text or a label, and an
/// unknown word is refused with an error naming it.
#[cfg(test)]
pub(crate) fn check<T>(all: &[T], as_str: fn(T) -> &'static str, label: fn(T) -> &'static str)
where
    T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr<Err = UnknownValue>,
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut texts = std::collections::HashSet::new();
    let mut labels = std::collections::HashSet::new();
    for &value in all {
        let text = as_str(value);
        assert_eq!(text.parse::<T>(), Ok(value), "{text} round-trips");
        assert!(texts.insert(text), "{text} appears twice in ALL");
        assert!(
            labels.insert(label(value)),
            "{value:?}'s label is not unique"
        );
        assert!(!label(value).is_empty());
        let json = serde_json::to_string(&value).expect("serialise");
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(
            serde_json::from_str::<T>(&json).expect("deserialise"),
            value
        );
    }
    let refused = "no_such_value".parse::<T>().expect_err("refused");
    assert_eq!(refused.value, "no_such_value");
    assert!(refused.to_string().starts_with("'no_such_value' is not a"));
    assert!(serde_json::from_str::<T>("\"no_such_value\"").is_err());
}
