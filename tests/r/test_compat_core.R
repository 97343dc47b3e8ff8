# Self-checking tests of r/compat's graph, hc, score, bn.fit, ci.test, tiers2blacklist and
# write.dot against bnlearn 4.7's golden outputs (tests/data/bnlearn-4.7) and the behaviour
# the bnlearn 4.7 algorithms define. Stops at the first mismatch; prints one "ok" per check.
#
#   Rscript tests/r/test_compat_core.R
script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f)) else getwd()
})
repo <- normalizePath(file.path(script_dir, "..", ".."))
source(file.path(repo, "r", "compat", "bnlearn.R"), chdir = TRUE)
fixtures <- file.path(repo, "tests", "data", "bnlearn-4.7")

ok <- function(what) cat("ok", what, "\n")
check <- function(cond, what) {
  if (!isTRUE(cond)) stop("FAILED: ", what, call. = FALSE)
  ok(what)
}
rel_err <- function(a, b) max(abs(a - b) / pmax(abs(b), .Machine$double.xmin))
error_of <- function(expr) tryCatch({ expr; "" }, error = function(e) conditionMessage(e))
arc_keys <- function(a) sort(paste(a[, 1], a[, 2], sep = " -> "))

# --- tiers2blacklist ------------------------------------------------------------------
expected <- rbind(c("C", "A"), c("D", "A"), c("E", "A"), c("C", "B"), c("D", "B"), c("E", "B"),
                  c("D", "C"), c("E", "C"))
dimnames(expected) <- list(NULL, c("from", "to"))
check(identical(tiers2blacklist(list(c("A", "B"), "C", c("D", "E"))), expected),
      "tiers2blacklist: three tiers, spec row order")
expected <- rbind(c("Y", "X"), c("Z", "X"), c("Z", "Y"))
dimnames(expected) <- list(NULL, c("from", "to"))
check(identical(tiers2blacklist(c("X", "Y", "Z")), expected), "tiers2blacklist: total ordering")

# --- graph accessors ------------------------------------------------------------------
g <- model2network("[C|A:B][A][B][D|C]")
check(identical(nodes(g), c("A", "B", "C", "D")) && identical(parents(g, "C"), c("A", "B")) &&
        identical(children(g, "C"), "D") && directed(g) &&
        identical(modelstring(g), "[A][B][C|A:B][D|C]"),
      "model2network/modelstring/parents/children")
amat <- .compat_amat(g)
check(.compat_has_path(amat, "A", "D") && !.compat_has_path(amat, "D", "A") &&
        !.compat_has_path(amat, "C", "D", exclude_direct = TRUE),
      "has_path with and without the direct arc")
check(identical(unname(.compat_arcs_from_amat(nodes(g), amat)),
                rbind(c("A", "C"), c("B", "C"), c("C", "D"))), "arcs_from_amat row-major order")

# --- write.dot: the three shapes plus a mixed graph -----------------------------------
dot_text <- function(graph) {
  f <- tempfile(fileext = ".dot")
  write.dot(f, graph)
  on.exit(unlink(f))
  rawToChar(readBin(f, "raw", file.info(f)$size))
}
directed_net <- .compat_bn_from_arcs(c("A", "B", "C"), rbind(c("B", "C"), c("A", "C")))
check(identical(dot_text(directed_net), paste0(
  'digraph {\n  "A" ;\n  "B" ;\n  "C" ;\n',
  '  edge [dir=forward] "B" -> "C" ;\n  edge [dir=forward] "A" -> "C" ;\n}\n')),
  "write.dot: directed graph, arcs in stored order")
undirected_net <- .compat_bn_from_arcs(c("A", "B", "C"),
                                       rbind(c("C", "B"), c("B", "C"), c("A", "B"), c("B", "A")))
check(identical(dot_text(undirected_net), paste0(
  'graph {\n  "A" ;\n  "B" ;\n  "C" ;\n',
  '  edge [dir=none] "B" -- "C" ;\n  edge [dir=none] "A" -- "B" ;\n}\n')),
  "write.dot: all arcs undirected")
