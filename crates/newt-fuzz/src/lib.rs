//! Fuzzing the readers of outside data on stable Rust (no nightly, so no libFuzzer): each
//! case is a valid seed (a model file, a plugin state, a MIDI file, a control CSV, a WAV
//! file) mutated by random byte edits and by edits that know the format (safetensors
//! header fields, RIFF fields, MIDI events, CSV values, state JSON), the choices drawn
//! through `arbitrary` from a seeded stream, so case `k` of seed `s` is always the same
//! input.
//!
//! A case passes when the reader returns a typed error or a valid result. Findings:
//! - a panic (caught per case, the run goes on);
//! - a case running past its time limit (a watchdog thread aborts the worker);
//! - an allocation the worker's memory limit refuses (`ulimit -v`: the allocation fails
//!   and the worker aborts), or any other abort (a panic inside a plugin's C entry point).
//!
//! The command (`runner::run`) runs cases in worker processes, chunk by chunk, and when a
//! worker dies it replays that chunk one case per process to name the cases that kill it.

pub mod mutate;
pub mod report;
pub mod runner;
pub mod targets;
