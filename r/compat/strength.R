# Arc strengths and model averaging, as bnlearn 4.7 computes them for Gaussian networks:
#
#   boot.strength, custom.strength    arc frequency (strength) and direction over many networks,
#                                     each first reduced to its CPDAG
#   inclusion.threshold               the L1 threshold of Scutari & Nagarajan (2013)
#   averaged.network                  the network of the arcs above that threshold
#
# plus the CPDAG itself (.compat_cpdag), whose whitelist/blacklist step makes constrained
# arcs immutable. Node order is always the network's (= the data's column order); every
# table and adjacency matrix is in scan order (from-node outer, to-node inner).

# bnlearn's MACHINE_TOL: the tolerance of every comparison below.
.compat_tol <- sqrt(.Machine$double.eps)

# Cell codes of the CPDAG's working matrix.
.compat_ABSENT <- 0L
.compat_PRESENT <- 1L
.compat_FIXED <- 2L
.compat_IMMUTABLE <- 3L

# An arc list (from, to) over `nodes` as an N x N logical membership matrix.
.compat_arc_set_matrix <- function(arcs, nodes) {
  member <- matrix(FALSE, length(nodes), length(nodes))
  if (!is.null(arcs) && length(arcs)) {
    arcs <- .compat_arc_matrix(arcs)
    idx <- cbind(match(arcs[, 1], nodes), match(arcs[, 2], nodes))
    member[idx[!is.na(idx[, 1]) & !is.na(idx[, 2]), , drop = FALSE]] <- TRUE
  }
  member
}

# ---------------------------------------------------------------------------------------
# CPDAG (bnlearn's cpdag.c). Not the textbook algorithm when a whitelist or blacklist is
# present: arcs they constrain become IMMUTABLE and keep their direction.
# ---------------------------------------------------------------------------------------

