# Learn the causal graph of every loss x attack of a trace table (Figure 4: traces -> graphs).
#
#   Rscript r/learn_graphs.R TRACES.csv OUTDIR --weight-decay 0.0005 --method boot|cv
#           [--seed 1] [--R 200] [--runs 20] [--k 3] [--attacks A,B,...] [--loss ce,mse]
#
# Writes into OUTDIR, for every loss x attack whose column has values at that weight decay:
#   <loss>-<attack>.dot           averaged network, bnlearn write.dot format
#   <loss>-<attack>-strength.csv  arc strengths (from, to, strength, direction)
# and, with the columns of the authors' files (%f = the weight decay printed with "%f"):
#   results-w_dk-cont-wd_%f.csv   DK?, Loss, Attack, Predcor, MSE
#   results-cont-wd_%f.csv        Loss, Attack, Max Corr Var, Max Corr, PredCor-w_dk, MSE-w_dk
#   corr_results-cont-wd_%f.csv   Loss, Attack, Variable, Correlation, p-value
#   provenance.json               backend, seeds, protocol, R version, input file and md5, time
# OUTDIR appears only when everything succeeded (built in a sibling staging directory and
# renamed into place). On failure: one line "error: <message>" on stderr and exit status 1.

script_dir <- local({
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(script)) dirname(normalizePath(script[1])) else normalizePath("r")
})
source(file.path(script_dir, "etio.R"))

usage <- paste(
  "usage: Rscript r/learn_graphs.R TRACES.csv OUTDIR --weight-decay WD --method boot|cv",
  "[--seed 1] [--R 200] [--runs 20] [--k 3] [--attacks A,B,...] [--loss ce,mse]")

parse_args <- function(args) {
  options <- list(`weight-decay` = NULL, method = NULL, seed = "1", R = "200", runs = "20", k = "3",
                  attacks = NULL, loss = NULL)
  positional <- character(0)
  i <- 1
  while (i <= length(args)) {
    arg <- args[i]
    if (startsWith(arg, "--")) {
      name <- sub("^--", "", arg)
      value <- NULL
      if (grepl("=", name)) {
        value <- sub("^[^=]*=", "", name)
        name <- sub("=.*$", "", name)
      }
      if (name %in% c("help", "h")) {
        cat(usage, "\n")
        quit(status = 0)
      }
      if (!(name %in% names(options))) .etio_input_error("unknown option --", name, "; ", usage)
      if (is.null(value)) {
        if (i == length(args)) .etio_input_error("option --", name, " needs a value")
        i <- i + 1
        value <- args[i]
      }
      options[[name]] <- value
    } else {
      positional <- c(positional, arg)
    }
    i <- i + 1
  }
  if (length(positional) != 2) .etio_input_error("expected TRACES.csv and OUTDIR; ", usage)
  if (is.null(options$`weight-decay`)) .etio_input_error("--weight-decay is required; ", usage)
  if (is.null(options$method) || !(options$method %in% c("boot", "cv")))
    .etio_input_error("--method must be boot or cv; ", usage)
  number <- function(name, integer = TRUE, minimum = 1) {
    value <- suppressWarnings(as.numeric(options[[name]]))
    if (is.na(value) || value < minimum || (integer && value != round(value)))
      .etio_input_error("--", name, " must be ", if (integer) "an integer" else "a number", " >= ", minimum,
                        ", got '", options[[name]], "'")
    value
  }
  split <- function(value) if (is.null(value)) NULL else trimws(strsplit(value, ",", fixed = TRUE)[[1]])
  list(traces = positional[1], outdir = positional[2], weight_decay = number("weight-decay", FALSE, 0),
       method = options$method, seed = number("seed", minimum = 0), R = number("R"), runs = number("runs"),
       k = number("k", minimum = 2), attacks = split(options$attacks), losses = split(options$loss))
}

json_string <- function(x) {
  x <- gsub("\\\\", "\\\\\\\\", x)
  x <- gsub("\"", "\\\\\"", x)
  x <- gsub("\n", "\\\\n", x)
  x <- gsub("\t", "\\\\t", x)
  x <- gsub("[[:cntrl:]]", " ", x)
  paste0("\"", x, "\"")
}

