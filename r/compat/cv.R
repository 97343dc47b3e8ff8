# Cross-validation of Gaussian networks, as bnlearn 4.7's bn.cv computes it for the
# predictive losses "cor" and "mse" of one target node, with hold-out splits:
#
#   per run, k test sets of m rows are drawn first with sample(n, m) (the only random
#   numbers used), then each split learns the structure on the other n - m rows (bn = "hc")
#   or re-fits a given structure, fits it by maximum likelihood, and predicts the target
#   from its parents' observed test values.
#
# The result is a bn.kcv (one run) or a bn.kcv.list (several), as bnlearn's.

.compat_cv_losses <- c("cor", "mse")

# Predictive loss of one split; `predicted` is NULL when the loss is undefined.
.compat_split_loss <- function(fitted, test_data, loss, target) {
  observed <- test_data[[target]]
  predicted <- .compat_predict_from_parents(fitted, target, test_data)
  no_parents <- length(fitted[[target]]$parents) == 0
  if (loss == "cor") {
    # a parentless target predicts a constant: no correlation. bnlearn then stores the
    # predictions under another name, which keeps them out of the pooled correlation.
    if (no_parents)
      return(list(loss = NA_real_, predictions = predicted, observed = observed))
    return(list(loss = cor(observed, predicted), predicted = predicted, observed = observed))
  }
  list(loss = mean((observed - predicted)^2), predicted = predicted, observed = observed)
}

# Expected loss of one run: the pooled correlation over all test sets for "cor", the
# test-size weighted mean of the split losses for "mse".
.compat_expected_loss <- function(splits, loss) {
  if (loss == "cor") {
    split_losses <- vapply(splits, function(s) s$loss, 0)
    if (all(is.na(split_losses))) return(NA_real_)
    if (any(is.na(split_losses)))
      stop("the target has no parents in some splits but not in others: ",
           "the pooled correlation is undefined (bnlearn fails here too).")
    predicted <- unlist(lapply(splits, `[[`, "predicted"))
    observed <- unlist(lapply(splits, `[[`, "observed"))
    return(cor(predicted, observed))
  }
  weighted.mean(vapply(splits, function(s) s$loss, 0),
                vapply(splits, function(s) length(s$test), 0))
}

# One run: draw all k test sets, then process the splits in order. learner: NULL for a given
# network; for bn = "hc", a function of the test rows returning the network hc() learns on the
# other rows.
.compat_cv_run <- function(data, model, k, m, loss, target, learner, fit, fit.args, debug) {
  n <- nrow(data)
  tests <- lapply(seq_len(k), function(i) sample(n, m))
  splits <- lapply(seq_len(k), function(i) {
    test <- tests[[i]]
    training <- data[-test, , drop = FALSE]
    net <- if (is.character(model)) learner(test) else model
    fitted <- do.call(bn.fit, c(list(net, training, method = fit), fit.args))
    res <- c(list(test = test, fitted = fitted, learning = net$learning),
             .compat_split_loss(fitted, data[test, , drop = FALSE], loss, target))
    if (debug) cat("* split", i, "loss:", res$loss, "\n")
    res
  })
  splits
}

