//! Evaluating NEWT models, the wing between training and the product: how close a model's
//! resynthesis of held-out phrases comes to the real audio and to the DDSP baseline
//! ([`eval`], with the log-mel measures of [`quality`]), and which reference instrument a
//! render sounds like ([`timbre`]), and whether a model plays worse outside the range map it
//! was trained on ([`range`]). The command line is the `newt-eval` binary (also `cargo
//! xtask eval ...`, `cargo xtask timbre ...` and `cargo xtask range ...`).

pub mod eval;
pub mod quality;
pub mod range;
pub mod timbre;
