//! Voxline: a Rust framework for AI voice agents on phone calls.
//!
//! This facade re-exports the member crates behind cargo features, so an application
//! can depend on `voxline` alone and switch parts on as it needs them. Each crate can
//! also be used on its own.
//!
//! | feature | module | crate |
//! |---|---|---|
//! | `audio` (default) | [`audio`] | `voxline-audio`: G.711, resampling, framing, pacing, DTMF, WAV |
//! | `vad` (default) | [`vad`] | `voxline-vad`: voice activity, turn detection, barge-in rules |
//! | `silero` | [`vad`] | adds the Silero detector to `voxline-vad` |
//! | `telephony` | [`telephony`] | `voxline-telephony`: carrier wire dialects, call events, bot commands |
//! | `agent` | [`agent`] | `voxline-agent`: the per-call voice agent (turn-taking, streamed replies, barge-in, heard history) |
//! | `server` | [`server`] | `voxline-server`: WebSocket endpoint, limits, health, metrics, events; echo, agent and bridge handlers |
//! | `core` | [`core`] | `voxline-core`: provider traits, events, errors, usage, retry policy |
//! | `deepgram` | [`deepgram`] | `voxline-deepgram`: streaming speech-to-text |
//! | `elevenlabs` | [`elevenlabs`] | `voxline-elevenlabs`: streaming text-to-speech |
//! | `openai` | [`openai`] | `voxline-openai`: chat completions, transcription, speech |
//! | `azure` | [`azure`] | `voxline-azure`: text-to-speech and speech-to-text over REST |
//! | `gemini` | [`gemini`] | `voxline-gemini`: Gemini Live realtime speech-to-speech |

#[cfg(feature = "audio")]
#[doc(inline)]
pub use voxline_audio as audio;

#[cfg(feature = "vad")]
#[doc(inline)]
pub use voxline_vad as vad;

#[cfg(feature = "telephony")]
#[doc(inline)]
pub use voxline_telephony as telephony;

#[cfg(feature = "agent")]
#[doc(inline)]
pub use voxline_agent as agent;

#[cfg(feature = "server")]
#[doc(inline)]
pub use voxline_server as server;

#[cfg(feature = "core")]
#[doc(inline)]
pub use voxline_core as core;

#[cfg(feature = "deepgram")]
#[doc(inline)]
pub use voxline_deepgram as deepgram;

#[cfg(feature = "elevenlabs")]
#[doc(inline)]
pub use voxline_elevenlabs as elevenlabs;

#[cfg(feature = "openai")]
#[doc(inline)]
pub use voxline_openai as openai;

#[cfg(feature = "azure")]
#[doc(inline)]
pub use voxline_azure as azure;

#[cfg(feature = "gemini")]
#[doc(inline)]
pub use voxline_gemini as gemini;
