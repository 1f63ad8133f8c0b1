//! Model configuration: a TOML file in the platform config dir, overridden by environment variables,
//! resolved per role (generator, reflector, curator may each use their own endpoint and model).
//! See docs/CONFIGURATION.md for every key and variable.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::llm::ledger::Price;
use crate::llm::{EndpointConfig, PriceTable, Role};

pub const OPENAI_URL: &str = "https://api.openai.com/v1";
pub const OLLAMA_URL: &str = "http://localhost:11434/v1";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";

/// One endpoint's settings as written in the file (every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFile {
    pub base_url: Option<String>,
    /// Prefer `api_key_env`: the name of the variable that holds the key.
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub timeout_secs: Option<f64>,
    pub concurrency: Option<usize>,
    pub max_retries: Option<u32>,
    /// The largest answer body read from the server, in bytes.
    pub max_answer_bytes: Option<usize>,
    pub top_p: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub seed: Option<i64>,
    /// Server-specific request fields, sent as they are (e.g. `repeat_penalty = 1.1` for llama.cpp).
    pub extra_body: Option<toml::Table>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Defaults for every role.
    #[serde(default)]
    pub model: EndpointFile,
    /// `[roles.generator]`, `[roles.reflector]`, `[roles.curator]`.
    #[serde(default)]
    pub roles: BTreeMap<String, EndpointFile>,
    /// `[prices."gpt-4o-mini"] input_per_mtok = 0.15, output_per_mtok = 0.6`
    #[serde(default)]
    pub prices: HashMap<String, Price>,
    /// `[embedding]`: the `/v1/embeddings` model for de-duplication and retrieval (optional).
    #[serde(default)]
    pub embedding: Option<EndpointFile>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("the config file {path} is invalid: {detail}")]
    Parse { path: String, detail: String },
    #[error("invalid setting {name}={value}: {detail}")]
    Env {
        name: String,
        value: String,
        detail: String,
    },
    #[error(
        "no model configured for the {role}: run `export OPENAI_API_KEY=sk-...` for OpenAI, or \
         `export ACE_BASE_URL=http://localhost:11434/v1 ACE_MODEL=llama3.1` for a local server (see docs/CONFIGURATION.md)"
    )]
    NoModel { role: Role },
    #[error("no model name for the {role} at {url}: set ACE_MODEL (or ACE_{upper}_MODEL)", upper = role.as_str().to_uppercase())]
    NoModelName { role: Role, url: String },
}

/// The effective configuration; a role without an endpoint is `None` (see [`resolve`]).
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub roles: BTreeMap<Role, Option<EndpointConfig>>,
    /// The embeddings endpoint, if an embedding model is configured.
    pub embedding: Option<EndpointConfig>,
    pub prices: PriceTable,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// The config file: `ACE_CONFIG`, else `config.toml` in the platform config dir.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("ACE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "ace").map(|d| d.config_dir().join("config.toml"))
}

/// Reads the environment of this process (empty values count as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_env<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    env(name)
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError::Env {
                name: name.into(),
                value: v.clone(),
                detail: e.to_string(),
            })
        })
        .transpose()
}

/// Loads the file (if it exists) and applies the environment. Precedence, highest first: `ACE_<ROLE>_*`
/// variables, the file's `[roles.<role>]`, `ACE_*` variables (then `OPENAI_BASE_URL` /
/// `OPENAI_API_KEY`), the file's `[model]`, defaults. With an API key but no URL, OpenAI is assumed.
pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<ModelConfig, ConfigError> {
    let path = config_path(env);
    if let Some(p) = &path
        && !p.exists()
        && env("ACE_CONFIG").is_some()
    {
        return Err(ConfigError::Read {
            path: p.display().to_string(),
            detail: "no such file (from ACE_CONFIG)".into(),
        });
    }
    load_with(path.filter(|p| p.exists()), env)
}

