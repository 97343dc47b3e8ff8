# Self-checking tests of r/etio.R and r/learn_graphs.R: stops at the first mismatch.
#
#   Rscript tests/r/test_etio.R
#
# Uses bnlearn when installed, else r/compat/bnlearn.R (ETIO_R_BACKEND=compat forces it).
# Prints one "ok" line per check and "all R etio tests passed" at the end.

test_dir <- local({
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(script)) dirname(normalizePath(script[1])) else normalizePath(file.path("tests", "r"))
})
repo <- normalizePath(file.path(test_dir, "..", ".."))
source(file.path(repo, "r", "etio.R"))
backend <- etio_backend()
cat("backend:", backend, "\n")
if (!startsWith(backend, "bnlearn ")) {
  if (!identical(etio_backend(), backend) || sum(search() == "etio:bnlearn-compat") != 1)
    stop("FAILED: the compatible backend is attached once", call. = FALSE)
  if (!exists("hc", mode = "function") || !exists("bn.cv", mode = "function"))
    stop("FAILED: hc() and bn.cv() are callable after etio_backend()", call. = FALSE)
}
if (!identical(.etio_r_dir, file.path(repo, "r"))) stop("FAILED: etio.R finds its directory: ", .etio_r_dir, call. = FALSE)
fixture <- file.path(repo, "tests", "data", "bnlearn-4.7", "etio14")
started <- Sys.time()

ok <- function(what) cat("ok -", what, "\n")
check <- function(condition, what) {
  if (!isTRUE(condition)) stop("FAILED: ", what, call. = FALSE)
}
check_equal <- function(actual, expected, what, tolerance = 0) {
  same <- if (is.numeric(expected) && tolerance > 0) {
    length(actual) == length(expected) && all(abs(actual - expected) <= tolerance * pmax(1, abs(expected)))
  } else identical(actual, expected)
  if (!isTRUE(same))
    stop("FAILED: ", what, "\n  expected: ", paste(format(expected, digits = 15), collapse = " "),
         "\n  actual:   ", paste(format(actual, digits = 15), collapse = " "), call. = FALSE)
}
# The condition message of evaluating expr (which must fail / warn).
error_of <- function(expr) tryCatch({ expr; NA_character_ }, error = conditionMessage)
check_input_error <- function(expr, pattern, what) {
  message <- error_of(expr)
  check(!is.na(message), paste(what, "- no error raised"))
  check(startsWith(message, "etio input error: "), paste(what, "- not an input error:", message))
  check(grepl(pattern, message), paste0(what, " - message '", message, "' lacks '", pattern, "'"))
}
arc_keys <- function(arcs) sort(unique(paste(arcs[[1]], arcs[[2]], sep = " -> ")))

