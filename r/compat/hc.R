# hc() and score() for Gaussian data with the BIC-g score, as in bnlearn 4.7.
#
# Node scores come from the centered cross-product matrix S of the data, computed once per
# call: the residual sum of squares of X on parents P is S_xx - S_xP S_PP^-1 S_Px, so a score
# delta costs O(p^3) instead of a regression over all rows. Where that Schur complement is
# small relative to S_xx (near-collinear parents), cancellation would make it inaccurate,
# so those candidates are re-fitted by QR on the data, which is what bnlearn does for p >= 3.
#
# Where this differs from bnlearn 4.7 (results are the same):
#   - $learning$ntests counts every score delta computed; the search always computes both
#     Delta[i,j] and Delta[j,i] instead of copying one from the other for parentless pairs
#     (the two are equal for BIC-g, and ties within TOL are decided by scan order either way).
#   - error messages are this implementation's own and name the offending columns or arcs
#     (e.g. "the whitelist contains a cycle: A -> B -> A").

.compat_TOL <- sqrt(.Machine$double.eps)

# Relative size below which an RSS (or a candidate's residual variance given the current
# parents) from the cross-product matrix is not trusted and the fit is redone by QR.
.compat_REFIT_RATIO <- 1e-7

# ---------------------------------------------------------------------------------------
# Input checks (done once, at the edge).

.compat_check_gaussian_data <- function(x, allow_missing = FALSE) {
  if (!is.data.frame(x)) stop("the data must be a data frame.")
  if (ncol(x) < 1) stop("the data must have at least one column.")
  if (is.null(names(x)) || any(names(x) == "") || anyDuplicated(names(x)))
    stop("the data's columns must have unique, non-empty names.")
  # Only plain doubles: integer columns, factors, Date and POSIXct are not continuous data.
  is_continuous <- vapply(x, function(col) is.double(col) && is.null(attr(col, "class")) ||
                            identical(class(col), "numeric"), TRUE)
  if (!all(is_continuous)) {
    bad <- names(x)[!is_continuous]
    kinds <- vapply(x[bad], function(col) class(col)[1], "")
    stop("only continuous (double) columns are supported; unsupported column(s): ",
         paste0(bad, " (", kinds, ")", collapse = ", "), ".")
  }
  if (!allow_missing) {
    nonfinite <- names(x)[!vapply(x, function(col) all(is.finite(col)), TRUE)]
    if (length(nonfinite))
      stop("the data contain missing or non-finite values in column(s): ",
           paste(nonfinite, collapse = ", "), ".")
  }
  invisible(TRUE)
}

# A directed cycle of the arc set, as "A -> B -> A", or NULL when there is none.
.compat_find_cycle <- function(nodes, arcs) {
  amat <- matrix(0L, length(nodes), length(nodes))
  amat[cbind(match(arcs[, 1], nodes), match(arcs[, 2], nodes))] <- 1L
  remaining <- rep(TRUE, length(nodes))
  repeat {
    roots <- remaining & colSums(amat[remaining, , drop = FALSE]) == 0
    if (!any(roots)) break
    remaining[roots] <- FALSE
  }
  if (!any(remaining)) return(NULL)
  # Every remaining node has a remaining parent: walk parents until a node repeats.
  walk <- which(remaining)[1]
  repeat {
    v <- walk[length(walk)]
    pa <- which(amat[, v] == 1L & remaining)[1]
    if (pa %in% walk) { walk <- c(walk[match(pa, walk):length(walk)], pa); break }
    walk <- c(walk, pa)
  }
  paste(nodes[rev(walk)], collapse = " -> ")
}

