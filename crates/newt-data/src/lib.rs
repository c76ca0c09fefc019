//! Instrument data for training NEWT: melodies (public-domain ABC tunes, generated
//! phrases) played on sampled instruments of a General MIDI SoundFont, with the
//! ground-truth pitch and loudness of every frame.

pub mod abc;
pub mod instrument;
pub mod instrument_set;
pub mod performance;
pub mod render;
pub mod synthetic;
pub mod tracker;