# a: integer 0/1 adjacency matrix (node order); wl, bl: logical membership matrices or NULL
# (NULL for both = no wlbl step). Returns the CPDAG's 0/1 adjacency matrix.
.compat_cpdag_amat <- function(a, wl = NULL, bl = NULL, moral = FALSE) {
  ABSENT <- .compat_ABSENT; PRESENT <- .compat_PRESENT
  FIXED <- .compat_FIXED; IMMUTABLE <- .compat_IMMUTABLE
  n <- ncol(a)
  storage.mode(a) <- "integer"
  dn <- dimnames(a)
  collider <- colSums(a != 0L) >= 2L

  # wlbl step: whitelisted arcs, then arcs whose reverse alone is blacklisted, are immutable.
  if (!is.null(wl) || !is.null(bl)) {
    if (is.null(wl)) wl <- matrix(FALSE, n, n)
    if (is.null(bl)) bl <- matrix(FALSE, n, n)
    a[a == PRESENT & wl] <- IMMUTABLE
    a[a == PRESENT & t(bl) & !bl] <- IMMUTABLE
  }

  # v-structures. Arcs into a non-collider become undirected; the only cells this sets are
  # reverses of PRESENT cells in non-collider columns, so the sweep is order-free.
  into_noncollider <- a == PRESENT & matrix(!collider, n, n, byrow = TRUE)
  a[t(into_noncollider)] <- PRESENT
  for (j in which(collider)) {
    for (i in which(a[, j] == PRESENT)) {
      if (a[j, i] == ABSENT) {
        a[i, j] <- FIXED
      } else if (a[j, i] == PRESENT && collider[i]) {
        a[i, j] <- FIXED; a[j, i] <- FIXED
      }
    }
  }

  # Unshield: a fixed arc into a collider stays fixed only if it forms a v-structure with
  # another fixed/immutable arc into it (or both are immutable); changes are seen at once.
  if (!moral) {
    for (v in which(collider)) {
      for (j in seq_len(n)) {
        if (a[j, v] < FIXED) next
        others <- which(a[, v] >= FIXED)
        others <- others[others != j]
        keep <- FALSE
        for (k in others) {
          if ((a[j, k] == ABSENT && a[k, j] == ABSENT) ||
              (a[j, v] == IMMUTABLE && a[k, v] == IMMUTABLE)) {
            keep <- TRUE
            break
          }
        }
        if (!keep && a[j, v] == FIXED) {
          a[j, v] <- PRESENT; a[v, j] <- PRESENT
        }
      }
    }
  }

  # Propagation: four sweeps per pass until a pass changes nothing (at most n^2 passes).
  undirected <- function(x, y) a[x, y] == PRESENT && a[y, x] == PRESENT
  adjacent <- function(x, y) a[x, y] != ABSENT || a[y, x] != ABSENT
  directed_into <- function(y) which(a[, y] >= PRESENT & a[y, ] == ABSENT)
  directed_path <- function(from, to) {
    dmat <- a >= PRESENT & t(a) == ABSENT
    .compat_has_path(dmat, from, to)
  }
  # Some k -> y directed with k not adjacent to x: orienting x -> y would be unshielded.
  unshielded_into <- function(x, y) {
    for (k in directed_into(y)) if (k != x && !adjacent(k, x)) return(TRUE)
    FALSE
  }
  orient <- function(from, to) { a[from, to] <<- FIXED; a[to, from] <<- ABSENT }
  fix_undirected <- function(x, y) { a[x, y] <<- FIXED; a[y, x] <<- FIXED }

  # The sweeps (3a), (3c) and (3d) visit the cells (i, j) of undirected arcs, j outer or i outer.
  # They only ever orient or fix arcs, so an arc undirected when visited was undirected when the
  # sweep began: each visits the cells undirected at its start, in its order, checking each again.
  undirected_cells <- function() which(a == PRESENT & t(a) == PRESENT)

  if (n > 1) for (pass in seq_len(n * n)) {
    before <- a
    # (3a) an undirected arc closing a directed cycle (j outer, i inner).
    for (h in undirected_cells()) {
      i <- (h - 1L) %% n + 1L; j <- (h - 1L) %/% n + 1L
      if (i == j || !undirected(i, j)) next
      if (directed_path(i, j)) {
        if (unshielded_into(i, j)) fix_undirected(i, j) else orient(i, j)
      }
    }
    # (3b) no new v-structures; the flags are computed once per sweep.
    nz <- a != ABSENT
    nbr_cell <- nz & t(a) == PRESENT
    has_neighbour <- colSums(nbr_cell) > 0
    has_parent <- colSums(nz & !(t(a) == PRESENT)) > 0
    for (j in which(has_neighbour & has_parent)) {
      # a move on the pair (i, j) changes no other cell of column j or row j.
      for (i in which(a[, j] != ABSENT & a[j, ] == PRESENT)) {
        u_j <- unshielded_into(i, j)
        if (has_parent[i]) {
          u_i <- unshielded_into(j, i)
          if (u_j && !u_i) {
            if (directed_path(i, j)) fix_undirected(i, j) else orient(j, i)
          } else if (u_j && u_i) {
            fix_undirected(i, j)
          }
        } else if (u_j) {
          if (directed_path(i, j)) fix_undirected(i, j) else orient(j, i)
        }
      }
    }
    # (3c) Meek rule 3 (i outer, j inner; after orienting an arc, on to the next i). The set of
    # cells is symmetric: read with i as the column and j as the row, its order is i outer.
    done_i <- 0L
    for (h in undirected_cells()) {
      i <- (h - 1L) %/% n + 1L; j <- (h - 1L) %% n + 1L
      if (i == done_i || i == j || !undirected(i, j)) next
      ks <- which(a[i, ] == PRESENT & a[, i] == PRESENT & a[, j] >= PRESENT & a[j, ] == ABSENT)
      found <- FALSE
      if (length(ks) >= 2) for (p in seq_along(ks)) for (q in seq_along(ks)) {
        if (p < q && !adjacent(ks[p], ks[q])) found <- TRUE
      }
      if (found) { orient(i, j); done_i <- i }
    }
    # (3d) chains i - k -> l -> j with i - l and k, j non-adjacent (order as in (3c)).
    done_i <- 0L
    for (h in undirected_cells()) {
      i <- (h - 1L) %/% n + 1L; j <- (h - 1L) %% n + 1L
      if (i == done_i || i == j || !undirected(i, j)) next
      both_i <- a[i, ] >= PRESENT & a[, i] >= PRESENT
      found <- FALSE
      for (k in which(both_i)) {
        if (k == j || adjacent(k, j)) next
        bridges <- which(both_i & a[k, ] >= PRESENT & a[, k] == ABSENT &
                           a[, j] >= PRESENT & a[j, ] == ABSENT)
        if (length(bridges)) { found <- TRUE; break }
      }
      if (found) { orient(i, j); done_i <- i }
    }
    if (identical(before, a)) break
  }

  a[a > PRESENT] <- PRESENT
  dimnames(a) <- dn
  a
}