.compat_check_arc_list <- function(arcs, nodes, what) {
  if (is.null(arcs)) return(NULL)
  if (!(is.matrix(arcs) || is.data.frame(arcs) || is.character(arcs)))
    stop(what, " must be a matrix or data frame with two columns.")
  if (!is.null(dim(arcs)) && ncol(arcs) != 2) stop(what, " must have two columns.")
  arcs <- .compat_arc_matrix(arcs)
  unknown <- setdiff(c(arcs), nodes)
  if (length(unknown))
    stop("unknown node label(s) in the ", what, ": ", paste(unknown, collapse = ", "), ".")
  if (any(arcs[, 1] == arcs[, 2])) stop("the ", what, " contains an arc from a node to itself.")
  arcs[!duplicated(arcs), , drop = FALSE]
}

# Spec 1.3: sanitized whitelist and blacklist (the whitelist folded into the blacklist).
.compat_sanitize_wlbl <- function(whitelist, blacklist, nodes) {
  wl <- .compat_check_arc_list(whitelist, nodes, "whitelist")
  bl <- .compat_check_arc_list(blacklist, nodes, "blacklist")
  if (!is.null(wl) && nrow(wl) == 0) wl <- NULL
  if (!is.null(bl) && nrow(bl) == 0) bl <- NULL
  if (!is.null(wl)) {
    key <- paste(wl[, 1], wl[, 2], sep = "\r")
    rkey <- paste(wl[, 2], wl[, 1], sep = "\r")
    both <- rkey %in% key
    if (any(both))
      stop("the whitelist contains both directions of the arc ", wl[which(both)[1], 1], " - ",
           wl[which(both)[1], 2], ", which hc cannot learn.")
    cyc <- .compat_find_cycle(nodes, wl)
    if (!is.null(cyc)) stop("the whitelist contains a cycle: ", cyc)
    bl <- rbind(bl, .compat_arc_matrix(wl[!both, c(2, 1), drop = FALSE]))
    bl <- bl[!paste(bl[, 1], bl[, 2], sep = "\r") %in% key, , drop = FALSE]
    bl <- bl[!duplicated(bl), , drop = FALSE]
  }
  list(whitelist = wl, blacklist = bl)
}

# ---------------------------------------------------------------------------------------
# BIC-g local scores.

# Score of a node from its residual sum of squares (spec 1.1): sigma = sqrt(max(rss, 0) / dof),
# loglik = -n log(sigma) - n/2 log(2 pi) - dof/2 (-Inf when sigma < TOL or dof <= 0), minus
# k (p + 2). rss may be a vector; an NA or NaN rss gives NA. The one-value case, by far the
# most frequent, takes a scalar path with the same operations.
.compat_bicg_from_rss <- function(rss, n, p, k) {
  dof <- n - p - 1
  if (dof <= 0) return(-Inf)
  if (length(rss) == 1L) {
    # NA_real_ minus a number is the NA that arithmetic on NA gives, as in the vector case.
    if (is.na(rss)) return(NA_real_ - k * (p + 2))
    sigma <- sqrt((if (rss < 0) 0 else rss) / dof)
    if (sigma < .compat_TOL) return(-Inf)
    return(-n * log(sigma) - n / 2 * log(2 * pi) - dof / 2 - k * (p + 2))
  }
  rss[rss < 0] <- 0
  sigma <- sqrt(rss / dof)
  loglik <- -n * log(sigma) - n / 2 * log(2 * pi) - dof / 2
  loglik[sigma < .compat_TOL] <- -Inf
  loglik[is.na(sigma)] <- NA
  loglik - k * (p + 2)
}

# RSS of the OLS fit of column j on an intercept and columns P, by QR on the data (LINPACK's
# dqrdc2 with tolerance TOL, residuals from the rank-k factor, as qr() and qr.resid() compute
# them; .lm.fit makes the same calls without their argument checks).
# X1, when given, is cbind(1, X), from which the design's columns are taken.
.compat_rss_qr <- function(X, j, P, X1 = NULL) {
  y <- X[, j]
  if (!length(P)) return(sum((y - mean(y))^2))
  design <- if (is.null(X1)) cbind(1, X[, P, drop = FALSE]) else X1[, c(1L, P + 1L), drop = FALSE]
  sum(.lm.fit(design, y, tol = .compat_TOL)$residuals^2)
}