check(identical(dot_text(.compat_empty_bn(c("A", "B"))), "digraph {\n}\n"),
      "write.dot: graph without arcs")
mixed <- .compat_bn_from_arcs(c("A", "B", "C", "D"),
                              rbind(c("A", "C"), c("B", "D"), c("D", "B"), c("C", "D")))
check(identical(dot_text(mixed), paste0(
  'digraph {\n  "A" ;\n  "B" ;\n  "C" ;\n  "D" ;\n',
  '  edge [dir=none] "B" -> "D" ;\n',
  '  edge [dir=forward] "A" -> "C" ;\n  edge [dir=forward] "C" -> "D" ;\n}\n')),
  "write.dot: mixed graph")

# --- golden fixtures: hc, score, bn.fit, ci.test --------------------------------------
read_arcs <- function(path) if (file.exists(path)) as.matrix(read.csv(path, stringsAsFactors = FALSE)) else NULL
for (case in c("small4", "etio14")) {
  dir <- file.path(fixtures, case)
  data <- read.csv(file.path(dir, "data.csv"))
  wl <- read_arcs(file.path(dir, "whitelist.csv"))
  bl <- read_arcs(file.path(dir, "blacklist.csv"))
  target <- sub("^target ", "", grep("^target ", readLines(file.path(dir, "PROTOCOL.txt")), value = TRUE))
  net <- hc(data, whitelist = wl, blacklist = bl)
  gold_arcs <- read_arcs(file.path(dir, "hc_arcs.csv"))
  check(identical(arc_keys(arcs(net)), arc_keys(gold_arcs)), paste(case, "hc arc set"))
  check(identical(unname(arcs(net)), unname(gold_arcs)), paste(case, "hc arc storage order"))
  check(identical(net$learning$algo, "hc") && identical(net$learning$test, "bic-g") &&
          isTRUE(all.equal(net$learning$args$k, log(nrow(data)) / 2)),
        paste(case, "hc learning metadata"))
  if (!is.null(wl)) {
    folded <- arc_keys(net$learning$blacklist)
    check(all(arc_keys(wl[, 2:1, drop = FALSE]) %in% folded) && !any(arc_keys(wl) %in% folded),
          paste(case, "whitelist folded into the learning blacklist"))
  }
  gold_score <- read.csv(file.path(dir, "hc_score.csv"))$value
  s <- score(net, data, type = "bic-g")
  check(rel_err(s, gold_score) < 1e-6, sprintf("%s BIC-g %.10f (bnlearn %.10f)", case, s, gold_score))
  check(abs(sum(score(net, data, by.node = TRUE)) - s) < 1e-9, paste(case, "score by.node sums"))

  fit <- bn.fit(net, data)
  check(identical(class(fit), c("bn.fit", "bn.fit.gnet")) && inherits(fit[[1]], "bn.fit.gnode"),
        paste(case, "bn.fit classes"))
  gold_fit <- read.csv(file.path(dir, "bnfit.csv"), stringsAsFactors = FALSE)
  ours <- unlist(lapply(nodes(net), function(v) {
    cf <- coef(fit[[v]])
    setNames(c(unname(cf), fit[[v]]$sd), paste(v, c(names(cf), "(sd)")))
  }))
  keys <- paste(gold_fit$node, gold_fit$term)
  check(setequal(names(ours), keys) && rel_err(ours[keys], gold_fit$value) < 1e-6,
        sprintf("%s bn.fit coefficients and sd (%d terms)", case, length(keys)))

  gold_ci <- read.csv(file.path(dir, "ci_test.csv"), stringsAsFactors = FALSE)
  ci <- lapply(gold_ci$y, function(v) ci.test(x = target, y = v, data = data[, c(target, v)]))
  check(rel_err(sapply(ci, function(t) unname(t$statistic)), gold_ci$statistic) < 1e-6 &&
          rel_err(sapply(ci, `[[`, "p.value"), gold_ci$p.value) < 1e-6,
        sprintf("%s ci.test statistic and p-value (%d tests)", case, nrow(gold_ci)))
  t1 <- ci[[1]]
  check(inherits(t1, "htest") && identical(names(t1$statistic), "cor") &&
          identical(t1$parameter, c(df = nrow(data) - 2)) &&
          identical(t1$method, "Pearson's Correlation") &&
          identical(t1$data.name, paste(target, "~", gold_ci$y[1], " ")),
        paste(case, "ci.test htest shape"))
}

