# Learn the causal graph of every loss x attack of a trace table (Figure 4: traces -> graphs),
# from R alone: the command line of etio_learn_all() (r/etio.R), the function `etio learn`
# calls, with `etio learn`'s options.
#
#   Rscript r/learn_graphs.R TRACES.csv --out DIR [--weight-decay 0.0005] [--method boot|cv]
#           [--seed 1] [--replicates 200] [--runs 20] [--attacks A,B,...] [--losses ce,mse]
#
# DIR receives what `etio learn` writes there, byte for byte, except the figures (.svg, .png)
# and the provenance record, which is this script's own (R, its packages and the backend):
#   <loss>-<attack>.dot, <loss>-<attack>-strength.csv, results-w_dk-cont-wd_%f.csv,
#   results-cont-wd_%f.csv, corr_results-cont-wd_%f.csv, provenance.json
# DIR appears only when everything succeeded (built in a sibling staging directory and
# renamed into place); on failure: one line "error: <message>" on stderr and exit status 1.
# --weight-decay 0 learns on the rows of every weight decay, with WeightDecay as a node.

script_dir <- local({
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(script)) dirname(normalizePath(script[1])) else normalizePath("r")
})
source(file.path(script_dir, "etio.R"))
for (needed in c("optparse", "jsonlite")) {
  if (!requireNamespace(needed, quietly = TRUE)) {
    cat("error: r/learn_graphs.R needs the R package ", needed, "; run `make setup` (scripts/setup-r.sh)\n",
        sep = "", file = stderr())
    quit(status = 1, save = "no")
  }
}

option_list <- list(
  optparse::make_option("--out", type = "character", help = "Output directory (replaced as a whole on success)."),
  optparse::make_option("--weight-decay", type = "double", default = 0.0005, dest = "weight_decay",
                        help = "Weight decay whose rows are analysed [default 0.0005]."),
  optparse::make_option("--method", type = "character", default = "boot",
                        help = "boot (paper: bootstrap) or cv (authors' code: hold-out CV) [default %default]."),
  optparse::make_option("--attacks", type = "character", help = "Comma-separated attack columns (default: all present)."),
  optparse::make_option("--losses", type = "character", help = "Comma-separated losses, e.g. ce,mse (default: all present)."),
  optparse::make_option("--seed", type = "integer", default = 1L, help = "R seed, set before each graph [default %default]."),
  optparse::make_option("--replicates", type = "integer", default = 200L,
                        help = "Bootstrap replicates R (method boot) [default %default]."),
  optparse::make_option("--runs", type = "integer", default = 20L,
                        help = "Hold-out runs (method cv, and the predictive power) [default %default].")
)
parser <- optparse::OptionParser(usage = "Rscript r/learn_graphs.R TRACES.csv --out DIR [options]",
                                 option_list = option_list)

split_list <- function(value) {
  if (is.null(value)) return(NULL)
  items <- trimws(strsplit(value, ",", fixed = TRUE)[[1]])
  items <- items[nzchar(items)]
  if (length(items)) items else NULL
}

provenance <- function(opts, traces, graphs, backend, started) {
  input <- normalizePath(traces)
  list(
    stage = "learn",
    created = format(started, "%Y-%m-%dT%H:%M:%S+00:00", tz = "UTC"),
    command = paste(c("learn_graphs.R", commandArgs(trailingOnly = TRUE)), collapse = " "),
    versions = list(R = paste(R.version$major, R.version$minor, sep = "."),
                    optparse = as.character(utils::packageVersion("optparse")),
                    jsonlite = as.character(utils::packageVersion("jsonlite"))),
    platform = R.version$platform,
    backend = backend,
    seeds = list(`R set.seed before each graph` = opts$seed),
    config = list(weight_decay = opts$weight_decay, method = opts$method, R = opts$replicates, runs = opts$runs,
                  k = 3L, losses = unique(vapply(graphs, `[[`, "", "loss")),
                  attacks = ETIO_ATTACKS[ETIO_ATTACKS %in% vapply(graphs, `[[`, "", "attack")],
                  blacklist_whitelist = "authors' domain knowledge (r/etio.R etio_constraints)"),
    input = list(path = input, md5 = unname(tools::md5sum(input))),
    graphs = lapply(graphs, function(g) list(name = g$name, rows = g$rows, arcs = nrow(g$arcs),
                                             threshold = g$threshold, predcor = g$predcor, mse = g$mse))
  )
}

main <- function() {
  options(warn = 1)
  staging <- NULL
  outcome <- tryCatch({
    # optparse only warns about a value of the wrong type (and passes it on): make it the error.
    parsed <- withCallingHandlers(
      optparse::parse_args(parser, args = commandArgs(trailingOnly = TRUE), positional_arguments = 1),
      warning = function(w) stop(conditionMessage(w), call. = FALSE))
    opts <- parsed$options
    traces <- parsed$args
    if (is.null(opts$out)) .etio_input_error("--out DIR is required")
    started <- Sys.time()
    backend <- etio_backend()
    table <- etio_read_traces(traces)
    outdir <- sub("/+$", "", opts$out)
    parent <- dirname(outdir)
    dir.create(parent, recursive = TRUE, showWarnings = FALSE)
    staging <- file.path(parent, sprintf(".%s.partial-%d", basename(outdir), Sys.getpid()))
    unlink(staging, recursive = TRUE)
    if (!dir.create(staging)) stop("cannot create ", staging)
    progress <- function(graph, done, total) {
      message(sprintf("[%d/%d] %s learned (%.1f s)", done, total, graph$name,
                      as.numeric(difftime(Sys.time(), started, units = "secs"))))
    }
    graphs <- etio_learn_all(table, staging, opts$weight_decay, method = opts$method, R = opts$replicates,
                             runs = opts$runs, seed = opts$seed, losses = split_list(opts$losses),
                             attacks = split_list(opts$attacks), on_graph = progress)
    jsonlite::write_json(provenance(opts, traces, graphs, backend, started), file.path(staging, "provenance.json"),
                         auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
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
    message(sprintf("%d graphs written to %s (backend %s)", length(graphs), outdir, backend))
    0L
  }, error = function(e) {
    if (!is.null(staging)) unlink(staging, recursive = TRUE)
    message <- sub("^etio input error: ", "", conditionMessage(e))
    cat("error: ", gsub("\n", " ", message), "\n", sep = "", file = stderr())
    1L
  }, interrupt = function(e) {
    if (!is.null(staging)) unlink(staging, recursive = TRUE)
    cat("error: interrupted\n", file = stderr())
    1L
  })
  quit(status = outcome, save = "no")
}

main()
