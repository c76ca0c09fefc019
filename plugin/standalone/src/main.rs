//! `newt-standalone`: the NEWT instrument outside a DAW. Run with `--backend jack` (or
//! `alsa`); `--help` lists the audio and MIDI options nice-plug's standalone offers.

use nice_plug::prelude::*;

fn main() {
    nice_export_standalone::<newt::Newt>();
}
