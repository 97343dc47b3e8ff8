# The `bn` graph object and its accessors, shaped like bnlearn 4.7's.
#
# A `bn` is list(learning, nodes, arcs) with class "bn":
#   learning  list(whitelist, blacklist, test, ntests, algo, args, optimized, illegal)
#   nodes     named list, one entry per node in node order: list(mb, nbr, parents, children),
#             each a character vector in node order
#   arcs      character matrix with colnames c("from", "to"); an undirected arc u - v is
#             stored as both rows u -> v and v -> u. Row order is kept as given (it decides
#             write.dot's line order), everything derived from an adjacency matrix is row-major.
#
# Internal API (used by hc.R, fit.R, dot.R, strength.R, cv.R):
#   .compat_empty_bn(nodes)                    graph without arcs, learning$algo = "empty"
#   .compat_bn_from_arcs(nodes, arcs, learning = NULL)
#                                              graph with exactly these arcs, in this order
#   .compat_amat(bn)                           0/1 integer adjacency matrix in node order
#   .compat_arcs_from_amat(nodes, amat)        arc matrix in row-major (from, then to) order
#   .compat_has_path(amat, from, to, exclude_direct = FALSE)
#                                              directed path from -> ... -> to (node names or
#                                              indices); exclude_direct ignores the arcs between
#                                              from and to, both ways, for the whole search
#   .compat_arc_matrix(arcs)                   any 2-column arc list as a clean character matrix
#   .compat_is_acyclic(amat)                   TRUE for a DAG (undirected arcs count as 2-cycles)
# Public (bnlearn names): nodes, arcs, directed, parents, children, empty.graph,
#   model2network, modelstring, tiers2blacklist (print.bn is in print.R).

.compat_empty_learning <- function() {
  list(whitelist = NULL, blacklist = NULL, test = "none", ntests = 0, algo = "empty",
       args = list(), optimized = FALSE, illegal = NULL)
}

# A 2-column arc list (matrix or data frame) as a character matrix with colnames from,to.
.compat_arc_matrix <- function(arcs) {
  if (is.null(arcs) || length(arcs) == 0)
    return(matrix(character(0), ncol = 2, dimnames = list(NULL, c("from", "to"))))
  if (is.data.frame(arcs)) arcs <- as.matrix(arcs)
  if (is.null(dim(arcs))) arcs <- matrix(arcs, ncol = 2, byrow = TRUE)
  if (ncol(arcs) != 2) stop("an arc set must be a matrix or data frame with two columns (from, to).")
  out <- matrix(as.character(arcs), ncol = 2)
  dimnames(out) <- list(NULL, c("from", "to"))
  out
}

# Per-node cached structure (bnlearn's cache.structure): parents/children are the directed
# arcs, nbr every adjacent node, mb = nbr plus the other parents of the children.
.compat_node_structure <- function(nodes, amat) {
  und <- amat == 1L & t(amat) == 1L
  dir <- amat == 1L & !und
  adj <- amat == 1L | t(amat) == 1L
  res <- vector("list", length(nodes))
  names(res) <- nodes
  for (v in seq_along(nodes)) {
    ch <- which(dir[v, ])
    spouses <- if (length(ch)) which(rowSums(dir[, ch, drop = FALSE]) > 0) else integer(0)
    mb <- adj[v, ]
    mb[spouses] <- TRUE
    mb[v] <- FALSE
    res[[v]] <- list(mb = nodes[mb], nbr = nodes[adj[v, ]], parents = nodes[dir[, v]],
                     children = nodes[ch])
  }
  res
}

.compat_empty_bn <- function(nodes) {
  nodes <- as.character(nodes)
  if (anyDuplicated(nodes)) stop("node names must be unique.")
  amat <- matrix(0L, length(nodes), length(nodes), dimnames = list(nodes, nodes))
  structure(list(learning = .compat_empty_learning(),
                 nodes = .compat_node_structure(nodes, amat),
                 arcs = .compat_arc_matrix(NULL)), class = "bn")
}

