# etio's structure-learning stage in R: traces -> prepared data -> constraints -> graph,
# predictive power and the correlation baseline.
#
#   source("r/etio.R")          # from anywhere; finds its own directory
#   etio_backend()              # bnlearn 4.7 to 5.2.x when installed, else r/compat/bnlearn.R
#   traces <- etio_read_traces("traces.csv")
#   data   <- etio_prepare(traces, loss = "ce", weight_decay = 5e-4, attack = "Oak17Acc")
#   graph  <- etio_learn(data, "Oak17Acc", method = "boot")
#   print(graph$network); averaged.network(graph$strength, threshold = 0.8)
#   etio_predictive(data, "Oak17Acc", graph$network)
#   etio_correlations(data, "Oak17Acc")
#   etio_write_dot(graph$network, "ce-Oak17Acc.dot")
#   etio_learn_all(traces, "graphs/", weight_decay = 5e-4)   # every graph and table, as `etio learn`
#
# One verb per step, in the manner of bnlearn's API. Every function takes plain
# data.frame / character / numeric arguments and returns plain lists and data.frames, with
# bnlearn's own objects (bn, bn.strength) where bnlearn would return them, so it can be
# called on its own from R or from Python (rpy2). Inputs are checked once, in
# etio_prepare(); errors caused by the input start with "etio input error: " so callers can
# tell them from failures of the code. The algorithms themselves are bnlearn's (real API
# only), so the same code runs on bnlearn and on the compatible implementation; the calls
# whose meaning changed after bnlearn 4.7 go through r/backend.R, which makes them as 4.7 did.

# Where this file lives, whether it is source()d from any working directory or loaded by a
# script run with Rscript: source() keeps the file name in its frame as `ofile`.
.etio_r_dir <- local({
  dir <- NULL
  for (frame in rev(sys.frames())) {
    if (!is.null(frame$ofile) && is.character(frame$ofile)) {
      file <- frame$ofile
      # source(chdir = TRUE) has already moved to the file's directory; `owd` is where it came from.
      if (!grepl("^(/|~|[A-Za-z]:)", file) && is.character(frame$owd)) file <- file.path(frame$owd, file)
      dir <- dirname(normalizePath(file))
      break
    }
  }
  if (is.null(dir) && nzchar(Sys.getenv("ETIO_R_DIR"))) dir <- normalizePath(Sys.getenv("ETIO_R_DIR"))
  if (is.null(dir)) {
    script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
    if (length(script)) dir <- dirname(normalizePath(script[1]))
  }
  if (is.null(dir)) dir <- normalizePath(file.path(getwd(), "r"), mustWork = FALSE)
  dir
})

# The study's vocabulary, generated from etio/core/vocabulary.py (python -m etio.core.vocabulary);
# Python and R read the same names from it (tests/core/test_vocabulary.py checks that they agree).
ETIO_VOCABULARY <- utils::read.csv(file.path(.etio_r_dir, "vocabulary.csv"), stringsAsFactors = FALSE,
                                   na.strings = character(0), colClasses = "character")
.etio_vocab_attacks <- ETIO_VOCABULARY[ETIO_VOCABULARY$kind == "attack", ]
.etio_vocab_variables <- ETIO_VOCABULARY[ETIO_VOCABULARY$kind == "variable", ]
#' Attack columns, in the vocabulary's order (R spelling).
ETIO_ATTACKS <- .etio_vocab_attacks$r_name
#' Attacks whose graph uses the top-3 sorted centroid distance.
ETIO_TOP3_ATTACKS <- .etio_vocab_attacks$r_name[.etio_vocab_attacks$centroid == "CentroidDistance.sorted_3."]
#' Candidate root nodes: configuration knobs, which nothing in the graph can cause.
ETIO_ROOT_CANDIDATES <- .etio_vocab_variables$r_name[.etio_vocab_variables$root == "TRUE"]
#' Nodes of every attack's graph besides its centroid distance and TrainSize, in graph order.
ETIO_BASE_FEATURES <- .etio_vocab_variables$r_name[.etio_vocab_variables$node == "base"]
#' Variables each attack's hypotheses name (the correlation baseline of Table 2).
# (every graph outcome: the attacks, then the low-FPR measures that are attack nodes of their own graphs)
.etio_vocab_outcomes <- rbind(.etio_vocab_attacks, ETIO_VOCABULARY[ETIO_VOCABULARY$kind == "measure" &
                                                                   ETIO_VOCABULARY$node == "outcome", ])
#' Columns that can be a graph's attack node (etio.core.vocabulary.GRAPH_OUTCOMES); etio_pairs picks
#' among ETIO_ATTACKS only unless told.
ETIO_OUTCOMES <- .etio_vocab_outcomes$r_name
ETIO_HYPOTHESES <- stats::setNames(strsplit(.etio_vocab_outcomes$hypothesis_variables, ";", fixed = TRUE),
                                   .etio_vocab_outcomes$r_name)