# ------------------------------------------------------------------------------------------
# A trace table in the authors' schema, drawn from a linear-Gaussian model with known arcs.
# ------------------------------------------------------------------------------------------
synthetic_traces <- function(n_per_loss = 150, seed = 42) {
  set.seed(seed)
  one_loss <- function(loss, n) {
    e <- function(sd = 0.3) rnorm(n, sd = sd)
    num_params <- round(exp(runif(n, 10, 15)))
    size <- sample(c(1000, 5000), n, replace = TRUE)
    np <- log(num_params) - 12.5
    ts <- size / 1000
    train_var <- 0.8 * np + e()
    test_var <- 0.3 * ts + 0.5 * np + e()
    train_loss <- -0.7 * np + e()
    test_loss <- -0.2 * ts + e()
    train_acc <- 0.9 * np + e()
    train_bias2 <- train_loss - 0.5 * train_var + e(0.2)
    test_bias2 <- test_loss - 0.5 * test_var + e(0.2)
    test_acc <- -0.8 * test_loss + 0.4 * ts + e()
    acc_diff <- train_acc - test_acc + e(0.1)
    loss_diff <- test_loss - train_loss + e(0.1)
    centroid_origin <- 0.6 * train_acc + e()
    centroid_sorted3 <- 0.6 * test_acc + e()
    data.frame(
      WeightDecay = 0.0005, EpochNum = 500, Dataset = "cifar10", Arch = "AlexNet", Width = 16,
      TrainSize = ifelse(size == 1000, "1k", "5k"), Loss = loss, `Scheduler?` = "with_scheduler", lr = 0.1,
      NumParams = num_params, TrainAcc = train_acc, TestAcc = test_acc, TrainLoss = train_loss,
      TestLoss = test_loss, TrainVar = train_var, TestVar = test_var, TrainBias2 = train_bias2,
      TestBias2 = test_bias2, AccDiff = acc_diff, LossDiff = loss_diff,
      `CentroidDistance(sorted_3)` = centroid_sorted3, `CentroidDistance(sorted_10)` = e(),
      `CentroidDistance(origin)` = centroid_origin,
      MLLeakAcc = 0.7 * acc_diff + 0.4 * centroid_origin + e(0.2),
      Oak17Acc = 0.9 * acc_diff + e(0.2),
      ThresholdAcc = 0.8 * loss_diff + e(0.2),
      MemguardAcc = 0.5 * acc_diff + e(0.2),
      check.names = FALSE, stringsAsFactors = FALSE)
  }
  traces <- rbind(one_loss("ce", n_per_loss), one_loss("mse", n_per_loss))
  # Configurations MemGuard was not run on carry the parser's "-" placeholder.
  traces$MemguardAcc <- format(traces$MemguardAcc, digits = 15)
  traces$MemguardAcc[seq(1, nrow(traces), by = 5)] <- "-"
  traces
}
traces_csv <- tempfile("traces-", fileext = ".csv")
utils::write.csv(synthetic_traces(), traces_csv, row.names = FALSE)

# ------------------------------------------------------------------------------------------
# Constraints: the authors' domain knowledge, against the lists bnlearn 4.7 was given.
# ------------------------------------------------------------------------------------------
fixture_data <- read.csv(file.path(fixture, "data.csv"))
constraints <- etio_constraints(setdiff(names(fixture_data), "Oak17Acc"), "Oak17Acc")
check_equal(arc_keys(constraints$whitelist), arc_keys(read.csv(file.path(fixture, "whitelist.csv"))),
            "whitelist = etio14 whitelist.csv")
check_equal(nrow(constraints$whitelist), 8L, "8 whitelist arcs")
check_equal(nrow(constraints$blacklist), 99L, "raw blacklist has 99 rows")
check_equal(arc_keys(constraints$blacklist), arc_keys(read.csv(file.path(fixture, "blacklist.csv"))),
            "unique blacklist = etio14 blacklist.csv (98 rows)")
check_equal(length(arc_keys(constraints$blacklist)), 98L, "98 unique blacklist rows")
check_equal(constraints$roots, c("NumParams", "TrainSize"), "roots")
varying <- etio_constraints(etio_features("Oak17Acc", NULL), "Oak17Acc")
check_equal(varying$roots, c("NumParams", "WeightDecay", "TrainSize"), "WeightDecay is a root when it varies")
check("AccDiff -> WeightDecay" %in% arc_keys(varying$blacklist) &&
        !("TrainSize -> WeightDecay" %in% arc_keys(varying$blacklist)), "arcs between roots stay allowed")
ok("constraints equal the etio14 whitelist/blacklist")

# ------------------------------------------------------------------------------------------
# Features per attack.
# ------------------------------------------------------------------------------------------
base <- c("TrainAcc", "TestAcc", "AccDiff", "TrainLoss", "TestLoss", "LossDiff", "TrainVar", "TestVar",
          "TrainBias2", "TestBias2", "NumParams")
