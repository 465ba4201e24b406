//! Minimising a built-in objective with an optimizer for a number of steps,
//! recording the loss and the parameters after every step.

use thiserror::Error;

use super::objectives::{Objective, ObjectiveError};
use super::{OptimError, Optimizer};
use crate::core::rng::SplitMix64;

/// Why a run could not start.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RunError {
    #[error(transparent)]
    Objective(#[from] ObjectiveError),
    #[error(transparent)]
    Optim(#[from] OptimError),
}

/// The recorded trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// `losses[k]` is the full objective at `path[k]`; index 0 is the start.
    pub losses: Vec<f64>,
    /// Parameters at the start and after each step taken.
    pub path: Vec<Vec<f64>>,
    /// Set when the run stopped before `steps` because the next point (or its
    /// loss) would have been non-finite: the step at which it diverged.
    pub diverged_at_step: Option<usize>,
}

impl Trace {
    /// Steps actually taken (`path.len() - 1`).
    pub fn steps_taken(&self) -> usize {
        self.path.len().saturating_sub(1)
    }
}

/// Runs `optimizer` on `objective` from `start` for `steps` steps.
///
/// Every step takes the gradient (for logistic, of the next mini-batch: each
/// epoch visits the samples in an order shuffled with the objective's `seed`
/// and cuts it into batches of `batch_size`, the last one possibly smaller,
/// like a `DataLoader` without `drop_last`; full batches are never shuffled),
/// then one optimizer step. The loss recorded is always the full objective,
/// so curves of different batch sizes compare.
///
/// A run that diverges stops at the first step whose parameters or loss
/// would be non-finite and says so in [`Trace::diverged_at_step`]; what was
/// recorded up to there is returned.
///
/// # Errors
/// [`ObjectiveError::LengthMismatch`] when `start` does not have the
/// objective's dimension; [`ObjectiveError::Invalid`] when the loss at
/// `start` is not finite.
pub fn run(
    optimizer: &Optimizer,
    objective: &Objective,
    start: Vec<f64>,
    steps: usize,
) -> Result<Trace, RunError> {
    let d = objective.dimension();
    if start.len() != d {
        return Err(ObjectiveError::LengthMismatch {
            name: "start",
            found: start.len(),
            other: "the objective's parameter vector",
            expected: d,
        }
        .into());
    }
    let start_loss = objective.loss(&start);
    if !start_loss.is_finite() {
        return Err(ObjectiveError::Invalid {
            name: "start",
            expected: "a point where the objective is finite",
            found: format!("loss {start_loss}"),
        }
        .into());
    }
    let mut batches = Batches::for_objective(objective);
    let mut state = optimizer.init_state(d);
    let mut params = start;
    // The capacity hint is bounded so a huge `steps` from a library caller
    // grows the vectors as it goes instead of reserving everything up front.
    let capacity = steps.saturating_add(1).min(1 << 16);
    let mut trace = Trace {
        losses: Vec::with_capacity(capacity),
        path: Vec::with_capacity(capacity),
        diverged_at_step: None,
    };
    trace.losses.push(start_loss);
    trace.path.push(params.clone());
    for step in 1..=steps {
        let grads = objective.gradient(&params, batches.as_mut().map(Batches::next_batch));
        let moved = optimizer.step(&mut params, &grads, &mut state);
        let loss = objective.loss(&params);
        if moved.is_err() || !loss.is_finite() || grads.iter().any(|g| !g.is_finite()) {
            trace.diverged_at_step = Some(step);
            break;
        }
        trace.losses.push(loss);
        trace.path.push(params.clone());
    }
    Ok(trace)
}

/// Mini-batch schedule over `n` samples.
struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    position: usize,
    rng: SplitMix64,
}

impl Batches {
    /// A schedule for logistic objectives with batches smaller than the data;
    /// `None` (use every sample) otherwise.
    fn for_objective(objective: &Objective) -> Option<Batches> {
        match objective {
            Objective::Logistic(l) if l.batch_size < l.samples() => Some(Batches {
                order: (0..l.samples()).collect(),
                batch_size: l.batch_size,
                position: l.samples(),
                rng: SplitMix64::new(l.seed),
            }),
            _ => None,
        }
    }

    /// The next batch of sample indices; reshuffles at each epoch start.
    fn next_batch(&mut self) -> &[usize] {
        if self.position >= self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.position = 0;
        }
        let start = self.position;
        let end = (start + self.batch_size).min(self.order.len());
        self.position = end;
        self.order.get(start..end).unwrap_or(&[])
    }
}