#' Centroid-distance column of each attack's graph.
ETIO_CENTROIDS <- stats::setNames(.etio_vocab_outcomes$centroid, .etio_vocab_outcomes$r_name)
#' Nodes a graph gains when its rows vary the PGD training budget (etio.core.schema.ROBUST_FEATURES):
#' the budget, a root that nothing causes, and the robust accuracies it causes.
ETIO_ROBUST_NODES <- c("AdvEps", "AdvTrainAcc", "AdvTestAcc", "AdvAccDiff")

# The run layout, generated from etio/core/layout.py (python -m etio.core.layout): Python and R
# name the files of a run from it (tests/core/test_layout.py checks that the file is current).
ETIO_LAYOUT <- utils::read.csv(file.path(.etio_r_dir, "layout.csv"), stringsAsFactors = FALSE,
                               na.strings = character(0), colClasses = "character")

#' The name of a file of the run layout (r/layout.csv), relative to its folder.
#'
#' @param key the layout's key (e.g. "graph", "comparison").
#' @param ... the pattern's fields: loss, attack, wd (a number: "{wd:f}" is printed with
#'   sprintf("%f"), "{wd:g}" with sprintf("%g"), as Python prints them).
#' @return the name.
etio_layout_name <- function(key, ...) {
  fields <- list(...)
  name <- ETIO_LAYOUT$pattern[ETIO_LAYOUT$key == key]
  if (length(name) != 1) stop("the run layout has no file '", key, "'")
  for (field in names(fields)) {
    value <- fields[[field]]
    if (field == "wd") {
      name <- gsub("{wd:f}", sprintf("%f", value), name, fixed = TRUE)
      name <- gsub("{wd:g}", sprintf("%g", value), name, fixed = TRUE)
    } else {
      name <- gsub(paste0("{", field, "}"), value, name, fixed = TRUE)
    }
  }
  if (grepl("{", name, fixed = TRUE)) stop("the run layout's '", key, "' needs more fields: ", name)
  name
}

.etio_input_error <- function(...) {
  stop(simpleError(paste0("etio input error: ", ...)))
}

.etio_check_attack <- function(attack) {
  if (!is.character(attack) || length(attack) != 1 || !(attack %in% ETIO_OUTCOMES))
    .etio_input_error("unknown attack '", paste(attack, collapse = ","), "'; known attacks: ",
                      paste(ETIO_ATTACKS, collapse = ", "))
  attack
}

.etio_check_target <- function(data, attack) {
  if (!is.data.frame(data) || !(attack %in% names(data)))
    .etio_input_error("data has no column '", attack, "' (prepare it with etio_prepare())")
}

# etio_backend(), etio_backend_info() and the bnlearn calls whose meaning changed after 4.7.
source(file.path(.etio_r_dir, "backend.R"), local = environment())

#' Read a trace CSV in the authors' 53-column schema.
#'
#' Column names get R's spelling (`CentroidDistance(origin)` -> `CentroidDistance.origin.`,
#' `Scheduler?` -> `Scheduler.`), the parser's `-` placeholders become NA and TrainSize
#' "1k"/"5k" becomes 1000/5000 (numbers pass through).
#'
#' @param path trace CSV file.
#' @return data.frame, one row per training configuration.
etio_read_traces <- function(path) {
  if (!is.character(path) || length(path) != 1 || !file.exists(path))
    .etio_input_error("trace file not found: ", paste(path, collapse = ","))
  traces <- tryCatch(
    utils::read.csv(path, na.strings = c("NA", "-", ""), stringsAsFactors = FALSE, check.names = TRUE),
    error = function(e) .etio_input_error("cannot read trace file ", path, ": ", conditionMessage(e)))
  .etio_normalise_traces(traces)
}

# R spelling of the column names, and TrainSize as a number of training points.
.etio_normalise_traces <- function(traces) {
  traces <- as.data.frame(traces, stringsAsFactors = FALSE)
  names(traces) <- make.names(names(traces))
  if ("TrainSize" %in% names(traces) && !is.numeric(traces$TrainSize)) {
    size <- trimws(as.character(traces$TrainSize))
    size[size %in% c("-", "")] <- NA
    thousands <- grepl("^[0-9.]+[kK]$", size)
    value <- suppressWarnings(as.numeric(sub("[kK]$", "", size)))
    value[thousands] <- value[thousands] * 1000
    bad <- !is.na(size) & is.na(value)
    if (any(bad))
      .etio_input_error("column 'TrainSize' has a value that is not a size: '", size[bad][1], "'")
    traces$TrainSize <- value
  }
  traces
}

#' The 13 nodes (14 when the weight decay varies) of an attack's graph, besides the attack.
#'
#' @param attack one of ETIO_ATTACKS.
#' @param weight_decay the fixed weight decay; NULL or <= 0 means the rows mix weight
#'   decays, and WeightDecay becomes a node.
#' @return character vector, in the authors' order.
etio_features <- function(attack, weight_decay = NULL) {
  .etio_check_attack(attack)
  features <- c(ETIO_BASE_FEATURES, ETIO_CENTROIDS[[attack]], "TrainSize")
  if (is.null(weight_decay) || weight_decay <= 0) features <- c(features, "WeightDecay")
  features
}