for (attack in ETIO_ATTACKS) {
  centroid <- if (attack %in% c("Top3MLLeakAcc", "Top3MLLeakLAcc", "MemguardAcc"))
    "CentroidDistance.sorted_3." else "CentroidDistance.origin."
  check_equal(etio_features(attack, 0.0005), c(base, centroid, "TrainSize"), paste("features of", attack))
  check_equal(etio_features(attack, NULL), c(base, centroid, "TrainSize", "WeightDecay"),
              paste("features of", attack, "with varying weight decay"))
  check_equal(etio_features(attack, 0), etio_features(attack, NULL), paste("weight decay 0 =", attack))
}
check_input_error(etio_features("Oak17"), "unknown attack 'Oak17'", "etio_features unknown attack")
ok("etio_features for the 7 attacks")

# ------------------------------------------------------------------------------------------
# Reading and preparing traces: conversions and input errors.
# ------------------------------------------------------------------------------------------
traces <- etio_read_traces(traces_csv)
check(all(c("CentroidDistance.origin.", "CentroidDistance.sorted_3.", "Scheduler.") %in% names(traces)),
      "R spelling of the trace columns")
check_equal(sort(unique(traces$TrainSize)), c(1000, 5000), "TrainSize 1k/5k -> 1000/5000")
check_equal(sum(is.na(traces$MemguardAcc)), 60L, "'-' placeholders read as NA")
numeric_sizes <- traces
numeric_sizes$TrainSize <- numeric_sizes$TrainSize / 1000
check_equal(sort(unique(etio_prepare(numeric_sizes, "ce", 5e-4, "Oak17Acc")$TrainSize)), c(1, 5),
            "numeric TrainSize passes through")

prepared <- etio_prepare(traces, "ce", 5e-4, "Oak17Acc")
check_equal(names(prepared), c(etio_features("Oak17Acc", 5e-4), "Oak17Acc"), "prepared columns")
check_equal(nrow(prepared), 150L, "rows of one loss")
check(all(vapply(prepared, is.double, TRUE)), "prepared columns are doubles")
check_equal(max(etio_prepare(traces, "ce", 5e-4, "Oak17Acc")$NumParams),
            max(traces$NumParams[traces$Loss == "ce"]) / max(traces$NumParams), "NumParams / max over whole table",
            tolerance = 1e-12)
authors_names <- synthetic_traces()
authors_names$TrainSize <- ifelse(authors_names$TrainSize == "1k", 1000, 5000)
check_equal(etio_prepare(authors_names, "ce", 5e-4, "MLLeakAcc")$CentroidDistance.origin.,
            etio_prepare(traces, "ce", 5e-4, "MLLeakAcc")$CentroidDistance.origin., "authors' column names accepted",
            tolerance = 1e-12)

warned <- NULL
memguard <- withCallingHandlers(etio_prepare(traces, "ce", 5e-4, "MemguardAcc"),
                                warning = function(w) { warned <<- conditionMessage(w); invokeRestart("muffleWarning") })
check_equal(nrow(memguard), 120L, "MemguardAcc rows without a value dropped")
check(!is.null(warned) && grepl("dropped 30 of 150 rows", warned), "MemguardAcc drop is announced with its count")

bad <- traces; bad$TestVar <- NULL
check_input_error(etio_prepare(bad, "ce", 5e-4, "Oak17Acc"), "no column 'TestVar'", "missing column")
bad <- traces; bad$TrainVar[c(3, 7)] <- NaN
check_input_error(etio_prepare(bad, "ce", 5e-4, "Oak17Acc"), "'TrainVar' has 2 row", "NaN in a used column")
bad <- traces; bad$TrainLoss[5] <- Inf
check_input_error(etio_prepare(bad, "ce", 5e-4, "Oak17Acc"), "'TrainLoss' has 1 row", "Inf in a used column")
bad <- traces; bad$Oak17Acc[4] <- NA
check_input_error(etio_prepare(bad, "ce", 5e-4, "Oak17Acc"), "'Oak17Acc' has 1 row", "NA outside MemguardAcc")
bad <- traces; bad$TestBias2 <- 0.25
check_input_error(etio_prepare(bad, "ce", 5e-4, "Oak17Acc"), "column 'TestBias2' is constant", "constant column")
bad <- traces; bad$TestAcc <- as.character(bad$TestAcc); bad$TestAcc[9] <- "n/a"
check_input_error(etio_prepare(bad, "ce", 5e-4, "Oak17Acc"), "'TestAcc' has a non-numeric value 'n/a'", "non-numeric value")
bad <- traces; bad$TrainSize <- NULL; bad$TrainSize <- ifelse(traces$TrainSize == 1000, "1k", "large")
check_input_error(etio_prepare(bad, "ce", 5e-4, "Oak17Acc"), "'TrainSize' has a value that is not a size: 'large'",
                  "bad TrainSize")
