//! Test infrastructure for Voxline: the call simulator.
