//! The echo bot against callsim, over loopback sockets, in every dialect (issue #4):
//! immediate echo returns identical audio; the conversational echo replays each
//! utterance after the silence threshold; talking over a replay clears it within one
//! frame of the detected speech.

mod common;

use std::time::Duration;

use common::TestServer;
use voxline_audio::g711::mulaw;
use voxline_audio::{AudioFormat, Encoding};
use voxline_fixtures::speech::{self, Speech, Variant};
use voxline_server::echo::EchoFactory;
use voxline_server::{EventKind, ServerConfig};
use voxline_testkit::callsim::{self, Audio, CallOptions, Dialect, Scenario};

/// The paths carriers are pointed at; most leave the dialect to frame detection.
fn path(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Exotel => "/media",
        Dialect::Smartflo => "/smartflo/audio",
        Dialect::Twilio => "/ws/stream/CA0001",
        // Plivo, Telnyx, Vonage, and any dialect callsim learns later.
        _ => "/ws",
    }
}

/// The fixture at the dialect's line rate, so callsim sends it without resampling.
fn fixture(name: &str, dialect: Dialect) -> Speech {
    speech::load(name, dialect.default_format().sample_rate, Variant::Clean)
}

/// What the server receives for `samples` on this dialect's line (mu-law is lossy).
fn through_line(format: AudioFormat, samples: &[i16]) -> Vec<i16> {
    match format.encoding {
        Encoding::Mulaw => {
            let (mut codes, mut back) = (Vec::new(), Vec::new());
            mulaw::encode(samples, &mut codes);
            mulaw::decode(&codes, &mut back);
            back
        }
        _ => samples.to_vec(),
    }
}

fn find(haystack: &[i16], needle: &[i16]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_echo_returns_identical_audio() {
    let runs = Dialect::ALL.map(|dialect| async move {
        let server = TestServer::start(ServerConfig::default(), EchoFactory::immediate()).await;
        let speech = fixture("caller_en_gb", dialect);
        let rate = speech.sample_rate;
        let audio = Audio::from_samples(speech.samples[..rate as usize * 3].to_vec(), rate);
        let options = CallOptions::new(server.ws_url(path(dialect)), dialect)
            .audio(audio)
            .tail(Duration::from_millis(500));
        let report = callsim::call(options)
            .await
            .unwrap_or_else(|e| panic!("{dialect}: {e}"));
        assert!(report.is_clean(), "{dialect}: {:?}", report.violations);
        assert!(
            report.received.len() >= rate as usize * 3,
            "{dialect}: only {} samples back",
            report.received.len()
        );
        assert_eq!(
            &report.sent[..report.received.len()],
            &report.received[..],
            "{dialect}: the echo differs from what was sent"
        );
    });
    futures_util::future::join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversational_echo_replays_each_utterance_after_the_silence() {
    let runs = Dialect::ALL.map(|dialect| async move {
        let server =
            TestServer::start(ServerConfig::default(), EchoFactory::conversational()).await;
        let speech = fixture("caller_en_us", dialect);
        let rate = speech.sample_rate;
        let at = |ms: f64| (ms * f64::from(rate) / 1000.0) as usize;
        // Exotel, the echo bot's home dialect, gets all seven utterances; the others two.
        let count = if dialect == Dialect::Exotel {
            speech.utterances.len()
        } else {
            2
        };
        let mut scenario = Scenario::new(server.ws_url(path(dialect)), dialect)
            .silence(Duration::from_millis(500));
        for u in &speech.utterances[..count] {
            scenario = scenario
                .play_samples(speech.samples[at(u.start_ms)..at(u.end_ms)].to_vec(), rate)
                .wait_for_audio(Duration::from_secs(5))
                .wait_until_quiet(Duration::from_secs(10))
                .silence(Duration::from_millis(300));
        }
        let report = callsim::run_scenario(scenario.hangup())
            .await
            .unwrap_or_else(|e| panic!("{dialect}: {e}"));
        assert!(report.passed(), "{dialect}: {report}");
        let format = dialect.default_format();
        for (k, u) in speech.utterances[..count].iter().enumerate() {
            let expected = through_line(format, &speech.samples[at(u.start_ms)..at(u.end_ms)]);
            assert!(
                find(&report.call.received, &expected).is_some(),
                "{dialect}: utterance {} ({:?}) is not replayed sample for sample",
                k + 1,
                u.text
            );
        }
        // Each reply comes after the 2 s silence threshold, measured by the caller
        // (callsim's own detector dates the end of speech, within a frame or two).
        assert_eq!(
            report.call.turns.len(),
            count,
            "{dialect}: {:?}",
            report.call.turns
        );
        for turn in &report.call.turns {
            let latency = turn
                .latency_ms
                .unwrap_or_else(|| panic!("{dialect}: a turn was not answered"));
            assert!(
                latency >= 1900.0,
                "{dialect}: replied {latency} ms after the caller stopped"
            );
        }
    });
    futures_util::future::join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talking_over_a_replay_clears_it_within_a_frame() {
    let runs = Dialect::ALL.map(|dialect| async move {
        let server = TestServer::start(ServerConfig::default(), EchoFactory::conversational()).await;
        let mut events = server.server.bus().subscribe();
        let speech = fixture("caller_en_us", dialect);
        let rate = speech.sample_rate;
        let at = |ms: f64| (ms * f64::from(rate) / 1000.0) as usize;
        let [_, long, next, ..] = &speech.utterances[..] else { panic!("labels") };
        let scenario = Scenario::new(server.ws_url(path(dialect)), dialect)
            .silence(Duration::from_millis(500))
            .play_samples(speech.samples[at(long.start_ms)..at(long.end_ms)].to_vec(), rate)
            .wait_for_audio(Duration::from_secs(5))
            .wait(Duration::from_millis(500))
            .play_in_background(Audio::from_samples(speech.samples[at(next.start_ms)..at(next.end_ms)].to_vec(), rate))
            .expect_clear(Duration::from_secs(2))
            .wait(Duration::from_millis(300))
            .hangup();
        let report = callsim::run_scenario(scenario).await.unwrap_or_else(|e| panic!("{dialect}: {e}"));
        assert!(report.passed(), "{dialect}: {report}");
        let clear = report.call.clears.first().unwrap_or_else(|| panic!("{dialect}: no clear"));
        assert!(clear.dropped_ms > 0.0, "{dialect}: the clear came after the replay had ended");

        // The server recognised the barge-in at `detected_ms` of caller audio; the clear
        // reached the caller before one more frame of caller audio was due.
        let mut detected = Vec::new();
        let mut cleared = false;
        while let Ok(event) = events.try_recv() {
            match &event.kind {
                EventKind::TurnStarted { detected_ms, .. } => detected.push(*detected_ms),
                EventKind::Clear { reason } if reason == "barge_in" => cleared = true,
                _ => {}
            }
        }
        assert!(cleared, "{dialect}: the server did not report a barge-in clear");
        let barge_in = *detected.get(1).unwrap_or_else(|| panic!("{dialect}: second turn not detected: {detected:?}"));
        let frame_ms = dialect.frame().as_secs_f64() * 1000.0;
        let lag = clear.at_ms - barge_in;
        assert!(
            lag <= frame_ms,
            "{dialect}: clear at {} ms, speech detected at {barge_in} ms: {lag:.1} ms is more than one {frame_ms} ms frame",
            clear.at_ms
        );
    });
    futures_util::future::join_all(runs).await;
}
