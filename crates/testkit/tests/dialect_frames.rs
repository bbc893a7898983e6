//! The frames callsim sends match each carrier's documented shapes, checked on the JSON
//! (and binary frames) a fake bot receives.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use voxline_testkit::callsim::{self, Audio, CallOptions, Dialect, Scenario};

const AUDIO_MS: u64 = 300;

async fn place(
    bot: &Bot,
    dialect: Dialect,
    rate: Option<u32>,
    url: Option<String>,
) -> callsim::CallReport {
    let mut options = CallOptions::new(url.unwrap_or_else(|| bot.url.clone()), dialect)
        .param("tenant", "abc")
        .param("from", "+15550001")
        .audio(Audio::tone(
            440.0,
            Duration::from_millis(AUDIO_MS),
            8000,
            -6.0,
        ))
        .tail(Duration::from_millis(200));
    if let Some(rate) = rate {
        options = options.sample_rate(rate);
    }
    let report = callsim::call(options).await.expect("call runs");
    // Let the bot log the close.
    sleep(100).await;
    report
}

fn text_frames(bot: &Bot) -> Vec<Value> {
    bot.json_frames()
}

fn media_payload(v: &Value) -> Vec<u8> {
    B64.decode(v["media"]["payload"].as_str().expect("payload string"))
        .expect("base64")
}

use base64::Engine as _;

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

/// Media frames after the caller audio are silence in the line's encoding.
fn assert_tail_is_silence(payloads: &[Vec<u8>], silence: u8) {
    let last = payloads.last().expect("media frames");
    assert!(
        last.iter().all(|&b| b == silence),
        "last frame is not silence: {:?}",
        &last[..8]
    );
}

#[tokio::test]
async fn exotel_speaks_snake_case_pcm16_in_100ms_frames() {
    let bot = recorder(Dialect::Exotel).await;
    let report = place(&bot, Dialect::Exotel, None, None).await;
    let frames = text_frames(&bot);
    assert_eq!(frames[0], json!({"event": "connected"}));
    let start = &frames[1];
    assert_eq!(start["event"], "start");
    assert_eq!(start["sequence_number"], "1");
    let sid = start["start"]["stream_sid"].as_str().expect("stream_sid");
    assert!(sid.starts_with("MZ"));
    assert_eq!(start["stream_sid"], sid);
    assert!(
        start["start"]["call_sid"]
            .as_str()
            .expect("call_sid")
            .starts_with("CA")
    );
    assert!(
        start["start"]["account_sid"]
            .as_str()
            .expect("account_sid")
            .starts_with("AC")
    );
    assert_eq!(start["start"]["from"], "+15550001");
    assert!(start["start"]["to"].is_string());
    assert_eq!(
        start["start"]["custom_parameters"],
        json!({"tenant": "abc"})
    );
    assert_eq!(
        start["start"]["media_format"],
        json!({"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"})
    );

    let media: Vec<&Value> = frames.iter().filter(|v| v["event"] == "media").collect();
    assert_eq!(media.len() as u64, report.frames.media_sent);
    assert!(media.len() >= (AUDIO_MS / 100) as usize);
    for (i, m) in media.iter().enumerate() {
        let chunk = i as u64 + 1;
        assert_eq!(m["sequence_number"], (i + 2).to_string());
        assert_eq!(m["stream_sid"], sid);
        assert_eq!(m["media"]["chunk"], chunk.to_string());
        assert_eq!(m["media"]["timestamp"], (chunk * 100).to_string());
        assert_eq!(media_payload(m).len(), 800 * 2, "100 ms of 8 kHz PCM16");
    }
    let payloads: Vec<Vec<u8>> = media.iter().map(|m| media_payload(m)).collect();
    assert_tail_is_silence(&payloads, 0);

    let stop = frames.last().expect("frames");
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["stream_sid"], sid);
    assert_eq!(stop["stop"]["call_sid"], start["start"]["call_sid"]);
    assert_eq!(stop["stop"]["reason"], "callended");
    assert_eq!(stop["sequence_number"], (media.len() + 2).to_string());
    assert!(report.is_clean());
}

