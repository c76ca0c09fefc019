//! Reading and writing the safetensors file, with validation of every defect.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::{ModelError, ModelMeta, NewtModel, NewtWeights};

impl NewtModel {
    /// Reads and validates a model file. Never panics on a bad file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses and validates a model from the bytes of a safetensors file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        check_complete(bytes)?;
        let (_, st_meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| ModelError::NotSafetensors(e.to_string()))?;
        let meta = ModelMeta::from_map(st_meta.metadata().as_ref())?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| ModelError::NotSafetensors(e.to_string()))?;

        let mut weights = NewtWeights::zeros(&meta);
        let mut result = Ok(());
        weights.visit_mut(&mut |name, shape, data| {
            if result.is_ok() {
                result = read_tensor(&tensors, &name, &shape).map(|v| *data = v);
            }
        });
        result?;
        Ok(Self { meta, weights })
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut weights = self.weights.clone();
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        weights.visit_mut(&mut |name, shape, data| {
            let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            tensors.push((name, shape, raw));
        });
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, s, raw)| {
                let view = TensorView::new(Dtype::F32, s.clone(), raw)
                    .expect("shape and byte length agree by construction");
                (n.clone(), view)
            })
            .collect();
        safetensors::serialize(views, Some(self.meta.to_map()))
            .expect("serialising in-memory f32 tensors cannot fail")
    }

    /// Writes the model file (to a temporary name first, then renamed, so a crash never
    /// leaves a half-written model where a good one was).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        let err = |source| ModelError::Write {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("safetensors.partial");
        std::fs::write(&tmp, self.to_bytes()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

/// Detects truncation before handing the bytes to the safetensors parser, so a cut file
/// is reported as such and not as a generic parse error.
fn check_complete(bytes: &[u8]) -> Result<(), ModelError> {
    let actual = bytes.len() as u64;
    if actual < 8 {
        return Err(ModelError::Truncated {
            expected: 8,
            actual,
        });
    }
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if header_len > 100_000_000 {
        return Err(ModelError::NotSafetensors(format!(
            "header length {header_len} is implausible"
        )));
    }
    let header_end = 8 + header_len;
    if actual < header_end {
        return Err(ModelError::Truncated {
            expected: header_end,
            actual,
        });
    }
    let header: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..header_end as usize])
            .map_err(|e| ModelError::NotSafetensors(format!("header is not JSON: {e}")))?;
    let data_end = header
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let expected = header_end.checked_add(data_end).ok_or_else(|| {
        ModelError::NotSafetensors(format!("tensor data offset {data_end} is implausible"))
    })?;
    if actual < expected {
        return Err(ModelError::Truncated { expected, actual });
    }
    Ok(())
}

fn read_tensor(
    tensors: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, ModelError> {
    let view = tensors
        .tensor(name)
        .map_err(|_| ModelError::MissingTensor(name.to_owned()))?;
    if view.dtype() != Dtype::F32 {
        return Err(ModelError::WrongDType {
            name: name.to_owned(),
            dtype: format!("{:?}", view.dtype()),
        });
    }
    if view.shape() != shape {
        return Err(ModelError::WrongShape {
            name: name.to_owned(),
            expected: shape.to_vec(),
            actual: view.shape().to_vec(),
        });
    }
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(index) = data.iter().position(|x| !x.is_finite()) {
        return Err(ModelError::NonFinite {
            name: name.to_owned(),
            index,
        });
    }
    Ok(data)
}