.compat_bn_from_arcs <- function(nodes, arcs, learning = NULL) {
  nodes <- as.character(nodes)
  arcs <- .compat_arc_matrix(arcs)
  unknown <- setdiff(c(arcs), nodes)
  if (length(unknown))
    stop("arcs refer to unknown nodes: ", paste(unknown, collapse = ", "), ".")
  if (any(arcs[, 1] == arcs[, 2])) stop("an arc cannot join a node to itself.")
  arcs <- arcs[!duplicated(arcs), , drop = FALSE]
  amat <- matrix(0L, length(nodes), length(nodes), dimnames = list(nodes, nodes))
  amat[cbind(match(arcs[, 1], nodes), match(arcs[, 2], nodes))] <- 1L
  structure(list(learning = if (is.null(learning)) .compat_empty_learning() else learning,
                 nodes = .compat_node_structure(nodes, amat),
                 arcs = arcs), class = "bn")
}

.compat_amat <- function(bn) {
  nodes <- names(bn$nodes)
  amat <- matrix(0L, length(nodes), length(nodes), dimnames = list(nodes, nodes))
  if (nrow(bn$arcs))
    amat[cbind(match(bn$arcs[, 1], nodes), match(bn$arcs[, 2], nodes))] <- 1L
  amat
}

.compat_arcs_from_amat <- function(nodes, amat) {
  idx <- which(t(amat) != 0, arr.ind = TRUE)   # column-major on t() = row-major on amat
  out <- matrix(c(nodes[idx[, 2]], nodes[idx[, 1]]), ncol = 2)
  dimnames(out) <- list(NULL, c("from", "to"))
  out
}

.compat_has_path <- function(amat, from, to, exclude_direct = FALSE) {
  if (is.character(from)) from <- match(from, colnames(amat))
  if (is.character(to)) to <- match(to, colnames(amat))
  # bnlearn's search sets aside both arcs between the two nodes, not only the first step's: in a graph with
  # undirected arcs (an averaged network) a path may come back to `from` and would leave by the direct arc.
  if (exclude_direct) amat[from, to] <- amat[to, from] <- 0
  # Breadth-first, on logical node sets: the frontier is the nodes first reached at this depth.
  frontier <- amat[from, ] != 0
  reached <- frontier
  while (any(frontier)) {
    if (frontier[to]) return(TRUE)
    frontier <- colSums(amat[frontier, , drop = FALSE]) > 0 & !reached
    reached <- reached | frontier
  }
  FALSE
}

.compat_is_acyclic <- function(amat) {
  # Kahn's algorithm: repeatedly peel nodes without incoming arcs.
  remaining <- rep(TRUE, ncol(amat))
  repeat {
    indeg <- colSums(amat[remaining, , drop = FALSE] != 0)
    roots <- remaining & indeg == 0
    if (!any(roots)) break
    remaining[roots] <- FALSE
  }
  !any(remaining)
}

.compat_check_bn <- function(x) {
  if (!inherits(x, "bn")) stop("x must be an object of class 'bn'.")
}

nodes <- function(x) {
  if (inherits(x, "bn")) return(names(x$nodes))
  if (inherits(x, "bn.fit")) return(names(x))
  stop("x must be an object of class 'bn' or 'bn.fit'.")
}

arcs <- function(x) {
  if (inherits(x, "bn")) return(x$arcs)
  if (inherits(x, "bn.fit")) {
    pieces <- lapply(names(x), function(v) cbind(x[[v]]$parents, rep(v, length(x[[v]]$parents))))
    return(.compat_arc_matrix(do.call(rbind, pieces)))
  }
  stop("x must be an object of class 'bn' or 'bn.fit'.")
}

directed <- function(x) {
  .compat_check_bn(x)
  amat <- .compat_amat(x)
  !any(amat == 1L & t(amat) == 1L)
}

parents <- function(x, node) {
  if (inherits(x, "bn.fit")) return(x[[node]]$parents)
  .compat_check_bn(x)
  if (!node %in% names(x$nodes)) stop("unknown node '", node, "'.")
  x$nodes[[node]]$parents
}

