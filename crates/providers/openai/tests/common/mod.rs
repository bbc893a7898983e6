//! Shared helpers: an emulator and adapter configs pointed at it.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use voxline_core::RetryPolicy;
use voxline_openai::ApiConfig;
use voxline_testkit::emulators::openai::{API_KEY, Config, OpenAiEmulator};

/// Quick retries so tests stay short (time is paused where it matters).
pub const RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    initial: Duration::from_millis(100),
    max: Duration::from_secs(4),
};

pub async fn emulator(config: Config) -> OpenAiEmulator {
    OpenAiEmulator::start(config).await
}

/// The emulator's base URL with its key; never reads the environment.
pub fn api(emulator: &OpenAiEmulator) -> ApiConfig {
    let mut api = ApiConfig::new(emulator.base_url())
        .api_key(API_KEY)
        .retry(RETRY);
    api.key_env = None;
    api
}
