//! Where a dialect's outbound media message has the inbound shape (Exotel, Smartflo,
//! Twilio, Telnyx), what we send decodes back to the same audio, for any audio, with
//! any ids and mark names.

use bytes::Bytes;
use proptest::prelude::*;
use voxline_telephony::{BotCommand, CallEvent, Decoded, Dialect, Session, SessionConfig, WsFrame};

fn started(dialect: Dialect, id: &str, encoding: &str) -> Session {
    let mut session = Session::new(SessionConfig::new(dialect, "f"));
    let id = serde_json::Value::String(id.to_owned());
    let start = match dialect {
        Dialect::Exotel => {
            serde_json::json!({"event":"start","start":{"stream_sid":id,"call_sid":"CA"}})
        }
        Dialect::Telnyx => serde_json::json!({"event":"start","stream_id":id,"start":{
            "call_control_id":"v3","media_format":{"encoding":encoding,"sample_rate":16000}}}),
        _ => serde_json::json!({"event":"start","start":{"streamSid":id,"callSid":"CA"}}),
    };
    match session.decode(&WsFrame::Text(start.to_string())) {
        Ok(Decoded::Event(CallEvent::Start(_))) => session,
        other => panic!("start refused: {other:?}"),
    }
}

proptest! {
    #[test]
    fn sent_audio_decodes_back(
        which in 0usize..5,
        units in 1usize..6,
        seed in any::<u8>(),
        id in ".{1,20}",
        name in ".{1,20}",
    ) {
        let (dialect, encoding) = [
            (Dialect::Exotel, ""),
            (Dialect::Smartflo, ""),
            (Dialect::Twilio, ""),
            (Dialect::Telnyx, "PCMU"),
            (Dialect::Telnyx, "L16"),
        ][which];
        let mut session = started(dialect, &id, encoding);
        let unit = session.outbound_frame_size().unit().max(160);
        let audio: Vec<u8> = (0..unit * units).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let mut out = Vec::new();
        session.encode(&BotCommand::Play(Bytes::from(audio.clone())), &mut out).expect("play");
        session.encode(&BotCommand::Mark(name.clone()), &mut out).expect("mark");
        prop_assert_eq!(out.len(), 2);
        match session.decode(&out[0]) {
            Ok(Decoded::Event(CallEvent::Media(chunk))) => prop_assert_eq!(&chunk.payload[..], &audio[..]),
            other => prop_assert!(false, "{:?}", other),
        }
        prop_assert_eq!(
            session.decode(&out[1]),
            Ok(Decoded::Event(CallEvent::Mark { name }))
        );
        if let WsFrame::Text(text) = &out[0] {
            let v: serde_json::Value = serde_json::from_str(text).expect("JSON");
            let sent_id = v.get("stream_sid").or(v.get("streamSid")).and_then(|v| v.as_str());
            if dialect == Dialect::Telnyx {
                prop_assert_eq!(sent_id, None);
            } else {
                prop_assert_eq!(sent_id, Some(id.as_str()));
            }
        }
    }
}
