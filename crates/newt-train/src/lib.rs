//! Training NEWT in candle. Shares the model file (`newt-model`) with the engine, and
//! implements exactly the operators the engine runs (see ARCHITECTURE.md).

pub mod dataset;
pub mod ddsp;
pub mod fft;
pub mod film_op;
pub mod import;
pub mod init;
pub mod loss;
pub mod model;
pub mod optim;
pub mod shaper_op;
pub mod signal;
pub mod train;
