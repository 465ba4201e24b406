//! Adam and AdamW, with optional AMSGrad: `torch.optim.Adam` / `AdamW`
//! (`_single_tensor_adam`, the non-capturable branch). They differ only in
//! where weight decay enters: Adam adds `weight_decay * p` to the gradient
//! (coupled, an L2 penalty); AdamW shrinks `p` by `1 - lr * weight_decay`
//! before the update (decoupled, Loshchilov & Hutter 2019).

use super::hyper::{hyperparameter_set, non_negative, positive, unit_half_open};
use super::{check_len, check_non_negative, lerp, next_step, Buffer, OptimError};

hyperparameter_set! {
    /// Adam's hyperparameters, torch's defaults.
    pub struct Adam {
        /// learning rate, > 0
        lr: f64 = 1e-3,
        /// decay rates of the first and second moment averages, each in [0, 1)
        betas: [f64; 2] = [0.9, 0.999],
        /// added to the bias-corrected root of the second moment, > 0
        eps: f64 = 1e-8,
        /// L2 penalty added to the gradient (coupled), >= 0
        weight_decay: f64 = 0.0,
        /// use the running maximum of the second moment (AMSGrad)
        amsgrad: bool = false,
        /// ascend instead of descend
        maximize: bool = false,
    }
}

hyperparameter_set! {
    /// AdamW's hyperparameters, torch's defaults: Adam's, with decoupled
    /// weight decay 0.01.
    pub struct AdamW {
        /// learning rate, > 0
        lr: f64 = 1e-3,
        /// decay rates of the first and second moment averages, each in [0, 1)
        betas: [f64; 2] = [0.9, 0.999],
        /// added to the bias-corrected root of the second moment, > 0
        eps: f64 = 1e-8,
        /// decoupled weight decay: p is multiplied by 1 - lr * weight_decay before the update, >= 0
        weight_decay: f64 = 1e-2,
        /// use the running maximum of the second moment (AMSGrad)
        amsgrad: bool = false,
        /// ascend instead of descend
        maximize: bool = false,
    }
}

/// Adam state: step count, `exp_avg` (first moment), `exp_avg_sq` (second
/// moment) and, with AMSGrad, `max_exp_avg_sq` (their running maximum).
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    pub step: u64,
    pub exp_avg: Vec<f64>,
    pub exp_avg_sq: Vec<f64>,
    pub max_exp_avg_sq: Option<Vec<f64>>,
}

impl AdamState {
    /// Buffers present.
    pub fn buffers(&self) -> Vec<(Buffer, &[f64])> {
        let mut out: Vec<(Buffer, &[f64])> = vec![
            (Buffer::ExpAvg, &self.exp_avg),
            (Buffer::ExpAvgSq, &self.exp_avg_sq),
        ];
        if let Some(b) = &self.max_exp_avg_sq {
            out.push((Buffer::MaxExpAvgSq, b));
        }
        out
    }
}

/// `checked` and the update rule of a struct with Adam's fields; `decoupled`
/// says where weight decay enters.
macro_rules! adam_rule {
    ($name:ident, decoupled: $decoupled:expr) => {
        impl $name {
            /// Checks the values: `lr`, `eps` > 0; both betas in [0, 1) (beta 1
            /// would make the bias correction 1 - beta^t zero); `weight_decay` >= 0.
            pub fn checked(self) -> Result<Self, OptimError> {
                self.rule().check()?;
                Ok(self)
            }

            /// The update rule.
            pub(crate) fn rule(&self) -> AdamRule {
                AdamRule {
                    lr: self.lr,
                    beta1: self.betas[0],
                    beta2: self.betas[1],
                    eps: self.eps,
                    weight_decay: self.weight_decay,
                    amsgrad: self.amsgrad,
                    maximize: self.maximize,
                    decoupled_weight_decay: $decoupled,
                }
            }
        }
    };
}

adam_rule!(Adam, decoupled: false);
adam_rule!(AdamW, decoupled: true);

/// The update both share: Adam's or AdamW's hyperparameters, betas apart,
/// and where weight decay enters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdamRule {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    maximize: bool,
    /// true for AdamW.
    decoupled_weight_decay: bool,
}

impl AdamRule {
    /// The checks of [`Adam::checked`], in the order errors are reported.
    fn check(&self) -> Result<(), OptimError> {
        positive("lr", self.lr)?;
        unit_half_open("betas[0]", self.beta1)?;
        unit_half_open("betas[1]", self.beta2)?;
        positive("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        Ok(())
    }

    /// Fresh state: zero moments (and zero `max_exp_avg_sq` with AMSGrad).
    pub(crate) fn init_state(&self, len: usize) -> AdamState {
        AdamState {
            step: 0,
            exp_avg: vec![0.0; len],
            exp_avg_sq: vec![0.0; len],
            max_exp_avg_sq: self.amsgrad.then(|| vec![0.0; len]),
        }
    }

    /// One step (t counts from 1):
    ///
    /// ```text
    /// g = ±grad;  Adam: g = g + weight_decay * p;  AdamW: p = p * (1 - lr * weight_decay)
    /// m = lerp(m, g, 1 - beta1)
    /// v = beta2 * v + (1 - beta2) * g^2
    /// amsgrad: v_max = max(v_max, v), used for v below
    /// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    /// ```
    pub(crate) fn step(
        &self,
        params: &mut [f64],
        grads: &[f64],
        state: &mut AdamState,
    ) -> Result<(), OptimError> {
        let n = params.len();
        check_len("state.exp_avg", state.exp_avg.len(), n)?;
        check_len("state.exp_avg_sq", state.exp_avg_sq.len(), n)?;
        check_non_negative("exp_avg_sq", &state.exp_avg_sq)?;
        let mut max_sq = state.max_exp_avg_sq.take();
        match &max_sq {
            Some(b) => {
                check_len("state.max_exp_avg_sq", b.len(), n)?;
                check_non_negative("max_exp_avg_sq", b)?;
            }
            None if self.amsgrad => {
                return Err(OptimError::MissingBuffer {
                    buffer: Buffer::MaxExpAvgSq.name(),
                    optimizer: if self.decoupled_weight_decay {
                        "adamw"
                    } else {
                        "adam"
                    },
                    reason: "amsgrad is true",
                })
            }
            None => {}
        }
        let step = next_step(state.step)?;
        let t = step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2_sqrt = (1.0 - self.beta2.powf(t)).sqrt();
        let step_size = self.lr / bias_correction1;
        let moments = state.exp_avg.iter_mut().zip(state.exp_avg_sq.iter_mut());
        for (i, ((p, grad), (m, v))) in params.iter_mut().zip(grads).zip(moments).enumerate() {
            let mut g = if self.maximize { -*grad } else { *grad };
            if self.weight_decay != 0.0 {
                if self.decoupled_weight_decay {
                    *p *= 1.0 - self.lr * self.weight_decay;
                } else {
                    g += self.weight_decay * *p;
                }
            }
            *m = lerp(*m, g, 1.0 - self.beta1);
            *v = *v * self.beta2 + (1.0 - self.beta2) * g * g;
            let second = match max_sq
                .as_mut()
                .and_then(|b| b.get_mut(i))
                .filter(|_| self.amsgrad)
            {
                Some(vmax) => {
                    *vmax = vmax.max(*v);
                    *vmax
                }
                None => *v,
            };
            let denom = second.sqrt() / bias_correction2_sqrt + self.eps;
            *p += -step_size * (*m / denom);
        }
        state.max_exp_avg_sq = max_sq;
        state.step = step;
        Ok(())
    }
}
