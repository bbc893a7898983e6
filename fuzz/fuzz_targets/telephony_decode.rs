//! Carrier frames are outside input: any bytes, as text or binary frames, go through
//! every dialect's session (then its encoder) and the dialect detector without
//! panicking, and a refused frame leaves the session as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxline_telephony::detect::{self, Detector};
use voxline_telephony::{BotCommand, Dialect, Modes, Session, SessionConfig, TextRole, WsFrame};

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else { return };
    let rate = [None, Some(8000), Some(16000), Some(24000), Some(44100)][*control as usize % 5];
    // Split the input into several frames so state built by one (a start) meets the
    // next; the control byte's top bit makes them binary.
    let frames: Vec<WsFrame> = rest
        .split(|&b| b == 0)
        .map(|chunk| {
            if control & 0x80 != 0 {
                WsFrame::Binary(chunk.to_vec().into())
            } else {
                WsFrame::Text(String::from_utf8_lossy(chunk).into_owned())
            }
        })
        .collect();
    let mut out = Vec::new();
    for dialect in Dialect::ALL {
        let mut session = Session::new(
            SessionConfig::new(dialect, "fuzz")
                .with_url_sample_rate(rate)
                .with_url_query(Some("voice_input=false&k=%41")),
        );
        for frame in &frames {
            let before = session.info().cloned();
            if session.decode(frame).is_err() {
                assert_eq!(session.info().cloned(), before);
            }
            let size = session.outbound_frame_size();
            for command in [
                BotCommand::Play(vec![0u8; size.frame()].into()),
                BotCommand::Mark("m".into()),
                BotCommand::Clear,
                BotCommand::Hangup,
                BotCommand::Text {
                    role: TextRole::Bot,
                    text: "t".into(),
                    is_final: true,
                },
                BotCommand::Modes(Modes::default()),
            ] {
                let _ = session.encode(&command, &mut out);
            }
            out.clear();
        }
    }
    let mut detector = Detector::new();
    for frame in &frames {
        let _ = detector.observe(frame);
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        let _ = detect::from_url(path, Some(query));
        let _ = detect::url_sample_rate(query);
    }
});
