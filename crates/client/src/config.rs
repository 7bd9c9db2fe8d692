//! A service's settings, as written in a TOML file. Every field has a default.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use unattended_ratelimit::{Pace, RateLimitLayer};

/// How to reach one service and how hard to try.
///
/// ```toml
/// base_url = "https://dev.to"
/// user_agent = "my-jobs/1.0"
///
/// [timeouts]
/// attempt = "20s"
///
/// [retry]
/// max_attempts = 5
///
/// [gate.write]            # publish only in business hours
/// tz = "America/New_York"
/// open = ["mon-fri 09:00-22:00"]
///
/// [auth]
/// kind = "header"         # the key comes from the environment, never from the file
/// name = "api-key"
/// token_env = "DEV_API_KEY"
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Prefixed to request paths that have no scheme and host (default: none; requests must
    /// then carry full URLs).
    pub base_url: Option<String>,
    /// The `User-Agent` header (default `unattended/<version>`).
    pub user_agent: Option<String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Retries.
    pub retry: RetrySettings,
    /// Server pushback (429, `Retry-After`, rate-limit headers).
    pub ratelimit: RateLimitSettings,
    /// The circuit breaker.
    pub breaker: BreakerSettings,
    /// Time windows per action class (`read` for GET/HEAD/OPTIONS, `write` for the rest).
    pub gate: BTreeMap<String, GateSettings>,
    /// The credential put on each request.
    pub auth: AuthSettings,
    /// Size limits.
    pub limits: Limits,
}

impl ServiceConfig {
    /// Reads a config from TOML text.
    ///
    /// # Errors
    ///
    /// The text is not valid TOML or does not match the fields; the error names the line and
    /// column.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(Box::new(e)))
    }
}

/// A config could not be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML text is malformed or has an unknown or mistyped field.
    #[error("invalid service config: {0}")]
    Toml(#[source] Box<toml::de::Error>),
    /// A value is out of range or inconsistent.
    #[error("invalid service config: `{field}` {problem}")]
    Invalid {
        /// The field, as written in the file.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The environment variable named for a credential is not set.
    #[error("invalid service config: `auth.token_env` names {0}, which is not set")]
    MissingSecret(String),
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), problem: problem.into() }
    }
}

impl unattended_core::HasDisposition for ConfigError {
    fn disposition(&self) -> unattended_core::Disposition {
        unattended_core::Disposition::Stop
    }
}

/// Timeouts. All are on by default: a server that never answers becomes an error, not a hang.
/// None may be zero (`"0s"` is refused when the client is built).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Timeouts {
    /// To open a connection (default 10 s).
    #[serde(with = "duration")]
    pub connect: Duration,
    /// For one attempt, from sending to the response head (default 30 s).
    #[serde(with = "duration")]
    pub attempt: Duration,
    /// For a whole call with its retries and waits (default 120 s).
    #[serde(with = "duration")]
    pub overall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            attempt: Duration::from_secs(30),
            overall: Duration::from_secs(120),
        }
    }
}

/// Retries: jittered exponential backoff with a shared budget.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Attempts in all, the first included (default 5; 1 turns retries off). Five, not four: on
    /// a host failing one request in five at random, four attempts leave 0.16% of the calls
    /// failed, five 0.03%.
    pub max_attempts: u32,
    /// The first backoff (default 250 ms), doubled each time.
    #[serde(with = "duration")]
    pub base_delay: Duration,
    /// The longest backoff (default 30 s).
    #[serde(with = "duration")]
    pub max_delay: Duration,
    /// The longest `Retry-After` waited out in a call (default 60 s); longer ends the call with
    /// the server's time.
    #[serde(with = "duration")]
    pub max_server_wait: Duration,
    /// Whether retries draw on a budget shared by all calls (default true), so an outage does
    /// not multiply the load: each success earns half a retry, at most 10 are saved up, so a
    /// flaky host keeps its retries and a dead one gets 10 in all. The retries of a host's
    /// throttles (`429`s) cost nothing while the rate-limit layer paces it (`[ratelimit]`
    /// adaptive, or a pace): they wait for the pace instead.
    pub budget: bool,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_server_wait: Duration::from_secs(60),
            budget: true,
        }
    }
}