# The whitelist/blacklist a network was learned with, as membership matrices (NULL when it
# has neither: the wlbl step is then skipped).
.compat_learning_wlbl <- function(learning, nodes) {
  if (is.null(learning$whitelist) && is.null(learning$blacklist)) return(NULL)
  list(wl = .compat_arc_set_matrix(learning$whitelist, nodes),
       bl = .compat_arc_set_matrix(learning$blacklist, nodes))
}

.compat_cpdag <- function(bn, wlbl = TRUE, moral = FALSE) {
  nodes <- names(bn$nodes)
  constraints <- if (wlbl) .compat_learning_wlbl(bn$learning, nodes) else NULL
  a <- .compat_cpdag_amat(.compat_amat(bn), constraints$wl, constraints$bl, moral = moral)
  .compat_bn_from_arcs(nodes, .compat_arcs_from_amat(nodes, a), learning = bn$learning)
}

# Extend a CPDAG to a DAG (Dor & Tarsi): repeatedly remove a node with no outgoing directed
# arc whose undirected neighbours are adjacent to all its other neighbours, orienting its
# undirected arcs towards it. Returns the 0/1 adjacency matrix (undirected arcs remain only
# where no extension exists).
.compat_cpdag_extension_amat <- function(a) {
  n <- ncol(a)
  remaining <- rep(TRUE, n)
  repeat {
    changed <- FALSE
    for (v in seq_len(n)) {
      if (!remaining[v]) next
      und <- a[v, ] == 1L & a[, v] == 1L & remaining
      out <- a[v, ] == 1L & a[, v] == 0L & remaining
      if (any(out)) next
      nbrs <- which((a[v, ] == 1L | a[, v] == 1L) & remaining)
      ok <- TRUE
      for (u in which(und)) {
        others <- nbrs[nbrs != u]
        if (any(a[u, others] == 0L & a[others, u] == 0L)) { ok <- FALSE; break }
      }
      if (!ok) next
      a[v, und] <- 0L
      remaining[v] <- FALSE
      changed <- TRUE
    }
    if (!changed || !any(remaining)) break
  }
  a
}

# ---------------------------------------------------------------------------------------
# Strength tables.
# ---------------------------------------------------------------------------------------

# Add one network's arcs to the count matrix: w for a directed arc, w/2 each way for an
# undirected one.
.compat_count_arcs <- function(counts, a, w) {
  und <- a == 1L & t(a) == 1L
  counts + w * ((a == 1L) - 0.5 * und)
}

# The strength table of normalised counts p (N x N, p[i, j] = share of networks with i -> j).
.compat_strength_table <- function(p, nodes) {
  n <- length(nodes)
  off <- !diag(n)
  # scan order: from-node outer, to-node inner = column-major order of t(p).
  from_idx <- col(p)[off]   # on t(): column index = from
  to_idx <- row(p)[off]
  pij <- p[cbind(from_idx, to_idx)]
  pji <- p[cbind(to_idx, from_idx)]
  strength <- pij + pji
  direction <- ifelse(strength == 0, 0, pij / strength)
  strength[strength < .compat_tol] <- 0
  strength[strength > 1 - .compat_tol] <- 1
  direction[direction < .compat_tol] <- 0
  direction[direction > 1 - .compat_tol] <- 1
  res <- data.frame(from = nodes[from_idx], to = nodes[to_idx], strength = strength,
                    direction = direction, stringsAsFactors = FALSE)
  attr(res, "nodes") <- nodes
  attr(res, "method") <- "bootstrap"
  attr(res, "threshold") <- .compat_threshold(res$strength)
  class(res) <- c("bn.strength", "data.frame")
  res
}