#' Prepare one loss x weight decay x attack table for structure learning (the input check).
#'
#' NumParams is divided by its maximum over the whole trace table before rows are selected,
#' as the authors did. Rows are those of `loss` (and `weight_decay` when > 0); columns are
#' etio_features(attack, weight_decay) and the attack. For MemguardAcc, rows without a
#' MemguardAcc value (configurations MemGuard was not run on) are dropped with a warning;
#' any other missing or non-finite value is an error.
#'
#' @param traces data.frame from etio_read_traces() (or with the authors' column names).
#' @param loss "ce" or "mse" (a value of the Loss column).
#' @param weight_decay a value of the WeightDecay column, or NULL / <= 0 for all rows.
#' @param attack one of ETIO_ATTACKS.
#' @return numeric data.frame, features then attack.
etio_prepare <- function(traces, loss, weight_decay, attack) {
  .etio_check_attack(attack)
  if (!is.data.frame(traces)) .etio_input_error("traces must be a data.frame")
  traces <- .etio_normalise_traces(traces)
  fixed_wd <- !is.null(weight_decay) && !is.na(weight_decay) && weight_decay > 0
  features <- etio_features(attack, if (fixed_wd) weight_decay else NULL)
  columns <- c(features, attack)
  needed <- unique(c("Loss", if (fixed_wd) "WeightDecay", columns))
  missing <- setdiff(needed, names(traces))
  if (length(missing))
    .etio_input_error("trace table has no column '", missing[1], "'",
                      if (length(missing) > 1) paste0(" (also missing: ", paste(missing[-1], collapse = ", "), ")"))
  for (column in setdiff(needed, "Loss")) traces[[column]] <- .etio_as_number(traces[[column]], column)

  # Normalised over the whole file, before the row filter (authors' infer_graph.R).
  traces$NumParams <- traces$NumParams / max(traces$NumParams, na.rm = TRUE)

  keep <- .etio_rows(traces, loss, NULL)
  if (!any(keep))
    .etio_input_error("no rows with Loss '", loss, "'; losses present: ",
                      paste(sort(unique(stats::na.omit(traces$Loss))), collapse = ", "))
  if (fixed_wd) {
    if (!any(.etio_rows(traces, loss, weight_decay)))
      .etio_input_error("no rows with Loss '", loss, "' and WeightDecay ", format(weight_decay, scientific = FALSE),
                        "; weight decays present: ",
                        paste(format(sort(unique(stats::na.omit(traces$WeightDecay[keep]))), scientific = FALSE,
                                   drop0trailing = TRUE), collapse = ", "))
    keep <- .etio_rows(traces, loss, weight_decay)
  }
  # A robust study: when the rows vary the PGD training budget, the budget and the robust
  # accuracies become nodes (rows with a single budget keep the paper's nodes).
  if ("AdvEps" %in% names(traces)) {
    budgets <- .etio_as_number(traces$AdvEps[keep], "AdvEps")
    if (length(unique(stats::na.omit(budgets))) > 1) {
      missing <- setdiff(ETIO_ROBUST_NODES, names(traces))
      if (length(missing))
        .etio_input_error("the rows vary AdvEps but the trace table has no column '", missing[1], "'")
      for (column in ETIO_ROBUST_NODES) traces[[column]] <- .etio_as_number(traces[[column]], column)
      columns <- c(features, ETIO_ROBUST_NODES, attack)
    }
  }
  data <- traces[keep, columns, drop = FALSE]
  rownames(data) <- NULL

  if (attack == "MemguardAcc") {
    undefended <- is.na(data$MemguardAcc)
    if (any(undefended)) {
      warning(sprintf("MemguardAcc: dropped %d of %d rows (loss %s) without a MemGuard result",
                      sum(undefended), nrow(data), loss), call. = FALSE)
      data <- data[!undefended, , drop = FALSE]
      rownames(data) <- NULL
    }
  }
  for (column in columns) {
    bad <- !is.finite(data[[column]])
    if (any(bad))
      .etio_input_error("column '", column, "' has ", sum(bad), " row(s) with a missing or non-finite value ",
                        "(NA/NaN/Inf) for loss '", loss, "'")
  }
  needed_rows <- length(columns) + 2
  if (nrow(data) < needed_rows)
    .etio_input_error("only ", nrow(data), " row(s) for loss '", loss, "'",
                      if (fixed_wd) paste0(" and weight decay ", format(weight_decay)), " (", attack,
                      "); at least ", needed_rows, " are needed to learn a graph on ", length(columns), " nodes")
  for (column in columns) {
    if (length(unique(data[[column]])) < 2)
      .etio_input_error("column '", column, "' is constant (", format(data[[column]][1]), ") for loss '", loss,
                        "'; a constant variable cannot be a node of a Gaussian network")
  }
  data
}

