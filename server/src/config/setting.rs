//! One declaration per setting: its name, default, parser and help together. The `--help`
//! text, the README's settings table and the keys the TOML file accepts are all made from
//! these declarations (a test keeps the README in step).

use super::ConfigError;

/// A setting's default.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// Unset unless configured.
    None,
    /// This value, parsed as if it had been configured.
    Value(&'static str),
    /// Worked out from other settings by the loader; the text (Markdown) says how.
    Derived(&'static str),
}

/// One setting: an environment variable (or its lower-case key in the TOML file).
pub struct Setting<T> {
    pub name: &'static str,
    pub default: Default,
    /// Turns a configured value into `T`; the message is shown after the setting's name.
    pub parse: fn(&str) -> Result<T, String>,
    /// For `--help` and the README (Markdown: `code` in backticks).
    pub help: &'static str,
    /// Whether the TOML file may set it.
    pub in_file: bool,
}

impl<T> Setting<T> {
    /// The configured value, unparsed (`None`: unset).
    pub fn raw(&self, source: &Source) -> Option<String> {
        source.get(self.name)
    }

    /// `raw` parsed, or the default when it is `None` (`None` when there is no default
    /// value).
    pub fn value(&self, raw: Option<String>) -> Result<Option<T>, ConfigError> {
        let raw = match (raw, self.default) {
            (Some(raw), _) => raw,
            (None, Default::Value(default)) => default.to_string(),
            (None, _) => return Ok(None),
        };
        (self.parse)(&raw)
            .map(Some)
            .map_err(|message| ConfigError::new(self.name, message))
    }

    /// The configured value (or default), parsed.
    pub fn get(&self, source: &Source) -> Result<Option<T>, ConfigError> {
        self.value(self.raw(source))
    }

    /// The configured value, or the default value it must have.
    pub fn read(&self, source: &Source) -> Result<T, ConfigError> {
        self.get(source)?
            .ok_or_else(|| ConfigError::new(self.name, "is required"))
    }
}

/// What documentation needs of a setting, whatever its type.
pub trait Documented: Sync {
    fn name(&self) -> &'static str;
    /// The default as Markdown, `None` when unset by default.
    fn default_markdown(&self) -> Option<String>;
    fn help(&self) -> &'static str;
    fn in_file(&self) -> bool;
}

impl<T> Documented for Setting<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn default_markdown(&self) -> Option<String> {
        match self.default {
            Default::None => None,
            Default::Value(value) => Some(format!("`{value}`")),
            Default::Derived(text) => Some(text.to_string()),
        }
    }
    fn help(&self) -> &'static str {
        self.help
    }
    fn in_file(&self) -> bool {
        self.in_file
    }
}

/// Declares a group of settings (one subsystem's) and the list of them:
///
/// ```ignore
/// settings! {
///     pub const SERVER = [
///         LISTEN_ADDR: SocketAddr {
///             default: Value("127.0.0.1:3000"),
///             parse: parse_socket_addr,
///             help: "address to listen on",
///         },
///     ];
/// }
/// ```
macro_rules! settings {
    (
        $(#[$doc:meta])*
        pub const $group:ident = [
            $( $name:ident : $ty:ty {
                default: $default:ident $( ( $default_text:expr ) )?,
                parse: $parse:expr,
                help: $help:expr $(,)?
            } ),* $(,)?
        ];
    ) => {
        $(
            pub const $name: $crate::config::setting::Setting<$ty> = $crate::config::setting::Setting {
                name: stringify!($name),
                default: $crate::config::setting::Default::$default $( ( $default_text ) )?,
                parse: $parse,
                help: $help,
                in_file: true,
            };
        )*
        $(#[$doc])*
        pub const $group: &[&dyn $crate::config::setting::Documented] = &[ $( &$name ),* ];
    };
}
pub(crate) use settings;

/// Where settings come from: the environment first, then the TOML file. Empty environment
/// values count as unset.
pub struct Source<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: toml::Table,
}

impl<'a> Source<'a> {
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, file: toml::Table) -> Self {
        Self { env, file }
    }

    /// A variable of the environment only (one that is no setting of ours).
    pub fn env(&self, key: &str) -> Option<String> {
        (self.env)(key).filter(|v| !v.trim().is_empty())
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.env(name).or_else(|| {
            self.file
                .get(&name.to_ascii_lowercase())
                .map(|value| match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
        })
    }
}

/// A whole number in `range`.
pub fn number(raw: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    let value: u64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("'{raw}' is not a whole number"))?;
    if !range.contains(&value) {
        return Err(format!(
            "{value} is out of range ({}-{})",
            range.start(),
            range.end()
        ));
    }
    Ok(value)
}

/// `1`/`true` or `0`/`false`.
pub fn flag(raw: &str) -> Result<bool, String> {
    match raw.trim() {
        "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        other => Err(format!("'{other}' is not 1 or 0")),
    }
}

/// Any text, as given.
pub fn text(raw: &str) -> Result<String, String> {
    Ok(raw.to_string())
}

/// A path, as given.
pub fn path(raw: &str) -> Result<std::path::PathBuf, String> {
    Ok(std::path::PathBuf::from(raw))
}
