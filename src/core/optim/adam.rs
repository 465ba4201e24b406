//! Adam and AdamW, with optional AMSGrad: `torch.optim.Adam` / `AdamW`
//! (`_single_tensor_adam`, the non-capturable branch). They differ only in
//! where weight decay enters: Adam adds `weight_decay * p` to the gradient
//! (coupled, an L2 penalty); AdamW shrinks `p` by `1 - lr * weight_decay`
//! before the update (decoupled, Loshchilov & Hutter 2019).

use super::hyper::{non_negative, positive, unit_half_open, HyperValue, Hyperparameter};
use super::{check_len, check_non_negative, lerp, next_step, Hyperparameters, OptimError};

/// Checked Adam/AdamW hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    /// true for AdamW.
    pub decoupled_weight_decay: bool,
}

impl Default for Adam {
    /// torch.optim.Adam's defaults.
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
        }
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
    /// Buffers present, by torch name.
    pub fn buffers(&self) -> Vec<(&'static str, &[f64])> {
        let mut out: Vec<(&'static str, &[f64])> =
            vec![("exp_avg", &self.exp_avg), ("exp_avg_sq", &self.exp_avg_sq)];
        if let Some(b) = &self.max_exp_avg_sq {
            out.push(("max_exp_avg_sq", b));
        }
        out
    }
}

impl Adam {
    /// torch.optim.AdamW's defaults (weight decay 0.01, decoupled).
    pub fn adamw_default() -> Self {
        Adam {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Adam::default()
        }
    }

    /// Checks `h`: `lr`, `eps` > 0; both betas in [0, 1) (beta 1 would make
    /// the bias correction 1 - beta^t zero); `weight_decay` >= 0.
    pub fn from_hyperparameters(h: &Hyperparameters, decoupled: bool) -> Result<Self, OptimError> {
        let d = if decoupled {
            Adam::adamw_default()
        } else {
            Adam::default()
        };
        let (beta1, beta2) = h.betas.unwrap_or((d.beta1, d.beta2));
        Ok(Adam {
            lr: positive("lr", h.lr.unwrap_or(d.lr))?,
            beta1: unit_half_open("betas[0]", beta1)?,
            beta2: unit_half_open("betas[1]", beta2)?,
            eps: positive("eps", h.eps.unwrap_or(d.eps))?,
            weight_decay: non_negative("weight_decay", h.weight_decay.unwrap_or(d.weight_decay))?,
            amsgrad: h.amsgrad.unwrap_or(d.amsgrad),
            maximize: h.maximize.unwrap_or(d.maximize),
            decoupled_weight_decay: decoupled,
        })
    }

    /// Catalogue entries with these values as defaults.
    pub fn hyperparameters(&self) -> Vec<Hyperparameter> {
        let decay = if self.decoupled_weight_decay {
            "decoupled weight decay: p is multiplied by 1 - lr * weight_decay before the update, >= 0"
        } else {
            "L2 penalty added to the gradient (coupled), >= 0"
        };
        vec![
            Hyperparameter::number("lr", self.lr, "learning rate, > 0"),
            Hyperparameter {
                name: "betas",
                default: HyperValue::Pair(self.beta1, self.beta2),
                description: "decay rates of the first and second moment averages, each in [0, 1)",
            },
            Hyperparameter::number(
                "eps",
                self.eps,
                "added to the bias-corrected root of the second moment, > 0",
            ),
            Hyperparameter::number("weight_decay", self.weight_decay, decay),
            Hyperparameter::flag(
                "amsgrad",
                self.amsgrad,
                "use the running maximum of the second moment (AMSGrad)",
            ),
            Hyperparameter::flag("maximize", self.maximize, "ascend instead of descend"),
        ]
    }

    /// Fresh state: zero moments (and zero `max_exp_avg_sq` with AMSGrad).
    pub fn init_state(&self, len: usize) -> AdamState {
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
                    buffer: "max_exp_avg_sq",
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
