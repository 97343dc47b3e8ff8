# Which bnlearn etio learns with, and the bnlearn calls whose meaning changed after 4.7.
#
# The paper's graphs were learned with bnlearn 4.7. Every bnlearn call etio makes is written
# here, or in r/etio.R through these functions, so that it computes what it computed in 4.7 on
# every bnlearn from 4.7 to 5.2.x (docs/differences.md, "bnlearn versions", has the table):
#   - boot.strength: 4.9 shuffles the columns of every bootstrap replicate by default (one more
#     random draw per replicate, and hc breaks ties in another order); etio passes
#     shuffle = FALSE wherever the argument exists.
#   - bn.cv: 4.8 refuses an explicit fit = "mle" on Gaussian data; etio names no estimator, and
#     every version then fits Gaussian networks by maximum likelihood ("mle" in 4.7, "mle-g" later).
#   - bn.cv's losses: 5.1 pools the "cor" of hold-out folds differently and averages hold-out
#     losses without weights; etio computes both the correlation (4.7's rule) and the mean squared
#     error (4.7's weighted mean) from the predictions every version returns.
# A bnlearn outside the known range, or one that fails to load, is not used for learning: etio
# says so in one line and learns with r/compat/ (bnlearn 4.7's results) instead.

#' The bnlearn versions whose results etio brings to 4.7's: [from, below).
ETIO_BNLEARN_KNOWN <- c(from = "4.7", below = "5.3")
#' The oldest R that etio's R code runs on (DESCRIPTION's Depends).
ETIO_R_MINIMUM <- "4.0.0"
#' What every learning output follows, whichever backend computed it.
ETIO_RESULTS_FOLLOW <- "bnlearn 4.7"

.etio_backend_state <- new.env(parent = emptyenv())

#' Decide the backend from what is installed (a pure function: no loading, no side effects).
#'
#' @param version the installed bnlearn's version string, or NA when none is installed.
#' @param load_error NA, or the message of the error bnlearn gave when it was loaded.
#' @param forced TRUE when ETIO_R_BACKEND=compat asks for the compatible implementation.
#' @return list(use = "bnlearn" or "compat", note = NA or one line saying why compat is used).
.etio_backend_policy <- function(version, load_error = NA_character_, forced = FALSE) {
  if (isTRUE(forced)) return(list(use = "compat", note = NA_character_))
  if (is.na(version)) return(list(use = "compat", note = NA_character_))
  instead <- "learning with r/compat/ (bnlearn 4.7's results) instead"
  if (!is.na(load_error))
    return(list(use = "compat", note = sprintf(
      "bnlearn %s is installed but fails to load (%s); %s", version, load_error, instead)))
  v <- package_version(version)
  if (v < package_version(ETIO_BNLEARN_KNOWN[["from"]]))
    return(list(use = "compat", note = sprintf(
      "bnlearn %s is older than 4.7, the version the paper used; %s. Install bnlearn 4.7.1 (make setup does where CRAN is reachable)",
      version, instead)))
  if (v >= package_version(ETIO_BNLEARN_KNOWN[["below"]]))
    return(list(use = "compat", note = sprintf(
      "bnlearn %s is newer than the versions etio brings to 4.7's results (4.7 to 5.2.x); %s. Install bnlearn 4.7.1 (R < 4.5) or 5.2.x",
      version, instead)))
  list(use = "bnlearn", note = NA_character_)
}

#' Refuse an R older than etio's R code needs, in one line.
.etio_check_r_version <- function(version = getRversion()) {
  if (package_version(version) < package_version(ETIO_R_MINIMUM))
    stop(sprintf("R %s is older than etio's R code needs (R >= %s); install a newer R", version, ETIO_R_MINIMUM),
         call. = FALSE)
  invisible(TRUE)
}

# The installed bnlearn's version and, when loading it fails, why (the error on one line).
.etio_probe_bnlearn <- function() {
  if (!nzchar(system.file(package = "bnlearn"))) return(list(version = NA_character_, load_error = NA_character_))
  version <- tryCatch(as.character(utils::packageVersion("bnlearn")), error = function(e) "unknown")
  loaded <- tryCatch({
    suppressPackageStartupMessages(loadNamespace("bnlearn"))
    NA_character_
  }, error = function(e) trimws(gsub("\\s+", " ", conditionMessage(e))))
  list(version = version, load_error = loaded)
}

.etio_attach_compat <- function() {
  compat <- file.path(.etio_r_dir, "compat", "bnlearn.R")
  if (!file.exists(compat))
    stop("bnlearn is not usable and its compatible implementation is missing: ", compat, call. = FALSE)
  env <- new.env(parent = globalenv())
  source(compat, local = env, chdir = TRUE)
  attached <- attach(NULL, name = "etio:bnlearn-compat", warn.conflicts = FALSE)
  for (name in ls(env, all.names = TRUE)) assign(name, get(name, envir = env), envir = attached)
  get(".etio_compat_backend", envir = attached)
}