# Per-node BIC-g score of every node of a graph given as an adjacency matrix.
.compat_bicg_nodes <- function(X, amat, k) {
  n <- nrow(X)
  vapply(seq_len(ncol(X)), function(j) {
    P <- which(amat[, j] != 0)
    .compat_bicg_from_rss(.compat_rss_qr(X, j, P), n, length(P), k)
  }, 0)
}

# Score context: data, centered cross-products and penalty, computed once per hc call.
.compat_score_context <- function(X, k) {
  Xc <- sweep(X, 2, colMeans(X))
  S <- crossprod(Xc)
  list(X = X, X1 = cbind(1, X), S = S, dS = diag(S), n = nrow(X), k = k)
}

# New local scores of node j when each candidate i is toggled in its parent set P
# (added if i is not a parent, removed if it is). Returns a length-N vector (NA at j).
# guarded = FALSE lets a failing Cholesky factorisation raise its error instead of refitting
# (see .compat_hc_run).
.compat_toggle_scores <- function(ctx, j, P, cand, guarded = TRUE) {
  S <- ctx$S; n <- ctx$n; k <- ctx$k
  N <- ncol(S)
  p <- length(P)
  out <- rep(NA_real_, N)
  in_P <- cand %in% P
  adds <- cand[!in_P]
  drops <- cand[in_P]
  refit <- integer(0)
  U <- NULL
  if (p > 0) {
    U <- if (guarded) tryCatch(chol(S[P, P, drop = FALSE]), error = function(e) NULL)
         else chol(S[P, P, drop = FALSE])
    if (!is.null(U) && min(U[seq.int(1L, p * p, by = p + 1L)])^2 < .compat_REFIT_RATIO * max(ctx$dS[P]))
      U <- NULL
  }
  if (p > 0 && is.null(U)) {
    refit <- cand
  } else {
    if (p == 0) {
      Rij <- S[, j]; Rii <- ctx$dS
    } else {
      W <- backsolve(U, S[P, , drop = FALSE], transpose = TRUE)
      Rii <- ctx$dS - colSums(W * W)
      Rij <- S[, j] - drop(crossprod(W, W[, j]))
    }
    Rjj <- Rij[j]
    if (length(adds)) {
      rss_add <- Rjj - Rij[adds]^2 / Rii[adds]
      # Written as !(x > bound) so that NaN (a constant candidate) also counts as shaky.
      shaky <- !(Rii[adds] > .compat_REFIT_RATIO * ctx$dS[adds]) |
               !(rss_add > .compat_REFIT_RATIO * ctx$dS[j])
      out[adds] <- .compat_bicg_from_rss(rss_add, n, p + 1, k)
      refit <- c(refit, adds[shaky])
    }
    if (length(drops)) {
      if (p == 1) {
        rss_drop <- ctx$dS[j]
      } else {
        beta <- backsolve(U, W[, j])
        inv_diag <- chol2inv(U)[seq.int(1L, p * p, by = p + 1L)]
        rss_drop <- Rjj + beta[match(drops, P)]^2 / inv_diag[match(drops, P)]
      }
      out[drops] <- .compat_bicg_from_rss(rss_drop, n, p - 1, k)
      if (!(Rjj > .compat_REFIT_RATIO * ctx$dS[j])) refit <- c(refit, drops)
    }
  }
  for (i in refit) {
    Pi <- if (i %in% P) P[P != i] else c(P, i)
    out[i] <- .compat_bicg_from_rss(.compat_rss_qr(ctx$X, j, Pi, ctx$X1), n, length(Pi), k)
  }
  out
}

# ---------------------------------------------------------------------------------------
# The search (spec 1.4), on integer node indices.

