# Averaged networks with cycles and undirected arcs: averaging_case(i) gives bootstrap-like networks over
# 4 to 8 nodes (each a DAG, their directions disagreeing), whether custom.strength takes their CPDAGs, and
# the threshold. The same functions produced averaged_networks.csv with bnlearn 4.7 (R 4.2.2) and drive the
# check in tests/r/test_compat_strength.R.
averaging_case <- function(i) {
  set.seed(i)
  v <- 4 + i %% 5
  nodes <- LETTERS[1:v]
  p <- 0.15 + 0.1 * (i %% 3)
  networks <- lapply(seq_len(3 + i %% 9), function(r) {
    order <- sample(v)                      # a random topological order: the network is a DAG
    arcs <- NULL
    for (a in seq_len(v)) for (b in seq_len(v))
      if (a != b && runif(1) < p && match(a, order) < match(b, order)) arcs <- rbind(arcs, c(nodes[a], nodes[b]))
    if (is.null(arcs)) arcs <- matrix(character(0), 0, 2)
    colnames(arcs) <- c("from", "to")
    arcs
  })
  list(networks = networks, nodes = nodes, cpdag = i %% 2 == 0, threshold = c(0.2, 0.3, 0.5, NA)[1 + i %% 4])
}

# One line of text per part: the averaged network's arcs in order, the cycle warnings in order, and its
# write.dot file.
averaging_result <- function(i, custom.strength, averaged.network, write.dot) {
  case <- averaging_case(i)
  strength <- custom.strength(case$networks, nodes = case$nodes, cpdag = case$cpdag)
  threshold <- if (is.na(case$threshold)) attr(strength, "threshold") else case$threshold
  warned <- character()
  averaged <- withCallingHandlers(averaged.network(strength, threshold = threshold), warning = function(w) {
    warned <<- c(warned, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  dot <- tempfile(fileext = ".dot")
  on.exit(unlink(dot))
  write.dot(dot, averaged)
  c(arcs = paste(apply(averaged$arcs, 1, paste, collapse = ">"), collapse = " "),
    warnings = paste(warned, collapse = "; "), dot = paste(readLines(dot), collapse = " | "))
}