# A JSON document from nested named lists, character, numeric and logical scalars/vectors.
to_json <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.list(x)) {
    if (!length(x)) return(if (is.null(names(x))) "[]" else "{}")
    items <- vapply(x, to_json, "", indent = inner)
    if (is.null(names(x)))
      return(paste0("[\n", paste0(inner, items, collapse = ",\n"), "\n", indent, "]"))
    return(paste0("{\n", paste0(inner, json_string(names(x)), ": ", items, collapse = ",\n"), "\n", indent, "}"))
  }
  scalar <- function(v) {
    if (is.na(v)) return("null")
    if (is.character(v)) return(json_string(v))
    if (is.logical(v)) return(if (v) "true" else "false")
    format(v, digits = 15)
  }
  values <- vapply(seq_along(x), function(i) scalar(x[i]), "")
  if (length(x) == 1) values else paste0("[", paste(values, collapse = ", "), "]")
}

# Loss x attack pairs to learn: requested (or present) attacks whose column has at least one
# value in that loss's rows at this weight decay.
pairs_to_learn <- function(traces, opts) {
  losses <- opts$losses
  if (is.null(losses)) {
    present <- unique(stats::na.omit(traces$Loss))
    losses <- c(intersect(c("ce", "mse"), present), setdiff(present, c("ce", "mse")))
  }
  attacks <- opts$attacks
  if (is.null(attacks)) {
    attacks <- intersect(ETIO_ATTACKS, names(traces))
    if (!length(attacks))
      .etio_input_error("the trace table has none of the attack columns ", paste(ETIO_ATTACKS, collapse = ", "))
  }
  for (attack in attacks) {
    .etio_check_attack(attack)
    if (!(attack %in% names(traces))) .etio_input_error("trace table has no column '", attack, "'")
  }
  pairs <- list()
  for (loss in losses) {
    rows <- .etio_rows(traces, loss, opts$weight_decay)
    for (attack in attacks) {
      values <- suppressWarnings(as.numeric(traces[[attack]][rows]))
      if (any(rows) && all(is.na(values))) {
        message(sprintf("skipping %s-%s: no %s values at weight decay %s", loss, attack, attack,
                        format(opts$weight_decay)))
        next
      }
      pairs[[length(pairs) + 1]] <- c(loss = loss, attack = attack)
    }
  }
  if (!length(pairs)) .etio_input_error("no loss x attack with values to learn a graph from")
  pairs
}

write_table <- function(table, path, row.names = TRUE) utils::write.csv(table, path, row.names = row.names)

