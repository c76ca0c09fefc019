//! Training NEWT in candle. Shares the model file (`newt-model`) with the engine, and
//! implements exactly the operators the engine runs (see ARCHITECTURE.md).

pub mod fft;
pub mod init;
pub mod model;
pub mod shaper_op;
pub mod signal;