/// As [`load`], with the config file given (or none).
pub fn load_with(
    path: Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ModelConfig, ConfigError> {
    let file: FileConfig = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                path: p.display().to_string(),
                detail: e.to_string(),
            })?;
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: p.display().to_string(),
                detail: e.to_string(),
            })?
        }
        None => FileConfig::default(),
    };
    let file_used = path.clone();
    if let Some(unknown) = file
        .roles
        .keys()
        .find(|k| !Role::ALL.iter().any(|r| r.as_str() == k.as_str()))
    {
        return Err(ConfigError::Parse {
            path: path.map(|p| p.display().to_string()).unwrap_or_default(),
            detail: format!("unknown role [roles.{unknown}] (use generator, reflector, curator)"),
        });
    }
    let mut roles = BTreeMap::new();
    for role in Role::ALL {
        let upper = role.as_str().to_uppercase();
        let rf = file.roles.get(role.as_str()).cloned().unwrap_or_default();
        let key_from = |f: &EndpointFile| {
            f.api_key
                .clone()
                .or_else(|| f.api_key_env.as_deref().and_then(env))
        };
        let api_key = env(&format!("ACE_{upper}_API_KEY"))
            .or_else(|| key_from(&rf))
            .or_else(|| env("ACE_API_KEY"))
            .or_else(|| env("OPENAI_API_KEY"))
            .or_else(|| key_from(&file.model));
        let base_url = env(&format!("ACE_{upper}_BASE_URL"))
            .or(rf.base_url.clone())
            .or_else(|| env("ACE_BASE_URL"))
            .or_else(|| env("OPENAI_BASE_URL"))
            .or(file.model.base_url.clone())
            .or_else(|| api_key.as_ref().map(|_| OPENAI_URL.to_string()));
        let Some(base_url) = base_url else {
            roles.insert(role, None);
            continue;
        };
        let model = env(&format!("ACE_{upper}_MODEL"))
            .or(rf.model.clone())
            .or_else(|| env("ACE_MODEL"))
            .or(file.model.model.clone())
            .or_else(|| {
                (base_url.trim_end_matches('/') == OPENAI_URL)
                    .then(|| DEFAULT_OPENAI_MODEL.to_string())
            });
        let Some(model) = model else {
            return Err(ConfigError::NoModelName {
                role,
                url: base_url,
            });
        };
        let mut endpoint = EndpointConfig::new(base_url, model);
        endpoint.api_key = api_key;
        endpoint.temperature = rf
            .temperature
            .or(parse_env(env, "ACE_TEMPERATURE")?)
            .or(file.model.temperature);
        endpoint.max_tokens = rf
            .max_tokens
            .or(parse_env(env, "ACE_MAX_TOKENS")?)
            .or(file.model.max_tokens);
        if let Some(t) = rf
            .timeout_secs
            .or(parse_env(env, "ACE_TIMEOUT_SECS")?)
            .or(file.model.timeout_secs)
        {
            if !(t.is_finite() && t > 0.0) {
                return Err(ConfigError::Env {
                    name: "timeout_secs".into(),
                    value: t.to_string(),
                    detail: "must be > 0".into(),
                });
            }
            endpoint.timeout = Duration::from_secs_f64(t);
        }
        if let Some(c) = rf
            .concurrency
            .or(parse_env(env, "ACE_CONCURRENCY")?)
            .or(file.model.concurrency)
        {
            endpoint.concurrency = c.max(1);
        }
        if let Some(r) = rf
            .max_retries
            .or(parse_env(env, "ACE_MAX_RETRIES")?)
            .or(file.model.max_retries)
        {
            endpoint.max_retries = r;
        }
        if let Some(n) = rf
            .max_answer_bytes
            .or(parse_env(env, "ACE_MAX_ANSWER_BYTES")?)
            .or(file.model.max_answer_bytes)
        {
            endpoint.max_answer_bytes = n.max(1024);
        }
        // sampling per role: the role's own, else the defaults of [model]
        endpoint.top_p = rf.top_p.or(file.model.top_p);
        endpoint.frequency_penalty = rf.frequency_penalty.or(file.model.frequency_penalty);
        endpoint.presence_penalty = rf.presence_penalty.or(file.model.presence_penalty);
        endpoint.seed = rf.seed.or(file.model.seed);
        let mut extra = file.model.extra_body.clone().unwrap_or_default();
        extra.extend(rf.extra_body.clone().unwrap_or_default());
        if !extra.is_empty() {
            endpoint.extra_body = serde_json::to_value(&extra)
                .ok()
                .and_then(|v| v.as_object().cloned());
        }
        roles.insert(role, Some(endpoint));
    }
    let embedding = embedding_endpoint(&file, env)?;
    Ok(ModelConfig {
        roles,
        embedding,
        prices: PriceTable(file.prices).with_built_ins(),
        file: file_used,
    })
}

