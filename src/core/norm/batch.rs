//! Batch norm (Ioffe & Szegedy, 2015; `torch.nn.functional.batch_norm`).

use ndarray::{Array1, ArrayD, ArrayViewD, IxDyn};

use super::moments::{moments_runs, Moments};
use super::{
    check_eps, check_input, inv_std, ncs, normalize_run, row_major, Affine, NormError, Normalized,
};

/// How a batch norm call behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormParams {
    /// Added to the variance before the square root; finite and > 0.
    pub eps: f64,
    /// Weight of the new batch statistics in the running update, in [0, 1].
    pub momentum: f64,
    /// Training normalizes with the batch statistics and updates the running
    /// ones; evaluation normalizes with the running statistics.
    pub training: bool,
}

impl Default for BatchNormParams {
    /// PyTorch's defaults: eps 1e-5, momentum 0.1, training.
    fn default() -> Self {
        BatchNormParams {
            eps: 1e-5,
            momentum: 0.1,
            training: true,
        }
    }
}

/// Running mean and (unbiased) variance per channel, as a `BatchNorm` module
/// keeps them between calls.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningStats {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

impl RunningStats {
    /// PyTorch's initial state: mean 0, variance 1 for each of `channels`.
    pub fn initial(channels: usize) -> Self {
        RunningStats {
            mean: vec![0.0; channels],
            var: vec![1.0; channels],
        }
    }
}

/// The result of a batch norm call: output and statistics used, plus the
/// running statistics after the call (unchanged in evaluation).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormed {
    pub normalized: Normalized,
    pub running: RunningStats,
}

/// Batch norm over `N x C x spatial...`: each channel c is normalized over all
/// samples and positions, `y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]`.
///
/// - Training: `mean`/`var` are the batch mean and *biased* variance (m = N *
///   spatial values per channel); the running statistics are updated with the
///   *unbiased* one: `running_mean = (1 - momentum) * running_mean + momentum *
///   mean`, `running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)`.
/// - Evaluation: `mean`/`var` are the running statistics, which stay unchanged.
///
/// `running` defaults to [`RunningStats::initial`] (0 and 1), as a fresh module.
///
/// Errors: fewer than 2 dims or a zero-length dim; `eps <= 0`; `momentum`
/// outside [0, 1]; `gamma`, `beta`, `running_mean`, `running_var` not of length
/// C; a negative running variance; in training, m = 1 (the unbiased variance
/// would be 0/0; PyTorch refuses it too). Constant channels have variance 0
/// and map to `beta`.
pub fn batch_norm(
    input: ArrayViewD<'_, f64>,
    affine: &Affine<'_>,
    running: Option<RunningStats>,
    params: BatchNormParams,
) -> Result<BatchNormed, NormError> {
    check_input("batch", input.shape(), 2)?;
    check_eps(params.eps)?;
    if !(0.0..=1.0).contains(&params.momentum) {
        return Err(NormError::Momentum(params.momentum));
    }
    let (n, c, s) = ncs(input.shape());
    let ab = affine.resolve(&[c])?;
    let running = running.unwrap_or_else(|| RunningStats::initial(c));
    check_running(&running, c)?;
    let src = row_major(&input);
    let (stats, running) = if params.training {
        if n * s == 1 {
            return Err(NormError::OneValuePerChannel {
                shape: input.shape().to_vec(),
            });
        }
        let stats = channel_moments(&src, n, c, s);
        let updated = update_running(&running, &stats, params.momentum, n * s);
        (stats, updated)
    } else {
        let stats = running
            .mean
            .iter()
            .zip(&running.var)
            .map(|(&mean_hi, &var)| Moments {
                mean_hi,
                mean_lo: 0.0,
                var,
            })
            .collect();
        (stats, running)
    };
    let mut out = vec![0.0; src.len()];
    let fallback = Moments {
        mean_hi: 0.0,
        mean_lo: 0.0,
        var: 1.0,
    };
    for (i, (xr, yr)) in src.chunks_exact(s).zip(out.chunks_exact_mut(s)).enumerate() {
        let ch = i % c;
        let m = stats.get(ch).unwrap_or(&fallback);
        let gamma = ab.gamma.get(ch).copied().unwrap_or(1.0);
        let beta = ab.beta.get(ch).copied().unwrap_or(0.0);
        normalize_run(xr, yr, m, inv_std(m.var, params.eps) * gamma, beta);
    }
    let mean: Vec<f64> = stats.iter().map(Moments::mean).collect();
    let var: Vec<f64> = stats.iter().map(|m| m.var).collect();
    Ok(BatchNormed {
        normalized: Normalized {
            output: ArrayD::from_shape_vec(IxDyn(input.shape()), out)?,
            mean: Array1::from(mean).into_dyn(),
            var: Array1::from(var).into_dyn(),
        },
        running,
    })
}

