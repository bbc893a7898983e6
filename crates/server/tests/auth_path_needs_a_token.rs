//! `/ws/auth` takes carrier and client connections only with the configured token, as
//! `?token=` or `Authorization: Bearer` (issue 6). Smartflo keeps the query on its URL;
//! Twilio drops it (its own check is the `X-Twilio-Signature` of the webhook).

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::StreamExt;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use voxline_server::ServerConfig;
use voxline_server::echo::EchoFactory;
use voxline_testkit::callsim::{self, Audio, CallOptions, Dialect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_token_gets_in_and_others_get_401() {
    let server = TestServer::start(
        ServerConfig {
            auth_token: Some("s3cret-token".into()),
            ..ServerConfig::default()
        },
        EchoFactory::immediate(),
    )
    .await;
    let call = |path: &str| {
        CallOptions::new(server.ws_url(path), Dialect::Smartflo)
            .audio(Audio::tone(440.0, Duration::from_millis(400), 8000, -12.0))
            .tail(Duration::from_millis(200))
    };
    let report = callsim::call(call("/ws/auth?token=s3cret-token"))
        .await
        .expect("admitted with the token");
    assert!(
        report.bot_audio_ms > 300.0,
        "the call was served: {report:?}"
    );

    for path in [
        "/ws/auth",
        "/ws/auth?token=wrong",
        "/ws/auth/smartflo?token=s3cret",
    ] {
        let error = callsim::call(call(path)).await.expect_err(path).to_string();
        assert!(error.contains("401"), "{path}: {error}");
    }

    // The header works too.
    let mut request = server
        .ws_url("/ws/auth")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        "Bearer s3cret-token".parse().expect("header"),
    );
    let (mut socket, response) = connect_async(request)
        .await
        .expect("upgrade with the header");
    assert_eq!(response.status(), 101);
    let _ = socket.close(None).await;
    let _ = socket.next().await;

    // Other paths need no token.
    let report = callsim::call(call("/smartflo/audio"))
        .await
        .expect("open path");
    assert!(report.bot_audio_ms > 300.0);
}