# Scan of candidate moves in scan order: a move is taken when its value exceeds the best so
# far by more than TOL and legal(q) holds (legal NULL: always), and the scan goes on from it.
# vals holds the candidates' values in scan order; returns list(q = the last move taken, 0 if
# none, val = its value, or best_val). Equivalent to visiting every candidate in order: after
# each taken move only the later candidates above the new bound are looked at.
.compat_scan_moves <- function(vals, best_val, legal = NULL) {
  TOL <- .compat_TOL
  best <- 0L
  if (anyNA(vals)) stop("missing value where TRUE/FALSE needed")
  above <- which(vals - best_val > TOL)
  while (length(above)) {
    taken <- 0L
    for (q in above) {
      if (is.null(legal) || legal(q)) { taken <- q; break }
    }
    if (!taken) break
    best <- taken; best_val <- vals[taken]
    later <- which(vals[-seq_len(taken)] - best_val > TOL)
    above <- later + taken
  }
  list(q = best, val = best_val)
}

.compat_hc_search <- function(ctx, amat, arc_from, arc_to, wlmat, blmat, maxp, max.iter,
                              restart, perturb, optimized, debug, nodes, guarded = TRUE) {
  N <- ncol(amat)
  TOL <- .compat_TOL
  n_tests <- 0
  node_score <- .compat_bicg_nodes(ctx$X, amat, ctx$k)
  delta <- matrix(0, N, N)
  updated <- seq_len(N)
  iter <- 1
  restarts_left <- restart
  best <- NULL
  offdiag <- row(amat) != col(amat)
  # Arcs the blacklist leaves open (the diagonal never is).
  open <- offdiag & !blmat
  # Transposed like the scans below: the open arcs, and the arcs that may be deleted (not whitelisted).
  open_t <- t(open)
  removable_t <- t(!wlmat)

  refresh <- function(cols) {
    for (j in cols) {
      P <- which(amat[, j] == 1L)
      cand <- which(amat[, j] == 1L | open[, j])
      if (!length(cand)) next
      new <- .compat_toggle_scores(ctx, j, P, cand, guarded)[cand]
      n_tests <<- n_tests + length(cand)
      d <- if (is.finite(node_score[j])) new - node_score[j]
           else ifelse(is.finite(new), new, -Inf)
      d[abs(d) < TOL] <- 0
      delta[cand, j] <<- d
    }
  }

  repeat {
    refresh(if (optimized) updated else seq_len(N))
    npar <- colSums(amat)
    best_op <- 0L; best_from <- 0L; best_to <- 0L; best_val <- 0
    ta <- t(amat)
    present_t <- ta == 1L

    # (a) additions, row-major scan order (positions in t(): column-major on t() = row-major);
    # arcs into nodes with maxp parents are left out.
    cand_t <- ta == 0L & amat == 0L & open_t
    if (is.finite(maxp)) cand_t[npar >= maxp, ] <- FALSE
    tv <- t(delta)
    hits <- which(cand_t & tv > TOL)
    # i -> j closes a cycle when j reaches i, which needs a parent of i and a child of j.
    nchild <- rowSums(amat)
    add <- .compat_scan_moves(tv[hits], best_val, function(q) {
      h <- hits[q]
      i <- (h - 1L) %/% N + 1L; j <- (h - 1L) %% N + 1L
      npar[i] == 0 || nchild[j] == 0 || !.compat_has_path(amat, j, i)
    })
    if (add$q) {
      h <- hits[add$q]
      best_op <- 1L; best_from <- (h - 1L) %/% N + 1L; best_to <- (h - 1L) %% N + 1L
      best_val <- add$val
    }
    # (b) deletions of non-whitelisted arcs.
    present <- which(present_t & removable_t)
    del <- .compat_scan_moves(tv[present], best_val)
    if (del$q) {
      h <- present[del$q]
      best_op <- 2L; best_from <- (h - 1L) %/% N + 1L; best_to <- (h - 1L) %% N + 1L
      best_val <- del$val
    }
    # (c) reversals.
    present <- which(present_t)
    rfrom <- (present - 1L) %/% N + 1L; rto <- (present - 1L) %% N + 1L
    ok <- !blmat[cbind(rto, rfrom)] & npar[rfrom] < maxp
    rfrom <- rfrom[ok]; rto <- rto[ok]
    v <- delta[cbind(rfrom, rto)] + delta[cbind(rto, rfrom)]
    v[abs(v) < TOL] <- 0
    # reversing i -> j closes a cycle when another path leads from i to j, which needs
    # another child of i and another parent of j.
    rev <- .compat_scan_moves(v, best_val, function(q)
      nchild[rfrom[q]] == 1 || npar[rto[q]] == 1 ||
        !.compat_has_path(amat, rfrom[q], rto[q], exclude_direct = TRUE))
    if (rev$q) {
      best_op <- 3L; best_from <- rfrom[rev$q]; best_to <- rto[rev$q]
      best_val <- rev$val
    }

    if (best_op == 0L) {
      if (restart <= 0) break
      # Random restarts (spec 1.6).
      current_total <- sum(node_score)
      reverted <- FALSE
      if (is.null(best)) {
        best <- list(amat = amat, from = arc_from, to = arc_to, score = node_score)
      } else if (sum(best$score) - current_total > TOL) {
        amat <- best$amat; arc_from <- best$from; arc_to <- best$to
        reverted <- TRUE
      } else {
        best <- list(amat = amat, from = arc_from, to = arc_to, score = node_score)
      }
      if (restarts_left == 0 || iter >= max.iter) break
      iter <- iter + 1
      restarts_left <- restarts_left - 1
      pert <- .compat_perturb(amat, arc_from, arc_to, wlmat, blmat, maxp, perturb)
      amat <- pert$amat; arc_from <- pert$from; arc_to <- pert$to
      if (debug) cat("* random restart,", restarts_left, "of", restart, "left.\n")
      if (reverted) {
        node_score <- .compat_bicg_nodes(ctx$X, amat, ctx$k)
        updated <- seq_len(N)
      } else {
        # Every node a perturbation move touched is re-scored and its cache column refreshed, even one
        # whose parents a later move restored, as bnlearn does.
        updated <- pert$touched
        if (length(updated))
          node_score[updated] <- .compat_bicg_nodes(ctx$X, amat, ctx$k)[updated]
      }
      next
    }

    # Apply the move, update cached scores incrementally and the stored arc order.
    i <- best_from; j <- best_to
    if (best_op == 1L) {
      amat[i, j] <- 1L
      node_score[j] <- node_score[j] + delta[i, j]
      arc_from <- c(arc_from, i); arc_to <- c(arc_to, j)
      updated <- j
    } else if (best_op == 2L) {
      amat[i, j] <- 0L
      node_score[j] <- node_score[j] + delta[i, j]
      keep <- !(arc_from == i & arc_to == j)
      arc_from <- arc_from[keep]; arc_to <- arc_to[keep]
      updated <- j
    } else {
      amat[i, j] <- 0L; amat[j, i] <- 1L
      node_score[j] <- node_score[j] + delta[i, j]
      node_score[i] <- node_score[i] + delta[j, i]
      keep <- !(arc_from == i & arc_to == j)
      arc_from <- c(arc_from[keep], j); arc_to <- c(arc_to[keep], i)
      updated <- c(i, j)
    }
    if (debug)
      cat("* ", c("adding", "removing", "reversing")[best_op], " ", nodes[i], " -> ", nodes[j],
          " (delta ", format(best_val), ", score ", format(sum(node_score)), ").\n", sep = "")
    if (iter >= max.iter) break
    iter <- iter + 1
  }
  list(from = arc_from, to = arc_to, ntests = n_tests)
}