# Networks given to custom.strength (bn, bn.fit, arc matrices) as bn objects over `nodes`.
.compat_as_networks <- function(networks, nodes) {
  lapply(networks, function(net) {
    if (inherits(net, "bn")) return(net)
    if (inherits(net, "bn.fit")) return(.compat_bn_from_arcs(names(net), arcs(net)))
    .compat_bn_from_arcs(nodes, net)
  })
}

# The networks of a cross-validation: each split's fitted structure with its learning
# information, run-major then split order.
.compat_kcv_networks <- function(xval) {
  runs <- if (inherits(xval, "bn.kcv.list")) unclass(xval) else list(xval)
  unlist(lapply(runs, function(run) lapply(unclass(run), function(split) {
    net <- .compat_bn_from_arcs(names(split$fitted), arcs(split$fitted))
    net$learning <- split$learning
    net
  })), recursive = FALSE)
}

custom.strength <- function(networks, nodes, weights = NULL, cpdag = TRUE) {
  if (inherits(networks, c("bn.kcv", "bn.kcv.list"))) {
    networks <- .compat_kcv_networks(networks)
    if (!missing(nodes))
      warning("the labels from the 'nodes' argument will be ignored.")
    nodes <- names(networks[[1]]$nodes)
  }
  if (!is.list(networks) || length(networks) == 0)
    stop("networks must be a non-empty list of networks or arc sets.")
  if (missing(nodes) || !is.character(nodes) || anyDuplicated(nodes))
    stop("nodes must be a character vector of unique node names.")
  networks <- .compat_as_networks(networks, nodes)
  for (net in networks)
    if (!setequal(names(net$nodes), nodes))
      stop("all networks must have the same nodes as 'nodes'.")
  if (is.null(weights)) {
    weights <- rep(1, length(networks))
  } else {
    if (!is.numeric(weights) || length(weights) != length(networks) || any(weights < 0))
      stop("weights must be a non-negative vector with one value per network.")
    weights <- weights / sum(weights)
  }
  counts <- matrix(0, length(nodes), length(nodes))
  for (r in seq_along(networks)) {
    net <- networks[[r]]
    net_nodes <- names(net$nodes)
    a <- .compat_amat(net)
    if (cpdag) {
      constraints <- .compat_learning_wlbl(net$learning, net_nodes)
      a <- .compat_cpdag_amat(a, constraints$wl, constraints$bl)
    }
    ord <- match(nodes, net_nodes)
    counts <- .compat_count_arcs(counts, a[ord, ord, drop = FALSE], weights[r])
  }
  .compat_strength_table(counts / sum(weights), nodes)
}

boot.strength <- function(data, cluster = NULL, R = 200, m = nrow(data), algorithm,
                          algorithm.args = list(), cpdag = TRUE, shuffle = FALSE, debug = FALSE) {
  if (!is.data.frame(data) || ncol(data) < 2 || nrow(data) < 2)
    stop("data must be a data frame with at least two columns and two rows.")
  if (!all(vapply(data, is.double, TRUE)))
    stop("boot.strength supports continuous (double) columns only.")
  if (anyNA(data) || !all(vapply(data, function(x) all(is.finite(x)), TRUE)))
    stop("data contain missing or non-finite values.")
  if (!is.numeric(R) || length(R) != 1 || R < 1 || R != round(R))
    stop("R must be a positive integer (the number of bootstrap replicates).")
  if (!is.numeric(m) || length(m) != 1 || m < 1 || m != round(m))
    stop("m must be a positive integer (the size of each bootstrap replicate).")
  if (missing(algorithm) || !identical(algorithm, "hc"))
    stop("the compatible implementation supports algorithm = \"hc\" only.")
  if (!is.null(cluster))
    warning("the compatible implementation runs sequentially, ignoring 'cluster'.")
  # bnlearn 4.7 does not shuffle the columns of a replicate (4.9 added shuffle = TRUE as the
  # default); shuffle = FALSE, accepted so that calls written for later versions run here, draws
  # exactly the random numbers below (one sample() per replicate), as the golden outputs confirm.
  if (!identical(shuffle, FALSE))
    stop("shuffle = TRUE is not supported by the compatible implementation (bnlearn 4.7 does not shuffle).")
  # Each replicate is an hc() call on the resampled rows; what does not depend on the rows (the
  # checks of the data's columns and of algorithm.args, the sanitized whitelist and blacklist,
  # the start graph) is done once, where the first replicate's hc() call would do it (after its
  # resample is drawn), and each replicate learns on the rows of a matrix.
  nodes <- names(data)
  counts <- matrix(0, length(nodes), length(nodes))
  for (r in seq_len(R)) {
    resampling <- sample(nrow(data), m, replace = TRUE)
    if (r == 1L) {
      prepared <- .compat_hc_prepare_runs(data, m, algorithm.args)
      constraints <- .compat_hc_wlbl(prepared$setup)
    }
    run <- .compat_hc_run(prepared$setup, prepared$X[resampling, , drop = FALSE])
    a <- .compat_hc_amat(prepared$setup, run)
    if (cpdag) a <- .compat_cpdag_amat(a, constraints$wl, constraints$bl)
    if (debug) cat("* bootstrap replicate", r, ":", sum(a), "arc cells.\n")
    counts <- .compat_count_arcs(counts, a, 1)
  }
  .compat_strength_table(counts / R, nodes)
}

