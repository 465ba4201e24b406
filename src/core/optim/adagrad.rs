//! Adagrad: per-coordinate step sizes shrinking with the summed squared
//! gradients: `torch.optim.Adagrad` (`_single_tensor_adagrad`, dense).

use super::hyper::{non_negative, positive, Hyperparameter};
use super::{
    check_len, check_non_negative, effective_grad, next_step, Hyperparameters, OptimError,
};

/// Checked Adagrad hyperparameters (torch's defaults in [`Default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Adagrad {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub initial_accumulator_value: f64,
    pub eps: f64,
    pub maximize: bool,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
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
    pub fn buffers(&self) -> Vec<(&'static str, &[f64])> {
        vec![("sum", &self.sum)]
    }
}

impl Adagrad {
    /// Checks `h`: `lr`, `eps` > 0 (torch allows eps 0, which divides 0 by 0
    /// on a zero gradient); `lr_decay`, `weight_decay`,
    /// `initial_accumulator_value` >= 0.
    pub fn from_hyperparameters(h: &Hyperparameters) -> Result<Self, OptimError> {
        let d = Adagrad::default();
        Ok(Adagrad {
            lr: positive("lr", h.lr.unwrap_or(d.lr))?,
            lr_decay: non_negative("lr_decay", h.lr_decay.unwrap_or(d.lr_decay))?,
            weight_decay: non_negative("weight_decay", h.weight_decay.unwrap_or(d.weight_decay))?,
            initial_accumulator_value: non_negative(
                "initial_accumulator_value",
                h.initial_accumulator_value
                    .unwrap_or(d.initial_accumulator_value),
            )?,
            eps: positive("eps", h.eps.unwrap_or(d.eps))?,
            maximize: h.maximize.unwrap_or(d.maximize),
        })
    }

    /// Catalogue entries with these values as defaults.
    pub fn hyperparameters(&self) -> Vec<Hyperparameter> {
        vec![
            Hyperparameter::number("lr", self.lr, "learning rate, > 0"),
            Hyperparameter::number(
                "lr_decay",
                self.lr_decay,
                "learning-rate decay per step, >= 0",
            ),
            Hyperparameter::number(
                "weight_decay",
                self.weight_decay,
                "L2 penalty added to the gradient, >= 0",
            ),
            Hyperparameter::number(
                "initial_accumulator_value",
                self.initial_accumulator_value,
                "starting value of the squared-gradient sum, >= 0",
            ),
            Hyperparameter::number("eps", self.eps, "added to the square root of the sum, > 0"),
            Hyperparameter::flag("maximize", self.maximize, "ascend instead of descend"),
        ]
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
