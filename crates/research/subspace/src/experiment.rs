//! One seed of the paper's experiment: a full training run that yields the burn-in
//! anchors, the lottery trajectory and the lottery-ticket mask, then runs of each method
//! at a training dimension d, scored by train and test accuracy.

use candle_core::{Result, Tensor, Var};

use crate::basis::Basis;
use crate::lottery::lottery_basis;
use crate::subspace::AffineSubspace;
use crate::train::{Labelled, Space, TrainConfig, accuracy, magnitude_mask, train};

/// How the d trained degrees of freedom are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// A random affine subspace through the initialisation.
    Random,
    /// A random affine subspace through the point after `t` full-space steps.
    BurnIn(usize),
    /// The top-d principal directions of the full run's trajectory (centred, without its
    /// end point), through the initialisation.
    Lottery,
    /// Global magnitude pruning of the full run's end point, keeping d weights, rewound
    /// to the initialisation (the lottery-ticket baseline at compression D/d).
    Ticket,
}

impl Method {
    /// `random`, `burn-in-64`, `lottery`, `ticket`.
    pub fn label(&self) -> String {
        match self {
            Method::Random => "random".into(),
            Method::BurnIn(t) => format!("burn-in-{t}"),
            Method::Lottery => "lottery".into(),
            Method::Ticket => "ticket".into(),
        }
    }

    pub fn parse(label: &str) -> Option<Self> {
        match label {
            "random" => Some(Method::Random),
            "lottery" => Some(Method::Lottery),
            "ticket" => Some(Method::Ticket),
            _ => label
                .strip_prefix("burn-in-")?
                .parse()
                .ok()
                .map(Method::BurnIn),
        }
    }
}

/// Random bases: the paper's dense Gaussian, or sparse with `per_column` non-zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BasisKind {
    Dense,
    Sparse { per_column: usize },
}

/// What a seed's full-space run leaves for the subspace runs.
pub struct SeedRun {
    pub theta_init: Tensor,
    /// `(t, theta after t full steps)` for each burn-in length.
    pub anchors: Vec<(usize, Tensor)>,
    /// The trajectory's top principal directions (at most one fewer than its snapshots).
    pub lottery: Basis,
    /// The end point of full training.
    pub end: Tensor,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

impl SeedRun {
    /// The share of the full run's displacement `end - init` (by norm) that lies in the
    /// top-d lottery directions, for each d of `dims` no larger than the basis: how much
    /// of the trained solution a lottery subspace holds before it is trained.
    pub fn end_in_lottery(&self, dims: &[usize]) -> Result<Vec<(usize, f64)>> {
        let displacement = (&self.end - &self.theta_init)?;
        let norm = displacement.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64;
        let coefficients: Vec<f32> = self.lottery.project(&displacement)?.to_vec1()?;
        let mut out = Vec::new();
        for &d in dims.iter().filter(|d| **d <= coefficients.len()) {
            let inside: f64 = coefficients[..d].iter().map(|c| (*c as f64).powi(2)).sum();
            out.push((d, inside.sqrt() / norm.max(1e-30)));
        }
        Ok(out)
    }
}

/// The experiment's data and schedule.
pub struct Setup<'a, F> {
    pub forward: F,
    pub train: &'a Labelled,
    pub test: &'a Labelled,
    /// The full-space schedule (also that of the lottery ticket).
    pub full: TrainConfig,
    /// Learning rate of the subspace coordinates phi (Adam moves each coordinate by about
    /// lr a step, and a unit basis vector spreads that over D parameters).
    pub subspace_lr: f64,
    pub basis: BasisKind,
}

/// Chunk size of accuracy evaluation.
const EVAL_CHUNK: usize = 500;

