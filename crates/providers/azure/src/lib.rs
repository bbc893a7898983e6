//! Azure AI Speech for Voxline: text-to-speech over REST with SSML, short-audio speech-to-text over REST.
//!
//! Work in progress: see issue 5.
