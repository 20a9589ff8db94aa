//! What the worker relays to where: one destination per channel connection (its kind, endpoint,
//! typed credentials, the channel's ids for Ordo's SKUs, rate limit and retry policy) and the
//! event bus. Read from a JSON file; secrets come from environment variables named there and are
//! never printed (`Secret`'s `Debug` and `Display` say `***`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::delivery::RetryPolicy;

/// A credential: kept out of logs, debug output and error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Each channel kind's credentials and addresses, as that channel's API needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Admin API access token (`X-Shopify-Access-Token`) and the location Ordo's figures are for.
    Shopify { access_token: Secret, location_gid: String },
    /// Login-with-Amazon access token (`x-amz-access-token`) and the seller's id.
    Amazon { access_token: Secret, seller_id: String, product_type: String, marketplace_id: String },
    /// OAuth access token (`WM_SEC.ACCESS_TOKEN`).
    Walmart { access_token: Secret },
    /// A trading partner's document endpoint (AS2 gateway, VAN) with its bearer token, and the
    /// interchange addresses of Ordo (`sender`) and the partner for the documents the relay
    /// writes itself (846 inventory advice).
    Edi { token: Secret, sender: ordo_channels::x12::Party, partner: ordo_channels::x12::Party },
}

/// One destination as configured.
#[derive(Debug, Clone)]
pub struct ChannelDestination {
    pub channel: String,
    pub endpoint: String,
    pub credentials: Credentials,
    /// The channel's id for each SKU (Shopify inventory item gid, Amazon seller SKU…); a SKU not
    /// listed is published under its own name.
    pub items: BTreeMap<String, String>,
    pub rate_per_second: f64,
    pub burst: u32,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// Deliver at most once per this interval, everything queued since in one round (EDI:
    /// partners and VANs take documents in batches, and one 846 per round of changes).
    pub every: Option<Duration>,
}