/// The embeddings endpoint: `ACE_EMBEDDING_*` variables, then the file's `[embedding]`, then the
/// general settings for where and with which key (never a model: none configured means none).
fn embedding_endpoint(
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<EndpointConfig>, ConfigError> {
    let ef = file.embedding.clone().unwrap_or_default();
    let Some(model) = env("ACE_EMBEDDING_MODEL").or(ef.model.clone()) else {
        return Ok(None);
    };
    let key_from = |f: &EndpointFile| {
        f.api_key
            .clone()
            .or_else(|| f.api_key_env.as_deref().and_then(env))
    };
    let api_key = env("ACE_EMBEDDING_API_KEY")
        .or_else(|| key_from(&ef))
        .or_else(|| env("ACE_API_KEY"))
        .or_else(|| env("OPENAI_API_KEY"))
        .or_else(|| key_from(&file.model));
    let base_url = env("ACE_EMBEDDING_BASE_URL")
        .or(ef.base_url.clone())
        .or_else(|| env("ACE_BASE_URL"))
        .or_else(|| env("OPENAI_BASE_URL"))
        .or(file.model.base_url.clone())
        .unwrap_or_else(|| OPENAI_URL.to_string());
    let mut endpoint = EndpointConfig::new(base_url, model);
    endpoint.api_key = api_key;
    if let Some(t) = ef.timeout_secs.filter(|t| t.is_finite() && *t > 0.0) {
        endpoint.timeout = Duration::from_secs_f64(t);
    }
    if let Some(r) = ef.max_retries.or(parse_env(env, "ACE_MAX_RETRIES")?) {
        endpoint.max_retries = r;
    }
    if let Some(c) = ef.concurrency {
        endpoint.concurrency = c.max(1);
    }
    Ok(Some(endpoint))
}

/// Fills roles that have no endpoint: tries Ollama on localhost briefly (≤ 500 ms), else says
/// "no model configured" with the line that fixes it.
pub async fn resolve(config: &ModelConfig) -> Result<BTreeMap<Role, EndpointConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    let mut ollama: Option<Option<String>> = None;
    for (role, endpoint) in &config.roles {
        let endpoint = match endpoint {
            Some(e) => e.clone(),
            None => {
                if ollama.is_none() {
                    ollama = Some(probe_ollama().await);
                }
                match ollama.clone().flatten() {
                    Some(model) => {
                        EndpointConfig::new(OLLAMA_URL, process_env("ACE_MODEL").unwrap_or(model))
                    }
                    None => return Err(ConfigError::NoModel { role: *role }),
                }
            }
        };
        out.insert(*role, endpoint);
    }
    Ok(out)
}

