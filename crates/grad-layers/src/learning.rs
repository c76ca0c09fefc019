//! The check that every trainable tensor of a model learns.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Watches named trainable tensors over a few optimiser steps: each must receive a
/// non-zero, finite gradient at some step, and its value must have changed by the end.
///
/// ```ignore
/// let mut audit = LearningAudit::new(&named_vars)?;
/// for _ in 0..3 {
///     let grads = loss()?.backward()?;
///     audit.record(&grads)?;
///     optimiser.step(&grads)?;
/// }
/// audit.finish(&[])?; // or the names frozen on purpose
/// ```
pub struct LearningAudit {
    watched: Vec<Watched>,
}

struct Watched {
    name: String,
    var: Var,
    initial: Tensor,
    gradient: bool,
}

/// The tensors that did not learn, by name, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotLearning {
    /// No gradient, or only zero or non-finite ones, at every recorded step.
    pub without_gradient: Vec<String>,
    /// Unchanged at the end (bit for bit).
    pub unchanged: Vec<String>,
    /// Named as frozen on purpose, but learned: the list is out of date.
    pub listed_frozen_but_learned: Vec<String>,
}

impl std::fmt::Display for NotLearning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        write!(
            f,
            "tensors without a gradient: {}; unchanged: {}; listed as frozen but learned: {}",
            list(&self.without_gradient),
            list(&self.unchanged),
            list(&self.listed_frozen_but_learned)
        )
    }
}

impl std::error::Error for NotLearning {}

impl LearningAudit {
    /// Starts watching `vars`, remembering a copy of each value.
    pub fn new(vars: &[(String, Var)]) -> Result<Self> {
        let watched = vars
            .iter()
            .map(|(name, var)| {
                Ok(Watched {
                    name: name.clone(),
                    var: var.clone(),
                    initial: var.as_tensor().copy()?,
                    gradient: false,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { watched })
    }

    /// Notes which tensors received a non-zero, finite gradient in `grads`.
    pub fn record(&mut self, grads: &GradStore) -> Result<()> {
        for w in &mut self.watched {
            if let Some(g) = grads.get(w.var.as_tensor()) {
                let g = g.flatten_all()?.to_vec1::<f32>()?;
                if g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0) {
                    w.gradient = true;
                }
            }
        }
        Ok(())
    }

    /// Every watched tensor not in `frozen_on_purpose` got a gradient and changed, and
    /// every one in it did neither.
    pub fn finish(self, frozen_on_purpose: &[&str]) -> std::result::Result<(), NotLearning> {
        let mut report = NotLearning::default();
        for w in self.watched {
            let changed = changed(&w.initial, w.var.as_tensor()).unwrap_or_default();
            let frozen = frozen_on_purpose.contains(&w.name.as_str());
            if frozen {
                if w.gradient || changed {
                    report.listed_frozen_but_learned.push(w.name);
                }
                continue;
            }
            if !w.gradient {
                report.without_gradient.push(w.name.clone());
            }
            if !changed {
                report.unchanged.push(w.name);
            }
        }
        if report == NotLearning::default() {
            Ok(())
        } else {
            Err(report)
        }
    }
}

fn changed(a: &Tensor, b: &Tensor) -> Result<bool> {
    let a = a.flatten_all()?.to_vec1::<f32>()?;
    let b = b.flatten_all()?.to_vec1::<f32>()?;
    Ok(a.iter().zip(&b).any(|(x, y)| x.to_bits() != y.to_bits()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// `loss = sum((w * x)^2)` where `stopped` passes through a detach: the audit names it.
    #[test]
    fn names_a_tensor_behind_a_stopped_gradient() {
        let dev = Device::Cpu;
        let live = Var::from_vec(vec![1.0f32, 2.0], 2, &dev).unwrap();
        let stopped = Var::from_vec(vec![3.0f32, 4.0], 2, &dev).unwrap();
        let frozen = Var::from_vec(vec![5.0f32], 1, &dev).unwrap();
        let vars = vec![
            ("live".to_string(), live.clone()),
            ("stopped".to_string(), stopped.clone()),
            ("frozen".to_string(), frozen.clone()),
        ];
        let mut audit = LearningAudit::new(&vars).unwrap();
        for _ in 0..2 {
            let y = (live.as_tensor() * stopped.as_tensor().detach()).unwrap();
            let loss = (y.sqr().unwrap().sum_all().unwrap()
                + frozen.as_tensor().detach().sum_all().unwrap())
            .unwrap();
            let grads = loss.backward().unwrap();
            audit.record(&grads).unwrap();
            let g = grads.get(live.as_tensor()).unwrap();
            live.set(&(live.as_tensor() - (g * 0.01).unwrap()).unwrap())
                .unwrap();
        }
        let report = audit.finish(&["frozen"]).unwrap_err();
        assert_eq!(report.without_gradient, vec!["stopped".to_string()]);
        assert_eq!(report.unchanged, vec!["stopped".to_string()]);
        assert!(report.listed_frozen_but_learned.is_empty());
        assert!(report.to_string().contains("stopped"));
    }

    #[test]
    fn a_tensor_listed_frozen_that_learns_is_reported() {
        let dev = Device::Cpu;
        let w = Var::from_vec(vec![1.0f32], 1, &dev).unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        let mut audit = LearningAudit::new(&vars).unwrap();
        let grads = w
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        audit.record(&grads).unwrap();
        w.set(&Tensor::new(&[0.5f32], &dev).unwrap()).unwrap();
        let report = LearningAudit::finish(audit, &["w"]).unwrap_err();
        assert_eq!(report.listed_frozen_but_learned, vec!["w".to_string()]);
    }
}