#[tokio::test]
async fn exotel_takes_its_rate_from_the_url() {
    let bot = recorder(Dialect::Exotel).await;
    let url = format!("{}?sample-rate=16000", bot.url);
    let report = place(&bot, Dialect::Exotel, None, Some(url)).await;
    assert_eq!(report.sample_rate, 16000);
    assert_eq!(
        bot.request_uri().as_deref(),
        Some("/media?sample-rate=16000")
    );
    let frames = text_frames(&bot);
    assert_eq!(frames[1]["start"]["media_format"]["sample_rate"], "16000");
    let media = frames
        .iter()
        .find(|v| v["event"] == "media")
        .expect("media");
    assert_eq!(media_payload(media).len(), 1600 * 2);

    // Asking for the rate in the options puts it on the URL, as Exotel's applet does.
    let bot = recorder(Dialect::Exotel).await;
    place(&bot, Dialect::Exotel, Some(24000), None).await;
    assert_eq!(
        bot.request_uri().as_deref(),
        Some("/media?sample-rate=24000")
    );
    let media = text_frames(&bot)
        .into_iter()
        .find(|v| v["event"] == "media")
        .expect("media");
    assert_eq!(media_payload(&media).len(), 2400 * 2, "100 ms at 24 kHz");
}

#[tokio::test]
async fn smartflo_speaks_camel_case_mulaw_in_100ms_frames() {
    let bot = recorder(Dialect::Smartflo).await;
    let report = place(&bot, Dialect::Smartflo, None, None).await;
    let frames = text_frames(&bot);
    assert_eq!(frames[0], json!({"event": "connected"}));
    let start = &frames[1];
    assert_eq!(start["sequenceNumber"], "1");
    let s = &start["start"];
    let sid = s["streamSid"].as_str().expect("streamSid");
    assert!(s["callSid"].is_string() && s["accountSid"].is_string());
    assert_eq!(s["from"], "+15550001");
    assert_eq!(s["customParameters"], json!({"tenant": "abc"}));
    assert_eq!(s["mediaFormat"]["encoding"], "audio/x-mulaw");
    assert_eq!(s["mediaFormat"]["sampleRate"], 8000);
    let media: Vec<&Value> = frames.iter().filter(|v| v["event"] == "media").collect();
    assert_eq!(media.len() as u64, report.frames.media_sent);
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m["streamSid"], sid);
        assert_eq!(m["sequenceNumber"], (i + 2).to_string());
        assert_eq!(m["media"]["chunk"], (i + 1).to_string());
        assert_eq!(m["media"]["timestamp"], (i * 100).to_string());
        assert_eq!(media_payload(m).len(), 800);
    }
    let payloads: Vec<Vec<u8>> = media.iter().map(|m| media_payload(m)).collect();
    assert_tail_is_silence(&payloads, 0xFF);
    let stop = frames.last().expect("frames");
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["stop"]["callSid"], s["callSid"]);
}

#[tokio::test]
async fn twilio_sends_strings_for_counters_and_drops_the_query() {
    let bot = recorder(Dialect::Twilio).await;
    let url = format!("{}?token=secret", bot.url);
    let report = place(&bot, Dialect::Twilio, None, Some(url)).await;
    assert_eq!(
        bot.request_uri().as_deref(),
        Some("/media"),
        "Twilio strips the query"
    );
    let frames = text_frames(&bot);
    assert_eq!(
        frames[0],
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    );
    let start = &frames[1];
    assert_eq!(start["sequenceNumber"], "1");
    let sid = start["start"]["streamSid"].as_str().expect("streamSid");
    assert!(sid.starts_with("MZ") && sid.len() == 34);
    assert_eq!(start["streamSid"], sid);
    assert!(
        start["start"]["callSid"]
            .as_str()
            .expect("callSid")
            .starts_with("CA")
    );
    assert!(
        start["start"]["accountSid"]
            .as_str()
            .expect("accountSid")
            .starts_with("AC")
    );
    assert_eq!(start["start"]["tracks"], json!(["inbound"]));
    assert_eq!(
        start["start"]["customParameters"],
        json!({"tenant": "abc", "from": "+15550001"})
    );
    assert_eq!(
        start["start"]["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    let media: Vec<&Value> = frames.iter().filter(|v| v["event"] == "media").collect();
    assert_eq!(media.len() as u64, report.frames.media_sent);
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m["sequenceNumber"], (i + 2).to_string());
        assert_eq!(m["streamSid"], sid);
        assert_eq!(m["media"]["track"], "inbound");
        assert_eq!(m["media"]["chunk"], (i + 1).to_string());
        assert_eq!(m["media"]["timestamp"], (i * 20).to_string());
        assert_eq!(media_payload(m).len(), 160);
    }
    let payloads: Vec<Vec<u8>> = media.iter().map(|m| media_payload(m)).collect();
    assert_tail_is_silence(&payloads, 0xFF);
    let stop = frames.last().expect("frames");
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["streamSid"], sid);
    assert_eq!(stop["stop"]["callSid"], start["start"]["callSid"]);
    assert_eq!(stop["stop"]["accountSid"], start["start"]["accountSid"]);
}