/// Server pushback and pacing.
///
/// ```toml
/// [ratelimit]
/// pace = "50/s"     # the host's documented limit: every call spaced from the first one
/// burst = 10        # up to ten at once after a quiet spell
/// adaptive = true   # learn the rate from throttles (on by default, with or without a pace)
/// release_spread = "1s"  # callers sent back to one instant go at random over the second after it
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitSettings {
    /// The longest a call waits for its host's pause to end, or for its slot in a paced line
    /// (default 60 s); longer fails at once with the time the pause ends.
    #[serde(with = "duration")]
    pub max_wait: Duration,
    /// Spaces the calls to each host at this pace from the first one: `"50/s"`, `"100/min"`,
    /// `"1/2s"` (default: none; a host is paced once it throttles, if `adaptive`).
    #[serde(with = "opt_pace", skip_serializing_if = "Option::is_none")]
    pub pace: Option<Pace>,
    /// How many calls `pace` lets go at once after a quiet spell (default 1).
    pub burst: u32,
    /// Learns the rate of each host that throttles (default true): paced from its first `429`,
    /// cut on each throttle, probed upward while calls succeed, never above `pace`.
    pub adaptive: bool,
    /// The calls a pause held, and those the server sent back to the same instant (a `429` or
    /// `503` with `Retry-After`, retried), go at random over this long after it (default 1 s),
    /// never before, so they do not all come back at once; `"0s"` sends them all at the instant.
    /// At most `max_wait`. A paced host spreads its line at its pace instead.
    #[serde(with = "duration")]
    pub release_spread: Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(60),
            pace: None,
            burst: 1,
            adaptive: true,
            release_spread: RateLimitLayer::DEFAULT_RELEASE_SPREAD,
        }
    }
}

impl RateLimitSettings {
    /// The configured pace with its burst.
    ///
    /// # Errors
    ///
    /// A zero burst, or a burst without a pace.
    pub fn configured_pace(&self) -> Result<Option<Pace>, ConfigError> {
        match self.pace {
            Some(pace) => pace
                .with_burst(self.burst)
                .map(Some)
                .map_err(|e| ConfigError::invalid("ratelimit.burst", e.to_string())),
            None if self.burst != 1 => {
                Err(ConfigError::invalid("ratelimit.burst", "needs `ratelimit.pace`"))
            }
            None => Ok(None),
        }
    }

    /// The release spread, checked.
    ///
    /// # Errors
    ///
    /// A spread longer than `max_wait`.
    pub fn checked_release_spread(&self) -> Result<Duration, ConfigError> {
        if self.release_spread > self.max_wait {
            return Err(ConfigError::invalid(
                "ratelimit.release_spread",
                "must be at most ratelimit.max_wait",
            ));
        }
        Ok(self.release_spread)
    }
}

/// The circuit breaker: failures in a row, or the failure rate over a time window, whichever
/// trips first (a rate alone lets a long healthy history hold the breaker shut while a host that
/// just died takes thousands of calls).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Whether the breaker is on (default true).
    pub enabled: bool,
    /// The window failures are counted over (default 60 s).
    #[serde(with = "duration")]
    pub window: Duration,
    /// The share of failed calls that opens the breaker (default 0.5).
    pub failure_rate: f64,
    /// Calls needed in the window before the rate counts (default 5).
    pub min_calls: u32,
    /// Failed attempts in a row that open the breaker whatever the rate (default 10; 0 turns
    /// this off).
    pub consecutive_failures: u32,
    /// How long it stays open the first time (default 30 s); doubled on each reopening.
    #[serde(with = "duration")]
    pub open_for: Duration,
    /// The longest it stays open (default 10 min).
    #[serde(with = "duration")]
    pub max_open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(60),
            failure_rate: 0.5,
            min_calls: 5,
            consecutive_failures: 10,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(600),
        }
    }
}

/// When an action class may run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GateSettings {
    /// The IANA time zone.
    pub tz: String,
    /// Weekly windows, such as `"mon-fri 09:00-22:00"`.
    pub open: Vec<String>,
    /// Closed dates and spans, such as `"2026-12-25"`.
    #[serde(default)]
    pub closed: Vec<String>,
    /// Wait up to this long for the window to open instead of failing at once (default: fail).
    #[serde(default, with = "opt_duration")]
    pub wait: Option<Duration>,
}

/// The credential put on each request. Secrets come from the environment, never from the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AuthSettings {
    /// No credential (the default).
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The environment variable holding the token.
        token_env: String,
    },
    /// `<name>: <token>`.
    Header {
        /// The header.
        name: String,
        /// The environment variable holding the token.
        token_env: String,
    },
    /// `?<name>=<token>`.
    Query {
        /// The query parameter.
        name: String,
        /// The environment variable holding the token.
        token_env: String,
    },
}

/// Size limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// The largest response body, counted after decompression (default 16 MiB): reading past it
    /// is an error, whether through the helpers or a body from [`Client::send`](crate::Client::send).
    pub max_response_bytes: usize,
    /// Redirects followed (default 5).
    pub max_redirects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_response_bytes: 16 * 1024 * 1024, max_redirects: 5 }
    }
}

/// Durations as text: `"250ms"`, `"30s"`, `"10m"`, `"1h 30m"` (or ISO 8601), for serde's
/// `with` attribute: `#[serde(with = "unattended_client::duration")]`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Reads a duration; the error says what was wrong, quoting the text.
    ///
    /// # Errors
    ///
    /// The text is not a duration, or it is negative.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let signed: jiff::SignedDuration =
            text.parse().map_err(|e| format!("{text:?} is not a duration like \"30s\": {e}"))?;
        Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
    }

    /// Writes `d` as text (`"1h 30m"`).
    ///
    /// # Errors
    ///
    /// The serializer's, or a duration too long to write.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let signed = jiff::SignedDuration::try_from(*d).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&format!("{signed:#}"))
    }

    /// Reads a duration written as text.
    ///
    /// # Errors
    ///
    /// The deserializer's, or the text is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// Paces as text: `"50/s"`, `"100/min"`, `"1/2s"`.