# Rows of one loss and, when weight_decay > 0, of that weight decay (relative tolerance: the
# traces write 0.0005 / 0.005, the command line may say 5e-4).
.etio_rows <- function(traces, loss, weight_decay) {
  keep <- !is.na(traces$Loss) & traces$Loss == loss
  if (!is.null(weight_decay) && !is.na(weight_decay) && weight_decay > 0) {
    wd <- suppressWarnings(as.numeric(traces$WeightDecay))
    keep <- keep & !is.na(wd) & abs(wd - weight_decay) <= 1e-9 * weight_decay
  }
  keep
}

# A column as a double vector (bnlearn rejects integer columns), naming the first value that
# is not a number.
.etio_as_number <- function(x, column) {
  if (is.numeric(x) || is.logical(x)) return(as.double(x))
  text <- trimws(as.character(x))
  text[text %in% c("-", "")] <- NA
  value <- suppressWarnings(as.numeric(text))
  bad <- !is.na(text) & is.na(value)
  if (any(bad)) .etio_input_error("column '", column, "' has a non-numeric value '", text[bad][1], "'")
  value
}

#' The authors' domain knowledge as whitelist, blacklist and root nodes.
#'
#' Whitelist: the 8 arcs that hold by definition (AccDiff = TrainAcc - TestAcc,
#' LossDiff = TestLoss - TrainLoss, Bias2 from loss and variance). Blacklist: the authors' 12
#' rules, in their order, each built with tiers2blacklist(list(A, B)) (no arc from B into A);
#' the raw list keeps the duplicate of rule 12, which bnlearn accepts.
#'
#' @param features node names besides the attack (e.g. etio_features(attack)).
#' @param attack the outcome node.
#' @return list(whitelist = data.frame(from, to), blacklist = data.frame(from, to),
#'   roots = character).
etio_constraints <- function(features, attack) {
  etio_backend()  # tiers2blacklist comes from the backend
  features <- setdiff(features, attack)
  roots <- ETIO_ROOT_CANDIDATES[ETIO_ROOT_CANDIDATES %in% features]
  non_roots <- setdiff(features, roots)
  only <- function(target, exceptions = character(0))  # no arc into target from other non-roots
    list(target, setdiff(non_roots, c(target, exceptions)))
  # Gaps and the centroid may not cause the test-set quantities.
  derived <- features[features != "TestLoss" & !grepl("^(Train|Test)", features) & !(features %in% roots)]
  rules <- list(
    list(features, attack),                               # 1. the attack causes nothing
    only("TrainVar"),                                     # 2.
    only("TrainBias2", c("TrainVar", "TrainLoss")),       # 3.
    only("TrainLoss"),                                    # 4.
    only("TrainAcc")                                      # 5.
  )
  for (root in roots) rules[[length(rules) + 1]] <- list(root, non_roots)   # 6. roots have root parents only
  rules <- c(rules, list(
    list("TestLoss", derived),                            # 7.
    list("TestAcc", derived),                             # 8.
    only("TestVar"),                                      # 9.
    only("TestBias2", c("TestVar", "TestLoss")),          # 10.
    list("TestLoss", "TestVar"),                          # 11.
    list("TrainLoss", "TrainVar")                         # 12. (already in rule 4)
  ))
  if ("AdvEps" %in% features) {
    rules <- c(rules, list(
      list("AdvEps", setdiff(features, "AdvEps")),          # R1. the budget is set by design: nothing causes it
      only("AdvTrainAcc", "TrainAcc"),                       # R2. robust accuracies: roots and their clean one
      only("AdvTestAcc", "TestAcc")                          # R3.
    ))
  }
  rules <- Filter(function(tiers) all(lengths(tiers) > 0) && all(unlist(tiers) %in% c(features, attack)), rules)
  blacklist <- do.call(rbind, lapply(rules, tiers2blacklist))
  whitelist <- matrix(c("TrainAcc", "AccDiff", "TrainLoss", "LossDiff", "TrainLoss", "TrainBias2",
                        "TrainVar", "TrainBias2", "TestLoss", "LossDiff", "TestLoss", "TestBias2",
                        "TestVar", "TestBias2", "TestAcc", "AccDiff",
                        # the robust gap by definition, and the budget's effect on robust accuracy
                        "AdvTrainAcc", "AdvAccDiff", "AdvTestAcc", "AdvAccDiff",
                        "AdvEps", "AdvTrainAcc", "AdvEps", "AdvTestAcc"), ncol = 2, byrow = TRUE)
  whitelist <- whitelist[whitelist[, 1] %in% features & whitelist[, 2] %in% features, , drop = FALSE]
  list(whitelist = .etio_arc_frame(whitelist), blacklist = .etio_arc_frame(blacklist), roots = roots)
}

.etio_arc_frame <- function(arcs) {
  arcs <- as.matrix(arcs)
  if (!length(arcs)) return(data.frame(from = character(0), to = character(0), stringsAsFactors = FALSE))
  data.frame(from = as.character(arcs[, 1]), to = as.character(arcs[, 2]), stringsAsFactors = FALSE)
}

.etio_arc_matrix <- function(arcs) {
  m <- cbind(from = as.character(arcs$from), to = as.character(arcs$to))
  if (!nrow(m)) return(NULL)
  m
}