# Random perturbation of the network before a restart (spec 1.6).
.compat_perturb <- function(amat, arc_from, arc_to, wlmat, blmat, maxp, perturb) {
  N <- ncol(amat)
  start_from <- arc_from; start_to <- arc_to
  left <- perturb
  touched <- logical(N)
  offdiag <- row(amat) != col(amat)
  for (attempt in seq_len(3 * perturb)) {
    npar <- colSums(amat)
    can_add <- amat == 0L & t(amat) == 0L & !blmat & offdiag
    can_add[, npar >= maxp] <- FALSE
    h <- which(t(can_add))
    add_from <- (h - 1L) %/% N + 1L; add_to <- (h - 1L) %% N + 1L
    drop_ok <- !wlmat[cbind(arc_from, arc_to)]
    rev_ok <- !blmat[cbind(arc_to, arc_from)] & npar[arc_from] < maxp
    if (left == 0) break
    op <- sample(c("set", "drop", "reverse"), 1)
    if (op == "set" && length(h)) {
      a <- sample(seq_along(h), 1)
      if (!.compat_has_path(amat, add_to[a], add_from[a])) {
        amat[add_from[a], add_to[a]] <- 1L
        arc_from <- c(arc_from, add_from[a]); arc_to <- c(arc_to, add_to[a])
        touched[add_to[a]] <- TRUE
      }
    } else if (op == "drop" && any(drop_ok)) {
      idx <- which(drop_ok)
      a <- idx[sample(seq_along(idx), 1)]
      amat[arc_from[a], arc_to[a]] <- 0L
      touched[arc_to[a]] <- TRUE
      arc_from <- arc_from[-a]; arc_to <- arc_to[-a]
    } else if (op == "reverse" && any(rev_ok)) {
      idx <- which(rev_ok)
      a <- idx[sample(seq_along(idx), 1)]
      i <- arc_from[a]; j <- arc_to[a]
      if (!.compat_has_path(amat, i, j, exclude_direct = TRUE)) {
        amat[i, j] <- 0L; amat[j, i] <- 1L
        arc_from <- c(arc_from[-a], j); arc_to <- c(arc_to[-a], i)
        touched[c(i, j)] <- TRUE
      }
    }
    # bnlearn compares the arc list, in its order, with the one the perturbation started from: the same
    # arcs in another order (an arc dropped and added again) count as a change.
    if (length(arc_from) != length(start_from) || any(arc_from != start_from) || any(arc_to != start_to))
      left <- left - 1
  }
  list(amat = amat, from = arc_from, to = arc_to, touched = which(touched))
}