#' Load the structure-learning backend once and say which one it is.
#'
#' Uses the installed bnlearn when it loads and its version is one etio brings to 4.7's results
#' (ETIO_BNLEARN_KNOWN); otherwise sources `compat/bnlearn.R` (next to this file) into an
#' environment attached to the search path as "etio:bnlearn-compat", so hc(), bn.cv() etc. are
#' callable from user code as with bnlearn. ETIO_R_BACKEND=compat forces the compatible
#' implementation. Why bnlearn was not used, when it is installed, is in etio_backend_info()$note.
#'
#' @return "bnlearn <version>" or the compatible implementation's own description.
etio_backend <- function() {
  if (!is.null(.etio_backend_state$used)) return(.etio_backend_state$used)
  .etio_check_r_version()
  probe <- .etio_probe_bnlearn()
  forced <- identical(Sys.getenv("ETIO_R_BACKEND"), "compat")
  policy <- .etio_backend_policy(probe$version, probe$load_error, forced)
  used <- if (policy$use == "bnlearn") {
    suppressPackageStartupMessages(library(bnlearn))
    paste("bnlearn", utils::packageVersion("bnlearn"))
  } else if ("etio:bnlearn-compat" %in% search()) {
    get(".etio_compat_backend", envir = as.environment("etio:bnlearn-compat"))
  } else {
    .etio_attach_compat()
  }
  .etio_backend_state$found <- if (is.na(probe$version)) "not installed" else probe$version
  .etio_backend_state$note <- policy$note
  .etio_backend_state$used <- used
  used
}

#' What etio_backend() found and chose, for provenance records.
#'
#' @return list(backend (the one used), bnlearn_found (its version, or "not installed"),
#'   results_follow ("bnlearn 4.7"), note ("", or the line saying why an installed bnlearn was not used)).
etio_backend_info <- function() {
  used <- etio_backend()
  note <- .etio_backend_state$note
  list(backend = used, bnlearn_found = .etio_backend_state$found, results_follow = ETIO_RESULTS_FOLLOW,
       note = if (is.na(note)) "" else note)
}

# ------------------------------------------------------------------------------------------
# The calls whose meaning changed after bnlearn 4.7, made as 4.7 made them.
# ------------------------------------------------------------------------------------------

#' boot.strength as in bnlearn 4.7: no column shuffling of the replicates (bnlearn >= 4.9's default).
etio_boot_strength <- function(data, R, algorithm = "hc", algorithm.args = list()) {
  args <- list(data, R = R, algorithm = algorithm, algorithm.args = algorithm.args)
  if ("shuffle" %in% names(formals(boot.strength))) args$shuffle <- FALSE
  do.call(boot.strength, args)
}

#' Hold-out cross-validation of a learning algorithm or of a fixed network, predictions kept.
#'
#' The loss asked for is "mse": every bnlearn version keeps each fold's predictions and fitted
#' network under it, and etio_cv_predcor() / etio_cv_mse() compute 4.7's numbers from them. No
#' fitting method is named (bnlearn >= 4.8 refuses fit = "mle" on Gaussian data; its default is the
#' Gaussian maximum likelihood estimator, as 4.7's "mle" is on Gaussian data).
#'
#' @return a list of runs, each a list of folds (bnlearn's bn.kcv.list, also for one run).
etio_cv <- function(data, bn, target, runs, k, m, algorithm.args = list()) {
  args <- list(data, bn = bn, loss = "mse", loss.args = list(target = target), method = "hold-out", k = k, m = m,
               runs = runs)
  if (is.character(bn)) args$algorithm.args <- algorithm.args   # a fixed network is learned by no algorithm
  xval <- do.call(bn.cv, args)
  if (inherits(xval, "bn.kcv")) structure(list(xval), class = "bn.kcv.list") else xval
}

.etio_fold_predictions <- function(fold) if (is.null(fold$predicted)) fold$predictions else fold$predicted

#' Predictive correlation of each run, by bnlearn 4.7's rule for loss = "cor".
#'
#' NA when the target has no parents in any fold of the run (its predictions are then only
#' training means); otherwise Pearson's correlation of the observed and predicted values pooled
#' over the run's folds in fold order. Where the target is a root in some folds and not others,
#' 4.7 stops with an error; the pooled correlation there includes the root folds' training means
#' (docs/differences.md).
#'
#' @param xval etio_cv()'s result.
#' @param target the predicted node.
#' @return numeric vector, one value per run.
etio_cv_predcor <- function(xval, target) {
  vapply(xval, function(run) {
    rooted <- vapply(run, function(fold) length(fold$fitted[[target]]$parents) == 0, TRUE)
    if (all(rooted)) return(NA_real_)
    observed <- unlist(lapply(run, `[[`, "observed"))
    predicted <- unlist(lapply(run, .etio_fold_predictions))
    # parents whose fitted coefficients are all zero leave nothing to correlate with
    if (length(unique(predicted)) < 2) return(NA_real_)
    cor(observed, predicted)
  }, 0)
}

#' Hold-out mean squared error of each run, as bnlearn 4.7 averaged it: each fold's mean squared
#' error, weighted by the fold's size.
etio_cv_mse <- function(xval) {
  vapply(xval, function(run) {
    losses <- vapply(run, function(fold) mean((fold$observed - .etio_fold_predictions(fold))^2), 0)
    weighted.mean(losses, vapply(run, function(fold) length(fold$test), 0))
  }, 0)
}