.etio_strength_frame <- function(strength) {
  data.frame(from = as.character(strength$from), to = as.character(strength$to),
             strength = as.numeric(strength$strength), direction = as.numeric(strength$direction),
             stringsAsFactors = FALSE)
}

# The authors' cross-validated structure learning (infer_graph.R, best_hold_out): 20 runs of
# k = 3 hold-out splits with test sets of floor(0.2 n) rows, hc with the constraints, the
# attack predicted from its parents in each test set.
#
# The authors asked bn.cv for loss = "cor"; etio_cv() keeps the predictions and
# etio_cv_predcor() applies bnlearn 4.7's "cor" rule to them (r/backend.R), so the value is
# 4.7's on every bnlearn version, and stays defined where 4.7's pooled correlation stops with
# an error (the attack has parents in some splits of a run and none in others, which small
# trace tables hit).
.etio_cv_hc <- function(data, attack, constraints, runs, k) {
  etio_cv(data, "hc", attack, runs = runs, k = k, m = floor(0.2 * nrow(data)),
          algorithm.args = list(blacklist = .etio_arc_matrix(constraints$blacklist),
                                whitelist = .etio_arc_matrix(constraints$whitelist)))
}

# Mean over runs of the predictive correlation; runs where it is undefined (the attack a root in
# every split) are left out, NA only when it is undefined in every run.
.etio_mean_predcor <- function(xval, attack) {
  values <- etio_cv_predcor(xval, attack)
  if (all(is.na(values))) NA_real_ else mean(values, na.rm = TRUE)
}

#' Learn the averaged causal graph of one attack.
#'
#' method "boot" (the paper's text, section 3.1): arc strengths over R bootstrap resamples of
#' hc with the constraints, averaged network at the default (L1) threshold.
#' method "cv" (the authors' released code): arc strengths over the runs x k hold-out
#' networks of bn.cv (each reduced to its CPDAG), averaged at the default threshold; the
#' mean hold-out predictive correlation of those runs comes for free.
#'
#' `network` and `strength` are the backend's own objects, so bnlearn's verbs apply to them:
#'   fit <- etio_learn(data, "Oak17Acc")
#'   print(fit$network)
#'   averaged.network(fit$strength, threshold = 0.8)
#'
#' @param data numeric data.frame from etio_prepare().
#' @param attack the outcome column of data.
#' @param method "boot" or "cv".
#' @param R bootstrap replicates ("boot").
#' @param runs,k hold-out runs and splits per run ("cv").
#' @param seed set before the resampling.
#' @param features nodes besides the attack; default: every other column of data.
#' @return list(network (bn: the averaged network), strength (bn.strength: from, to, strength,
#'   direction, with bnlearn's attributes nodes, method, threshold), arcs = data.frame(from, to),
#'   threshold, predcor (NA for boot), backend, backend_info (etio_backend_info()), seed, method).
etio_learn <- function(data, attack, method = c("boot", "cv"), R = 200, runs = 20, k = 3, seed = 1,
                       features = NULL) {
  method <- match.arg(method)
  backend <- etio_backend()
  .etio_check_target(data, attack)
  if (is.null(features)) features <- setdiff(names(data), attack)
  data <- data[, c(features, attack), drop = FALSE]
  constraints <- etio_constraints(features, attack)
  set.seed(seed)
  if (method == "boot") {
    strength <- etio_boot_strength(data, R = R, algorithm = "hc",
                                   algorithm.args = list(whitelist = .etio_arc_matrix(constraints$whitelist),
                                                         blacklist = .etio_arc_matrix(constraints$blacklist)))
    predcor <- NA_real_
  } else {
    xval <- .etio_cv_hc(data, attack, constraints, runs, k)
    # Without `nodes`: for cross-validated networks bnlearn takes the nodes from the networks
    # and warns that a `nodes` argument (the authors' call passed names(data)) is ignored.
    strength <- custom.strength(xval)
    predcor <- .etio_mean_predcor(xval, attack)
  }
  network <- averaged.network(strength)
  list(network = network, strength = strength, arcs = .etio_arc_frame(arcs(network)),
       threshold = as.numeric(attr(strength, "threshold")), predcor = predcor, backend = backend,
       backend_info = etio_backend_info(), seed = seed, method = method)
}