children <- function(x, node) {
  if (inherits(x, "bn.fit")) return(x[[node]]$children)
  .compat_check_bn(x)
  if (!node %in% names(x$nodes)) stop("unknown node '", node, "'.")
  x$nodes[[node]]$children
}

empty.graph <- function(nodes, num = 1) {
  if (num != 1) return(replicate(num, .compat_empty_bn(nodes), simplify = FALSE))
  .compat_empty_bn(nodes)
}

# bnlearn's model string "[A][C|A:B]": nodes end up sorted, arcs in string order.
model2network <- function(string, ordering = NULL) {
  if (!is.character(string) || length(string) != 1 || !grepl("^(\\[[^][]+\\])+$", string))
    stop("malformed model string '", paste(string, collapse = ""), "'.")
  pieces <- regmatches(string, gregexpr("\\[[^][]+\\]", string))[[1]]
  pieces <- substring(pieces, 2, nchar(pieces) - 1)
  split <- strsplit(pieces, "|", fixed = TRUE)
  node_names <- vapply(split, `[`, "", 1)
  arcs <- do.call(rbind, lapply(split, function(s) {
    if (length(s) < 2) return(NULL)
    pa <- strsplit(s[2], ":", fixed = TRUE)[[1]]
    cbind(pa, rep(s[1], length(pa)))
  }))
  if (anyDuplicated(node_names)) stop("the model string lists a node more than once.")
  unknown <- setdiff(c(arcs), node_names)
  if (length(unknown)) stop("the model string refers to unknown nodes: ", paste(unknown, collapse = ", "), ".")
  if (is.null(ordering)) ordering <- sort(node_names)
  else if (!setequal(ordering, node_names)) stop("the model string describes a different network (the nodes are different).")
  net <- .compat_bn_from_arcs(ordering, arcs)
  if (!.compat_is_acyclic(.compat_amat(net))) stop("the specified network contains cycles.")
  net
}

# Nodes by depth (longest path from a root), ties in node order, as bnlearn prints them.
.compat_topological_order <- function(amat) {
  n <- ncol(amat)
  depth <- integer(n)
  remaining <- rep(TRUE, n)
  level <- 0L
  repeat {
    indeg <- colSums(amat[remaining, , drop = FALSE] != 0)
    roots <- remaining & indeg == 0
    if (!any(roots)) break
    depth[roots] <- level
    remaining[roots] <- FALSE
    level <- level + 1L
  }
  order(depth, seq_len(n))
}

modelstring <- function(x) {
  if (inherits(x, "bn.fit")) x <- .compat_bn_from_arcs(names(x), arcs(x))
  .compat_check_bn(x)
  amat <- .compat_amat(x)
  if (any(amat == 1L & t(amat) == 1L)) stop("the graph is only partially directed.")
  ord <- names(x$nodes)[.compat_topological_order(amat)]
  paste0(vapply(ord, function(v) {
    pa <- x$nodes[[v]]$parents
    if (length(pa)) paste0("[", v, "|", paste(pa, collapse = ":"), "]") else paste0("[", v, "]")
  }, ""), collapse = "")
}

# Blacklist every arc from a later tier to an earlier one (spec section 2 row order).
tiers2blacklist <- function(tiers) {
  if (is.character(tiers)) tiers <- as.list(tiers)
  if (!is.list(tiers) || length(tiers) == 0 || !all(vapply(tiers, is.character, TRUE)))
    stop("tiers must be a character vector or a list of character vectors.")
  flat <- unlist(tiers, use.names = FALSE)
  if (anyDuplicated(flat)) stop("a node appears in more than one tier.")
  tier_of <- rep(seq_along(tiers), lengths(tiers))
  from <- character(0); to <- character(0)
  for (k in seq_along(flat)) {
    later <- flat[tier_of > tier_of[k]]
    from <- c(from, later); to <- c(to, rep(flat[k], length(later)))
  }
  out <- cbind(from, to)
  dimnames(out) <- list(NULL, c("from", "to"))
  out
}
