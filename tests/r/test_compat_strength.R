# Self-checking tests of r/compat/strength.R and r/compat/cv.R (bnlearn 4.7 compatible arc
# strengths, thresholds, averaged networks and hold-out cross-validation).
#
#   Rscript tests/r/test_compat_strength.R
#
# Prints one "ok" line per check and stops with an error at the first mismatch.
script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f)) else getwd()
})
repo <- normalizePath(file.path(script_dir, "..", ".."))
source(file.path(repo, "r", "compat", "bnlearn.R"), chdir = TRUE)
fixtures <- file.path(repo, "tests", "data", "bnlearn-4.7")

ok <- function(what) cat("ok -", what, "\n")
expect_equal <- function(actual, expected, what, tol = 0) {
  same <- if (tol == 0) identical(actual, expected) else
    length(actual) == length(expected) && all(abs(actual - expected) <= tol)
  if (!isTRUE(same))
    stop(what, ": expected ", paste(format(expected, digits = 17), collapse = " "),
         ", got ", paste(format(actual, digits = 17), collapse = " "), call. = FALSE)
  ok(what)
}
expect_error <- function(expr, pattern, what) {
  msg <- tryCatch({ force(expr); NULL }, error = function(e) conditionMessage(e))
  if (is.null(msg)) stop(what, ": no error raised", call. = FALSE)
  if (!grepl(pattern, msg)) stop(what, ": unexpected message '", msg, "'", call. = FALSE)
  ok(what)
}
# Value and the messages of the warnings it raised.
with_warnings <- function(expr) {
  warnings <- character(0)
  value <- withCallingHandlers(expr, warning = function(w) {
    warnings <<- c(warnings, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(value = value, warnings = warnings)
}
arc_strings <- function(a) if (nrow(a)) paste(a[, 1], a[, 2], sep = "->") else character(0)

# --- RNG primitives (R's own sampler, which bnlearn relies on) ---------------------------
set.seed(1)
expect_equal(sample(20, 5), c(4L, 7L, 1L, 2L, 13L), "set.seed(1); sample(20, 5)")
expect_equal(sample(20, 5), c(11L, 14L, 18L, 1L, 5L), "second sample(20, 5)")
set.seed(1)
expect_equal(sample(20, 20, TRUE),
             c(4L, 7L, 1L, 2L, 11L, 14L, 18L, 19L, 1L, 10L, 14L, 10L, 7L, 9L, 15L, 5L, 9L, 14L, 5L, 5L),
             "set.seed(1); sample(20, 20, TRUE)")
set.seed(42)
expect_equal(runif(3), c(0.91480604349635541, 0.93707541329786181, 0.28613953478634357),
             "set.seed(42); runif(3)", tol = 1e-16)
set.seed(42)
heads <- lapply(1:3, function(i) head(sample(5000, 500), 5))
expect_equal(heads, list(c(2609L, 4069L, 2369L, 1098L, 1252L), c(1387L, 959L, 2540L, 4049L, 2914L),
                         c(3573L, 2041L, 1454L, 303L, 3595L)), "three hold-out test sets of 500 from 5000")

# --- L1 threshold (spec 5.1 worked values) -----------------------------------------------
threshold_cases <- list(
  list(s = c(rep(1, 14), rep(0, 28)), p0 = 0.66667623930038455, t = 1),
  list(s = c(1, 0, 1, 1, 0, 1), p0 = 0.3333237611588698, t = 0),
  list(s = c(1, 1, .85, .85, .55, .55, .4, .4, .05, .05, 0, 0), p0 = NULL, t = 0.55),
  list(s = c(rep(1, 10), .95, .95, .9, .9, .6, .6, .3, .3, .1, .1, rep(0, 22)),
       p0 = 0.61903612354955173, t = 0.3),
  list(s = c(.9, .7, .9, .8, .7, .8), p0 = 0, t = 0.7))
for (case in threshold_cases) {
  label <- paste0("threshold of ", length(case$s), " strengths")
  if (!is.null(case$p0)) expect_equal(.compat_threshold_p0(case$s), case$p0, paste(label, "(p0)"))
  expect_equal(.compat_threshold(case$s), case$t, label)
}

# --- CPDAG --------------------------------------------------------------------------------
truth <- model2network("[A][B][C|A:B][D|B][E][F|A:D:E:G][G]")
cp <- .compat_cpdag(truth)
expect_equal(arc_strings(arcs(cp)),
             c("A->C", "A->F", "B->C", "B->D", "D->B", "D->F", "E->F", "G->F"),
             "CPDAG: arcs into colliders compelled, B - D undirected")
chain <- model2network("[A][B|A][C|B]")
expect_equal(nrow(arcs(.compat_cpdag(chain))), 4L, "CPDAG of a chain is fully undirected")
chain$learning$whitelist <- matrix(c("A", "B"), 1, dimnames = list(NULL, c("from", "to")))
expect_equal(arc_strings(arcs(.compat_cpdag(chain))), c("A->B", "B->C"),
             "CPDAG: a whitelisted arc is immutable and orients its chain")
chain$learning$whitelist <- NULL
chain$learning$blacklist <- matrix(c("C", "B"), 1, dimnames = list(NULL, c("from", "to")))
expect_equal(arc_strings(arcs(.compat_cpdag(chain))), c("A->B", "B->A", "B->C"),
             "CPDAG: an arc whose reverse is blacklisted stays directed")
expect_equal(arc_strings(arcs(.compat_cpdag(chain, wlbl = FALSE))),
             c("A->B", "B->A", "B->C", "C->B"), "CPDAG with wlbl = FALSE ignores the blacklist")

# --- custom.strength on hand-made networks (spec 11.4) ------------------------------------
nets <- list(model2network("[A][B|A][C|B]"), model2network("[A][C][B|A:C]"),
             model2network("[A][B|A][C|B]"))
cs <- custom.strength(nets, nodes = c("A", "B", "C"))
expect_equal(class(cs), c("bn.strength", "data.frame"), "custom.strength class")
expect_equal(paste(cs$from, cs$to), c("A B", "A C", "B A", "B C", "C A", "C B"), "rows in scan order")
expect_equal(cs$strength, c(1, 0, 1, 1, 0, 1), "CPDAG counting: strengths")
expect_equal(cs$direction, c(2/3, 0, 1/3, 1/3, 0, 2/3), "CPDAG counting: directions", tol = 1e-15)
expect_equal(attr(cs, "method"), "bootstrap", "method attribute")
expect_equal(attr(cs, "threshold"), 0, "threshold of the hand-made networks")
expect_equal(arc_strings(arcs(averaged.network(cs))), c("A->B", "C->B"), "averaged network A -> B <- C")
weighted <- custom.strength(nets, nodes = c("A", "B", "C"), weights = c(2, 1, 1))
# A - B is undirected in networks 1 and 3 (weights 1/2, 1/4) and A -> B in network 2 (1/4).
expect_equal(weighted$direction[1], 0.5 * 0.5 + 0.25 + 0.5 * 0.25, "weighted counting", tol = 1e-15)
arc_matrices <- custom.strength(lapply(nets, arcs), nodes = c("A", "B", "C"))
expect_equal(arc_matrices$direction, cs$direction, "arc matrices count like networks")

und <- custom.strength(list(truth), LETTERS[1:7])
bd <- und[(und$from == "B" & und$to == "D") | (und$from == "D" & und$to == "B"), ]
expect_equal(c(bd$strength, bd$direction), c(1, 1, 0.5, 0.5), "undirected B - D: strength 1, direction 0.5")
expect_equal(attr(und, "threshold"), 1, "threshold with all arcs at strength 1")
avg_und <- averaged.network(und)
expect_equal(arc_strings(arcs(avg_und)),
             c("A->C", "A->F", "B->C", "B->D", "D->B", "D->F", "E->F", "G->F"),
             "averaged network keeps the undirected arc, row-major")
expect_equal(avg_und$learning$algo, "averaged", "averaged network learning$algo")
expect_equal(avg_und$learning$args$threshold, 1, "averaged network learning$args$threshold")
ext <- .compat_cpdag_extension_amat(.compat_cpdag_amat(.compat_amat(avg_und), moral = TRUE))
expect_equal(arc_strings(.compat_arcs_from_amat(LETTERS[1:7], ext)),
             c("A->C", "A->F", "B->C", "D->B", "D->F", "E->F", "G->F"),
             "consistent extension orients B - D without new v-structures")

# cycle removal: weakest arcs go in first, the strongest arc of the cycle is dropped.
p <- matrix(0, 3, 3, dimnames = list(LETTERS[1:3], LETTERS[1:3]))
p["A", "B"] <- .9; p["B", "C"] <- .8; p["C", "A"] <- .7
cyc <- .compat_strength_table(p, LETTERS[1:3])
expect_equal(attr(cyc, "threshold"), 0.7, "default threshold of the cycle table")
res <- with_warnings(averaged.network(cyc, threshold = 0.5))
expect_equal(arc_strings(arcs(res$value)), c("B->C", "C->A"), "cycle removal drops A -> B")
expect_equal(length(res$warnings) == 1 && grepl("A -> B", res$warnings), TRUE, "cycle removal warns")
expect_equal(arc_strings(arcs(averaged.network(cyc))), c("A->B", "B->C"), "default threshold 0.7")
expect_equal(nrow(arcs(averaged.network(cyc, threshold = 0.95))), 0L, "nothing selected: empty graph")
expect_equal(inclusion.threshold(cyc), 0.7, "inclusion.threshold")

# --- bn.cv edge checks --------------------------------------------------------------------
set.seed(3)
toy <- data.frame(A = rnorm(60), B = rnorm(60))
toy$C <- toy$A + toy$B + rnorm(60)
ho <- function(...) bn.cv(toy, "hc", method = "hold-out", ...)
expect_error(ho(loss = "cor", loss.args = list(target = "Z")), "target node 'Z'", "target not in the data")
expect_error(ho(loss = "cor", loss.args = list(target = "C"), k = 1), "^k must be", "k below 2")
expect_error(ho(loss = "cor", loss.args = list(target = "C"), k = 61), "^k must be", "k above n")
expect_error(ho(loss = "cor", loss.args = list(target = "C"), m = 60), "^m \\(the test", "m not below n")
expect_error(ho(loss = "logl", loss.args = list(target = "C")), "unknown or unsupported loss", "unknown loss")
expect_error(bn.cv(toy, "hc", loss = "cor", loss.args = list(target = "C")),
             "not supported by the compatible implementation", "k-fold refused")
set.seed(5)
one <- ho(loss = "mse", loss.args = list(target = "C"), k = 2, m = 20)
expect_equal(class(one), "bn.kcv", "runs = 1 gives a bn.kcv")
expect_equal(names(one[[1]]), c("test", "fitted", "learning", "loss", "predicted", "observed"),
             "per-split list")
expect_equal(loss(one), mean(c(one[[1]]$loss, one[[2]]$loss)), "mse: mean of split losses", tol = 1e-15)
expect_equal(c(attr(one, "loss"), attr(one, "bn"), attr(one, "method"), attr(one, "args")$target),
             c("mse", "hc", "hold-out", "C"), "bn.kcv attributes")
set.seed(5)
first_tests <- list(sample(60, 20), sample(60, 20))
expect_equal(lapply(unclass(one), `[[`, "test"), first_tests, "test sets drawn first, in order")
fixed <- model2network("[A][B][C|A:B]")
set.seed(5)
two <- bn.cv(toy, fixed, loss = "cor", loss.args = list(target = "C"), method = "hold-out",
             k = 2, m = 20, runs = 2)
expect_equal(class(two), "bn.kcv.list", "runs > 1 gives a bn.kcv.list")
pooled <- cor(unlist(lapply(unclass(two[[1]]), `[[`, "predicted")),
              unlist(lapply(unclass(two[[1]]), `[[`, "observed")))
expect_equal(loss(two)[1], pooled, "cor: pooled correlation", tol = 1e-15)
pd <- averaged.network(custom.strength(list(model2network("[A][B|A][C|B]")), c("A", "B", "C")))
set.seed(5)
pd_cv <- bn.cv(toy, pd, loss = "mse", loss.args = list(target = "C"), method = "hold-out", k = 2, m = 20)
expect_equal(arc_strings(arcs(pd_cv[[1]]$fitted)), c("B->A", "C->B"),
             "partially directed network is fitted through its extension")
no_parents <- bn.cv(toy, model2network("[A][B][C]"), loss = "cor", loss.args = list(target = "C"),
                    method = "hold-out", k = 2, m = 20)
expect_equal(c(is.na(loss(no_parents)), "predictions" %in% names(no_parents[[1]])), c(TRUE, TRUE),
             "parentless target: NA loss, predictions stored as 'predictions'")

# --- golden bnlearn 4.7 outputs -----------------------------------------------------------
read_case <- function(case, name) read.csv(file.path(fixtures, case, name), stringsAsFactors = FALSE)
for (case in c("small4", "etio14")) {
  dir <- file.path(fixtures, case)
  proto <- strsplit(readLines(file.path(dir, "PROTOCOL.txt")), " ")
  proto <- setNames(lapply(proto, function(x) paste(x[-1], collapse = " ")), sapply(proto, `[`, 1))
  seed <- as.integer(proto$seed); target <- proto$target
  data <- read.csv(file.path(dir, "data.csv"))
  constraint <- function(name) {
    p <- file.path(dir, name)
    if (file.exists(p)) as.matrix(read.csv(p, stringsAsFactors = FALSE)) else NULL
  }
  wl <- constraint("whitelist.csv"); bl <- constraint("blacklist.csv")
  m <- floor(0.2 * nrow(data))
  check_strength <- function(s, golden, what) {
    expect_equal(paste(s$from, s$to), paste(golden$from, golden$to), paste(case, what, "rows"))
    expect_equal(s$strength, golden$strength, paste(case, what, "strengths"), tol = 1e-9)
    expect_equal(s$direction, golden$direction, paste(case, what, "directions"), tol = 1e-9)
  }
  golden_arcs <- function(name) {
    g <- read_case(case, name)
    paste(g$from, g$to, sep = "->")
  }

  set.seed(seed)
  bs <- boot.strength(data, R = as.integer(proto$R_boot), algorithm = "hc",
                      algorithm.args = list(whitelist = wl, blacklist = bl))
  check_strength(bs, read_case(case, "boot_strength.csv"), "boot.strength")
  expect_equal(attr(bs, "threshold"), read_case(case, "boot_threshold.csv")$threshold,
               paste(case, "boot threshold"), tol = 1e-12)
  expect_equal(arc_strings(arcs(averaged.network(bs))), golden_arcs("boot_averaged_arcs.csv"),
               paste(case, "boot averaged network"))

  set.seed(seed)
  xval <- bn.cv(data, bn = "hc", algorithm.args = list(blacklist = bl, whitelist = wl), loss = "cor",
                loss.args = list(target = target), fit = "mle", method = "hold-out", k = 3, m = m,
                runs = as.integer(proto$runs))
  # The golden call passes names(data), which bnlearn ignores for cross-validated networks
  # (with its warning); without them (etio's call) the table is the same and nothing warns.
  cs <- with_warnings(custom.strength(xval, names(data)))
  expect_equal(cs$warnings, "the labels from the 'nodes' argument will be ignored.",
               paste(case, "custom.strength warns as bnlearn that nodes are ignored"))
  quiet <- with_warnings(custom.strength(xval))
  expect_equal(quiet$warnings, character(0), paste(case, "custom.strength(xval) does not warn"))
  expect_equal(quiet$value, cs$value, paste(case, "custom.strength(xval) = custom.strength(xval, names(data))"))
  cs <- cs$value
  check_strength(cs, read_case(case, "cv_strength.csv"), "cv custom.strength")
  avg <- averaged.network(cs)
  expect_equal(arc_strings(arcs(avg)), golden_arcs("cv_averaged_arcs.csv"), paste(case, "cv averaged network"))
  set.seed(seed)
  xmse <- bn.cv(data, bn = avg, loss = "mse", loss.args = list(target = target), method = "hold-out",
                k = 3, m = m, runs = as.integer(proto$runs))
  summary <- read_case(case, "cv_summary.csv")
  rel <- function(a, b) abs(a - b) / abs(b)
  expect_equal(rel(mean(loss(xval)), summary$predcor) < 1e-6, TRUE, paste(case, "predcor"))
  expect_equal(rel(mean(loss(xmse)), summary$mse) < 1e-6, TRUE, paste(case, "mse"))
  expect_equal(attr(cs, "threshold"), summary$threshold, paste(case, "cv threshold"), tol = 1e-12)
}

# --- averaged networks with cycles and undirected arcs, against bnlearn 4.7 ----------------------------
# Eighty averaged networks of disagreeing DAGs (nineteen of them drop arcs that would close a cycle): the
# arcs in bnlearn 4.7's order, its cycle warnings in its order, and the same write.dot file. bnlearn's path
# search sets aside both arcs between the two nodes of the arc being added, for the whole search.
source(file.path(fixtures, "averaging", "cases.R"))
golden <- read.csv(file.path(fixtures, "averaging", "averaged_networks.csv"), stringsAsFactors = FALSE)
for (column in c("arcs", "warnings", "dot")) golden[[column]][is.na(golden[[column]])] <- ""
got <- t(vapply(golden$case, averaging_result, c(arcs = "", warnings = "", dot = ""),
                custom.strength = custom.strength, averaged.network = averaged.network, write.dot = write.dot))
for (column in c("arcs", "warnings", "dot")) {
  differ <- golden$case[got[, column] != golden[[column]]]
  expect_equal(differ, integer(0), paste("averaged networks as bnlearn 4.7:", column, "(cases that differ)"))
}
cat("all compat strength/cv checks passed\n")
