use std::path::PathBuf;

/// Every way a model file can be unusable. Each defect has its own variant so callers
/// (the plugin's editor, the renderer) can say exactly what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model file is truncated: {actual} bytes, the header describes {expected}")]
    Truncated { expected: u64, actual: u64 },
    #[error("not a safetensors file: {0}")]
    NotSafetensors(String),
    #[error("safetensors file is not a NEWT model (metadata `format` is {0:?}, expected \"newt\")")]
    NotNewt(Option<String>),
    #[error("model metadata lacks `{0}`")]
    MissingMetadata(&'static str),
    #[error("model metadata `{key}` = {value:?} is invalid: {reason}")]
    BadMetadata {
        key: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("model format version {found} is not supported (this build reads 1..={supported})")]
    UnknownVersion { found: u32, supported: u32 },
    #[error("model lacks tensor `{0}`")]
    MissingTensor(String),
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor `{name}` has dtype {dtype}, expected F32")]
    WrongDType { name: String, dtype: String },
    #[error("tensor `{name}` holds a non-finite value at flat index {index}")]
    NonFinite { name: String, index: usize },
    #[error("cannot write model file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