#' Predictive power of the graph (Table 2's Etio Pred. and MSE).
#'
#' predcor: mean over `runs` of the pooled hold-out correlation between the attack and its
#' prediction from its parents in an hc graph learned on the training rows (the "cv" path of
#' etio_learn; pass its predcor to avoid learning the same 60 graphs twice). mse: mean over
#' `runs` of the hold-out mean squared error of the given (averaged) network, parameters
#' refitted on each training part, with the random number stream re-seeded so the splits
#' equal those of predcor. As in the authors' code, mse is -1 when the network has undirected
#' arcs (no Gaussian fit exists); unlike their code, predcor is still reported then.
#'
#' @param data,attack as for etio_learn().
#' @param network the averaged network (bnlearn bn).
#' @param runs,k,seed hold-out protocol.
#' @param predcor an already computed predcor (etio_learn(method = "cv")$predcor), or NULL.
#' @return list(predcor, mse).
etio_predictive <- function(data, attack, network, runs = 20, k = 3, seed = 1, predcor = NULL) {
  etio_backend()
  .etio_check_target(data, attack)
  if (is.null(predcor) || is.na(predcor)) {
    features <- setdiff(names(data), attack)
    set.seed(seed)
    predcor <- .etio_mean_predcor(.etio_cv_hc(data[, c(features, attack), drop = FALSE], attack,
                                              etio_constraints(features, attack), runs, k), attack)
  }
  mse <- -1
  if (directed(network)) {
    set.seed(seed)
    xval <- etio_cv(data[, nodes(network), drop = FALSE], network, attack, runs = runs, k = k,
                    m = floor(0.2 * nrow(data)))
    mse <- mean(etio_cv_mse(xval))
  }
  list(predcor = predcor, mse = mse)
}

#' The correlation baseline: Pearson correlation test of the attack with each hypothesis variable.
#'
#' bnlearn's default test for two continuous variables (`ci.test`, "cor"): the statistic is
#' Pearson's r, the p-value Student's t with n - 2 degrees of freedom. Computed on the rows
#' given (one attack's prepared rows); the authors' run instead lost rows to a table-wide
#' na.omit made while testing MemguardAcc (docs/differences.md).
#'
#' @param data data.frame with the attack and its hypothesis variables (ETIO_HYPOTHESES).
#' @param attack one of ETIO_ATTACKS.
#' @param loss optional value for a leading Loss column.
#' @return data.frame(Loss (if given), Attack, Variable, Correlation, p-value).
etio_correlations <- function(data, attack, loss = NULL) {
  .etio_check_attack(attack)
  etio_backend()
  variables <- ETIO_HYPOTHESES[[attack]]
  missing <- setdiff(c(attack, variables), names(data))
  if (length(missing)) .etio_input_error("data has no column '", missing[1], "'")
  rows <- lapply(variables, function(variable) {
    test <- ci.test(x = attack, y = variable, data = data[, c(attack, variable)])
    data.frame(Attack = attack, Variable = variable, Correlation = unname(test$statistic),
               `p-value` = test$p.value, check.names = FALSE, stringsAsFactors = FALSE)
  })
  table <- do.call(rbind, rows)
  if (!is.null(loss)) table <- cbind(data.frame(Loss = loss, stringsAsFactors = FALSE), table)
  rownames(table) <- NULL
  table
}

#' Write a network in bnlearn's write.dot format (the format of the authors' graph files).
#'
#' @param network bnlearn bn.
#' @param file output path.
#' @return file, invisibly.
etio_write_dot <- function(network, file) {
  etio_backend()
  write.dot(file, network)
  invisible(file)
}

# ------------------------------------------------------------------------------------------
# Every graph of a trace table: the learning stage as one function, called by `etio learn`
# (Python, through rpy2) and by r/learn_graphs.R alike, so both write the same files.
# ------------------------------------------------------------------------------------------

ETIO_METHODS <- c("boot", "cv")

.etio_check_protocol <- function(method, R, runs, k, seed) {
  if (!is.character(method) || length(method) != 1 || !(method %in% ETIO_METHODS))
    .etio_input_error("unknown method '", paste(method, collapse = ","), "'; known methods: ",
                      paste(ETIO_METHODS, collapse = ", "))
  count <- function(value, name, minimum) {
    if (!is.numeric(value) || length(value) != 1 || is.na(value) || value < minimum || value != round(value))
      .etio_input_error(name, " must be an integer >= ", minimum, ", got '", paste(value, collapse = ","), "'")
  }
  count(R, "replicates", 1)
  count(runs, "runs", 1)
  count(k, "k", 2)
  count(seed, "seed", 0)
}

