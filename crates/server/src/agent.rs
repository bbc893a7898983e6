//! The voice agent on a call: joins the carrier connection to a per-call agent runtime.