# --- ci.test: vector form and partial correlation -------------------------------------
set.seed(11)
u <- rnorm(60); v <- u + rnorm(60); w <- v + rnorm(60)
t_vec <- ci.test(u, w)
check(abs(unname(t_vec$statistic) - cor(u, w)) < 1e-12 &&
        abs(t_vec$p.value - cor.test(u, w)$p.value) < 1e-12, "ci.test on two vectors = cor.test")
t_part <- ci.test("u", "w", "v", data = data.frame(u, v, w))
check(abs(unname(t_part$statistic) - cor(resid(lm(u ~ v)), resid(lm(w ~ v)))) < 1e-10 &&
        identical(t_part$parameter, c(df = 57)), "ci.test partial correlation given z")

# --- hc behaviour defined by the search rules -----------------------------------------
x1 <- rnorm(100)
pair <- data.frame(P = x1, Q = x1 + rnorm(100, 0, 0.3))
check(identical(arc_keys(arcs(hc(pair))), "P -> Q") &&
        identical(arc_keys(arcs(hc(pair[, c("Q", "P")]))), "Q -> P"),
      "hc orients a tie from the earlier column to the later one")
# Data simulated from gaussian.test's structure: the search makes the spec's 9 moves
# (8 additions, then dropping C -> F) and stores the arcs in that order.
set.seed(10); n <- 5000
A <- rnorm(n, 1, 1); B <- rnorm(n, 2, 3); E <- rnorm(n, 3.5, 2); G <- rnorm(n, 5, 2)
C <- 2 + 2 * A + 2 * B + rnorm(n, 0, 0.5); D <- 6 + 1.5 * B + rnorm(n, 0, 0.33)
F <- 2 * A + D + E + 1.5 * G + rnorm(n)
gnet <- hc(data.frame(A, B, C, D, E, F, G))
check(identical(unname(arcs(gnet)), rbind(c("B", "D"), c("B", "C"), c("A", "C"), c("G", "F"),
                                          c("E", "F"), c("A", "F"), c("D", "F"))),
      "hc on gaussian.test-like data: arcs and their storage order")
check(identical(arc_keys(arcs(hc(data.frame(A, B, C, D, E, F, G), optimized = FALSE))),
                arc_keys(arcs(gnet))), "hc optimized = FALSE gives the same network")

# --- hc on a parent set without a Cholesky factor ----------------------------------------
# K is constant and whitelisted into C, so every factorisation of C's parent set fails: hc()
# must give what the search guarded around each factorisation gives.
set.seed(5)
A <- rnorm(40); B <- rnorm(40)
singular <- data.frame(A = A, B = B, C = A + B + rnorm(40) / 4, D = A, K = rep(1, 40))
setup <- .compat_hc_setup(names(singular), nrow(singular), .compat_hc_args(whitelist = cbind("K", "C")))
ctx <- .compat_score_context(as.matrix(singular), setup$k)
search <- function(guarded)
  .compat_hc_search(ctx, setup$amat, setup$arc_from, setup$arc_to, setup$wlmat, setup$blmat,
                    setup$maxp, setup$max.iter, setup$restart, setup$perturb, setup$optimized,
                    setup$debug, setup$nodes, guarded)
check(nzchar(error_of(search(FALSE))), "hc: the unguarded search fails on a constant parent")
guarded <- search(TRUE)
net <- hc(singular, whitelist = cbind("K", "C"))
check(identical(unname(net$arcs), cbind(setup$nodes[guarded$from], setup$nodes[guarded$to])) &&
        identical(net$learning$ntests, guarded$ntests),
      "hc: a failed factorisation gives the guarded search's network")