impl<F> Setup<'_, F>
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor>,
{
    /// Train and test accuracy of `theta`.
    pub fn score(&self, theta: &Tensor) -> Result<(f64, f64)> {
        Ok((
            accuracy(&self.forward, theta, self.train, EVAL_CHUNK)?,
            accuracy(&self.forward, theta, self.test, EVAL_CHUNK)?,
        ))
    }

    /// Full training from `theta_init`, recording the parameters at each burn-in length
    /// and every few steps from the start to before the end (the lottery trajectory: at
    /// least `lottery_d + 1` points, so that its principal directions number `lottery_d`).
    pub fn seed_run(
        &self,
        theta_init: &Tensor,
        burn_in: &[usize],
        lottery_d: usize,
    ) -> Result<SeedRun> {
        let steps = self.full.steps;
        if let Some(t) = burn_in.iter().find(|t| **t > steps) {
            return Err(candle_core::Error::Msg(format!(
                "burn-in of {t} steps is longer than the {steps}-step full run"
            )));
        }
        // Snapshots at steps 0, every, 2 every, ... < steps: ceil(steps / every) of them.
        if lottery_d + 1 > steps {
            return Err(candle_core::Error::Msg(format!(
                "a lottery basis of {lottery_d} directions needs {} trajectory points \
                 before the end; the full run has {steps} steps",
                lottery_d + 1
            )));
        }
        let every = (steps / (lottery_d + 1)).max(1);
        let var = Var::from_tensor(theta_init)?;
        let mut snapshots = vec![theta_init.to_vec1::<f32>()?];
        let mut anchors = Vec::new();
        train(
            &self.forward,
            &Space::Full(&var),
            self.train,
            self.full,
            |step, _| {
                let done = step + 1;
                // `copy`, not `clone`: the optimiser updates the variable's storage in
                // place, so a clone would follow it to the end point.
                if burn_in.contains(&done) {
                    anchors.push((done, var.as_tensor().copy()?));
                }
                if done % every == 0 && done < steps {
                    snapshots.push(var.as_tensor().to_vec1::<f32>()?);
                }
                Ok(())
            },
        )?;
        let lottery = lottery_basis(&snapshots, lottery_d, theta_init.device())?;
        let end = var.as_tensor().copy()?;
        let (train_accuracy, test_accuracy) = self.score(&end)?;
        Ok(SeedRun {
            theta_init: theta_init.clone(),
            anchors,
            lottery,
            end,
            train_accuracy,
            test_accuracy,
        })
    }

    /// Trains `method` at dimension `d` (basis and minibatch order seeded by
    /// `seed`) and returns (train, test) accuracy.
    pub fn run(
        &self,
        seed_run: &SeedRun,
        method: Method,
        d: usize,
        seed: u64,
    ) -> Result<(f64, f64)> {
        let dim = seed_run.theta_init.dim(0)?;
        let device = seed_run.theta_init.device();
        let random_basis = || match self.basis {
            BasisKind::Dense => Basis::gaussian(dim, d, seed, device),
            BasisKind::Sparse { per_column } => {
                Basis::sparse_gaussian(dim, d, per_column, seed, device)
            }
        };
        let sub_config = TrainConfig {
            lr: self.subspace_lr,
            seed,
            ..self.full
        };
        let theta = match method {
            Method::Random | Method::BurnIn(_) | Method::Lottery => {
                let (anchor, basis) = match method {
                    Method::Random => (seed_run.theta_init.clone(), random_basis()?),
                    Method::BurnIn(t) => {
                        let anchor =
                            seed_run.anchors.iter().find(|a| a.0 == t).ok_or_else(|| {
                                candle_core::Error::Msg(format!("no burn-in anchor at {t}"))
                            })?;
                        (anchor.1.clone(), random_basis()?)
                    }
                    _ => (
                        seed_run.theta_init.clone(),
                        seed_run.lottery.first_columns(d)?,
                    ),
                };
                let sub = AffineSubspace::new(anchor, basis)?;
                train(
                    &self.forward,
                    &Space::Sub(&sub),
                    self.train,
                    sub_config,
                    |_, _| Ok(()),
                )?;
                sub.theta()?
            }
            Method::Ticket => {
                let mask = magnitude_mask(&seed_run.end, d)?;
                let var = Var::from_tensor(&seed_run.theta_init)?;
                let config = TrainConfig { seed, ..self.full };
                train(
                    &self.forward,
                    &Space::Masked(&var, &mask),
                    self.train,
                    config,
                    |_, _| Ok(()),
                )?;
                var.as_tensor().mul(&mask)?
            }
        };
        self.score(&theta)
    }
}
