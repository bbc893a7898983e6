//! The per-frame cost of the wire codec: decoding a carrier's media message and
//! encoding one of ours, for a Twilio 20 ms frame (160 B of mu-law) and an Exotel
//! 100 ms frame (1600 B of 8 kHz PCM16). Throughput is in audio bytes.

#![allow(missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxline_telephony::{BotCommand, Dialect, Session, SessionConfig, WsFrame};

fn started(dialect: Dialect, start: &str) -> Session {
    let mut session = Session::new(SessionConfig::new(dialect, "bench"));
    session
        .decode(&WsFrame::Text(start.to_owned()))
        .expect("the start decodes");
    session
}

fn audio(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 37 % 256) as u8).collect()
}

fn codec(c: &mut Criterion) {
    let cases = [
        (
            "twilio 20 ms",
            started(
                Dialect::Twilio,
                r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC0123456789abcdef0123456789abcdef","streamSid":"MZ0123456789abcdef0123456789abcdef","callSid":"CA0123456789abcdef0123456789abcdef","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ0123456789abcdef0123456789abcdef"}"#,
            ),
            audio(160),
            r#"{"event":"media","sequenceNumber":"1234","media":{"track":"inbound","chunk":"1233","timestamp":"24660","payload":"PAYLOAD"},"streamSid":"MZ0123456789abcdef0123456789abcdef"}"#,
        ),
        (
            "exotel 100 ms",
            started(
                Dialect::Exotel,
                r#"{"event":"start","sequence_number":"1","stream_sid":"f3a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5","start":{"stream_sid":"f3a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5","call_sid":"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6","account_sid":"exotel1","from":"09876543210","to":"08047491899","custom_parameters":{},"media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}"#,
            ),
            audio(1600),
            r#"{"event":"media","sequence_number":"1234","stream_sid":"f3a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5","media":{"chunk":"1233","timestamp":"123300","payload":"PAYLOAD"}}"#,
        ),
    ];
    for (name, mut session, pcm, message) in cases {
        let frame = WsFrame::Text(message.replace("PAYLOAD", &STANDARD.encode(&pcm)));
        let play = BotCommand::Play(Bytes::from(pcm.clone()));
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(pcm.len() as u64));
        group.bench_function("decode media", |b| {
            b.iter(|| session.decode(black_box(&frame)).expect("decodes"))
        });
        // For comparison: the same work through a `serde_json::Value` tree.
        group.bench_function("decode media via Value (baseline)", |b| {
            b.iter(|| {
                let WsFrame::Text(text) = black_box(&frame) else {
                    unreachable!()
                };
                let v: serde_json::Value = serde_json::from_str(text).expect("JSON");
                let payload = v["media"]["payload"].as_str().expect("payload");
                Bytes::from(STANDARD.decode(payload).expect("base64"))
            })
        });
        let mut out = Vec::with_capacity(4);
        group.bench_function("encode play", |b| {
            b.iter(|| {
                out.clear();
                session.encode(black_box(&play), &mut out).expect("encodes");
                black_box(&out);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