bn.cv <- function(data, bn, loss = NULL, ..., algorithm.args = list(), loss.args = list(),
                  fit = "mle", fit.args = list(), method = "k-fold", cluster = NULL,
                  debug = FALSE) {
  extra <- list(...)
  if (!is.data.frame(data) || ncol(data) < 2 || nrow(data) < 2)
    stop("data must be a data frame with at least two columns and two rows.")
  if (!all(vapply(data, is.double, TRUE)))
    stop("bn.cv supports continuous (double) columns only.")
  if (anyNA(data) || !all(vapply(data, function(x) all(is.finite(x)), TRUE)))
    stop("data contain missing or non-finite values.")
  n <- nrow(data)
  nodes <- names(data)

  if (!identical(method, "hold-out"))
    stop("method '", method, "' is not supported by the compatible implementation ",
         "(only \"hold-out\").")
  unknown <- setdiff(names(extra), c("k", "m", "runs"))
  if (length(unknown))
    stop("unknown arguments for hold-out cross-validation: ", paste(unknown, collapse = ", "), ".")
  k <- if (is.null(extra$k)) min(10, n) else extra$k
  m <- if (is.null(extra$m)) ceiling(n / 10) else extra$m
  runs <- if (is.null(extra$runs)) 1 else extra$runs
  is_count <- function(x) is.numeric(x) && length(x) == 1 && !is.na(x) && x == round(x)
  if (!is_count(k) || k < 2 || k > n)
    stop("k must be an integer between 2 and the number of rows (", n, "), got ", format(k), ".")
  if (!is_count(m) || m < 1 || m >= n)
    stop("m (the test set size) must be an integer between 1 and ", n - 1, ", got ", format(m), ".")
  if (!is_count(runs) || runs < 1)
    stop("runs must be a positive integer, got ", format(runs), ".")

  if (is.null(loss))
    stop("the compatible implementation needs an explicit loss (\"cor\" or \"mse\").")
  if (!is.character(loss) || length(loss) != 1 || !loss %in% .compat_cv_losses)
    stop("unknown or unsupported loss '", paste(loss, collapse = ", "),
         "'; the compatible implementation supports \"cor\" and \"mse\".")
  target <- loss.args$target
  if (!is.character(target) || length(target) != 1)
    stop("loss '", loss, "' needs loss.args$target, the name of a single node.")
  if (!target %in% nodes)
    stop("the target node '", target, "' is not a column of the data.")
  # "mle-g" is bnlearn >= 4.8's name for the Gaussian maximum likelihood estimator, which 4.7's
  # "mle" is on Gaussian data.
  if (!is.character(fit) || length(fit) != 1 || !fit %in% c("mle", "mle-g"))
    stop("fit '", paste(fit, collapse = ", "), "' is not supported by the compatible implementation ",
         "(only \"mle\" or \"mle-g\", the Gaussian maximum likelihood estimator).")
  fit <- "mle"
  if (!is.null(cluster))
    warning("the compatible implementation runs sequentially, ignoring 'cluster'.")

  if (is.character(bn)) {
    if (!identical(bn, "hc"))
      stop("the compatible implementation supports bn = \"hc\" or a network object only.")
    model <- bn
  } else if (inherits(bn, "bn")) {
    if (!setequal(names(bn$nodes), nodes))
      stop("the network and the data have different nodes.")
    model <- bn
    amat <- .compat_amat(bn)
    if (any(amat == 1L & t(amat) == 1L)) {
      # a partially directed network is fitted through a consistent extension of its CPDAG.
      constraints <- .compat_learning_wlbl(bn$learning, names(bn$nodes))
      ext <- .compat_cpdag_extension_amat(
        .compat_cpdag_amat(amat, constraints$wl, constraints$bl, moral = TRUE))
      if (any(ext == 1L & t(ext) == 1L))
        stop("the network has no consistent extension to a DAG, it cannot be fitted.")
      model <- .compat_bn_from_arcs(names(bn$nodes),
                                        .compat_arcs_from_amat(names(bn$nodes), ext),
                                        learning = bn$learning)
    }
  } else {
    stop("bn must be \"hc\" or an object of class 'bn'.")
  }

  learner <- NULL
  if (is.character(model)) {
    # hc() on the training rows of every split. What does not depend on the rows (the checks of
    # the data's columns and of algorithm.args, the sanitized whitelist and blacklist) is done
    # once, where the first split's hc() call would do it (after the test sets are drawn).
    prepared <- NULL
    learner <- function(test) {
      if (is.null(prepared)) prepared <<- .compat_hc_prepare_runs(data, n - m, algorithm.args)
      .compat_hc_network(prepared$setup, .compat_hc_run(prepared$setup, prepared$X[-test, , drop = FALSE]))
    }
  }
  one_run <- function() {
    splits <- .compat_cv_run(data, model, k, m, loss, target, learner, fit, fit.args, debug)
    # `bn` is what was cross-validated: the algorithm's name, or the DAG that was fitted.
    structure(splits, mean = .compat_expected_loss(splits, loss), loss = loss,
              args = loss.args, bn = model, method = method, class = "bn.kcv")
  }
  if (runs == 1) return(one_run())
  structure(lapply(seq_len(runs), function(r) one_run()), class = "bn.kcv.list")
}

loss <- function(x) {
  if (inherits(x, "bn.kcv")) return(attr(x, "mean"))
  if (inherits(x, "bn.kcv.list")) return(vapply(unclass(x), function(run) attr(run, "mean"), 0))
  stop("x must be an object of class 'bn.kcv' or 'bn.kcv.list'.")
}