check_input_error(etio_prepare(traces, "ce", 5e-4, "ShadowAcc"), "unknown attack 'ShadowAcc'", "unknown attack")
check_input_error(etio_prepare(traces, "hinge", 5e-4, "Oak17Acc"), "no rows with Loss 'hinge'", "unknown loss")
check_input_error(etio_prepare(traces, "ce", 0.001, "Oak17Acc"), "no rows with Loss 'ce' and WeightDecay 0.001",
                  "unknown weight decay")
check_input_error(etio_prepare(traces[c(1:10, 151:160), ], "ce", 5e-4, "Oak17Acc"), "only 10 row",
                  "too few rows")
check_input_error(etio_read_traces(file.path(tempdir(), "absent.csv")), "trace file not found", "absent file")
ok("etio_read_traces / etio_prepare conversions and input errors")

# ------------------------------------------------------------------------------------------
# The learning protocol equals bnlearn 4.7's golden outputs (same calls, same seeds).
# ------------------------------------------------------------------------------------------
cv <- etio_learn(fixture_data, "Oak17Acc", method = "cv", runs = 20, seed = 7)
summary <- read.csv(file.path(fixture, "cv_summary.csv"))
check_equal(arc_keys(cv$arcs), arc_keys(read.csv(file.path(fixture, "cv_averaged_arcs.csv"))), "cv averaged arcs")
check_equal(cv$threshold, summary$threshold, "cv threshold", tolerance = 1e-9)
check_equal(cv$predcor, summary$predcor, "cv predcor", tolerance = 1e-9)
predictive <- etio_predictive(fixture_data, "Oak17Acc", cv$network, runs = 20, seed = 7, predcor = cv$predcor)
check_equal(predictive$mse, summary$mse, "hold-out mse of the averaged network", tolerance = 1e-9)
check_equal(etio_predictive(fixture_data, "Oak17Acc", cv$network, runs = 20, seed = 7)$predcor, summary$predcor,
            "predcor recomputed when not given", tolerance = 1e-9)
boot <- etio_learn(fixture_data, "Oak17Acc", method = "boot", R = 100, seed = 7)
check_equal(arc_keys(boot$arcs), arc_keys(read.csv(file.path(fixture, "boot_averaged_arcs.csv"))), "boot averaged arcs")
check_equal(boot$threshold, read.csv(file.path(fixture, "boot_threshold.csv"))$threshold, "boot threshold",
            tolerance = 1e-9)
check(is.na(boot$predcor) && boot$method == "boot" && boot$seed == 7 && boot$backend == backend, "boot metadata")
check_equal(names(boot$strength), c("from", "to", "strength", "direction"), "strength columns")
check_equal(nrow(boot$strength), 14L * 13L, "strength has every ordered pair")
golden_boot <- read.csv(file.path(fixture, "boot_strength.csv"))
check_equal(boot$strength$strength, golden_boot$strength, "boot strengths = bnlearn 4.7's", tolerance = 1e-9)
ci <- read.csv(file.path(fixture, "ci_test.csv"))
correlations <- etio_correlations(fixture_data, "Oak17Acc", loss = "ce")
check_equal(names(correlations), c("Loss", "Attack", "Variable", "Correlation", "p-value"), "correlation columns")
check_equal(correlations$Variable, c("AccDiff", "TrainVar", "TestVar", "NumParams"), "Oak17Acc hypotheses")
check_equal(correlations$Correlation, ci$statistic[match(correlations$Variable, ci$y)], "ci.test statistic",
            tolerance = 1e-9)
