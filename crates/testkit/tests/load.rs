//! Load runs measure per-frame turnaround against an immediate-echo server and count
//! connect and mid-call failures.

mod common;

use std::time::Duration;

use common::*;
use voxline_testkit::callsim::{self, Dialect, LoadOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turnaround_is_measured_for_every_echoed_frame() {
    for dialect in [
        Dialect::Twilio,
        Dialect::Exotel,
        Dialect::Vonage,
        Dialect::Plivo,
        Dialect::Voxline,
    ] {
        let rate = dialect.default_format().sample_rate;
        let bot = echo_bot(dialect, rate).await;
        let report = callsim::load(
            LoadOptions::new(bot.url.clone(), dialect, 10, Duration::from_secs(1))
                .ramp(Duration::from_millis(200)),
        )
        .await
        .expect("load runs");
        let per_call = 1000 / dialect.frame().as_millis() as u64;
        assert_eq!(report.connected, 10, "{report}");
        assert_eq!(report.failures(), 0, "{report}");
        assert_eq!(report.frames_sent, 10 * per_call, "{report}");
        assert_eq!(report.frames_matched, report.frames_sent, "{report}");
        assert_eq!(report.frames_lost, 0);
        assert_eq!(report.turnaround.count, report.frames_matched);
        let t = &report.turnaround;
        assert!(
            t.p50_ms > 0.0 && t.p50_ms <= t.p90_ms && t.p90_ms <= t.p99_ms && t.p99_ms <= t.max_ms,
            "{t:?}"
        );
        assert_eq!(report.connect.count, 10);
        assert!((report.target_fps_per_call - per_call as f64).abs() < 1e-9);
        assert!(report.achieved_fps_per_call > 0.0);
        assert!(report.cpu_secs.is_some() && report.max_rss_kib.is_some());
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["frames_sent"], report.frames_sent);
        assert!(report.to_string().contains("turnaround"));
    }
}

#[tokio::test]
async fn unreachable_servers_are_connect_failures() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let report = callsim::load(LoadOptions::new(
        format!("ws://127.0.0.1:{port}/"),
        Dialect::Twilio,
        3,
        Duration::from_millis(200),
    ))
    .await
    .expect("load runs");
    assert_eq!(report.connect_failures, 3);
    assert_eq!(report.connected, 0);
    assert_eq!(report.errors.iter().map(|e| e.1).sum::<usize>(), 3);
}

#[tokio::test]
async fn servers_that_hang_up_early_are_mid_call_failures() {
    let bot = serve(Dialect::Telnyx, "/bye", |mut conn: Conn| async move {
        conn.open().await;
        let _ = conn.ws.close(None).await;
        conn.drain().await;
    })
    .await;
    let report = callsim::load(LoadOptions::new(
        bot.url.clone(),
        Dialect::Telnyx,
        4,
        Duration::from_secs(2),
    ))
    .await
    .expect("load runs");
    assert_eq!(report.connected, 4);
    assert_eq!(report.mid_call_failures, 4, "{report}");
    assert!(report.frames_sent < 4 * 100);
}

#[tokio::test]
async fn zero_calls_is_refused() {
    let err = callsim::load(LoadOptions::new(
        "ws://127.0.0.1:9/",
        Dialect::Twilio,
        0,
        Duration::from_secs(1),
    ))
    .await
    .expect_err("no calls");
    assert!(matches!(err, callsim::CallsimError::InvalidOptions { .. }));
}
