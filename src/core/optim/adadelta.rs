//! Adadelta: step sizes from the ratio of running RMS of updates and of
//! gradients: `torch.optim.Adadelta` (`_single_tensor_adadelta`).

use super::hyper::{hyperparameter_set, non_negative, positive, unit_closed};
use super::{check_len, check_non_negative, effective_grad, next_step, Buffer, OptimError};

hyperparameter_set! {
    /// Adadelta's hyperparameters, torch's defaults.
    pub struct Adadelta {
        /// scale applied to the update, > 0
        lr: f64 = 1.0,
        /// decay of both running averages, in [0, 1]
        rho: f64 = 0.9,
        /// added inside both square roots, > 0
        eps: f64 = 1e-6,
        /// L2 penalty added to the gradient, >= 0
        weight_decay: f64 = 0.0,
        /// ascend instead of descend
        maximize: bool = false,
    }
}

/// Adadelta state: step count, `square_avg` (of gradients) and `acc_delta`
/// (of updates).
#[derive(Debug, Clone, PartialEq)]
pub struct AdadeltaState {
    pub step: u64,
    pub square_avg: Vec<f64>,
    pub acc_delta: Vec<f64>,
}

impl AdadeltaState {
    /// Fresh state of `len` zeros.
    pub fn zeros(len: usize) -> Self {
        AdadeltaState {
            step: 0,
            square_avg: vec![0.0; len],
            acc_delta: vec![0.0; len],
        }
    }

    /// Buffers present, by torch name.
    pub fn buffers(&self) -> Vec<(Buffer, &[f64])> {
        vec![
            (Buffer::SquareAvg, &self.square_avg),
            (Buffer::AccDelta, &self.acc_delta),
        ]
    }
}

impl Adadelta {
    /// Checks the values: `lr`, `eps` > 0 (eps 0 divides 0 by 0 on the
    /// first step); `rho` in [0, 1]; `weight_decay` >= 0.
    pub fn checked(self) -> Result<Self, OptimError> {
        Ok(Adadelta {
            lr: positive("lr", self.lr)?,
            rho: unit_closed("rho", self.rho)?,
            eps: positive("eps", self.eps)?,
            weight_decay: non_negative("weight_decay", self.weight_decay)?,
            maximize: self.maximize,
        })
    }

    /// One step:
    ///
    /// ```text
    /// g = ±grad + weight_decay * p
    /// v = rho * v + (1 - rho) * g^2
    /// delta = sqrt(u + eps) / sqrt(v + eps) * g
    /// u = rho * u + (1 - rho) * delta^2
    /// p = p - lr * delta
    /// ```
    pub(crate) fn step(
        &self,
        params: &mut [f64],
        grads: &[f64],
        state: &mut AdadeltaState,
    ) -> Result<(), OptimError> {
        let n = params.len();
        check_len("state.square_avg", state.square_avg.len(), n)?;
        check_len("state.acc_delta", state.acc_delta.len(), n)?;
        check_non_negative("square_avg", &state.square_avg)?;
        check_non_negative("acc_delta", &state.acc_delta)?;
        let step = next_step(state.step)?;
        let rows = params
            .iter_mut()
            .zip(grads)
            .zip(state.square_avg.iter_mut().zip(state.acc_delta.iter_mut()));
        for ((p, grad), (v, u)) in rows {
            let g = effective_grad(*grad, *p, self.weight_decay, self.maximize);
            *v = *v * self.rho + (1.0 - self.rho) * g * g;
            let std = (*v + self.eps).sqrt();
            let delta = (*u + self.eps).sqrt() / std * g;
            *u = *u * self.rho + (1.0 - self.rho) * delta * delta;
            *p += -self.lr * delta;
        }
        state.step = step;
        Ok(())
    }
}