check_equal(correlations$`p-value`, ci$p.value[match(correlations$Variable, ci$y)], "ci.test p-value",
            tolerance = 1e-6)
ok("etio_learn / etio_predictive / etio_correlations reproduce bnlearn 4.7 on etio14")

# ------------------------------------------------------------------------------------------
# Planted arcs are recovered from synthetic traces.
# ------------------------------------------------------------------------------------------
planted <- c("AccDiff -> Oak17Acc", "NumParams -> TrainVar", "NumParams -> TrainAcc", "TrainSize -> TestVar",
             "NumParams -> TestVar", "NumParams -> TrainLoss", "TrainSize -> TestAcc")
for (method in c("boot", "cv")) {
  learned <- etio_learn(prepared, "Oak17Acc", method = method, R = 50, runs = 5, seed = 1)
  keys <- arc_keys(learned$arcs)
  check(all(planted %in% keys), paste(method, "recovers the planted arcs; missing:",
                                      paste(setdiff(planted, keys), collapse = ", ")))
  check_equal(learned$arcs$from[learned$arcs$to == "Oak17Acc"], "AccDiff", paste(method, "parents of Oak17Acc"))
  check(!any(learned$arcs$from == "Oak17Acc"), paste(method, "the attack has no children"))
  if (method == "cv") check(learned$predcor > 0.95, paste("cv predcor", learned$predcor))
}
top3 <- etio_prepare(traces, "mse", 5e-4, "MLLeakAcc")
keys <- arc_keys(etio_learn(top3, "MLLeakAcc", method = "boot", R = 50, seed = 3)$arcs)
check(all(c("AccDiff -> MLLeakAcc", "CentroidDistance.origin. -> MLLeakAcc") %in% keys), "MLLeakAcc parents")
ok("etio_learn recovers planted arcs (boot and cv)")

# ------------------------------------------------------------------------------------------
# etio_learn returns bnlearn's own objects, and bnlearn's verbs and print methods apply.
# ------------------------------------------------------------------------------------------
options(width = 80)
check_equal(class(boot$strength), c("bn.strength", "data.frame"), "strength is a bn.strength")
check_equal(attr(boot$strength, "nodes"), names(fixture_data), "bn.strength nodes attribute")
check_equal(attr(boot$strength, "method"), "bootstrap", "bn.strength method attribute")
check_equal(attr(boot$strength, "threshold"), boot$threshold, "bn.strength threshold attribute")
check_equal(attr(cv$strength, "method"), "bootstrap", "custom.strength's method attribute is bootstrap too")
check_equal(attr(cv$strength, "nodes"), names(fixture_data), "custom.strength takes the nodes from the networks")
check_equal(sort(names(attributes(boot$strength))), c("class", "method", "names", "nodes", "row.names", "threshold"),
            "bn.strength attributes (no 'illegal' for Gaussian data)")
check_equal(class(boot$network), "bn", "network is a bn")
check_equal(names(boot$network), c("learning", "nodes", "arcs"), "bn components")
check_equal(boot$network$learning$algo, "averaged", "averaged network's algorithm")
check_equal(boot$network$learning$args$threshold, boot$threshold, "averaged network's threshold")
check_equal(nodes(boot$network), names(fixture_data), "bn nodes")