# ---------------------------------------------------------------------------------------
# Threshold and averaged network.
# ---------------------------------------------------------------------------------------

# The L1 threshold: the constant p closest (in L1) to the ECDF of the strengths on [0, 1],
# found by optimize() as bnlearn does (the side of the breakpoint it lands on decides the
# quantile), then the p-quantile of the strengths.
.compat_threshold_p0 <- function(s) {
  e <- ecdf(s)
  u <- knots(e)
  widths <- diff(unique(c(0, u, 1)))
  left <- unique(c(0, u[u < 1]))
  norm <- function(p) sum(widths * abs(e(left) - p))
  p0 <- optimize(f = norm, interval = c(0, 1))$minimum
  # both ends are legal minimisers that optimize() never evaluates.
  if (norm(1) < norm(p0)) p0 <- 1
  if (norm(0) < norm(p0)) p0 <- 0
  p0
}

.compat_threshold <- function(s) quantile(s, .compat_threshold_p0(s), type = 1, names = FALSE)

.compat_check_strength <- function(strength) {
  if (!inherits(strength, "bn.strength"))
    stop("strength must be an object of class 'bn.strength'.")
}

inclusion.threshold <- function(strength) {
  .compat_check_strength(strength)
  .compat_threshold(strength$strength)
}

averaged.network <- function(strength, threshold) {
  .compat_check_strength(strength)
  nodes <- attr(strength, "nodes")
  if (missing(threshold)) threshold <- attr(strength, "threshold")
  if (!is.numeric(threshold) || length(threshold) != 1 || is.na(threshold))
    stop("threshold must be a single number.")
  selected <- (strength$strength > threshold | strength$strength == 1)
  if ("direction" %in% names(strength)) selected <- selected & strength$direction >= 0.5
  candidates <- cbind(from = strength$from[selected], to = strength$to[selected])
  amat <- matrix(0L, length(nodes), length(nodes), dimnames = list(nodes, nodes))
  if (nrow(candidates)) {
    idx <- cbind(match(candidates[, 1], nodes), match(candidates[, 2], nodes))
    key <- paste(idx[, 1], idx[, 2])
    all_undirected <- all(paste(idx[, 2], idx[, 1]) %in% key)
    if (all_undirected) {
      amat[idx] <- 1L
    } else {
      # weakest arcs first, so the strongest arc of a cycle is the one left out.
      ord <- sort(strength$strength[selected], method = "quick", index.return = TRUE)$ix
      for (r in ord) {
        from <- idx[r, 1]; to <- idx[r, 2]
        if (.compat_has_path(amat, to, from, exclude_direct = TRUE)) {
          warning("arc ", nodes[from], " -> ", nodes[to],
                  " would introduce cycles in the graph, ignoring.")
        } else {
          amat[from, to] <- 1L
        }
      }
    }
  }
  net <- .compat_bn_from_arcs(nodes, .compat_arcs_from_amat(nodes, amat))
  net$learning$algo <- "averaged"
  net$learning$args <- list(threshold = threshold)
  if (!is.null(attr(strength, "illegal"))) net$learning$illegal <- attr(strength, "illegal")
  net
}
