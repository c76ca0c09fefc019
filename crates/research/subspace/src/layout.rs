//! The parameters of a functional model as one flat vector: names, shapes and offsets.

use candle_core::{Result, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct ParamLayout {
    entries: Vec<(String, Vec<usize>, usize)>,
    len: usize,
}

impl ParamLayout {
    /// A layout of `(name, shape)` in order.
    pub fn new(params: &[(&str, &[usize])]) -> Self {
        let mut entries = Vec::with_capacity(params.len());
        let mut len = 0;
        for (name, shape) in params {
            entries.push((name.to_string(), shape.to_vec(), len));
            len += shape.iter().product::<usize>();
        }
        Self { entries, len }
    }

    /// D, the number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parameter `name` viewed from the flat vector `theta` `[D]`.
    pub fn get(&self, theta: &Tensor, name: &str) -> Result<Tensor> {
        let (_, shape, offset) = self
            .entries
            .iter()
            .find(|e| e.0 == name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no parameter {name}")))?;
        let n = shape.iter().product::<usize>();
        theta.narrow(0, *offset, n)?.reshape(shape.as_slice())
    }

    /// `(name, shape)` in order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.entries.iter().map(|e| (e.0.as_str(), e.1.as_slice()))
    }
}