# At threshold 0.8: the rows of bnlearn 4.7's strength table above 0.8 (or at 1) pointing
# their way (direction >= 0.5); this selection has no cycle, so it is the graph.
strict <- averaged.network(boot$strength, threshold = 0.8)
kept <- golden_boot[(golden_boot$strength > 0.8 | golden_boot$strength == 1) & golden_boot$direction >= 0.5, ]
check_equal(arc_keys(as.data.frame(arcs(strict))), arc_keys(kept), "averaged.network(fit$strength, threshold = 0.8)")
check(nrow(kept) < nrow(boot$arcs), "threshold 0.8 keeps fewer arcs than the default")
check_equal(strict$learning$args$threshold, 0.8, "averaged network records threshold 0.8")

printed <- capture.output(print(boot$network))
check_equal(printed[2], "  Random/Generated Bayesian network", "print(bn) title of an averaged network")
check(sprintf("%-40s %s ", "  nodes:", 14) %in% printed, "print(bn) node count line")
check(sprintf("%-40s %s ", "  arcs:", nrow(boot$arcs)) %in% printed, "print(bn) arc count line")
check(sprintf("%-40s %s ", "  generation algorithm:", "Model Averaging") %in% printed, "print(bn) algorithm line")
check(sprintf("%-40s %s ", "  significance threshold:", format(boot$threshold)) %in% printed, "print(bn) threshold")
check_equal(capture.output(print(model2network("[A][B|A][C|A:B]"))), c(
  "", "  Random/Generated Bayesian network", "", "  model:", "   [A][B|A][C|A:B] ",
  "  nodes:                                 3 ",
  "  arcs:                                  3 ",
  "    undirected arcs:                     0 ",
  "    directed arcs:                       3 ",
  "  average markov blanket size:           2.00 ",
  "  average neighbourhood size:            2.00 ",
  "  average branching factor:              1.00 ",
  "", "  generation algorithm:                  Empty ", ""), "print(bn) in bnlearn's layout")
learned_hc <- capture.output(print(hc(fixture_data)))
check_equal(learned_hc[2], "  Bayesian network learned via Score-based methods", "print(hc()) title")
check(sprintf("%-40s %s ", "  score:", "BIC (Gauss.)") %in% learned_hc, "print(hc()) names the score")
# bnlearn 4.7 has no print method for bn.strength: it prints as its data frame.
check_equal(capture.output(print(boot$strength)), capture.output(print.data.frame(boot$strength)),
            "a bn.strength prints as a data frame")
# Methods dispatch from code that does not see the search path (registered S3 methods).
check_equal(capture.output(eval(quote(print(x)), list(x = boot$network), baseenv())), printed,
            "print(bn) dispatches from any environment")
fitted <- bn.fit(model2network("[A][B|A]"), data.frame(A = c(1, 2, 3, 4), B = c(2, 4.5, 5.5, 8)))
check_equal(capture.output(print(fitted))[1:9], c(
  "", "  Bayesian network parameters", "", "  Parameters of node A (Gaussian distribution)", "",
  "Conditional density: A", "Coefficients:", "(Intercept)  ", "        2.5  "), "print(bn.fit) in bnlearn's layout")
check("Conditional density: B | A" %in% capture.output(print(fitted$B)), "print(bn.fit.gnode) names the parents")
check_equal(unname(coef(fitted$B)), c(0.25, 1.9), "coef(bn.fit.gnode)", tolerance = 1e-12)
warned <- character(0)
quiet <- withCallingHandlers(etio_learn(fixture_data, "Oak17Acc", method = "cv", runs = 2, seed = 7),
                             warning = function(w) { warned <<- c(warned, conditionMessage(w)); invokeRestart("muffleWarning") })
check_equal(warned, character(0), "etio_learn(method = 'cv') raises no warning")
ok("etio_learn returns bn / bn.strength objects that print and average as bnlearn's")

dot <- tempfile(fileext = ".dot")
etio_write_dot(boot$network, dot)
lines <- readLines(dot)
check_equal(lines[1], "digraph {", "dot header")
check_equal(sum(grepl("^  edge \\[dir=forward\\] \"[^\"]+\" -> \"[^\"]+\" ;$", lines)), nrow(boot$arcs), "dot arcs")
ok("etio_write_dot")

