//! The Voxline server: axum glue shared by the binaries.