fn check_running(running: &RunningStats, channels: usize) -> Result<(), NormError> {
    for (param, v) in [
        ("running_mean", &running.mean),
        ("running_var", &running.var),
    ] {
        if v.len() != channels {
            return Err(NormError::ParamShape {
                param,
                found: vec![v.len()],
                expected: vec![channels],
            });
        }
    }
    match running.var.iter().position(|&v| v < 0.0) {
        Some(index) => Err(NormError::NegativeRunningVar {
            index,
            value: running.var[index],
        }),
        None => Ok(()),
    }
}

/// Moments of each channel over its N runs of S values.
fn channel_moments(src: &[f64], n: usize, c: usize, s: usize) -> Vec<Moments> {
    (0..c)
        .map(|ch| {
            let runs = (0..n).filter_map(move |i| src.get((i * c + ch) * s..(i * c + ch + 1) * s));
            moments_runs(runs)
        })
        .collect()
}

/// PyTorch's running update; `m` values per channel (m > 1) make the biased
/// variance unbiased by the factor m / (m - 1).
fn update_running(
    running: &RunningStats,
    stats: &[Moments],
    momentum: f64,
    m: usize,
) -> RunningStats {
    let bessel = m as f64 / (m as f64 - 1.0);
    let blend = |old: f64, new: f64| (1.0 - momentum) * old + momentum * new;
    RunningStats {
        mean: running
            .mean
            .iter()
            .zip(stats)
            .map(|(&o, s)| blend(o, s.mean()))
            .collect(),
        var: running
            .var
            .iter()
            .zip(stats)
            .map(|(&o, s)| blend(o, s.var * bessel))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn training_uses_the_biased_batch_variance_and_updates_with_the_unbiased() {
        let x = array![[1.0, 10.0], [3.0, 10.0]].into_dyn();
        let r = batch_norm(
            x.view(),
            &Affine::default(),
            None,
            BatchNormParams::default(),
        )
        .unwrap();
        assert_eq!(r.normalized.mean.as_slice().unwrap(), &[2.0, 10.0]);
        assert_eq!(r.normalized.var.as_slice().unwrap(), &[1.0, 0.0]);
        // unbiased var of [1, 3] is 2: 0.9 * 1 + 0.1 * 2.
        assert!((r.running.var[0] - 1.1).abs() < 1e-15);
        assert!((r.running.mean[0] - 0.2).abs() < 1e-15);
        assert!((r.running.mean[1] - 1.0).abs() < 1e-15);
        let expected = -1.0 / (1.0f64 + 1e-5).sqrt();
        assert!((r.normalized.output[[0, 0]] - expected).abs() < 1e-15);
        assert_eq!(r.normalized.output[[1, 1]], 0.0);
    }

    #[test]
    fn evaluation_uses_the_running_statistics_and_keeps_them() {
        let x = array![[1.0], [3.0]].into_dyn();
        let running = RunningStats {
            mean: vec![1.0],
            var: vec![4.0],
        };
        let params = BatchNormParams {
            training: false,
            ..Default::default()
        };
        let r = batch_norm(x.view(), &Affine::default(), Some(running.clone()), params).unwrap();
        assert_eq!(r.running, running);
        assert!((r.normalized.output[[1, 0]] - 2.0 / (4.0f64 + 1e-5).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn one_value_per_channel_in_training_is_refused() {
        let x = ArrayD::zeros(IxDyn(&[1, 3, 1]));
        let err = batch_norm(
            x.view(),
            &Affine::default(),
            None,
            BatchNormParams::default(),
        );
        assert!(matches!(err, Err(NormError::OneValuePerChannel { .. })));
        let eval = BatchNormParams {
            training: false,
            ..Default::default()
        };
        assert!(batch_norm(x.view(), &Affine::default(), None, eval).is_ok());
    }

    #[test]
    fn running_stats_of_the_wrong_length_name_the_field() {
        let x = ArrayD::zeros(IxDyn(&[2, 3]));
        let running = RunningStats {
            mean: vec![0.0; 3],
            var: vec![1.0; 2],
        };
        let err = batch_norm(
            x.view(),
            &Affine::default(),
            Some(running),
            BatchNormParams::default(),
        )
        .unwrap_err();
        assert_eq!(err.param(), "running_var");
    }
}