# ---------------------------------------------------------------------------------------
# Public functions.

.compat_bicg_k <- function(extra, n) {
  k <- if (!is.null(extra$k)) extra$k else log(n) / 2
  if (!is.numeric(k) || length(k) != 1 || !is.finite(k) || k < 0)
    stop("k must be a non-negative number.")
  if (!isTRUE(all.equal(k, log(n) / 2)))
    warning("using a penalty k different from the BIC one (log(n)/2).")
  k
}

# hc()'s arguments other than the data, matched and evaluated as hc() matches them.
.compat_hc_args <- function(start = NULL, whitelist = NULL, blacklist = NULL, score = NULL, ...,
                            debug = FALSE, restart = 0, perturb = 1, max.iter = Inf, maxp = Inf,
                            optimized = TRUE) {
  list(start = start, whitelist = whitelist, blacklist = blacklist, score = score, extra = list(...),
       debug = debug, restart = restart, perturb = perturb, max.iter = max.iter, maxp = maxp,
       optimized = optimized)
}

# The settings of an hc() call on data with columns `nodes` and n rows, checked: everything
# that does not depend on the data's values. a: .compat_hc_args()'s list.
.compat_hc_setup <- function(nodes, n, a) {
  score <- a[["score"]]; extra <- a[["extra"]]; start <- a[["start"]]
  restart <- a[["restart"]]; perturb <- a[["perturb"]]; max.iter <- a[["max.iter"]]
  maxp <- a[["maxp"]]
  if (!is.null(score) && !identical(score, "bic-g"))
    stop("only the 'bic-g' score is available for continuous data, not '", score, "'.")
  unknown_args <- setdiff(names(extra), "k")
  if (length(unknown_args)) stop("unknown argument(s) for bic-g: ", paste(unknown_args, collapse = ", "), ".")
  N <- length(nodes)
  k <- .compat_bicg_k(extra, n)
  if (!is.numeric(restart) || length(restart) != 1 || restart < 0) stop("restart must be a non-negative integer.")
  if (!is.numeric(max.iter) || length(max.iter) != 1 || max.iter < 0) stop("max.iter must be a non-negative number.")
  if (!is.numeric(maxp) || length(maxp) != 1 || maxp < 0) stop("maxp must be a non-negative number.")
  if (restart == 0) perturb <- 0
  if (is.finite(maxp) && maxp >= N) {
    warning("maxp is ", maxp, " with ", N, " nodes: the limit has no effect.")
    maxp <- Inf
  }

  lists <- .compat_sanitize_wlbl(a[["whitelist"]], a[["blacklist"]], nodes)
  wl <- lists$whitelist; bl <- lists$blacklist
  wlmat <- matrix(FALSE, N, N); blmat <- matrix(FALSE, N, N)
  if (!is.null(wl)) wlmat[cbind(match(wl[, 1], nodes), match(wl[, 2], nodes))] <- TRUE
  if (!is.null(bl)) blmat[cbind(match(bl[, 1], nodes), match(bl[, 2], nodes))] <- TRUE

  # Start graph: given or empty, whitelisted arcs appended, blacklisted arcs removed.
  if (is.null(start)) {
    arc_from <- integer(0); arc_to <- integer(0)
  } else {
    if (!inherits(start, "bn")) stop("start must be an object of class 'bn'.")
    if (!setequal(names(start$nodes), nodes)) stop("the start network and the data have different nodes.")
    arc_from <- match(start$arcs[, 1], nodes); arc_to <- match(start$arcs[, 2], nodes)
  }
  if (!is.null(wl)) {
    wf <- match(wl[, 1], nodes); wt <- match(wl[, 2], nodes)
    new <- !paste(wf, wt) %in% paste(arc_from, arc_to)
    arc_from <- c(arc_from, wf[new]); arc_to <- c(arc_to, wt[new])
  }
  if (length(arc_from)) {
    keep <- !blmat[cbind(arc_from, arc_to)]
    arc_from <- arc_from[keep]; arc_to <- arc_to[keep]
  }
  amat <- matrix(0L, N, N)
  amat[cbind(arc_from, arc_to)] <- 1L
  if (any(amat == 1L & t(amat) == 1L)) stop("the start network is only partially directed.")
  if (!.compat_is_acyclic(amat)) stop("the start network contains cycles.")
  if (any(colSums(amat) > maxp)) stop("nodes in the start network have more than maxp = ", maxp, " parents.")

  list(nodes = nodes, k = k, whitelist = wl, blacklist = bl, wlmat = wlmat, blmat = blmat,
       amat = amat, arc_from = arc_from, arc_to = arc_to, maxp = maxp, max.iter = max.iter,
       restart = restart, perturb = perturb, optimized = a[["optimized"]], debug = a[["debug"]],
       warnings = list())
}

