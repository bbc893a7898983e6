//! A call joined to a realtime speech model (Gemini Live, OpenAI Realtime).
