//! RMSprop, plain or centered, with optional momentum: `torch.optim.RMSprop`
//! (`_single_tensor_rmsprop`).

use super::hyper::{hyperparameter_set, non_negative, positive, unit_closed};
use super::{check_len, check_non_negative, effective_grad, lerp, next_step, Buffer, OptimError};

hyperparameter_set! {
    /// RMSprop's hyperparameters, torch's defaults.
    pub struct Rmsprop {
        /// learning rate, > 0
        lr: f64 = 1e-2,
        /// smoothing constant of the squared-gradient average, in [0, 1]
        alpha: f64 = 0.99,
        /// added to the root-mean-square, > 0
        eps: f64 = 1e-8,
        /// L2 penalty added to the gradient, >= 0
        weight_decay: f64 = 0.0,
        /// momentum factor, >= 0
        momentum: f64 = 0.0,
        /// normalise by the estimated variance instead of the raw second moment
        centered: bool = false,
        /// ascend instead of descend
        maximize: bool = false,
    }
}

/// RMSprop state: step count, `square_avg`; `momentum_buffer` when momentum
/// > 0 and `grad_avg` when centered (created, as in torch, at initialisation).
#[derive(Debug, Clone, PartialEq)]
pub struct RmspropState {
    pub step: u64,
    pub square_avg: Vec<f64>,
    pub momentum_buffer: Option<Vec<f64>>,
    pub grad_avg: Option<Vec<f64>>,
}

impl RmspropState {
    /// Buffers present, by torch name.
    pub fn buffers(&self) -> Vec<(Buffer, &[f64])> {
        let mut out: Vec<(Buffer, &[f64])> = vec![(Buffer::SquareAvg, &self.square_avg)];
        if let Some(b) = &self.momentum_buffer {
            out.push((Buffer::MomentumBuffer, b));
        }
        if let Some(b) = &self.grad_avg {
            out.push((Buffer::GradAvg, b));
        }
        out
    }
}

impl Rmsprop {
    /// Checks the values: `lr`, `eps` > 0; `alpha` in [0, 1] (torch only
    /// asks >= 0, but alpha > 1 makes `square_avg` negative); `momentum`,
    /// `weight_decay` >= 0.
    pub fn checked(self) -> Result<Self, OptimError> {
        Ok(Rmsprop {
            lr: positive("lr", self.lr)?,
            alpha: unit_closed("alpha", self.alpha)?,
            eps: positive("eps", self.eps)?,
            weight_decay: non_negative("weight_decay", self.weight_decay)?,
            momentum: non_negative("momentum", self.momentum)?,
            ..self
        })
    }

    /// Fresh state: zero `square_avg`, plus zero `momentum_buffer` / `grad_avg`
    /// when momentum > 0 / centered.
    pub fn init_state(&self, len: usize) -> RmspropState {
        RmspropState {
            step: 0,
            square_avg: vec![0.0; len],
            momentum_buffer: (self.momentum > 0.0).then(|| vec![0.0; len]),
            grad_avg: self.centered.then(|| vec![0.0; len]),
        }
    }

    /// One step:
    ///
    /// ```text
    /// g = ±grad + weight_decay * p
    /// v = alpha * v + (1 - alpha) * g^2
    /// centered:  m = lerp(m, g, 1 - alpha);  avg = sqrt(v - m^2) + eps
    /// otherwise: avg = sqrt(v) + eps
    /// momentum > 0: b = momentum * b + g / avg;  p = p - lr * b
    /// otherwise:    p = p - lr * g / avg
    /// ```
    pub(crate) fn step(
        &self,
        params: &mut [f64],
        grads: &[f64],
        state: &mut RmspropState,
    ) -> Result<(), OptimError> {
        let n = params.len();
        check_len("state.square_avg", state.square_avg.len(), n)?;
        check_non_negative("square_avg", &state.square_avg)?;
        let step = next_step(state.step)?;
        let mut momentum_buffer = required(
            state.momentum_buffer.take(),
            self.momentum > 0.0,
            ("momentum_buffer", "state.momentum_buffer"),
            "momentum > 0",
            n,
        )?;
        let mut grad_avg = required(
            state.grad_avg.take(),
            self.centered,
            ("grad_avg", "state.grad_avg"),
            "centered is true",
            n,
        )?;
        for (i, ((p, grad), v)) in params
            .iter_mut()
            .zip(grads)
            .zip(state.square_avg.iter_mut())
            .enumerate()
        {
            let g = effective_grad(*grad, *p, self.weight_decay, self.maximize);
            *v = *v * self.alpha + (1.0 - self.alpha) * g * g;
            let rms = match grad_avg
                .as_mut()
                .and_then(|m| m.get_mut(i))
                .filter(|_| self.centered)
            {
                Some(m) => {
                    *m = lerp(*m, g, 1.0 - self.alpha);
                    (*v - *m * *m).sqrt()
                }
                None => v.sqrt(),
            };
            let avg = rms + self.eps;
            match momentum_buffer
                .as_mut()
                .and_then(|b| b.get_mut(i))
                .filter(|_| self.momentum > 0.0)
            {
                Some(b) => {
                    *b = *b * self.momentum + g / avg;
                    *p += -self.lr * *b;
                }
                None => *p += -self.lr * (g / avg),
            }
        }
        state.momentum_buffer = momentum_buffer;
        state.grad_avg = grad_avg;
        state.step = step;
        Ok(())
    }
}

/// `buffer` checked for length when present; `MissingBuffer` when absent but
/// `needed`. An unneeded buffer is kept untouched, as torch keeps it.
fn required(
    buffer: Option<Vec<f64>>,
    needed: bool,
    (name, field): (&'static str, &'static str),
    reason: &'static str,
    len: usize,
) -> Result<Option<Vec<f64>>, OptimError> {
    match buffer {
        Some(b) => {
            check_len(field, b.len(), len)?;
            Ok(Some(b))
        }
        None if needed => Err(OptimError::MissingBuffer {
            buffer: name,
            optimizer: "rmsprop",
            reason,
        }),
        None => Ok(None),
    }
}