# The settings for many hc() runs on data with these columns and n rows each (boot.strength,
# bn.cv), checked once. The warnings they raise are kept in $warnings, for every run to raise
# again as its own hc() call would (.compat_hc_run does).
.compat_hc_setup_runs <- function(nodes, n, algorithm.args) {
  a <- do.call(.compat_hc_args, algorithm.args)
  caught <- list()
  setup <- withCallingHandlers(.compat_hc_setup(nodes, n, a),
    warning = function(w) {
      caught[[length(caught) + 1L]] <<- w
      invokeRestart("muffleWarning")
    },
    error = function(e) for (w in caught) warning(w))
  setup$warnings <- caught
  setup
}

# The data as the double matrix the searches read (columns in the data's order).
.compat_double_matrix <- function(x) {
  X <- as.matrix(x)
  storage.mode(X) <- "double"
  X
}

# Many hc() runs on rows of `data` (n rows each): the data's columns checked, the settings checked and
# prepared (.compat_hc_setup_runs), and the data matrix whose rows each run takes.
.compat_hc_prepare_runs <- function(data, n, algorithm.args) {
  .compat_check_gaussian_data(data)
  setup <- .compat_hc_setup_runs(names(data), n, algorithm.args)
  list(setup = setup, X = .compat_double_matrix(data))
}