#[tokio::test]
async fn plivo_starts_with_start_uses_numbers_and_just_closes() {
    let bot = recorder(Dialect::Plivo).await;
    let report = place(&bot, Dialect::Plivo, None, None).await;
    let frames = text_frames(&bot);
    let start = &frames[0];
    assert_eq!(start["event"], "start", "Plivo sends no connected frame");
    assert_eq!(start["sequenceNumber"], 1);
    let s = &start["start"];
    let sid = s["streamId"].as_str().expect("streamId");
    assert!(is_uuid(sid) && is_uuid(s["callId"].as_str().expect("callId")));
    assert!(
        s["accountId"]
            .as_str()
            .expect("accountId")
            .starts_with("MA")
    );
    assert_eq!(
        s["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000})
    );
    assert_eq!(start["extra_headers"], "tenant=abc;from=+15550001");
    let media: Vec<&Value> = frames.iter().filter(|v| v["event"] == "media").collect();
    assert_eq!(media.len() as u64, report.frames.media_sent);
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m["sequenceNumber"], i as u64 + 2);
        assert_eq!(m["streamId"], sid);
        assert_eq!(m["media"]["chunk"], i as u64 + 1);
        assert_eq!(m["media"]["track"], "inbound");
        assert!(m["media"]["timestamp"].is_string());
        assert_eq!(media_payload(m).len(), 160);
    }
    assert_eq!(
        frames.last().expect("frames")["event"],
        "media",
        "no stop event"
    );

    let bot = recorder(Dialect::Plivo).await;
    place(&bot, Dialect::Plivo, Some(16000), None).await;
    let frames = text_frames(&bot);
    assert_eq!(
        frames[0]["start"]["mediaFormat"],
        json!({"encoding": "audio/x-l16", "sampleRate": 16000})
    );
    let media = frames
        .iter()
        .find(|v| v["event"] == "media")
        .expect("media");
    assert_eq!(media_payload(media).len(), 640);
}

#[tokio::test]
async fn telnyx_puts_the_stream_id_at_top_level() {
    let bot = recorder(Dialect::Telnyx).await;
    let report = place(&bot, Dialect::Telnyx, None, None).await;
    let frames = text_frames(&bot);
    assert_eq!(frames[0], json!({"event": "connected", "version": "1.0.0"}));
    let start = &frames[1];
    assert_eq!(start["sequence_number"], "1");
    let sid = start["stream_id"].as_str().expect("top-level stream_id");
    assert!(is_uuid(sid));
    assert!(start["start"].get("stream_id").is_none());
    assert!(
        start["start"]["call_control_id"]
            .as_str()
            .expect("call_control_id")
            .starts_with("v3:")
    );
    assert_eq!(
        start["start"]["media_format"],
        json!({"encoding": "PCMU", "sample_rate": 8000, "channels": 1})
    );
    assert_eq!(start["start"]["from"], "+15550001");
    let media: Vec<&Value> = frames.iter().filter(|v| v["event"] == "media").collect();
    assert_eq!(media.len() as u64, report.frames.media_sent);
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m["stream_id"], sid);
        assert_eq!(m["sequence_number"], (i + 2).to_string());
        assert_eq!(m["media"]["chunk"], (i + 1).to_string());
        assert_eq!(media_payload(m).len(), 160);
    }
    let stop = frames.last().expect("frames");
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["stream_id"], sid);
    assert_eq!(
        stop["stop"]["call_control_id"],
        start["start"]["call_control_id"]
    );
}