impl ChannelDestination {
    /// The relay's name for it (its outbox cursor).
    pub fn name(&self) -> String {
        format!("channel:{}", self.channel)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusDestination {
    pub url: String,
    pub stream: String,
    /// Subjects are `<prefix>.<topic>`.
    pub subject_prefix: String,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone, Default)]
pub struct RelayConfig {
    pub channels: Vec<ChannelDestination>,
    pub bus: Option<BusDestination>,
    /// How long an idle relay waits before looking at the outbox again.
    pub poll: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    channels: Vec<RawChannel>,
    #[serde(default)]
    bus: Option<RawBus>,
    #[serde(default = "default_poll")]
    poll_ms: u64,
}

fn default_poll() -> u64 {
    5
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    channel: String,
    kind: String,
    endpoint: String,
    /// The environment variable holding the access token.
    token_env: String,
    #[serde(default)]
    location_gid: Option<String>,
    #[serde(default)]
    seller_id: Option<String>,
    #[serde(default)]
    product_type: Option<String>,
    #[serde(default)]
    marketplace_id: Option<String>,
    #[serde(default)]
    items: BTreeMap<String, String>,
    #[serde(default = "default_rate")]
    rate_per_second: f64,
    #[serde(default = "default_burst")]
    burst: u32,
    #[serde(default = "default_attempts")]
    max_attempts: u32,
    #[serde(default = "default_backoff")]
    backoff_base_ms: u64,
    #[serde(default = "default_cap")]
    backoff_cap_ms: u64,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    /// EDI: the partner's interchange address (`ZZ:ACME`).
    #[serde(default)]
    partner: Option<String>,
    /// EDI: Ordo's interchange address (default `ZZ:ORDO`).
    #[serde(default)]
    sender: Option<String>,
    /// Deliver in rounds this far apart (EDI default: 60 000 ms; others: as soon as queued).
    #[serde(default)]
    every_ms: Option<u64>,
}

fn default_rate() -> f64 {
    4.0
}
fn default_burst() -> u32 {
    8
}
fn default_attempts() -> u32 {
    8
}
fn default_backoff() -> u64 {
    200
}
fn default_cap() -> u64 {
    60_000
}
fn default_timeout() -> u64 {
    5_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBus {
    url: String,
    #[serde(default = "default_stream")]
    stream: String,
    #[serde(default = "default_prefix")]
    subject_prefix: String,
    #[serde(default = "default_backoff")]
    backoff_base_ms: u64,
    #[serde(default = "default_bus_cap")]
    backoff_cap_ms: u64,
}

fn default_stream() -> String {
    "ORDO".into()
}
fn default_prefix() -> String {
    "ordo".into()
}
fn default_bus_cap() -> u64 {
    5_000
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("relay configuration is not valid JSON of the expected shape: {0}")]
    Shape(String),
    #[error("channel {channel}: unknown kind {kind:?} (shopify, amazon, walmart or edi)")]
    UnknownKind { channel: String, kind: String },
    #[error("channel {channel}: {field} is required for a {kind} channel")]
    Missing { channel: String, kind: String, field: &'static str },
    #[error("channel {channel}: the environment variable {variable} (its access token) is not set")]
    TokenNotSet { channel: String, variable: String },
    #[error("channel {channel}: rate_per_second must be positive")]
    BadRate { channel: String },
    #[error("channel {channel}: {field}: {reason}")]
    BadParty { channel: String, field: &'static str, reason: String },
}

impl RelayConfig {
    /// Reads a configuration; `env` looks up the environment variables it names.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| ConfigError::Shape(e.to_string()))?;
        let mut channels = Vec::new();
        for c in raw.channels {
            let token = env(&c.token_env).filter(|t| !t.is_empty()).map(Secret::new).ok_or_else(|| {
                ConfigError::TokenNotSet { channel: c.channel.clone(), variable: c.token_env.clone() }
            })?;
            let need = |field: &'static str, v: &Option<String>| {
                v.clone().ok_or_else(|| ConfigError::Missing {
                    channel: c.channel.clone(),
                    kind: c.kind.clone(),
                    field,
                })
            };
            let credentials = match c.kind.as_str() {
                "shopify" => {
                    Credentials::Shopify { access_token: token, location_gid: need("location_gid", &c.location_gid)? }
                }
                "amazon" => Credentials::Amazon {
                    access_token: token,
                    seller_id: need("seller_id", &c.seller_id)?,
                    product_type: c.product_type.clone().unwrap_or_else(|| "PRODUCT".into()),
                    // amazon.com unless told otherwise.
                    marketplace_id: c.marketplace_id.clone().unwrap_or_else(|| "ATVPDKIKX0DER".into()),
                },
                "walmart" => Credentials::Walmart { access_token: token },
                "edi" => {
                    let party = |field: &'static str, raw: &str| {
                        raw.parse::<ordo_channels::x12::Party>().map_err(|reason| ConfigError::BadParty {
                            channel: c.channel.clone(),
                            field,
                            reason,
                        })
                    };
                    Credentials::Edi {
                        token,
                        sender: party("sender", c.sender.as_deref().unwrap_or("ZZ:ORDO"))?,
                        partner: party("partner", &need("partner", &c.partner)?)?,
                    }
                }
                other => return Err(ConfigError::UnknownKind { channel: c.channel, kind: other.to_owned() }),
            };
            if !(c.rate_per_second > 0.0 && c.rate_per_second.is_finite()) {
                return Err(ConfigError::BadRate { channel: c.channel });
            }
            let every = match (&credentials, c.every_ms) {
                (_, Some(ms)) => Some(Duration::from_millis(ms)),
                (Credentials::Edi { .. }, None) => Some(Duration::from_secs(60)),
                _ => None,
            };
            channels.push(ChannelDestination {
                channel: c.channel,
                endpoint: c.endpoint,
                credentials,
                items: c.items,
                rate_per_second: c.rate_per_second,
                burst: c.burst,
                retry: RetryPolicy {
                    base: Duration::from_millis(c.backoff_base_ms),
                    cap: Duration::from_millis(c.backoff_cap_ms),
                    max_attempts: c.max_attempts.max(1),
                },
                timeout: Duration::from_millis(c.timeout_ms),
                every,
            });
        }
        let bus = raw.bus.map(|b| BusDestination {
            url: b.url,
            stream: b.stream,
            subject_prefix: b.subject_prefix,
            retry: RetryPolicy {
                base: Duration::from_millis(b.backoff_base_ms),
                cap: Duration::from_millis(b.backoff_cap_ms),
                // The bus is never given up on: its messages wait for it.
                max_attempts: u32::MAX,
            },
        });
        Ok(Self { channels, bus, poll: Duration::from_millis(raw.poll_ms.max(1)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of_shopify_every(text: &str) -> Option<Duration> {
        RelayConfig::parse(text, |_| Some("t".into())).unwrap().channels[0].every
    }

    #[test]
    fn secrets_never_print_and_bad_configs_say_what_is_wrong() {
        let text = r#"{"channels": [{"channel": "WEB", "kind": "shopify", "endpoint": "http://127.0.0.1:1/graphql.json",
            "token_env": "SHOP_TOKEN", "location_gid": "gid://shopify/Location/1"}]}"#;
        let config = RelayConfig::parse(text, |v| (v == "SHOP_TOKEN").then(|| "shpat_very_secret".to_owned())).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("shpat_very_secret") && printed.contains("***"), "{printed}");
        let err = RelayConfig::parse(text, |_| None).unwrap_err();
        assert_eq!(err.to_string(), "channel WEB: the environment variable SHOP_TOKEN (its access token) is not set");
        let no_location = text.replace(r#", "location_gid": "gid://shopify/Location/1""#, "");
        let err = RelayConfig::parse(&no_location, |_| Some("t".into())).unwrap_err();
        assert!(err.to_string().contains("location_gid is required"), "{err}");
        let edi = r#"{"channels": [{"channel": "EDI", "kind": "edi", "endpoint": "http://127.0.0.1:1", "token_env": "T",
            "partner": "ZZ:ACME"}]}"#;
        let config = RelayConfig::parse(edi, |_| Some("t".into())).unwrap();
        assert_eq!(config.channels[0].every, Some(Duration::from_secs(60)), "partners take documents in rounds");
        assert!(
            matches!(&config.channels[0].credentials, Credentials::Edi { sender, .. } if sender.to_string() == "ZZ:ORDO")
        );
        assert_eq!(
            RelayConfig::parse(&edi.replace("}]}", ", \"every_ms\": 5}]}"), |_| Some("t".into())).unwrap().channels[0]
                .every,
            Some(Duration::from_millis(5))
        );
        let err =
            RelayConfig::parse(&edi.replace(r#""partner": "ZZ:ACME""#, r#""sender": "ZZ:ORDO""#), |_| Some("t".into()))
                .unwrap_err();
        assert!(err.to_string().contains("partner is required"), "{err}");
        let err = RelayConfig::parse(&edi.replace("ZZ:ACME", "ZZZ:ACME"), |_| Some("t".into())).unwrap_err();
        assert!(matches!(err, ConfigError::BadParty { field: "partner", .. }), "{err}");
        assert_eq!(config_of_shopify_every(text), None);
        let typo = text.replace("\"endpoint\"", "\"endpont\"");
        assert!(
            matches!(RelayConfig::parse(&typo, |_| Some("t".into())), Err(ConfigError::Shape(m)) if m.contains("endpont"))
        );
    }
}
