//! A handler's spawned work reaches the caller even while the carrier sends nothing:
//! the connection polls the handler's wake beside the socket (the path provider
//! replies take in the agent).

mod common;

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, next_json, twilio_call};
use tokio::sync::mpsc;
use voxline_server::{Call, CallHandler, ServerConfig};
use voxline_telephony::{CallEvent, CallInfo};

/// Plays whatever its background task sends, then a mark.
struct Delayed {
    replies: mpsc::Receiver<Bytes>,
    ready: Option<Bytes>,
}

impl CallHandler for Delayed {
    fn on_event(&mut self, _event: CallEvent, _call: &mut Call<'_>) {}

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.ready.is_some() {
            return Poll::Ready(());
        }
        match self.replies.poll_recv(cx) {
            Poll::Ready(Some(audio)) => {
                self.ready = Some(audio);
                Poll::Ready(())
            }
            // The task is done: nothing more will come.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn on_wake(&mut self, call: &mut Call<'_>) {
        if let Some(audio) = self.ready.take() {
            call.play(&audio);
            call.mark("reply-done");
        }
    }
}

fn factory(_info: &CallInfo) -> Box<dyn CallHandler> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        // A provider taking its time: the carrier is silent meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(Bytes::from(vec![0x7F; 480])).await; // 60 ms of mu-law
    });
    Box::new(Delayed {
        replies: rx,
        ready: None,
    })
}

#[tokio::test]
async fn work_from_a_spawned_task_is_played_without_carrier_frames() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, factory).await;
    let mut socket = twilio_call(&server.ws_url("/twilio"), "CA-wake").await;
    // No media is sent: only the handler's wake can make the server speak.
    let mut media = 0;
    let mut mark = None;
    while mark.is_none() {
        let Some(frame) = next_json(&mut socket, Duration::from_secs(20)).await else {
            panic!("the reply never came: the handler was not woken");
        };
        match frame["event"].as_str() {
            Some("media") => media += 1,
            Some("mark") => mark = frame["mark"]["name"].as_str().map(str::to_owned),
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }
    assert_eq!(media, 3, "60 ms in 20 ms frames");
    assert_eq!(mark.as_deref(), Some("reply-done"));
}
