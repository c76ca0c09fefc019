//! Iterative nullspace projection (Ravfogel et al., 2020), the projection P that A-INLP
//! mixes into the language model's hidden state: repeatedly fit a linear classifier of
//! the protected attribute on the (already projected) embeddings and remove the
//! direction it uses. P = I - Q Q^T, Q an orthonormal basis of every direction removed,
//! so P is symmetric and idempotent by construction.

use nalgebra::{DMatrix, DVector};

/// A linear classifier `w . x + b > 0` of a binary attribute.
#[derive(Debug, Clone)]
pub struct LinearClassifier {
    pub weights: DVector<f64>,
    pub bias: f64,
}

impl LinearClassifier {
    /// Ridge least squares on targets +1 (true) and -1 (false), `x` with one example
    /// per row. The bias is not penalised.
    pub fn fit(x: &DMatrix<f64>, labels: &[bool], ridge: f64) -> Self {
        assert_eq!(x.nrows(), labels.len(), "one label per row");
        let (n, d) = (x.nrows(), x.ncols());
        // Augment with a column of ones for the bias.
        let mut a = DMatrix::zeros(n, d + 1);
        a.view_mut((0, 0), (n, d)).copy_from(x);
        a.column_mut(d).fill(1.0);
        let t = DVector::from_iterator(n, labels.iter().map(|&l| if l { 1.0 } else { -1.0 }));
        let mut gram = a.transpose() * &a;
        for i in 0..d {
            gram[(i, i)] += ridge;
        }
        let rhs = a.transpose() * t;
        let solution = gram
            .cholesky()
            .map(|c| c.solve(&rhs))
            .unwrap_or_else(|| DVector::zeros(d + 1));
        Self {
            weights: solution.rows(0, d).into_owned(),
            bias: solution[d],
        }
    }

    /// Fraction of rows of `x` classified as their label.
    pub fn accuracy(&self, x: &DMatrix<f64>, labels: &[bool]) -> f64 {
        let scores = x * &self.weights;
        let hits = scores
            .iter()
            .zip(labels)
            .filter(|(s, l)| (**s + self.bias > 0.0) == **l)
            .count();
        hits as f64 / labels.len().max(1) as f64
    }
}

/// The result of INLP: the directions removed and the projection onto what is left.
#[derive(Debug, Clone)]
pub struct Inlp {
    /// Orthonormal removed directions, one per column.
    pub removed: DMatrix<f64>,
    /// `I - removed removed^T`, `d x d`.
    pub projection: DMatrix<f64>,
    /// Dev accuracy of each round's classifier (the last one is below the stopping mark
    /// unless the round limit was reached).
    pub accuracies: Vec<f64>,
}

/// Embeddings, one per row, with their binary attribute.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    pub x: &'a DMatrix<f64>,
    pub labels: &'a [bool],
}

/// Runs INLP for at most `iterations` rounds: each round fits a classifier on the
/// (projected) `train` embeddings and stops once its accuracy on the projected `dev`
/// embeddings is within `margin` of the dev majority-class rate, since removing
/// directions no classifier can use would only erase information (and, once every
/// direction is gone, leave rounding noise that still carries the attribute).
pub fn inlp(
    train: Labelled<'_>,
    dev: Labelled<'_>,
    iterations: usize,
    ridge: f64,
    margin: f64,
) -> Inlp {
    let n = dev.labels.len().max(1) as f64;
    let positive = dev.labels.iter().filter(|&&l| l).count() as f64 / n;
    let majority = positive.max(1.0 - positive);
    let d = train.x.ncols();
    let mut basis: Vec<DVector<f64>> = Vec::new();
    let mut projection = DMatrix::identity(d, d);
    let mut accuracies = Vec::new();
    for _ in 0..iterations {
        let classifier = LinearClassifier::fit(&(train.x * &projection), train.labels, ridge);
        let accuracy = classifier.accuracy(&(dev.x * &projection), dev.labels);
        accuracies.push(accuracy);
        if accuracy < majority + margin {
            break;
        }
        // Gram-Schmidt against the directions already removed.
        let mut w = classifier.weights;
        for b in &basis {
            w -= b * b.dot(&w);
        }
        let norm = w.norm();
        if norm < 1e-10 {
            break;
        }
        basis.push(w / norm);
        let q = DMatrix::from_columns(&basis);
        projection = DMatrix::identity(d, d) - &q * q.transpose();
    }
    let removed = if basis.is_empty() {
        DMatrix::zeros(d, 0)
    } else {
        DMatrix::from_columns(&basis)
    };
    Inlp {
        removed,
        projection,
        accuracies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift) and Box-Muller normals.
    struct Normals(u64);
    impl Normals {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// Embeddings whose attribute shifts two of eight coordinates (and a mix of them).
    fn embeddings(n: usize, seed: u64) -> (DMatrix<f64>, Vec<bool>) {
        let mut g = Normals(seed);
        let labels: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let x = DMatrix::from_fn(n, 8, |i, j| {
            let s = if labels[i] { 1.0 } else { -1.0 };
            let shift = match j {
                0 => 1.5 * s,
                1 => -s,
                2 => 0.5 * s,
                _ => 0.0,
            };
            shift + g.normal()
        });
        (x, labels)
    }

    #[test]
    fn the_projection_is_symmetric_and_idempotent() {
        let (x, y) = embeddings(1000, 3);
        let data = Labelled { x: &x, labels: &y };
        let result = inlp(data, data, 6, 1e-3, 0.01);
        let removed = result.removed.ncols();
        assert!((1..8).contains(&removed), "{removed} directions removed");
        let p = result.projection;
        assert!((&p - p.transpose()).abs().max() < 1e-12);
        assert!((&p * &p - &p).abs().max() < 1e-10);
    }

    #[test]
    fn after_inlp_a_fresh_classifier_is_at_chance() {
        let (train, train_y) = embeddings(4000, 5);
        let (test, test_y) = embeddings(4000, 7);
        let before = LinearClassifier::fit(&train, &train_y, 1e-3);
        assert!(before.accuracy(&test, &test_y) > 0.9);
        let (dev, dev_y) = embeddings(1000, 9);
        let result = inlp(
            Labelled {
                x: &train,
                labels: &train_y,
            },
            Labelled {
                x: &dev,
                labels: &dev_y,
            },
            8,
            1e-3,
            0.01,
        );
        assert!(result.accuracies[0] > 0.9, "{:?}", result.accuracies);
        assert!(result.removed.ncols() < 8, "{:?}", result.accuracies);
        let p = &result.projection;
        let after = LinearClassifier::fit(&(&train * p), &train_y, 1e-3);
        let accuracy = after.accuracy(&(&test * p), &test_y);
        assert!(
            (accuracy - 0.5).abs() < 0.03,
            "held-out accuracy {accuracy}"
        );
    }
}