#[tokio::test]
async fn vonage_sends_binary_20ms_frames_after_a_text_header() {
    let bot = recorder(Dialect::Vonage).await;
    let report = place(&bot, Dialect::Vonage, None, None).await;
    let frames = bot.frames();
    let first = frames[0].json().expect("first frame is JSON text");
    assert_eq!(
        first,
        json!({"event": "websocket:connected", "content-type": "audio/l16;rate=16000",
               "tenant": "abc", "from": "+15550001"})
    );
    let binary: Vec<&[u8]> = frames
        .iter()
        .filter_map(|r| match &r.message {
            Message::Binary(b) => Some(b.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(binary.len() as u64, report.frames.media_sent);
    assert!(binary.iter().all(|b| b.len() == 640));
    let texts = frames
        .iter()
        .filter(|r| matches!(r.message, Message::Text(_)))
        .count();
    assert_eq!(texts, 1, "nothing but the header as text, and no stop");

    let bot = recorder(Dialect::Vonage).await;
    place(&bot, Dialect::Vonage, Some(8000), None).await;
    let frames = bot.frames();
    assert_eq!(
        frames[0].json().expect("json")["content-type"],
        "audio/l16;rate=8000"
    );
    assert!(matches!(&frames[1].message, Message::Binary(b) if b.len() == 320));
}

#[tokio::test]
async fn dtmf_follows_each_dialect() {
    for dialect in Dialect::ALL {
        let bot = recorder(dialect).await;
        let report = callsim::run_scenario(
            Scenario::new(bot.url.clone(), dialect)
                .silence(Duration::from_millis(100))
                .dtmf('7')
                .hangup(),
        )
        .await
        .expect("scenario runs");
        assert!(report.passed(), "{report}");
        sleep(100).await;
        let frames = bot.json_frames();
        let dtmf = frames
            .iter()
            .find(|v| v["event"] == "dtmf" || v["event"] == "websocket:dtmf")
            .unwrap_or_else(|| panic!("{dialect}: no dtmf frame"));
        let expected_digit = match dialect {
            Dialect::Vonage | Dialect::Voxline => &dtmf["digit"],
            _ => &dtmf["dtmf"]["digit"],
        };
        assert_eq!(expected_digit, "7", "{dialect}: {dtmf}");
        match dialect {
            Dialect::Exotel => {
                assert!(dtmf["stream_sid"].is_string());
                assert_eq!(dtmf["dtmf"]["duration"], "100");
            }
            Dialect::Twilio => {
                assert_eq!(dtmf["dtmf"]["track"], "inbound_track");
                assert!(dtmf["sequenceNumber"].is_string());
            }
            Dialect::Smartflo => assert!(dtmf["streamSid"].is_string()),
            Dialect::Plivo => {
                assert!(dtmf["sequenceNumber"].is_u64());
                assert!(dtmf["streamId"].is_string());
            }
            Dialect::Telnyx => {
                assert!(dtmf["stream_id"].is_string());
                assert!(
                    dtmf["occurred_at"]
                        .as_str()
                        .expect("occurred_at")
                        .ends_with('Z')
                );
            }
            Dialect::Vonage => {
                assert_eq!(dtmf["event"], "websocket:dtmf");
                assert_eq!(dtmf["duration"], 100);
            }
            Dialect::Voxline => assert_eq!(dtmf, &json!({"event":"dtmf","digit":"7"})),
        }
    }
}

#[tokio::test]
async fn user_info_in_the_url_becomes_basic_auth() {
    let bot = recorder(Dialect::Exotel).await;
    let url = bot.url.replace("ws://", "ws://key:token@");
    place(&bot, Dialect::Exotel, None, Some(url)).await;
    let auth = bot.log.lock().expect("log").authorization.clone();
    // base64("key:token")
    assert_eq!(auth.as_deref(), Some("Basic a2V5OnRva2Vu"));
}
