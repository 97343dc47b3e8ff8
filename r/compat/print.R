# print() methods of the compatible objects, in the layout bnlearn 4.7 prints them:
#
#   bn               title by kind of algorithm, model string, arc counts, average Markov
#                    blanket / neighbourhood / branching sizes, then the algorithm's settings
#   bn.fit           "Bayesian network parameters", then every node
#   bn.fit.gnode     conditional density, coefficients, residual standard deviation
#   bn.kcv(.list)    cross-validation method, target, loss, expected loss (over runs)
#
# A bn.strength has no method of its own in bnlearn 4.7: it prints as the data frame it is.
# Every "label: value" line is the label padded to 40 columns, a space and the value; when
# the console is narrower than that line (and at least 45 columns wide) the value goes,
# right-aligned, on a line of its own. Model strings too long for the console are broken
# after a "]".

# Labels bnlearn prints for the algorithms, scores and losses this implementation provides.
.compat_algorithm_labels <- c(hc = "Hill-Climbing")
.compat_generation_labels <- c(empty = "Empty", averaged = "Model Averaging")
.compat_score_labels <- c(`bic-g` = "BIC (Gauss.)")
.compat_loss_labels <- c(cor = "Predictive Correlation", mse = "Mean Squared Error")

.compat_label <- function(labels, key) {
  label <- unname(labels[key])
  if (length(label) != 1 || is.na(label)) key else label
}

# One "label: value" line.
.compat_print_field <- function(label, value, indent = 2) {
  header <- sprintf("%-40s", paste0(strrep(" ", indent), label, ":"))
  value <- as.character(value)
  width <- getOption("width")
  if (width >= nchar(header) + nchar(value) + 1 || width < 45) {
    cat(paste(header, value), "\n")
  } else {
    cat(header, "\n", sprintf(paste0("%", width, "s"), value), "\n")
  }
}

# A model string, indented, broken after "]" where the console is too narrow.
.compat_print_model <- function(model, indent = 2) {
  width <- getOption("width")
  if (width >= nchar(model) || width < 45) {
    cat(strrep(" ", indent), model, "\n")
  } else {
    pieces <- paste0(strsplit(model, "]", fixed = TRUE)[[1]], "]")
    cat(pieces, fill = TRUE, sep = "", labels = strrep(" ", indent))
  }
}

print.bn <- function(x, ...) {
  amat <- .compat_amat(x)
  n_undirected <- sum(amat == 1L & t(amat) == 1L) / 2
  n_directed <- nrow(x$arcs) - 2 * n_undirected
  algo <- x$learning$algo
  args <- x$learning$args
  generated <- algo %in% names(.compat_generation_labels)
  mean_size <- function(field) {
    sizes <- vapply(x$nodes, function(node) length(node[[field]]), 0)
    format(if (length(sizes)) mean(sizes) else NaN, digits = 2, nsmall = 2)
  }

  if (generated) cat("\n  Random/Generated Bayesian network\n\n")
  else if (algo %in% names(.compat_algorithm_labels)) cat("\n  Bayesian network learned via Score-based methods\n\n")
  else cat("\n  Bayesian network learned via [unknown] methods\n\n")

  cat("  model:\n")
  if (n_undirected == 0) .compat_print_model(modelstring(x), indent = 2)
  else if (n_directed == 0) cat("    [undirected graph]\n")
  else cat("    [partially directed graph]\n")
  .compat_print_field("nodes", length(x$nodes))
  .compat_print_field("arcs", n_undirected + n_directed)
  .compat_print_field("undirected arcs", n_undirected, indent = 4)
  .compat_print_field("directed arcs", n_directed, indent = 4)
  .compat_print_field("average markov blanket size", mean_size("mb"))
  .compat_print_field("average neighbourhood size", mean_size("nbr"))
  .compat_print_field("average branching factor", mean_size("children"))
  cat("\n")

  if (generated) {
    .compat_print_field("generation algorithm", .compat_label(.compat_generation_labels, algo))
    if (!is.null(args$threshold)) .compat_print_field("significance threshold", format(args$threshold))
  } else {
    .compat_print_field("learning algorithm", .compat_label(.compat_algorithm_labels, algo))
    if (algo %in% names(.compat_algorithm_labels))
      .compat_print_field("score", .compat_label(.compat_score_labels, x$learning$test))
    if (!is.null(args$k)) .compat_print_field("penalization coefficient", format(args$k))
    if (!is.null(args$maxp)) .compat_print_field("maximum parents", format(args$maxp))
    .compat_print_field("tests used in the learning procedure", x$learning$ntests)
    if (!is.null(x$learning$optimized)) .compat_print_field("optimized", x$learning$optimized)
  }
  cat("\n")
  invisible(x)
}

print.bn.fit <- function(x, order, ...) {
  order <- if (missing(order)) seq_along(x) else match(order, names(x))
  if (anyNA(order) || length(order) != length(x))
    stop("order must list every node of the network once.")
  cat("\n  Bayesian network parameters\n")
  for (i in order) print(x[[i]])
  cat("\n")
  invisible(x)
}

print.bn.fit.gnode <- function(x, ...) {
  cat("\n  Parameters of node", x$node, "(Gaussian distribution)\n")
  cat("\nConditional density: ")
  cat(if (length(x$parents)) paste(x$node, "|", paste(x$parents, collapse = " + ")) else x$node)
  cat("\nCoefficients:\n")
  print.default(format(c(x$coefficients)), print.gap = 2, right = TRUE, quote = FALSE)
  cat("Standard deviation of the residuals:", x$sd, "\n")
  invisible(x)
}

.compat_print_kcv_run <- function(x, print_loss = TRUE) {
  cv <- attributes(x)
  cat("\n ", cv$method, "cross-validation for Bayesian networks\n\n")
  if (is.character(cv$bn)) {
    .compat_print_field("target learning algorithm", .compat_label(.compat_algorithm_labels, cv$bn))
  } else {
    cat("  target network structure:\n")
    .compat_print_model(modelstring(cv$bn), indent = 2)
  }
  if (identical(cv$method, "hold-out")) {
    .compat_print_field("number of splits", length(x))
    .compat_print_field("size of the test subset", length(x[[1]]$test))
  } else {
    .compat_print_field("number of folds", length(x))
  }
  .compat_print_field("loss function", .compat_label(.compat_loss_labels, cv$loss))
  if (!is.null(cv$args$target)) .compat_print_field("training node", cv$args$target)
  if (print_loss) {
    .compat_print_field("expected loss", format(cv$mean))
    cat("\n")
  }
}

print.bn.kcv <- function(x, ...) {
  .compat_print_kcv_run(x)
  invisible(x)
}

print.bn.kcv.list <- function(x, ...) {
  means <- loss(x)
  .compat_print_kcv_run(x[[1]], print_loss = FALSE)
  .compat_print_field("number of runs", length(x))
  .compat_print_field("average loss over the runs", format(mean(means)))
  .compat_print_field("standard deviation of the loss", format(sd(means)))
  cat("\n")
  invisible(x)
}
