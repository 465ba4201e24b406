//! The list of losses: canonical names, aliases and a one-line formula. The
//! HTTP layer serves it at `GET /loss` (with each loss's parameters, which it
//! reads from the loss's parameter struct) and resolves names with it.

/// Which loss a name resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    Bce,
    CrossEntropy,
    L1,
    SmoothL1,
    Huber,
    Mse,
    Focal,
    Dice,
    Iou,
}

/// One loss in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSpec {
    pub kind: LossKind,
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// What it is, in one line (the catalogue's `summary`).
    pub summary: &'static str,
    pub formula: &'static str,
}

/// Every loss, in catalogue order.
pub const LOSSES: [LossSpec; 9] = [
    LossSpec {
        kind: LossKind::Bce,
        name: "bce",
        aliases: &[],
        summary: "binary cross-entropy on probabilities or logits (torch BCELoss / BCEWithLogitsLoss)",
        formula: "l = -w (y max(ln p, -100) + (1 - y) max(ln(1 - p), -100)); from_logits: l = w ((1 - y) x + (1 + (pos_weight - 1) y) softplus(-x))",
    },
    LossSpec {
        kind: LossKind::CrossEntropy,
        name: "cross_entropy",
        aliases: &["ce"],
        summary: "softmax cross-entropy over class logits (torch CrossEntropyLoss)",
        formula: "l = -sum_c w_c q_c log_softmax(x)_c, q = one-hot(y) or the target row, smoothed: (1 - e) q + e / C",
    },
    LossSpec {
        kind: LossKind::L1,
        name: "l1",
        aliases: &["mae"],
        summary: "mean absolute error (torch L1Loss)",
        formula: "l = |p - y|",
    },
    LossSpec {
        kind: LossKind::SmoothL1,
        name: "smooth_l1",
        aliases: &[],
        summary: "squared near zero, absolute beyond beta (torch SmoothL1Loss)",
        formula: "d = p - y; l = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta",
    },
    LossSpec {
        kind: LossKind::Huber,
        name: "huber",
        aliases: &[],
        summary: "squared near zero, linear beyond delta (torch HuberLoss)",
        formula: "d = p - y; l = 0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta)",
    },
    LossSpec {
        kind: LossKind::Mse,
        name: "mse",
        aliases: &["l2"],
        summary: "mean squared error (torch MSELoss)",
        formula: "l = (p - y)^2",
    },
    LossSpec {
        kind: LossKind::Focal,
        name: "focal",
        aliases: &[],
        summary: "binary focal loss down-weighting easy examples (torchvision sigmoid_focal_loss)",
        formula: "p_t = p y + (1 - p)(1 - y); l = a_t bce(p, y) (1 - p_t)^gamma, a_t = alpha y + (1 - alpha)(1 - y)",
    },
    LossSpec {
        kind: LossKind::Dice,
        name: "dice",
        aliases: &[],
        summary: "soft Dice loss for segmentation masks",
        formula: "per sample: l = 1 - (2 sum(p y) + smooth) / (sum p + sum y + smooth)",
    },
    LossSpec {
        kind: LossKind::Iou,
        name: "iou",
        aliases: &["jaccard"],
        summary: "soft IoU (Jaccard) loss for segmentation masks",
        formula: "per sample: l = 1 - (sum(p y) + smooth) / (sum p + sum y - sum(p y) + smooth)",
    },
];

/// The loss called `name` (canonical name or alias).
pub fn lookup(name: &str) -> Option<&'static LossSpec> {
    LOSSES
        .iter()
        .find(|spec| spec.name == name || spec.aliases.contains(&name))
}

/// Every accepted name: canonical names and aliases, in catalogue order.
pub fn all_names() -> Vec<&'static str> {
    LOSSES
        .iter()
        .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_their_loss() {
        assert_eq!(lookup("ce").map(|s| s.kind), Some(LossKind::CrossEntropy));
        assert_eq!(lookup("jaccard").map(|s| s.kind), Some(LossKind::Iou));
        assert_eq!(lookup("l2").map(|s| s.kind), Some(LossKind::Mse));
        assert_eq!(lookup("mae").map(|s| s.kind), Some(LossKind::L1));
        assert!(lookup("hinge").is_none());
    }

    #[test]
    fn names_are_unique() {
        let names = all_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(names.len(), 13);
    }
}
