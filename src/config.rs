//! Configuration: `ringback.toml` (or `--config FILE`), each key overridable from the environment.
//! Secrets come from the environment and never reach a log: their `Debug` is redacted.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A value that must not be printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A database URL; its password is redacted when shown.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `postgres://user:***@host/db`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let (Some(scheme_end), Some(at)) = (url.find("://"), url.rfind('@')) else {
            return url.clone();
        };
        let userinfo = &url[scheme_end + 3..at];
        match userinfo.split_once(':') {
            Some((user, _)) if at > scheme_end => {
                format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
            }
            _ => url.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Simulator,
    Twilio,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub api_base: String,
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    /// Send SMS through this Messaging Service (`MG…`) instead of from the campaign's caller id.
    pub messaging_service_sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub campaigns_dir: PathBuf,
    pub listen: String,
    pub public_url: String,
    pub provider: ProviderConfig,
    /// Bearer tokens for `/v1`; none = the API answers only on loopback.
    pub api_tokens: Vec<Secret>,
    /// Days to keep what ended (calls, outreach, past appointments, patients no longer
    /// booked); `serve` and `worker` purge the rest every hour. None: keep everything.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<DatabaseUrl>,
    campaigns_dir: Option<PathBuf>,
    listen: Option<String>,
    public_url: Option<String>,
    retention_days: Option<u32>,
    #[serde(default)]
    provider: FileProvider,
    #[serde(default)]
    api: FileApi,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    kind: Option<ProviderKind>,
    api_base: Option<String>,
    account_sid: Option<String>,
    auth_token: Option<Secret>,
    messaging_service_sid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApi {
    #[serde(default)]
    tokens: Vec<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Value { key: &'static str, message: String },
}

impl Config {
    /// Read `path` (it must exist), else `ringback.toml` when present, then apply the environment.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("ringback.toml")).filter(|p| p.exists()),
        };
        let raw = match &file {
            None => FileConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::File {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::File {
                    path: p.clone(),
                    message: e.to_string(),
                })?
            }
        };
        Self::resolve(raw, env)
    }

    fn resolve(
        raw: FileConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let env = |key: &str| env(key).filter(|v| !v.is_empty());
        let database_url = env("RINGBACK_DATABASE_URL")
            .or_else(|| env("DATABASE_URL"))
            .map(DatabaseUrl::new)
            .or(raw.database_url)
            .unwrap_or_else(|| DatabaseUrl::new("sqlite://ringback.db"));
        let listen = env("RINGBACK_LISTEN")
            .or(raw.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let public_url = env("RINGBACK_PUBLIC_URL")
            .or(raw.public_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_string();
        let provider = provider(raw.provider, &env)?;
        let retention_days = retention(raw.retention_days, &env)?;
        let mut api_tokens = raw.api.tokens;
        if let Some(token) = env("RINGBACK_API_TOKEN") {
            api_tokens = vec![Secret::new(token)];
        }
        Ok(Config {
            database_url,
            campaigns_dir: env("RINGBACK_CAMPAIGNS_DIR")
                .map(PathBuf::from)
                .or(raw.campaigns_dir)
                .unwrap_or_else(|| "campaigns".into()),
            listen,
            public_url,
            provider,
            api_tokens,
            retention_days,
        })
    }
}

/// The provider's settings: the environment's, else the file's.
fn provider(
    raw: FileProvider,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, ConfigError> {
    let kind = match env("RINGBACK_PROVIDER") {
        Some(k) => match k.as_str() {
            "simulator" => ProviderKind::Simulator,
            "twilio" => ProviderKind::Twilio,
            _ => {
                return Err(ConfigError::Value {
                    key: "RINGBACK_PROVIDER",
                    message: format!("{k:?}: use simulator or twilio"),
                });
            }
        },
        None => raw.kind.unwrap_or(ProviderKind::Simulator),
    };
    let provider = ProviderConfig {
        kind,
        api_base: env("RINGBACK_TWILIO_API_BASE")
            .or(raw.api_base)
            .unwrap_or_else(|| "https://api.twilio.com".into())
            .trim_end_matches('/')
            .to_string(),
        account_sid: env("RINGBACK_TWILIO_ACCOUNT_SID").or(raw.account_sid),
        auth_token: env("RINGBACK_TWILIO_AUTH_TOKEN")
            .map(Secret::new)
            .or(raw.auth_token),
        messaging_service_sid: env("RINGBACK_TWILIO_MESSAGING_SERVICE_SID")
            .or(raw.messaging_service_sid),
    };
    if kind == ProviderKind::Twilio
        && (provider.account_sid.is_none() || provider.auth_token.is_none())
    {
        return Err(ConfigError::Value {
            key: "provider",
            message: "the twilio provider needs RINGBACK_TWILIO_ACCOUNT_SID and RINGBACK_TWILIO_AUTH_TOKEN".into(),
        });
    }
    if let Some(sid) = &provider.messaging_service_sid
        && !(sid.len() == 34
            && sid.starts_with("MG")
            && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ConfigError::Value {
            key: "provider.messaging_service_sid",
            message: "a Messaging Service SID is MG followed by 32 hex digits".into(),
        });
    }
    Ok(provider)
}

/// How many days finished outreach are kept, if a purge is wanted: never less than the caps
/// look back.
fn retention(
    raw: Option<u32>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<u32>, ConfigError> {
    let retention_days = match env("RINGBACK_RETENTION_DAYS") {
        Some(days) => Some(days.parse::<u32>().map_err(|_| ConfigError::Value {
            key: "RINGBACK_RETENTION_DAYS",
            message: format!("{days:?}: a whole number of days"),
        })?),
        None => raw,
    };
    if let Some(days) = retention_days
        && days < crate::store::MIN_RETENTION_DAYS
    {
        return Err(ConfigError::Value {
            key: "retention_days",
            message: format!(
                "{days}: keep at least {} days (the weekly cap counts the last week's calls)",
                crate::store::MIN_RETENTION_DAYS
            ),
        });
    }
    Ok(retention_days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn retention_comes_from_the_file_or_the_environment_and_is_two_weeks_at_least() {
        let file = |days| FileConfig {
            retention_days: Some(days),
            ..FileConfig::default()
        };
        assert_eq!(
            Config::resolve(FileConfig::default(), env(&[]))
                .unwrap()
                .retention_days,
            None
        );
        assert_eq!(
            Config::resolve(file(400), env(&[])).unwrap().retention_days,
            Some(400)
        );
        let from_env = Config::resolve(file(400), env(&[("RINGBACK_RETENTION_DAYS", "90")]));
        assert_eq!(from_env.unwrap().retention_days, Some(90));
        for bad in [
            Config::resolve(file(13), env(&[])),
            Config::resolve(
                FileConfig::default(),
                env(&[("RINGBACK_RETENTION_DAYS", "1y")]),
            ),
        ] {
            let error = bad.unwrap_err().to_string();
            assert!(
                error.contains("RETENTION_DAYS") || error.contains("retention_days"),
                "{error}"
            );
        }
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let c = Config::resolve(FileConfig::default(), env(&[])).unwrap();
        assert_eq!(c.database_url.expose(), "sqlite://ringback.db");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.provider.kind, ProviderKind::Simulator);
        assert!(c.api_tokens.is_empty());
    }

    #[test]
    fn environment_overrides_the_file_and_ringback_database_url_wins() {
        let raw: FileConfig =
            toml::from_str("database_url = \"sqlite://file.db\"\nlisten = \"0.0.0.0:9000\"")
                .unwrap();
        let c = Config::resolve(
            raw,
            env(&[
                ("DATABASE_URL", "sqlite://plain.db"),
                ("RINGBACK_DATABASE_URL", "sqlite://ours.db"),
            ]),
        )
        .unwrap();
        assert_eq!(c.database_url.expose(), "sqlite://ours.db");
        assert_eq!(c.public_url, "http://0.0.0.0:9000");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = Config::resolve(
            FileConfig::default(),
            env(&[
                ("RINGBACK_PROVIDER", "twilio"),
                ("RINGBACK_TWILIO_ACCOUNT_SID", "AC123"),
                ("RINGBACK_TWILIO_AUTH_TOKEN", "tok-very-secret"),
                ("RINGBACK_API_TOKEN", "api-very-secret"),
                (
                    "RINGBACK_DATABASE_URL",
                    "postgres://ringback:pw-very-secret@db/ringback",
                ),
            ]),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("postgres://ringback:***@db/ringback"));
    }

    #[test]
    fn twilio_without_credentials_is_refused() {
        assert!(
            Config::resolve(
                FileConfig::default(),
                env(&[("RINGBACK_PROVIDER", "twilio")])
            )
            .is_err()
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        assert!(toml::from_str::<FileConfig>("databse_url = \"x\"").is_err());
    }
}