#' The loss x attack pairs to learn from a trace table at one weight decay, loss-major.
#'
#' Named losses and attacks are taken as asked (a loss without rows is reported when its
#' graph is prepared). By default: every loss with rows at `weight_decay` (ce, mse first)
#' and every attack column (in ETIO_ATTACKS order) with a value in those rows; MemguardAcc,
#' for instance, exists only at the weight decay MemGuard was run at. An attack whose column is
#' constant over a loss's rows (an attack at chance on every configuration, as on tiny studies)
#' cannot be a node of a Gaussian network: by default its pair is left out, and the reason is
#' kept. `etio learn` chooses its pairs with this function too (etio.causal.learning.present_pairs).
#'
#' @param traces data.frame from etio_read_traces().
#' @param weight_decay a WeightDecay value, or NULL / <= 0 for all rows.
#' @param losses,attacks character vectors or NULL.
#' @return data.frame(loss, attack), with attribute "skipped": a list of list(name, reason).
etio_pairs <- function(traces, weight_decay, losses = NULL, attacks = NULL) {
  traces <- .etio_normalise_traces(traces)
  if (!("Loss" %in% names(traces))) .etio_input_error("trace table has no column 'Loss'")
  for (attack in attacks) {
    .etio_check_attack(attack)
    if (!(attack %in% names(traces))) .etio_input_error("trace table has no column '", attack, "'")
  }
  if (is.null(losses)) {
    present <- unique(stats::na.omit(traces$Loss))
    losses <- c(intersect(c("ce", "mse"), present), setdiff(present, c("ce", "mse")))
    losses <- Filter(function(loss) any(.etio_rows(traces, loss, weight_decay)), losses)
  }
  pairs <- list()
  skipped <- list()
  for (loss in losses) {
    rows <- .etio_rows(traces, loss, weight_decay)
    for (attack in if (is.null(attacks)) intersect(ETIO_ATTACKS, names(traces)) else attacks) {
      if (is.null(attacks)) {
        values <- stats::na.omit(suppressWarnings(as.numeric(traces[[attack]][rows])))
        if (!length(values)) next
        if (length(unique(values)) == 1) {
          skipped[[length(skipped) + 1]] <- list(
            name = paste0(loss, "-", attack),
            reason = sprintf("%s is constant (%s) over the %d rows of loss %s: not a node of a Gaussian network",
                             attack, format(values[1], digits = 6), length(values), loss))
          next
        }
      }
      pairs[[length(pairs) + 1]] <- data.frame(loss = loss, attack = attack, stringsAsFactors = FALSE)
    }
  }
  if (!length(pairs) && length(skipped)) {
    .etio_input_error("no graph can be learned at weight decay ", format(weight_decay), ": ",
                      paste(vapply(skipped, `[[`, "", "reason"), collapse = "; "))
  }
  if (!length(pairs)) {
    present <- sort(unique(stats::na.omit(suppressWarnings(as.numeric(traces$WeightDecay)))))
    .etio_input_error("trace table has no rows with weight decay ", format(weight_decay), " and an attack column; ",
                      "weight decays present: ", paste(format(present, scientific = FALSE, drop0trailing = TRUE),
                                                       collapse = ", "))
  }
  structure(do.call(rbind, pairs), skipped = skipped)
}

#' Learn one loss x attack graph from a trace table: rows prepared and checked, graph
#' learned, its predictive power and the correlation baseline.
#'
#' @param traces data.frame from etio_read_traces().
#' @param loss,weight_decay,attack as for etio_prepare().
#' @param method,R,runs,k,seed as for etio_learn().
#' @return list(name ("<loss>-<attack>"), loss, weight_decay, attack, rows, nodes, and
#'   etio_learn()'s network, strength, arcs, threshold, predcor (etio_predictive's), method,
#'   seed, backend, plus mse and correlations (etio_correlations())).
etio_learn_graph <- function(traces, loss, weight_decay, attack, method = "boot", R = 200, runs = 20, k = 3,
                             seed = 1) {
  .etio_check_protocol(method, R, runs, k, seed)
  data <- etio_prepare(traces, loss, weight_decay, attack)
  learned <- etio_learn(data, attack, method = method, R = R, runs = runs, k = k, seed = seed)
  predictive <- etio_predictive(data, attack, learned$network, runs = runs, k = k, seed = seed,
                                predcor = learned$predcor)
  learned$predcor <- predictive$predcor
  c(list(name = paste0(loss, "-", attack), loss = loss,
         weight_decay = if (is.null(weight_decay)) 0 else as.numeric(weight_decay), attack = attack,
         rows = nrow(data), nodes = names(data)),
    learned,
    list(mse = predictive$mse, correlations = etio_correlations(data, attack, loss = loss)))
}

#' Write one learned graph: the run layout's graph (<loss>-<attack>.dot, bnlearn's write.dot) and
#' strength (<loss>-<attack>-strength.csv) files.
#'
#' @param graph etio_learn_graph()'s result.
#' @param directory an existing directory.
#' @return the two paths, invisibly.
etio_write_graph <- function(graph, directory) {
  paths <- file.path(directory, c(etio_layout_name("graph", loss = graph$loss, attack = graph$attack),
                                  etio_layout_name("strength", loss = graph$loss, attack = graph$attack)))
  etio_write_dot(graph$network, paths[1])
  utils::write.csv(.etio_strength_frame(graph$strength), paths[2], row.names = FALSE)
  invisible(paths)
}