/// The first model of a local Ollama, if one answers quickly.
async fn probe_ollama() -> Option<String> {
    let mut probe = EndpointConfig::new(OLLAMA_URL, "probe");
    probe.timeout = Duration::from_millis(500);
    probe.max_retries = 0;
    let client =
        crate::llm::OpenAiClient::new(probe, Default::default(), Default::default()).ok()?;
    client.list_models().await.ok()?.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_configured_leaves_roles_open() {
        let c = load_with(None, &env_of(&[])).unwrap();
        assert!(c.roles.values().all(Option::is_none));
    }

    #[test]
    fn sampling_settings_and_server_extras_are_set_per_role() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[model]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\ntop_p = 0.9\nextra_body = { repeat_penalty = 1.1 }\n\n[roles.curator]\nseed = 7\nfrequency_penalty = 0.5\npresence_penalty = 0.25\nextra_body = { repeat_penalty = 1.3, min_p = 0.05 }\n",
        )
        .unwrap();
        let c = load_with(Some(path), &env_of(&[])).unwrap();
        let get = |r| c.roles[&r].clone().unwrap();
        let g = get(Role::Generator);
        assert_eq!((g.top_p, g.seed), (Some(0.9), None));
        assert_eq!(
            g.extra_body.unwrap()["repeat_penalty"],
            serde_json::json!(1.1)
        );
        let cur = get(Role::Curator);
        assert_eq!(
            (
                cur.top_p,
                cur.seed,
                cur.frequency_penalty,
                cur.presence_penalty
            ),
            (Some(0.9), Some(7), Some(0.5), Some(0.25))
        );
        let extra = cur.extra_body.unwrap();
        assert_eq!(extra["repeat_penalty"], serde_json::json!(1.3));
        assert_eq!(extra["min_p"], serde_json::json!(0.05));
    }

    #[test]
    fn the_file_sets_defaults_and_roles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[model]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\napi_key_env = \"MY_KEY\"\n\n[roles.curator]\nmodel = \"c\"\ntemperature = 0.2\n\n[prices.\"m\"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n",
        )
        .unwrap();
        let c = load_with(
            Some(path.clone()),
            &env_of(&[("MY_KEY", "secret-key-value"), ("ACE_GENERATOR_MODEL", "g")]),
        )
        .unwrap();
        let get = |r| c.roles[&r].clone().unwrap();
        assert_eq!(get(Role::Generator).model, "g");
        assert_eq!(get(Role::Reflector).model, "m");
        assert_eq!(get(Role::Curator).model, "c");
        assert_eq!(get(Role::Curator).temperature, Some(0.2));
        assert_eq!(
            get(Role::Reflector).api_key.as_deref(),
            Some("secret-key-value")
        );
        assert!(c.prices.price("m").is_some());
        std::fs::write(&path, "[model]\nbase_ur = \"typo\"\n").unwrap();
        let err = load_with(Some(path), &env_of(&[])).unwrap_err().to_string();
        assert!(err.contains("unknown field `base_ur`"), "{err}");
    }

    #[test]
    fn an_openai_key_alone_means_openai() {
        let c = load(&env_of(&[
            ("OPENAI_API_KEY", "sk-test-123456789"),
            ("ACE_CONFIG", "/nonexistent/ace.toml"),
        ]));
        assert!(
            matches!(c, Err(ConfigError::Read { .. })),
            "ACE_CONFIG naming a missing file is an error"
        );
        let c = load_with(None, &env_of(&[("OPENAI_API_KEY", "sk-test-123456789")])).unwrap();
        let g = c.roles[&Role::Generator].clone().unwrap();
        assert_eq!(
            (g.base_url.as_str(), g.model.as_str()),
            (OPENAI_URL, DEFAULT_OPENAI_MODEL)
        );
        assert_eq!(g.api_key.as_deref(), Some("sk-test-123456789"));
    }

    #[test]
    fn role_variables_override_global_ones() {
        let c = load_with(
            None,
            &env_of(&[
                ("ACE_BASE_URL", "http://127.0.0.1:9/v1"),
                ("ACE_MODEL", "small"),
                ("ACE_CURATOR_MODEL", "big"),
                ("ACE_REFLECTOR_BASE_URL", "http://127.0.0.1:10/v1"),
                ("ACE_TIMEOUT_SECS", "2.5"),
            ]),
        )
        .unwrap();
        let get = |r| c.roles[&r].clone().unwrap();
        assert_eq!(get(Role::Generator).model, "small");
        assert_eq!(get(Role::Curator).model, "big");
        assert_eq!(get(Role::Reflector).base_url, "http://127.0.0.1:10/v1");
        assert_eq!(get(Role::Generator).timeout, Duration::from_millis(2500));
    }

    #[test]
    fn an_embedding_model_is_optional_and_shares_the_endpoint() {
        let c = load_with(
            None,
            &env_of(&[("ACE_BASE_URL", "http://x/v1"), ("ACE_MODEL", "m")]),
        )
        .unwrap();
        assert!(c.embedding.is_none(), "no embedding model, no embeddings");
        let c = load_with(
            None,
            &env_of(&[
                ("ACE_BASE_URL", "http://x/v1"),
                ("ACE_MODEL", "m"),
                ("ACE_EMBEDDING_MODEL", "nomic-embed-text"),
            ]),
        )
        .unwrap();
        let e = c.embedding.unwrap();
        assert_eq!(
            (e.base_url.as_str(), e.model.as_str()),
            ("http://x/v1", "nomic-embed-text")
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = load_with(
            None,
            &env_of(&[
                ("ACE_BASE_URL", "http://x/v1"),
                ("ACE_MODEL", "m"),
                ("ACE_CONCURRENCY", "many"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid setting ACE_CONCURRENCY=many"),
            "{err}"
        );
        let err = load_with(None, &env_of(&[("ACE_BASE_URL", "http://x/v1")])).unwrap_err();
        assert!(err.to_string().contains("set ACE_MODEL"), "{err}");
    }
}
