# Self-checking tests of r/backend.R: which backend etio learns with for each bnlearn it finds,
# and the calls whose meaning changed after bnlearn 4.7, on made-up inputs whose answers are
# known by hand. Stops at the first mismatch; prints one "ok" per check.
#
#   Rscript tests/r/test_backend.R
script_dir <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f)) else getwd()
})
repo <- normalizePath(file.path(script_dir, "..", ".."))
.etio_r_dir <- file.path(repo, "r")
source(file.path(repo, "r", "backend.R"))

check <- function(cond, what) {
  if (!isTRUE(cond)) stop("FAILED: ", what, call. = FALSE)
  cat("ok", what, "\n")
}
error_of <- function(expr) tryCatch({ expr; "" }, error = function(e) conditionMessage(e))

# --- the version policy -------------------------------------------------------------------
for (version in c("4.7", "4.7.1", "4.8.3", "4.9", "4.9.4", "5.0.2", "5.2.1", "5.2.9")) {
  policy <- .etio_backend_policy(version)
  check(identical(policy$use, "bnlearn") && is.na(policy$note), paste("bnlearn", version, "is used"))
}
none <- .etio_backend_policy(NA_character_)
check(identical(none$use, "compat") && is.na(none$note), "no bnlearn: r/compat/ without a note")
forced <- .etio_backend_policy("4.9", forced = TRUE)
check(identical(forced$use, "compat") && is.na(forced$note), "ETIO_R_BACKEND=compat: r/compat/ without a note")
old <- .etio_backend_policy("4.6.1")
check(identical(old$use, "compat") && grepl("bnlearn 4.6.1 is older than 4.7", old$note) &&
        grepl("r/compat/", old$note) && grepl("4.7.1", old$note), "bnlearn 4.6.1: refused, one line says why and what to install")
new <- .etio_backend_policy("5.3")
check(identical(new$use, "compat") && grepl("bnlearn 5.3 is newer than", new$note) && grepl("r/compat/", new$note),
      "bnlearn 5.3: refused as unknown, one line says why")
broken <- .etio_backend_policy("4.9", load_error = "shared object 'bnlearn.so' not found")
check(identical(broken$use, "compat") && grepl("bnlearn 4.9 is installed but fails to load", broken$note) &&
        grepl("bnlearn.so", broken$note), "a bnlearn that fails to load: r/compat/, the error in the note")
check(!grepl("\n", paste(old$note, new$note, broken$note)), "every note is one line")
check(grepl("^R 3.6.3 is older than etio's R code needs \\(R >= 4.0.0\\)", error_of(.etio_check_r_version("3.6.3"))),
      "an R older than 4.0 is refused in one line naming it")
check(identical(error_of(.etio_check_r_version("4.2.2")), ""), "R 4.2.2 is accepted")

# --- boot.strength: shuffle = FALSE where the argument exists ------------------------------
boot.strength <- function(data, R, algorithm, algorithm.args = list(), shuffle = TRUE) list(R = R, shuffle = shuffle)
check(identical(etio_boot_strength(data.frame(a = 1), R = 3)$shuffle, FALSE), "boot.strength of bnlearn >= 4.9: shuffle = FALSE")
boot.strength <- function(data, R, algorithm, algorithm.args = list()) list(R = R)
check(identical(etio_boot_strength(data.frame(a = 1), R = 3), list(R = 3)), "boot.strength of bnlearn 4.7: no shuffle argument")
rm(boot.strength)

# --- bn.cv: no fitting method named ---------------------------------------------------------
bn.cv <- function(data, bn, loss = NULL, ..., algorithm.args = list(), loss.args = list(), fit, fit.args = list(),
                  method = "k-fold") {
  check(missing(fit), "bn.cv is called without a fitting method")
  check(identical(loss, "mse") && identical(method, "hold-out") && identical(loss.args$target, "Y"),
        "bn.cv is asked for hold-out predictions of the target")
  structure(list(list(test = 1:2)), class = "bn.kcv")
}
xval <- etio_cv(data.frame(X = 1:5, Y = 1:5), "hc", "Y", runs = 1, k = 1, m = 2)
check(inherits(xval, "bn.kcv.list") && length(xval) == 1, "one run comes back as a list of runs")
rm(bn.cv)

# --- the correlation and the mean squared error, by 4.7's rules ----------------------------
fold <- function(parents, observed, predicted, test = seq_along(observed))
  list(test = test, fitted = list(Y = list(parents = parents)), observed = observed, predicted = predicted)
rooted_run <- list(fold(character(0), c(1, 2, 3), c(2, 2, 2)), fold(character(0), c(4, 6), c(3, 3)))
mixed_run <- list(fold("X", c(1, 2, 4), c(1.5, 2.5, 3)), fold(character(0), c(5, 7), c(4, 4)))
values <- etio_cv_predcor(list(rooted_run, mixed_run), "Y")
check(is.na(values[1]), "a run whose target is a root in every fold has no correlation (4.7's NA)")
check(isTRUE(all.equal(values[2], cor(c(1, 2, 4, 5, 7), c(1.5, 2.5, 3, 4, 4)), tolerance = 0)),
      "otherwise the correlation of every fold's predictions, pooled in fold order")
losses <- c(mean((c(1, 2, 4) - c(1.5, 2.5, 3))^2), mean((c(5, 7) - c(4, 4))^2))
check(identical(etio_cv_mse(list(mixed_run)), weighted.mean(losses, c(3, 2))),
      "the mean squared error weights each fold by its size, as 4.7 did")
check(abs(etio_cv_mse(list(mixed_run)) - mean(losses)) > 1e-3, "which differs from the unweighted mean here")
cat("all R backend tests passed\n")
