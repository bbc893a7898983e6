//! Helpers shared by the adapter tests: configs pointed at the emulator and event
//! collection.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use voxline_core::{ProviderError, RequestId, RetryPolicy, Ttfb, TtsEvent, TtsSession, Usage};
use voxline_elevenlabs::ElevenLabsConfig;
use voxline_testkit::emulators::elevenlabs::{DEFAULT_API_KEY, ElevenLabsEmulator};

/// A config for the emulator, with a quick retry policy.
pub fn config(emulator: &ElevenLabsEmulator) -> ElevenLabsConfig {
    ElevenLabsConfig::default()
        .api_key(DEFAULT_API_KEY)
        .base_url(emulator.http_url())
        .retry(RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        })
}

/// What one request produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub audio: Vec<u8>,
    pub chunks: usize,
    pub ttfb: Option<Ttfb>,
    pub errors: Vec<ProviderError>,
    pub done: bool,
}

/// Everything a session reported until the given requests were all done.
#[derive(Debug, Default)]
pub struct Collected {
    pub requests: std::collections::BTreeMap<RequestId, Outcome>,
    pub usage: Vec<Usage>,
    pub session_errors: Vec<ProviderError>,
    /// Requests in the order their audio first arrived.
    pub order: Vec<RequestId>,
}

impl Collected {
    pub fn of(&self, request: RequestId) -> &Outcome {
        self.requests
            .get(&request)
            .expect("no events for the request")
    }

    pub fn record(&mut self, event: TtsEvent) {
        match event {
            TtsEvent::Audio { request, audio } => {
                if !self.order.contains(&request) {
                    self.order.push(request);
                }
                let o = self.requests.entry(request).or_default();
                o.audio.extend_from_slice(&audio);
                o.chunks += 1;
            }
            TtsEvent::Ttfb { request, ttfb } => {
                self.requests.entry(request).or_default().ttfb = Some(ttfb);
            }
            TtsEvent::Done { request } => self.requests.entry(request).or_default().done = true,
            TtsEvent::Usage(usage) => self.usage.push(usage),
            TtsEvent::Error {
                request: Some(request),
                error,
            } => self.requests.entry(request).or_default().errors.push(error),
            TtsEvent::Error {
                request: None,
                error,
            } => self.session_errors.push(error),
            other => panic!("unexpected event {other:?}"),
        }
    }

    /// Total characters in usage records.
    pub fn characters(&self) -> u64 {
        self.usage
            .iter()
            .map(|u| match u.kind {
                voxline_core::UsageKind::Characters(n) => n,
                other => panic!("unexpected usage {other:?}"),
            })
            .sum()
    }
}

/// Collects events until every request in `requests` is done (fails after `limit`).
pub async fn collect(
    session: &mut TtsSession,
    requests: &[RequestId],
    limit: Duration,
) -> Collected {
    let mut collected = Collected::default();
    let all_done = |c: &Collected| {
        requests
            .iter()
            .all(|r| c.requests.get(r).is_some_and(|o| o.done))
    };
    tokio::time::timeout(limit, async {
        while !all_done(&collected) {
            let event = session.recv().await.expect("session ended early");
            collected.record(event);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("requests not done in time: {collected:?}"));
    collected
}

/// Waits (polling) until `check` holds, failing after `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) {
    tokio::time::timeout(limit, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition not reached in time");
}
