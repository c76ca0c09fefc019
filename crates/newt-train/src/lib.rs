//! Training NEWT in candle. Shares the model file (`newt-model`) with the engine, and
//! implements exactly the operators the engine runs (see ARCHITECTURE.md).

pub mod fft;