#' Write the authors' three result tables of one weight decay, named by the run layout
#' (r/layout.csv: the authors' names, the weight decay printed with "%f"):
#'   predictive    results-w_dk-cont-wd_%f.csv   DK?, Loss, Attack, Predcor, MSE (graph order)
#'   comparison    results-cont-wd_%f.csv        Loss, Attack, Max Corr Var, Max Corr, PredCor-w_dk, MSE-w_dk
#'                                               (attack-major, in ETIO_ATTACKS order)
#'   correlation   corr_results-cont-wd_%f.csv   Loss, Attack, Variable, Correlation, p-value
#' "Max Corr" is the numerically largest correlation (the authors compared them as strings).
#'
#' @param graphs list of etio_learn_graph() results.
#' @param directory an existing directory.
#' @param weight_decay the weight decay of the graphs (NULL or 0: all rows).
#' @return the three paths, invisibly.
etio_write_tables <- function(graphs, directory, weight_decay) {
  wd <- if (is.null(weight_decay)) 0 else weight_decay
  paths <- file.path(directory, vapply(c("predictive", "comparison", "correlation"), etio_layout_name, "", wd = wd,
                                       USE.NAMES = FALSE))
  column <- function(field) unlist(lapply(graphs, `[[`, field))
  predictive <- data.frame(`DK?` = rep(TRUE, length(graphs)), Loss = column("loss"), Attack = column("attack"),
                           Predcor = column("predcor"), MSE = column("mse"), check.names = FALSE,
                           stringsAsFactors = FALSE)
  best <- lapply(graphs, function(graph) graph$correlations[which.max(graph$correlations$Correlation), ])
  comparison <- data.frame(Loss = predictive$Loss, Attack = predictive$Attack,
                           `Max Corr Var` = vapply(best, function(row) row$Variable, ""),
                           `Max Corr` = vapply(best, function(row) row$Correlation, 0),
                           `PredCor-w_dk` = predictive$Predcor, `MSE-w_dk` = predictive$MSE,
                           check.names = FALSE, stringsAsFactors = FALSE)
  comparison <- comparison[order(match(comparison$Attack, ETIO_OUTCOMES), match(comparison$Loss, unique(comparison$Loss))), ]
  rownames(comparison) <- NULL
  correlations <- do.call(rbind, lapply(graphs, `[[`, "correlations"))
  rownames(correlations) <- NULL
  utils::write.csv(predictive, paths[1])
  utils::write.csv(comparison, paths[2])
  utils::write.csv(correlations, paths[3])
  invisible(paths)
}

#' Learn and write every loss x attack graph of a trace table at one weight decay.
#'
#' Writes into `directory` (which must exist) the files of etio_write_graph() for every pair,
#' then those of etio_write_tables(). Both front ends call this function: `etio learn`
#' (which stages the directory, draws the figures from `on_graph` and writes provenance.json)
#' and r/learn_graphs.R.
#'
#' @param traces data.frame from etio_read_traces(), or the path of a trace CSV.
#' @param directory output directory.
#' @param weight_decay a WeightDecay value, or NULL / <= 0 for all rows.
#' @param method,R,runs,k,seed as for etio_learn().
#' @param losses,attacks as for etio_pairs() (ignored when `pairs` is given).
#' @param pairs data.frame(loss, attack) of the graphs to learn, in this order; default
#'   etio_pairs(traces, weight_decay, losses, attacks).
#' @param on_graph NULL, or function(graph, done, total) called after each graph is written.
#' @param workers number of processes learning graphs at once (forked with the parallel
#'   package; 1: all in this process). Each graph sets the seed itself and the files are
#'   written here, in pair order, so the output is the same bytes for any number of workers.
#' @return the list of etio_learn_graph() results, invisibly.
etio_learn_all <- function(traces, directory, weight_decay, method = "boot", R = 200, runs = 20, k = 3,
                           seed = 1, losses = NULL, attacks = NULL, pairs = NULL, on_graph = NULL, workers = 1L) {
  .etio_check_protocol(method, R, runs, k, seed)
  if (!is.numeric(workers) || length(workers) != 1 || is.na(workers) || workers < 1 || workers != round(workers))
    .etio_input_error("workers must be an integer >= 1, got '", paste(workers, collapse = ","), "'")
  if (!dir.exists(directory)) .etio_input_error("output directory does not exist: ", directory)
  if (is.character(traces)) traces <- etio_read_traces(traces)
  traces <- .etio_normalise_traces(traces)
  if (is.null(pairs)) pairs <- etio_pairs(traces, weight_decay, losses, attacks)
  learn <- function(i) etio_learn_graph(traces, pairs$loss[i], weight_decay, pairs$attack[i], method = method,
                                        R = R, runs = runs, k = k, seed = seed)
  write <- function(graph, i) {
    etio_write_graph(graph, directory)
    if (!is.null(on_graph)) on_graph(graph, i, nrow(pairs))
  }
  graphs <- vector("list", nrow(pairs))
  if (workers > 1 && nrow(pairs) > 1) {
    graphs <- parallel::mclapply(seq_len(nrow(pairs)), learn, mc.cores = min(workers, nrow(pairs)),
                                 mc.preschedule = FALSE)
    for (i in seq_along(graphs)) {
      # a worker's error comes back as a try-error carrying the condition; a killed worker as NULL
      if (inherits(graphs[[i]], "try-error")) stop(attr(graphs[[i]], "condition"))
      if (is.null(graphs[[i]])) stop("the worker learning ", pairs$loss[i], "-", pairs$attack[i], " stopped")
      write(graphs[[i]], i)
    }
  } else {
    for (i in seq_len(nrow(pairs))) {
      graphs[[i]] <- learn(i)
      write(graphs[[i]], i)
    }
  }
  etio_write_tables(graphs, directory, weight_decay)
  invisible(graphs)
}