# One search on the data matrix X (columns in node order, checked): list(from, to, ntests).
.compat_hc_run <- function(setup, X) {
  for (w in setup$warnings) warning(w)
  ctx <- .compat_score_context(X, setup$k)
  search <- function(guarded)
    .compat_hc_search(ctx, setup$amat, setup$arc_from, setup$arc_to, setup$wlmat, setup$blmat,
                      setup$maxp, setup$max.iter, setup$restart, setup$perturb, setup$optimized,
                      setup$debug, setup$nodes, guarded)
  # Without random restarts and debugging output the search draws no random numbers and prints
  # nothing: its result depends on its inputs alone. It then runs first without a guard around
  # each Cholesky factorisation (setting up one costs more than the factorisation; none fails
  # unless parents are collinear), and only if anything fails runs again, guarded.
  if (setup$restart == 0 && identical(setup$debug, FALSE)) {
    res <- tryCatch(search(FALSE), error = function(e) NULL)
    if (!is.null(res)) return(res)
  }
  search(TRUE)
}

# The learned network as hc() returns it.
.compat_hc_network <- function(setup, res) {
  learning <- list(whitelist = setup$whitelist, blacklist = setup$blacklist, test = "bic-g",
                   ntests = res$ntests, algo = "hc", args = list(k = setup$k),
                   optimized = setup$optimized, illegal = NULL)
  nodes <- setup$nodes
  .compat_bn_from_arcs(nodes, cbind(nodes[res$from], nodes[res$to]), learning = learning)
}

# Its adjacency matrix (.compat_amat of that network) and the whitelist/blacklist membership
# matrices of its learning information (.compat_learning_wlbl), without building the network.
.compat_hc_amat <- function(setup, res) {
  nodes <- setup$nodes
  amat <- matrix(0L, length(nodes), length(nodes), dimnames = list(nodes, nodes))
  amat[cbind(res$from, res$to)] <- 1L
  amat
}

.compat_hc_wlbl <- function(setup) {
  if (is.null(setup$whitelist) && is.null(setup$blacklist)) return(NULL)
  list(wl = setup$wlmat, bl = setup$blmat)
}

hc <- function(x, start = NULL, whitelist = NULL, blacklist = NULL, score = NULL, ...,
               debug = FALSE, restart = 0, perturb = 1, max.iter = Inf, maxp = Inf,
               optimized = TRUE) {
  .compat_check_gaussian_data(x)
  setup <- .compat_hc_setup(names(x), nrow(x), list(
    start = start, whitelist = whitelist, blacklist = blacklist, score = score, extra = list(...),
    debug = debug, restart = restart, perturb = perturb, max.iter = max.iter, maxp = maxp,
    optimized = optimized))
  .compat_hc_network(setup, .compat_hc_run(setup, .compat_double_matrix(x)))
}

score <- function(x, data, type = NULL, ..., by.node = FALSE, debug = FALSE) {
  .compat_check_bn(x)
  if (is.null(type)) type <- "bic-g"
  if (!identical(type, "bic-g")) stop("only the 'bic-g' score is available, not '", type, "'.")
  .compat_check_gaussian_data(data)
  if (!setequal(names(x$nodes), names(data)))
    stop("the network and the data have different nodes.")
  if (!directed(x)) stop("the graph is only partially directed.")
  extra <- list(...)
  unknown_args <- setdiff(names(extra), "k")
  if (length(unknown_args)) stop("unknown argument(s) for bic-g: ", paste(unknown_args, collapse = ", "), ".")
  k <- .compat_bicg_k(extra, nrow(data))
  nodes <- names(x$nodes)
  X <- .compat_double_matrix(data[, nodes, drop = FALSE])
  per_node <- setNames(.compat_bicg_nodes(X, .compat_amat(x), k), nodes)
  if (by.node) per_node else sum(per_node)
}