# ------------------------------------------------------------------------------------------
# The command line, end to end: outputs, and atomic failure.
# ------------------------------------------------------------------------------------------
rscript <- file.path(R.home("bin"), "Rscript")
script <- file.path(repo, "r", "learn_graphs.R")
out <- file.path(tempdir(), "graphs")
status <- system2(rscript, c(script, traces_csv, "--out", out, "--weight-decay", "0.0005", "--method", "cv",
                             "--runs", "3", "--attacks", "Oak17Acc,ThresholdAcc,MemguardAcc", "--losses", "ce"),
                  stdout = FALSE, stderr = FALSE)
check_equal(status, 0L, "learn_graphs.R exit status")
expected_files <- c("ce-MemguardAcc-strength.csv", "ce-MemguardAcc.dot", "ce-Oak17Acc-strength.csv", "ce-Oak17Acc.dot",
                    "ce-ThresholdAcc-strength.csv", "ce-ThresholdAcc.dot", "corr_results-cont-wd_0.000500.csv",
                    "provenance.json", "results-cont-wd_0.000500.csv", "results-w_dk-cont-wd_0.000500.csv")
check_equal(sort(list.files(out)), sort(expected_files), "learn_graphs.R output files")
wdk <- read.csv(file.path(out, "results-w_dk-cont-wd_0.000500.csv"), check.names = FALSE)
check_equal(names(wdk), c("", "DK?", "Loss", "Attack", "Predcor", "MSE"), "results-w_dk columns")
check(all(wdk$Predcor > 0.9 & wdk$Predcor <= 1), "results-w_dk predcor")
cont <- read.csv(file.path(out, "results-cont-wd_0.000500.csv"), check.names = FALSE)
check_equal(names(cont), c("", "Loss", "Attack", "Max Corr Var", "Max Corr", "PredCor-w_dk", "MSE-w_dk"),
            "results-cont columns")
check_equal(cont$`Max Corr Var`, c("AccDiff", "LossDiff", "AccDiff"), "max correlation variables")
corr <- read.csv(file.path(out, "corr_results-cont-wd_0.000500.csv"), check.names = FALSE)
check_equal(names(corr), c("", "Loss", "Attack", "Variable", "Correlation", "p-value"), "corr_results columns")
check_equal(nrow(corr), 4L + 1L + 3L, "one correlation row per hypothesis variable")
provenance <- jsonlite::fromJSON(file.path(out, "provenance.json"))
check(identical(provenance$config$method, "cv") && identical(provenance$input$md5, unname(tools::md5sum(traces_csv))) &&
        identical(provenance$backend, backend), "provenance names method, input md5 and backend")
check_equal(provenance$graphs$name, c("ce-Oak17Acc", "ce-ThresholdAcc", "ce-MemguardAcc"), "provenance lists the graphs")

bad <- synthetic_traces()
bad$TestVar <- NULL
bad_csv <- tempfile("bad-", fileext = ".csv")
utils::write.csv(bad, bad_csv, row.names = FALSE)
failed_out <- file.path(tempdir(), "failed")
stderr_file <- tempfile()
status <- system2(rscript, c(script, bad_csv, "--out", failed_out, "--weight-decay", "0.0005", "--method", "boot",
                             "--replicates", "5"),
                  stdout = FALSE, stderr = stderr_file)
messages <- readLines(stderr_file)
check_equal(status, 1L, "learn_graphs.R fails on bad input")
check_equal(messages, "error: trace table has no column 'TestVar'", "one error line")
check(!file.exists(failed_out) && !length(list.files(tempdir(), pattern = "^\\.failed")), "no output left behind")
ok("learn_graphs.R end to end (outputs, provenance, atomic failure)")

cat(sprintf("all R etio tests passed (%.1f s)\n", as.numeric(difftime(Sys.time(), started, units = "secs"))))