check(identical(arc_keys(arcs(net)), c("B -> A", "B -> D", "C -> A", "C -> B", "C -> D", "K -> C")) &&
        net$learning$ntests == 39, "hc: network learned with a constant parent")

# --- boot.strength and bn.cv set hc up once, and warn as each hc() call would -------------
count_warnings <- function(expr) {
  n <- 0
  withCallingHandlers(expr, warning = function(w) {
    if (grepl("penalty k different", conditionMessage(w))) n <<- n + 1
    invokeRestart("muffleWarning")
  })
  n
}
set.seed(1)
check(count_warnings(boot.strength(singular[, 1:4], R = 3, algorithm = "hc",
                                   algorithm.args = list(k = 1))) == 3,
      "boot.strength: a non-BIC penalty warns once per replicate")
check(count_warnings(bn.cv(singular[, 1:4], "hc", loss = "mse", loss.args = list(target = "C"),
                           method = "hold-out", k = 2, m = 10, runs = 2,
                           algorithm.args = list(k = 1))) == 4,
      "bn.cv: a non-BIC penalty warns once per split")
set.seed(1); msg <- error_of(boot.strength(singular, R = 3, algorithm = "hc", algorithm.args = list(foo = 1)))
after_error <- runif(1)
set.seed(1); invisible(sample(40, 40, replace = TRUE))
check(identical(msg, "unknown argument(s) for bic-g: foo.") && identical(after_error, runif(1)),
      "boot.strength: bad hc arguments fail after the first resample is drawn")

# --- errors -----------------------------------------------------------------------------
small <- read.csv(file.path(fixtures, "small4", "data.csv"))
msg <- error_of(hc(small, whitelist = rbind(c("A", "B"), c("B", "A"))))
check(grepl("both directions", msg), "error: both directions whitelisted")
msg <- error_of(hc(small, whitelist = rbind(c("A", "B"), c("B", "C"), c("C", "A"))))
check(identical(msg, "the whitelist contains a cycle: A -> B -> C -> A"), "error: cyclic whitelist")
with_na <- small; with_na$B[5] <- NA
check(grepl("missing or non-finite values in column\\(s\\): B", error_of(hc(with_na))), "error: NA data")
with_int <- small; with_int$C <- seq_len(nrow(small))
check(grepl("C \\(integer\\)", error_of(hc(with_int))), "error: integer column")
check(grepl("unknown node label.*Z", error_of(hc(small, blacklist = rbind(c("A", "Z"))))),
      "error: unknown node in blacklist")
check(grepl("partially directed", error_of(bn.fit(undirected_net, small[, 1:3]))),
      "error: bn.fit on an undirected graph")

# hc's speed on etio14 is measured by `etio bench learn`, not asserted here: a time limit
# depends on the machine and its load.

# --- hc with random restarts against bnlearn 4.7 ---------------------------------------------
# Eighty searches with restarts (some with whitelist, blacklist, maxp, optimized = FALSE, a small
# max.iter, or fewer rows than some parent sets need): the same arcs in the same order as bnlearn 4.7.
# A perturbation counts a change of arc order as a change, and re-scores every node it touched.
source(file.path(fixtures, "restarts", "cases.R"))
expected <- read.csv(file.path(fixtures, "restarts", "hc_restarts.csv"), stringsAsFactors = FALSE)
expected$arcs[is.na(expected$arcs)] <- ""
got <- vapply(expected$case, restart_arcs, "", hc = hc)
differ <- expected$case[got != expected$arcs]
check(!length(differ), if (length(differ)) paste("hc restarts: cases", paste(differ, collapse = ", "),
                                                 "differ from bnlearn 4.7")
                       else sprintf("hc restarts: %d searches, bnlearn 4.7's arcs in its order", nrow(expected)))
