# ci.test(x, y, z, data, test = "cor") for continuous variables, as in bnlearn 4.7 (spec 7).
#
# Accepts node names plus `data`, two numeric vectors (z optional: a vector, matrix or data
# frame), or a data frame x (first column tested against the second given the rest).
# Returns an "htest" whose statistic is the (partial) correlation itself, named "cor".

# Partial correlation of the first two columns given the others, from the SVD
# pseudo-inverse of their sample covariance.
.compat_partial_cor <- function(M) {
  s <- svd(cov(M))
  keep <- s$d > .compat_TOL * s$d[1]
  omega <- s$v[, keep, drop = FALSE] %*% (t(s$u[, keep, drop = FALSE]) / s$d[keep])
  -omega[1, 2] / sqrt(omega[1, 1] * omega[2, 2])
}

.compat_cor_test <- function(xv, yv, Z, data.name) {
  complete <- is.finite(xv) & is.finite(yv)
  if (!is.null(Z) && ncol(Z)) complete <- complete & rowSums(!is.finite(Z)) == 0
  xv <- xv[complete]; yv <- yv[complete]
  nz <- if (is.null(Z)) 0L else ncol(Z)
  n <- length(xv)
  if (nz == 0) {
    xc <- xv - mean(xv); yc <- yv - mean(yv)
    sxx <- sum(xc * xc); syy <- sum(yc * yc)
    r <- if (sxx < .compat_TOL || syy < .compat_TOL) 0 else sum(xc * yc) / sqrt(sxx * syy)
  } else {
    r <- .compat_partial_cor(cbind(xv, yv, Z[complete, , drop = FALSE]))
    if (!is.finite(r)) r <- 0
  }
  if (abs(r) > 1) {
    warning("the correlation coefficient is outside [-1, 1] (", r, "); clamped.")
    r <- max(-1, min(1, r))
  }
  df <- n - nz - 2
  if (df < 1) {
    warning("too few observations for the test (df = ", df, "); p-value set to 1.")
    p <- 1
  } else {
    t_stat <- r * sqrt(df) / sqrt(1 - r^2)
    p <- 2 * pt(abs(t_stat), df, lower.tail = FALSE)
  }
  structure(list(statistic = c(cor = r), p.value = p, method = "Pearson's Correlation",
                 null.value = c(value = 0), alternative = "two.sided", data.name = data.name,
                 parameter = c(df = df)),
            class = "htest")
}

ci.test <- function(x, y, z, data, test = "cor", ..., debug = FALSE) {
  if (!identical(test, "cor")) stop("only test = \"cor\" is available, not '", test, "'.")
  if (missing(z)) z <- NULL
  label <- function(xn, yn, zn) paste(xn, "~", yn, if (length(zn)) "|" else "", paste(zn, collapse = " + "))
  numeric_col <- function(v, what) {
    if (!is.numeric(v) || is.factor(v)) stop(what, " must be a continuous (numeric) variable.")
    as.double(v)
  }
  if (is.character(x)) {
    if (missing(data) || !is.data.frame(data)) stop("'data' (a data frame) is needed when x is a node name.")
    if (missing(y) || !is.character(y) || length(y) != 1 || length(x) != 1)
      stop("x and y must be single node names.")
    if (!is.null(z) && !is.character(z)) stop("z must be a character vector of node names.")
    all_names <- c(x, y, z)
    unknown <- setdiff(all_names, names(data))
    if (length(unknown)) stop("unknown variable(s) in ci.test: ", paste(unknown, collapse = ", "), ".")
    if (anyDuplicated(all_names)) stop("x, y and z must be different variables.")
    xv <- numeric_col(data[[x]], x); yv <- numeric_col(data[[y]], y)
    Z <- if (length(z)) vapply(z, function(v) numeric_col(data[[v]], v), numeric(nrow(data))) else NULL
    if (!is.null(Z)) Z <- matrix(Z, nrow = nrow(data))
    return(.compat_cor_test(xv, yv, Z, label(x, y, z)))
  }
  if (is.data.frame(x)) {
    if (ncol(x) < 2) stop("x must have at least two columns.")
    cols <- names(x)
    Z <- if (ncol(x) > 2) sapply(cols[-(1:2)], function(v) numeric_col(x[[v]], v)) else NULL
    if (!is.null(Z)) Z <- matrix(Z, nrow = nrow(x))
    return(.compat_cor_test(numeric_col(x[[1]], cols[1]), numeric_col(x[[2]], cols[2]), Z,
                            label(cols[1], cols[2], cols[-(1:2)])))
  }
  xname <- deparse(substitute(x)); yname <- deparse(substitute(y))
  xv <- numeric_col(x, "x")
  if (missing(y)) stop("y is missing.")
  yv <- numeric_col(y, "y")
  if (length(xv) != length(yv)) stop("x and y have different lengths.")
  zname <- character(0)
  Z <- NULL
  if (!is.null(z)) {
    zname <- deparse(substitute(z))
    Z <- if (is.data.frame(z)) as.matrix(z) else as.matrix(z)
    if (!is.numeric(Z)) stop("z must be numeric.")
    storage.mode(Z) <- "double"
    if (nrow(Z) != length(xv)) stop("x and z have different numbers of observations.")
  }
  .compat_cor_test(xv, yv, Z, label(xname, yname, zname))
}
