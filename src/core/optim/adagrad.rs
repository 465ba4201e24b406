//! Adagrad: per-coordinate step sizes shrinking with the summed squared
//! gradients: `torch.optim.Adagrad` (`_single_tensor_adagrad`, dense).

use super::hyper::{hyperparameter_set, non_negative, positive};
use super::{check_len, check_non_negative, effective_grad, next_step, Buffer, OptimError};

hyperparameter_set! {
    /// Adagrad's hyperparameters, torch's defaults.
    pub struct Adagrad {
        /// learning rate, > 0
        lr: f64 = 1e-2,
        /// learning-rate decay per step, >= 0
        lr_decay: f64 = 0.0,
        /// L2 penalty added to the gradient, >= 0
        weight_decay: f64 = 0.0,
        /// starting value of the squared-gradient sum, >= 0
        initial_accumulator_value: f64 = 0.0,
        /// added to the square root of the sum, > 0
        eps: f64 = 1e-10,
        /// ascend instead of descend
        maximize: bool = false,
    }
}

/// Adagrad state: step count and `sum`, the running sum of squared gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct AdagradState {
    pub step: u64,
    pub sum: Vec<f64>,
}

impl AdagradState {
    /// Buffers present, by torch name.
    pub fn buffers(&self) -> Vec<(Buffer, &[f64])> {
        vec![(Buffer::Sum, &self.sum)]
    }
}

impl Adagrad {
    /// Checks the values: `lr`, `eps` > 0 (torch allows eps 0, which
    /// divides 0 by 0 on a zero gradient); `lr_decay`, `weight_decay`,
    /// `initial_accumulator_value` >= 0.
    pub fn checked(self) -> Result<Self, OptimError> {
        Ok(Adagrad {
            lr: positive("lr", self.lr)?,
            lr_decay: non_negative("lr_decay", self.lr_decay)?,
            weight_decay: non_negative("weight_decay", self.weight_decay)?,
            initial_accumulator_value: non_negative(
                "initial_accumulator_value",
                self.initial_accumulator_value,
            )?,
            eps: positive("eps", self.eps)?,
            maximize: self.maximize,
        })
    }

    /// Fresh state: `sum` filled with `initial_accumulator_value`.
    pub fn init_state(&self, len: usize) -> AdagradState {
        AdagradState {
            step: 0,
            sum: vec![self.initial_accumulator_value; len],
        }
    }

    /// One step (t counts from 1):
    ///
    /// ```text
    /// g = ±grad + weight_decay * p
    /// clr = lr / (1 + (t - 1) * lr_decay)
    /// sum = sum + g * g
    /// p = p - clr * g / (sqrt(sum) + eps)
    /// ```
    pub(crate) fn step(
        &self,
        params: &mut [f64],
        grads: &[f64],
        state: &mut AdagradState,
    ) -> Result<(), OptimError> {
        check_len("state.sum", state.sum.len(), params.len())?;
        check_non_negative("sum", &state.sum)?;
        let step = next_step(state.step)?;
        let clr = self.lr / (1.0 + (step - 1) as f64 * self.lr_decay);
        for ((p, grad), sum) in params.iter_mut().zip(grads).zip(state.sum.iter_mut()) {
            let g = effective_grad(*grad, *p, self.weight_decay, self.maximize);
            *sum += g * g;
            let std = sum.sqrt() + self.eps;
            *p += -clr * (g / std);
        }
        state.step = step;
        Ok(())
    }
}
