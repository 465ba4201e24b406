#!/usr/bin/env Rscript
# Writes tests/fixtures/proc_delong_cases.json: DeLong intervals and tests as
# R's pROC computes them, for the DeLong tests of `cargo test` (which never
# runs R).
#
# Run by hand from the repository root:
#
#     apt-get install -y r-base-core r-cran-proc r-cran-jsonlite
#     Rscript scripts/gen_proc_fixtures.R
#
# Deterministic (set.seed). Every ROC is built with direction "<" and levels
# c(0, 1) (a higher score means positive, as scikit-learn and evald), so
# pROC's automatic direction never flips a curve. Scores are rounded to six
# decimals so the JSON text (15 significant digits) is the exact double R
# used. Values:
#   ci:       var(roc, method = "delong"), ci.auc(roc, method = "delong")
#   paired:   roc.test(a, b, method = "delong", paired = TRUE) and
#             cov(a, b, method = "delong"); pROC reports a - b, the fixture
#             keeps pROC's numbers as they are
#   unpaired: roc.test(a, b, method = "delong", paired = FALSE): statistic
#             (t), parameter (df), p.value

suppressPackageStartupMessages({
  library(pROC)
  library(jsonlite)
})

set.seed(20141014)

make_roc <- function(labels, scores) {
  roc(labels, scores, direction = "<", levels = c(0, 1), quiet = TRUE)
}

# Scores of n records: labels shifted by `shift`, rounded to `digits`
# decimals (few digits = many ties).
scores_for <- function(labels, shift, digits) {
  round(rnorm(length(labels)) + shift * labels, digits)
}

shuffled_labels <- function(pos, neg) sample(c(rep(1, pos), rep(0, neg)))

datasets <- list(
  list(name = "distinct scores", labels = shuffled_labels(40, 60), shift = 1.0, digits = 6),
  list(name = "heavy ties", labels = shuffled_labels(30, 45), shift = 0.8, digits = 0),
  list(name = "some ties", labels = shuffled_labels(120, 80), shift = 0.5, digits = 1),
  list(name = "two of each", labels = c(1, 0, 1, 0), shift = 0.3, digits = 2),
  list(name = "large with ties", labels = shuffled_labels(700, 1300), shift = 0.6, digits = 2),
  list(name = "weak model", labels = shuffled_labels(25, 25), shift = -0.2, digits = 3)
)
levels <- c(0.95, 0.9, 0.99, 0.8, 0.95, 0.5)

ci_cases <- list()
paired_cases <- list()
for (i in seq_along(datasets)) {
  d <- datasets[[i]]
  a <- scores_for(d$labels, d$shift, d$digits)
  b <- scores_for(d$labels, d$shift * 0.7, d$digits)
  level <- levels[[i]]
  ra <- make_roc(d$labels, a)
  rb <- make_roc(d$labels, b)
  ci <- ci.auc(ra, method = "delong", conf.level = level)
  ci_cases[[length(ci_cases) + 1]] <- list(
    name = d$name, labels = d$labels, predictions = a, confidence = level,
    auc = as.numeric(auc(ra)), variance = var(ra, method = "delong"),
    lower = ci[[1]], upper = ci[[3]]
  )
  test <- roc.test(ra, rb, method = "delong", paired = TRUE, conf.level = level)
  paired_cases[[length(paired_cases) + 1]] <- list(
    name = d$name, labels = d$labels, predictions_a = a, predictions_b = b,
    confidence = level,
    auc_a = as.numeric(test$estimate[[1]]), auc_b = as.numeric(test$estimate[[2]]),
    variance_a = var(ra, method = "delong"), variance_b = var(rb, method = "delong"),
    covariance = cov(ra, rb, method = "delong"),
    statistic = as.numeric(test$statistic), p_value = test$p.value,
    conf_int = as.numeric(test$conf.int)
  )
}

# A perfect separation (variance 0: the interval is [1, 1]) and identical
# predictions (pROC: z 0, p 1).
perfect_labels <- c(0, 0, 0, 1, 1, 1)
perfect <- c(0.1, 0.2, 0.3, 0.7, 0.8, 0.9)
rp <- make_roc(perfect_labels, perfect)
cip <- ci.auc(rp, method = "delong")
ci_cases[[length(ci_cases) + 1]] <- list(
  name = "perfect separation", labels = perfect_labels, predictions = perfect,
  confidence = 0.95, auc = as.numeric(auc(rp)), variance = var(rp, method = "delong"),
  lower = cip[[1]], upper = cip[[3]]
)
same <- datasets[[2]]
same_scores <- scores_for(same$labels, same$shift, same$digits)
rs <- make_roc(same$labels, same_scores)
identical_test <- roc.test(rs, rs, method = "delong", paired = TRUE)
paired_cases[[length(paired_cases) + 1]] <- list(
  name = "identical predictions", labels = same$labels,
  predictions_a = same_scores, predictions_b = same_scores, confidence = 0.95,
  auc_a = as.numeric(auc(rs)), auc_b = as.numeric(auc(rs)),
  variance_a = var(rs, method = "delong"), variance_b = var(rs, method = "delong"),
  covariance = cov(rs, rs, method = "delong"),
  statistic = as.numeric(identical_test$statistic), p_value = identical_test$p.value,
  conf_int = as.numeric(identical_test$conf.int)
)

unpaired_cases <- list()
pairs <- list(c(1, 2), c(3, 5), c(6, 1), c(2, 2))
for (p in pairs) {
  da <- datasets[[p[[1]]]]
  db <- datasets[[p[[2]]]]
  a <- scores_for(da$labels, da$shift, da$digits)
  b <- scores_for(db$labels, db$shift, db$digits)
  ra <- make_roc(da$labels, a)
  rb <- make_roc(db$labels, b)
  test <- suppressWarnings(roc.test(ra, rb, method = "delong", paired = FALSE))
  unpaired_cases[[length(unpaired_cases) + 1]] <- list(
    name = paste(da$name, "vs", db$name),
    labels_a = da$labels, predictions_a = a, labels_b = db$labels, predictions_b = b,
    auc_a = as.numeric(test$estimate[[1]]), auc_b = as.numeric(test$estimate[[2]]),
    variance_a = var(ra, method = "delong"), variance_b = var(rb, method = "delong"),
    statistic = as.numeric(test$statistic), df = as.numeric(test$parameter),
    p_value = test$p.value
  )
}

out <- list(
  generator = "scripts/gen_proc_fixtures.R",
  reference = paste0("pROC ", packageVersion("pROC"), ", ", R.version.string),
  ci = ci_cases, paired = paired_cases, unpaired = unpaired_cases
)
writeLines(
  toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
  "tests/fixtures/proc_delong_cases.json"
)
