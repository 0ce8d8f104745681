//! `/etc/modgate/runtime.toml`, the runtime wrapper's settings: which runtime it runs
//! (runc unless this file or `MODGATE_RUNTIME` names another) and how it calls the hook.

use serde::Deserialize;

/// The runtime run when nothing names another.
pub const DEFAULT_RUNTIME: &str = "runc";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapperConfig {
    /// The real runtime: a name looked up in PATH (`runc`, `crun`, `youki`) or a path.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Arguments added after `modgate hook STAGE` (for example `["--policy", FILE]`).
    #[serde(default)]
    pub hook_args: Vec<String>,
    /// The modgate binary the hooks run [default: the wrapper's own executable].
    #[serde(default)]
    pub hook_path: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid runtime configuration {source_file}")]
pub struct WrapperConfigError {
    pub source_file: String,
    #[source]
    pub source: Box<toml::de::Error>,
}

impl WrapperConfig {
    pub fn parse(source: &str, text: &str) -> Result<Self, WrapperConfigError> {
        toml::from_str(text).map_err(|e| WrapperConfigError {
            source_file: source.to_string(),
            source: Box::new(e),
        })
    }

    /// The runtime to run: `MODGATE_RUNTIME`, else this file's, else runc.
    pub fn runtime<'a>(&'a self, env: Option<&'a str>) -> &'a str {
        env.filter(|s| !s.is_empty())
            .or(self.runtime.as_deref().filter(|s| !s.is_empty()))
            .unwrap_or(DEFAULT_RUNTIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_chooses() {
        let c = WrapperConfig::parse(
            "f",
            "runtime = \"crun\"\nhook_args = [\"--policy\", \"/p.toml\"]\nhook_path = \"/opt/bin/modgate\"\n",
        )
        .unwrap();
        assert_eq!(c.runtime(None), "crun");
        assert_eq!(c.runtime(Some("youki")), "youki");
        assert_eq!(c.runtime(Some("")), "crun");
        assert_eq!(c.hook_args, ["--policy", "/p.toml"]);
        let empty = WrapperConfig::parse("f", "").unwrap();
        assert_eq!(empty.runtime(None), "runc");
        assert!(WrapperConfig::parse("f", "runtim = \"crun\"").is_err());
        assert!(WrapperConfig::parse("f", "runtime = 3").is_err());
    }
}
