# write.dot(file, graph): the graph in Graphviz DOT, byte for byte as bnlearn 4.7 writes it
# (spec section 8), with "\n" line endings:
#   - arcs, not all undirected: "digraph {", one `  "NODE" ;` line per node, one
#     `  edge [dir=none] "U" -> "V" ;` line per undirected pair (the row whose from-node comes
#     first in node order, in arc order), one `  edge [dir=forward] "U" -> "V" ;` line per
#     directed arc in stored order, "}";
#   - all arcs undirected: "graph {", the node lines, `  edge [dir=none] "U" -- "V" ;` per pair, "}";
#   - no arcs: just "digraph {" and "}" (bnlearn writes the node lines to the console instead
#     of the file; this implementation writes the same file and prints nothing).

.compat_dot_lines <- function(graph) {
  if (inherits(graph, "bn.fit")) graph <- .compat_bn_from_arcs(names(graph), arcs(graph))
  .compat_check_bn(graph)
  nodes <- names(graph$nodes)
  a <- graph$arcs
  if (nrow(a) == 0) return(c("digraph {", "}"))
  key <- paste(a[, 1], a[, 2], sep = "\r")
  undirected <- paste(a[, 2], a[, 1], sep = "\r") %in% key
  first_of_pair <- undirected & match(a[, 1], nodes) < match(a[, 2], nodes)
  node_lines <- sprintf('  "%s" ;', nodes)
  if (all(undirected)) {
    u <- a[first_of_pair, , drop = FALSE]
    return(c("graph {", node_lines, sprintf('  edge [dir=none] "%s" -- "%s" ;', u[, 1], u[, 2]), "}"))
  }
  u <- a[first_of_pair, , drop = FALSE]
  d <- a[!undirected, , drop = FALSE]
  c("digraph {", node_lines,
    sprintf('  edge [dir=none] "%s" -> "%s" ;', u[, 1], u[, 2]),
    sprintf('  edge [dir=forward] "%s" -> "%s" ;', d[, 1], d[, 2]),
    "}")
}

write.dot <- function(file, graph) {
  if (!is.character(file) || length(file) != 1) stop("file must be a single file name.")
  text <- paste0(paste(.compat_dot_lines(graph), collapse = "\n"), "\n")
  con <- file(file, open = "wb")
  on.exit(close(con))
  writeBin(charToRaw(enc2utf8(text)), con)
  invisible(NULL)
}
