# Replay the bnlearn 4.7 golden calls (tests/data/bnlearn-4.7/README.md) on one case and
# write every output as CSV into OUTDIR, in the golden files' layout.
#
#   Rscript tests/r/replay_fixtures.R CASE_DIR OUTDIR [compat|auto]
#
# "compat" forces r/compat/bnlearn.R; "auto" uses bnlearn when installed, whatever its version.
# The calls whose meaning changed after bnlearn 4.7 (boot.strength's shuffling, bn.cv's fitting
# method and losses) go through r/backend.R, as etio's own calls do, so the golden 4.7 outputs
# are expected on every bnlearn version; where the backend still accepts the literal 4.7 calls
# (r/compat/, bnlearn 4.7.x), those are made too and must give the same values.
args <- commandArgs(trailingOnly = TRUE)
case_dir <- args[1]
out_dir <- args[2]
mode <- if (length(args) >= 3) args[3] else "compat"

script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f)) else getwd()
})
repo <- normalizePath(file.path(script_dir, "..", ".."))
if (mode == "compat" || !requireNamespace("bnlearn", quietly = TRUE)) {
  source(file.path(repo, "r", "compat", "bnlearn.R"), chdir = TRUE)
} else {
  suppressPackageStartupMessages(library(bnlearn))
}
source(file.path(repo, "r", "backend.R"))
literal_47 <- mode == "compat" || !requireNamespace("bnlearn", quietly = TRUE) ||
  utils::packageVersion("bnlearn") < "4.8"
same_as_literal <- function(value, literal, what)
  if (!identical(value, literal)) stop("the version-proof call differs from the literal bnlearn 4.7 call: ", what)
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

read_protocol <- function(path) {
  lines <- readLines(path)
  kv <- strsplit(lines, " ")
  setNames(lapply(kv, function(x) paste(x[-1], collapse = " ")), sapply(kv, `[`, 1))
}
proto <- read_protocol(file.path(case_dir, "PROTOCOL.txt"))
seed <- as.integer(proto$seed); R_boot <- as.integer(proto$R_boot)
runs <- as.integer(proto$runs); target <- proto$target

data <- read.csv(file.path(case_dir, "data.csv"))
read_list <- function(name) {
  p <- file.path(case_dir, name)
  if (file.exists(p)) as.matrix(read.csv(p, stringsAsFactors = FALSE)) else NULL
}
wl <- read_list("whitelist.csv"); bl <- read_list("blacklist.csv")
m <- floor(0.2 * nrow(data))
w <- function(df, name) write.csv(df, file.path(out_dir, name), row.names = FALSE)

net <- hc(data, whitelist = wl, blacklist = bl)
w(as.data.frame(arcs(net)), "hc_arcs.csv")
w(data.frame(score = "bic-g", value = score(net, data, type = "bic-g")), "hc_score.csv")
fit <- bn.fit(net, data)
rows <- do.call(rbind, lapply(nodes(net), function(v) {
  cf <- coef(fit[[v]])
  data.frame(node = v, term = c(names(cf), "(sd)"), value = c(unname(cf), fit[[v]]$sd))
}))
w(rows, "bnfit.csv")

set.seed(seed)
bs <- etio_boot_strength(data, R = R_boot, algorithm = "hc", algorithm.args = list(whitelist = wl, blacklist = bl))
if (literal_47) {
  set.seed(seed)
  same_as_literal(bs, boot.strength(data, R = R_boot, algorithm = "hc",
                                    algorithm.args = list(whitelist = wl, blacklist = bl)), "boot.strength")
}
w(data.frame(from = bs$from, to = bs$to, strength = bs$strength, direction = bs$direction), "boot_strength.csv")
w(data.frame(threshold = attr(bs, "threshold")), "boot_threshold.csv")
w(as.data.frame(arcs(averaged.network(bs))), "boot_averaged_arcs.csv")

set.seed(seed)
xval <- etio_cv(data, "hc", target, runs = runs, k = 3, m = m, algorithm.args = list(blacklist = bl, whitelist = wl))
cs <- custom.strength(xval, names(data))
w(data.frame(from = cs$from, to = cs$to, strength = cs$strength, direction = cs$direction), "cv_strength.csv")
avg <- averaged.network(cs)
w(as.data.frame(arcs(avg)), "cv_averaged_arcs.csv")
predcor <- mean(etio_cv_predcor(xval, target))
set.seed(seed)
xmse <- etio_cv(data, avg, target, runs = runs, k = 3, m = m)
mse <- mean(etio_cv_mse(xmse))
if (literal_47) {
  set.seed(seed)
  literal <- bn.cv(data, bn = "hc", algorithm.args = list(blacklist = bl, whitelist = wl), loss = "cor",
                   loss.args = list(target = target), fit = "mle", method = "hold-out", k = 3, m = m, runs = runs)
  same_as_literal(predcor, mean(sapply(literal, function(run) attr(run, "mean"))), "bn.cv(loss = \"cor\")")
  same_as_literal(custom.strength(literal, names(data)), cs, "custom.strength")
  set.seed(seed)
  literal <- bn.cv(data, bn = avg, loss = "mse", loss.args = list(target = target), method = "hold-out",
                   k = 3, m = m, runs = runs)
  same_as_literal(mse, mean(sapply(literal, function(run) attr(run, "mean"))), "bn.cv(loss = \"mse\")")
}
w(data.frame(predcor = predcor, mse = mse, threshold = attr(cs, "threshold")), "cv_summary.csv")

ci <- do.call(rbind, lapply(setdiff(names(data), target), function(v) {
  t <- ci.test(x = target, y = v, data = data[, c(target, v)])
  data.frame(x = target, y = v, statistic = unname(t$statistic), p.value = t$p.value)
}))
w(ci, "ci_test.csv")
cat("backend:", if (exists(".etio_compat_backend")) .etio_compat_backend else paste("bnlearn", packageVersion("bnlearn")), "\n")
cat("literal 4.7 calls checked:", literal_47, "\n")
