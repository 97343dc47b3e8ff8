# bn.fit(x, data, method = "mle") for Gaussian networks, as in bnlearn 4.7 (spec section 6).
#
# Each node is a "bn.fit.gnode": list(node, parents, children, coefficients, residuals,
# fitted.values, sd), with coefficients named "(Intercept)" then the parents in node order,
# and sd = sqrt(RSS / (n - p - 1)) (0 when n <= p + 1). The network is a named list of nodes
# with class c("bn.fit", "bn.fit.gnet"). Rows with missing values are left out node by node.
#
# .compat_predict_from_parents(fit, node, newdata) predicts a node from its parents' observed
# values (the training mean when it has none), which is what bn.cv's "cor"/"mse" losses use.

.compat_fit_gnode <- function(node, parents, children, y, Xp) {
  complete <- is.finite(y) & (if (length(parents)) rowSums(!is.finite(Xp)) == 0 else TRUE)
  n <- sum(complete)
  p <- length(parents)
  fitted <- rep(NA_real_, length(y))
  if (p == 0) {
    mu <- if (n > 0) mean(y[complete]) else NaN
    coefs <- c("(Intercept)" = mu)
    fitted[complete] <- mu
  } else {
    design <- cbind(1, Xp[complete, , drop = FALSE])
    yc <- y[complete]
    # .lm.fit makes qr()'s factorisation (LINPACK dqrdc2) and the same solve and residual
    # computations as qr.coef() and qr.resid(); when the design has full rank no column is
    # pivoted and its coefficients are qr.coef()'s. Otherwise qr.coef() places them (NA for
    # the aliased columns).
    ls <- .lm.fit(design, yc, tol = .compat_TOL)
    if (ls$rank == ncol(design)) {
      coefs <- ls$coefficients
      resid_c <- ls$residuals
    } else {
      q <- qr(design, tol = .compat_TOL)
      coefs <- qr.coef(q, yc)
      resid_c <- qr.resid(q, yc)
    }
    names(coefs) <- c("(Intercept)", parents)
    fitted[complete] <- yc - resid_c
  }
  resid <- y - fitted
  sd <- if (n <= p + 1) 0 else sqrt(sum(resid[complete]^2) / (n - p - 1))
  structure(list(node = node, parents = parents, children = children, coefficients = coefs,
                 residuals = resid, fitted.values = fitted, sd = sd),
            class = "bn.fit.gnode")
}

bn.fit <- function(x, data, cluster = NULL, method = "mle", ..., keep.fitted = TRUE,
                   debug = FALSE) {
  .compat_check_bn(x)
  if (!identical(method, "mle")) stop("only method = \"mle\" is available, not '", method, "'.")
  .compat_check_gaussian_data(data, allow_missing = TRUE)
  nodes <- names(x$nodes)
  missing_cols <- setdiff(nodes, names(data))
  if (length(missing_cols)) stop("the data lack the network's node(s): ", paste(missing_cols, collapse = ", "), ".")
  if (length(setdiff(names(data), nodes)))
    stop("the data have variables that are not nodes of the network: ",
         paste(setdiff(names(data), nodes), collapse = ", "), ".")
  amat <- .compat_amat(x)
  if (any(amat == 1L & t(amat) == 1L)) stop("the graph is only partially directed; bn.fit needs a DAG.")
  if (!.compat_is_acyclic(amat)) stop("the graph contains cycles; bn.fit needs a DAG.")
  X <- .compat_double_matrix(data[, nodes, drop = FALSE])
  fit <- lapply(nodes, function(v) {
    pa <- x$nodes[[v]]$parents
    node <- .compat_fit_gnode(v, pa, x$nodes[[v]]$children, X[, v], X[, pa, drop = FALSE])
    if (!keep.fitted) node$residuals <- node$fitted.values <- NULL
    node
  })
  names(fit) <- nodes
  structure(fit, class = c("bn.fit", "bn.fit.gnet"))
}

coef.bn.fit.gnode <- function(object, ...) object$coefficients

coef.bn.fit <- function(object, ...) lapply(unclass(object), function(node) node$coefficients)

.compat_predict_from_parents <- function(fit, node, newdata) {
  gnode <- fit[[node]]
  coefs <- gnode$coefficients
  if (!length(gnode$parents)) return(rep(unname(coefs[1]), nrow(newdata)))
  Xp <- as.matrix(newdata[, gnode$parents, drop = FALSE])
  unname(coefs[1] + drop(Xp %*% coefs[-1]))
}
