//! Adam (Kingma and Ba) with its state as named tensors, so a checkpoint holds the whole
//! optimiser and training resumes exactly; global gradient-norm clipping; the published
//! learning-rate schedule (x0.9 every 10k steps).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Multiply the learning rate by `decay` every `decay_every` steps.
    pub decay: f64,
    pub decay_every: usize,
    /// Clip the global gradient norm to this value.
    pub clip_norm: f64,
    /// Raise the learning rate linearly from `lr / warmup_steps` over the first this many
    /// steps (0: none, as published).
    pub warmup_steps: usize,
}

impl Default for AdamConfig {
    /// The published recipe: Adam lr 1e-3, x0.9 every 10k steps, clip 2.0.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decay: 0.9,
            decay_every: 10_000,
            clip_norm: 2.0,
            warmup_steps: 0,
        }
    }
}

pub struct Adam {
    pub config: AdamConfig,
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken so far.
    pub step: usize,
}

impl Adam {
    pub fn new(vars: Vec<(String, Var)>, config: AdamConfig) -> Result<Self> {
        let m = vars
            .iter()
            .map(|(_, v)| v.as_tensor().zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| v.as_tensor().zeros_like())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            vars,
            m,
            v,
            step: 0,
        })
    }

    /// The learning rate of step `self.step` (counted from 1): the warm-up ramp, then
    /// the decay schedule.
    pub fn learning_rate(&self) -> f64 {
        let warmup = self.config.warmup_steps;
        let ramp = if warmup > 0 && self.step < warmup {
            self.step.max(1) as f64 / warmup as f64
        } else {
            1.0
        };
        ramp * self.config.lr
            * self
                .config
                .decay
                .powi((self.step / self.config.decay_every.max(1)) as i32)
    }

    /// One update from `grads`, clipped to the global norm. Returns the norm before
    /// clipping.
    pub fn step(&mut self, grads: &GradStore) -> Result<f64> {
        let mut sq = 0.0f64;
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sq.sqrt();
        let clip = if norm > self.config.clip_norm {
            self.config.clip_norm / norm
        } else {
            1.0
        };
        self.step += 1;
        let lr = self.learning_rate();
        let c = &self.config;
        let (bc1, bc2) = (
            1.0 - c.beta1.powi(self.step as i32),
            1.0 - c.beta2.powi(self.step as i32),
        );
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = g.affine(clip, 0.0)?;
            self.m[i] = ((self.m[i].affine(c.beta1, 0.0))? + g.affine(1.0 - c.beta1, 0.0)?)?;
            self.v[i] =
                ((self.v[i].affine(c.beta2, 0.0))? + g.sqr()?.affine(1.0 - c.beta2, 0.0)?)?;
            let m_hat = self.m[i].affine(1.0 / bc1, 0.0)?;
            let v_hat = self.v[i].affine(1.0 / bc2, 0.0)?;
            let update = (m_hat / v_hat.sqrt()?.affine(1.0, c.eps)?)?.affine(lr, 0.0)?;
            var.set(&(var.as_tensor() - update)?)?;
        }
        Ok(norm)
    }

    /// The optimiser state as named tensors (for checkpoints).
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[i].clone());
            out.insert(format!("adam.v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`Adam::state`]; missing entries stay zero.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, step: usize) {
        for (i, (name, _)) in self.vars.iter().enumerate() {
            if let Some(m) = state.get(&format!("adam.m.{name}")) {
                self.m[i] = m.clone();
            }
            if let Some(v) = state.get(&format!("adam.v.{name}")) {
                self.v[i] = v.clone();
            }
        }
        self.step = step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_minimises_a_quadratic_and_clips() {
        let x = Var::from_vec(vec![3.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let mut opt = Adam::new(
            vec![("x".into(), x.clone())],
            AdamConfig {
                lr: 0.1,
                ..AdamConfig::default()
            },
        )
        .unwrap();
        let mut first_norm = 0.0;
        for i in 0..300 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            let n = opt.step(&loss.backward().unwrap()).unwrap();
            if i == 0 {
                first_norm = n;
            }
        }
        let v: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!(v.iter().all(|x| x.abs() < 0.05), "{v:?}");
        assert!((first_norm - (36.0f64 + 16.0).sqrt()).abs() < 1e-4);
        assert_eq!(opt.step, 300);
    }

    #[test]
    fn learning_rate_follows_the_schedule() {
        let x = Var::from_vec(vec![1.0f32], 1, &Device::Cpu).unwrap();
        let mut opt = Adam::new(vec![("x".into(), x)], AdamConfig::default()).unwrap();
        opt.step = 25_000;
        assert!((opt.learning_rate() - 1e-3 * 0.81).abs() < 1e-12);
        opt.config.warmup_steps = 100;
        assert!((opt.learning_rate() - 1e-3 * 0.81).abs() < 1e-12);
        opt.step = 1;
        assert!((opt.learning_rate() - 1e-5).abs() < 1e-12);
        opt.step = 50;
        assert!((opt.learning_rate() - 5e-4).abs() < 1e-12);
        opt.step = 100;
        assert!((opt.learning_rate() - 1e-3).abs() < 1e-12);
    }
}
