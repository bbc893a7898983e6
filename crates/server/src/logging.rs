//! Log output: pretty for people, JSON for machines; the call id on every line.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable, with span fields (`call{call_id=...}`) on each line.
    #[default]
    Pretty,
    /// One JSON object per line, with the current span's fields (`call_id`,
    /// `dialect`) on each.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}: expected pretty or json"
            )),
        }
    }
}

/// Installs the global subscriber. The filter comes from `RUST_LOG` if set, else
/// `default_filter` (e.g. `info`). Calling it twice is harmless (the second call does
/// nothing), so tests can call it too.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