pub(crate) mod opt_pace {
    use serde::{Deserialize, Deserializer, Serializer, de};
    use unattended_ratelimit::Pace;

    pub(crate) fn serialize<S: Serializer>(pace: &Option<Pace>, s: S) -> Result<S::Ok, S::Error> {
        match pace {
            Some(pace) => s.serialize_str(&pace.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Pace>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(de::Error::custom))
            .transpose()
    }
}

/// An optional duration as text (see [`duration`]), for serde's `with` attribute.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes `d` as text, or nothing.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration written as text.
    ///
    /// # Errors
    ///
    /// The deserializer's, or the text is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| super::duration::parse(&text).map_err(de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let config = ServiceConfig::from_toml("").unwrap();
        assert_eq!(config, ServiceConfig::default());
        assert_eq!(config.timeouts.attempt, Duration::from_secs(30));
        assert_eq!(config.retry.max_attempts, 5);
    }

    #[test]
    fn a_full_file_reads_and_round_trips() {
        let text = r#"
            base_url = "https://dev.to"
            [timeouts]
            attempt = "20s"
            overall = "2m"
            [retry]
            max_attempts = 5
            base_delay = "500ms"
            [gate.write]
            tz = "America/New_York"
            open = ["mon-fri 09:00-22:00"]
            wait = "10m"
            [auth]
            kind = "header"
            name = "api-key"
            token_env = "DEV_API_KEY"
        "#;
        let config = ServiceConfig::from_toml(text).unwrap();
        assert_eq!(config.timeouts.overall, Duration::from_secs(120));
        assert_eq!(config.retry.base_delay, Duration::from_millis(500));
        assert_eq!(config.gate["write"].wait, Some(Duration::from_secs(600)));
        assert!(matches!(&config.auth, AuthSettings::Header { name, .. } if name == "api-key"));
        let again = ServiceConfig::from_toml(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn a_pace_reads_round_trips_and_is_checked() {
        let config = ServiceConfig::from_toml("[ratelimit]\npace = \"50/s\"\nburst = 10").unwrap();
        let pace = config.ratelimit.configured_pace().unwrap().unwrap();
        assert_eq!((pace.interval(), pace.burst()), (Duration::from_millis(20), 10));
        assert!(config.ratelimit.adaptive);
        let again = ServiceConfig::from_toml(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
        let off = ServiceConfig::from_toml("[ratelimit]\nadaptive = false").unwrap();
        assert!(!off.ratelimit.adaptive && off.ratelimit.configured_pace().unwrap().is_none());

        let err = ServiceConfig::from_toml("[ratelimit]\npace = \"fast\"").unwrap_err();
        assert!(
            err.to_string().contains("not a pace") && err.to_string().contains("line 2"),
            "{err}"
        );
        let zero = ServiceConfig::from_toml("[ratelimit]\npace = \"50/s\"\nburst = 0").unwrap();
        let err = zero.ratelimit.configured_pace().unwrap_err().to_string();
        assert!(err.contains("ratelimit.burst"), "{err}");
        let alone = ServiceConfig::from_toml("[ratelimit]\nburst = 5").unwrap();
        assert!(alone.ratelimit.configured_pace().is_err());
    }

    #[test]
    fn the_release_spread_reads_round_trips_and_is_checked() {
        let default = ServiceConfig::default().ratelimit;
        assert_eq!(default.checked_release_spread().unwrap(), Duration::from_secs(1));
        let config = ServiceConfig::from_toml("[ratelimit]\nrelease_spread = \"3s\"").unwrap();
        assert_eq!(config.ratelimit.checked_release_spread().unwrap(), Duration::from_secs(3));
        let again = ServiceConfig::from_toml(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again, config);
        let none = ServiceConfig::from_toml("[ratelimit]\nrelease_spread = \"0s\"").unwrap();
        assert_eq!(none.ratelimit.checked_release_spread().unwrap(), Duration::ZERO);
        let long = "[ratelimit]\nmax_wait = \"10s\"\nrelease_spread = \"11s\"";
        let err = ServiceConfig::from_toml(long).unwrap().ratelimit.checked_release_spread();
        assert!(err.unwrap_err().to_string().contains("ratelimit.release_spread"));
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let err = ServiceConfig::from_toml("[retry]\nmax_atempts = 3\n").unwrap_err().to_string();
        assert!(err.contains("max_atempts") && err.contains("line 2"), "{err}");
        let err = ServiceConfig::from_toml("[timeouts]\nattempt = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
        let err = ServiceConfig::from_toml("[timeouts]\nattempt = \"-5s\"\n").unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
    }
}