learn_all <- function(opts, staging) {
  started <- Sys.time()
  backend <- etio_backend()
  traces <- etio_read_traces(opts$traces)
  pairs <- pairs_to_learn(traces, opts)
  wd_tag <- sprintf("%f", opts$weight_decay)
  wd_arg <- if (opts$weight_decay > 0) opts$weight_decay else NULL
  results <- list()
  correlations <- list()
  for (i in seq_along(pairs)) {
    loss <- pairs[[i]][["loss"]]
    attack <- pairs[[i]][["attack"]]
    t0 <- Sys.time()
    data <- etio_prepare(traces, loss, wd_arg, attack)
    learned <- etio_learn(data, attack, method = opts$method, R = opts$R, runs = opts$runs, k = opts$k,
                          seed = opts$seed)
    predictive <- etio_predictive(data, attack, learned$network, runs = opts$runs, k = opts$k,
                                  seed = opts$seed, predcor = learned$predcor)
    correlation <- etio_correlations(data, attack, loss = loss)
    stem <- file.path(staging, paste0(loss, "-", attack))
    etio_write_dot(learned$network, paste0(stem, ".dot"))
    write_table(learned$strength, paste0(stem, "-strength.csv"), row.names = FALSE)
    # The largest correlation as a number (the authors compared the values as strings).
    best <- which.max(correlation$Correlation)
    results[[i]] <- data.frame(`DK?` = TRUE, Loss = loss, Attack = attack, Predcor = predictive$predcor,
                               MSE = predictive$mse, `Max Corr Var` = correlation$Variable[best],
                               `Max Corr` = correlation$Correlation[best], rows = nrow(data),
                               arcs = nrow(learned$arcs), threshold = learned$threshold,
                               check.names = FALSE, stringsAsFactors = FALSE)
    correlations[[i]] <- correlation
    message(sprintf("[%d/%d] %s %s: %d rows, %d arcs (threshold %.3f), predcor %.4f, mse %.3g, %.1f s",
                    i, length(pairs), loss, attack, nrow(data), nrow(learned$arcs), learned$threshold,
                    predictive$predcor, predictive$mse, as.numeric(difftime(Sys.time(), t0, units = "secs"))))
  }
  results <- do.call(rbind, results)
  # Authors' row orders: results-w_dk by loss then attack, results-cont by attack then loss.
  write_table(results[, c("DK?", "Loss", "Attack", "Predcor", "MSE")],
              file.path(staging, sprintf("results-w_dk-cont-wd_%s.csv", wd_tag)))
  by_attack <- results[order(match(results$Attack, unique(results$Attack)), match(results$Loss, unique(results$Loss))), ]
  cont <- data.frame(Loss = by_attack$Loss, Attack = by_attack$Attack, `Max Corr Var` = by_attack$`Max Corr Var`,
                     `Max Corr` = by_attack$`Max Corr`, `PredCor-w_dk` = by_attack$Predcor,
                     `MSE-w_dk` = by_attack$MSE, check.names = FALSE, stringsAsFactors = FALSE)
  rownames(cont) <- NULL
  write_table(cont, file.path(staging, sprintf("results-cont-wd_%s.csv", wd_tag)))
  correlations <- do.call(rbind, correlations)
  rownames(correlations) <- NULL
  write_table(correlations, file.path(staging, sprintf("corr_results-cont-wd_%s.csv", wd_tag)))

  input <- normalizePath(opts$traces)
  graphs <- lapply(seq_len(nrow(results)), function(i) list(
    loss = results$Loss[i], attack = results$Attack[i], rows = results$rows[i], arcs = results$arcs[i],
    threshold = results$threshold[i], predcor = results$Predcor[i], mse = results$MSE[i]))
  provenance <- list(
    stage = "learn_graphs",
    backend = backend,
    r_version = R.version.string,
    method = opts$method,
    seeds = list(seed = opts$seed),
    config = list(weight_decay = opts$weight_decay, method = opts$method, R = opts$R, runs = opts$runs,
                  k = opts$k, hold_out_fraction = 0.2, algorithm = "hc", score = "bic-g",
                  losses = unique(results$Loss), attacks = unique(results$Attack)),
    input = list(path = input, md5 = unname(tools::md5sum(input))),
    graphs = graphs,
    started = format(started, "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"),
    finished = format(Sys.time(), "%Y-%m-%dT%H:%M:%SZ", tz = "UTC"),
    elapsed_s = round(as.numeric(difftime(Sys.time(), started, units = "secs")), 2)
  )
  writeLines(to_json(provenance), file.path(staging, "provenance.json"))
}

main <- function() {
  options(warn = 1)
  staging <- NULL
  outcome <- tryCatch({
    opts <- parse_args(commandArgs(trailingOnly = TRUE))
    outdir <- sub("/+$", "", opts$outdir)
    parent <- dirname(outdir)
    dir.create(parent, recursive = TRUE, showWarnings = FALSE)
    staging <- file.path(parent, sprintf(".%s.partial-%d", basename(outdir), Sys.getpid()))
    unlink(staging, recursive = TRUE)
    if (!dir.create(staging)) stop("cannot create ", staging)
    learn_all(opts, staging)
    backup <- NULL
    if (file.exists(outdir)) {
      backup <- file.path(parent, sprintf(".%s.old-%d", basename(outdir), Sys.getpid()))
      if (!file.rename(outdir, backup)) stop("cannot move the existing ", outdir, " aside")
    }
    if (!file.rename(staging, outdir)) {
      if (!is.null(backup)) file.rename(backup, outdir)
      stop("cannot rename ", staging, " to ", outdir)
    }
    if (!is.null(backup)) unlink(backup, recursive = TRUE)
    message("wrote ", outdir)
    0L
  }, error = function(e) {
    if (!is.null(staging)) unlink(staging, recursive = TRUE)
    cat("error: ", gsub("\n", " ", conditionMessage(e)), "\n", sep = "", file = stderr())
    1L
  }, interrupt = function(e) {
    if (!is.null(staging)) unlink(staging, recursive = TRUE)
    cat("error: interrupted\n", file = stderr())
    1L
  })
  quit(status = outcome, save = "no")
}

main()
