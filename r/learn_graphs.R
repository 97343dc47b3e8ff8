# Learn the causal graph of every loss x attack of a trace table (Figure 4: traces -> graphs),
# from R alone: the command line of etio_learn_all() (r/etio.R), the function `etio learn`
# calls, with `etio learn`'s options.
#
#   Rscript r/learn_graphs.R TRACES.csv --out DIR [--weight-decay 0.0005] [--method boot|cv]
#           [--seed 1] [--replicates 200] [--runs 20] [--attacks A,B,...] [--losses ce,mse]
#           [--workers 1] [--force]
#
# DIR receives what `etio learn` writes there, byte for byte, except the figures (.svg, .png)
# and the provenance record, which is this script's own (R, its packages and the backend):
#   <loss>-<attack>.dot, <loss>-<attack>-strength.csv, results-w_dk-cont-wd_%f.csv,
#   results-cont-wd_%f.csv, corr_results-cont-wd_%f.csv, provenance.json
# (the run layout's names, r/layout.csv, generated from etio/core/layout.py)
# and etio's marker .etio-output.json, which lists those entries as written by `learn`.
# The output rules are etio's (etio/core/outputs.py), so the two front ends may write over each
# other's output and over nothing else: DIR is built in a sibling staging directory and
#   - renamed into place when DIR is absent, or was made by etio and holds only `learn`'s own
#     entries; an empty directory etio did not make is filled, never renamed over;
#   - otherwise refused, unless --force: then the new entries are moved in beside the other
#     files, replacing only `learn`'s entries (never a file etio did not write);
#   - DIR as a symbolic link is refused (nothing is written through a link).
# On failure: one line "error: <message>" on stderr, exit status 1, DIR as it was.
# --weight-decay 0 learns on the rows of every weight decay, with WeightDecay as a node.
# An attack whose column is constant over a loss's rows is not learned (unless named in
# --attacks); the reason is printed and kept in provenance.json ("skipped").

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
  optparse::make_option("--out", type = "character", help = "Output directory, written under etio's output rules (see the head of this script)."),
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
                        help = "Hold-out runs (method cv, and the predictive power) [default %default]."),
  optparse::make_option("--workers", type = "integer", default = 1L,
                        help = "Processes learning graphs at once; the files are the same [default %default]."),
  optparse::make_option("--force", action = "store_true", default = FALSE,
                        help = "Write beside files in DIR that etio did not write (replacing none of them).")
)
parser <- optparse::OptionParser(usage = "Rscript r/learn_graphs.R TRACES.csv --out DIR [options]",
                                 option_list = option_list)

split_list <- function(value) {
  if (is.null(value)) return(NULL)
  items <- trimws(strsplit(value, ",", fixed = TRUE)[[1]])
  items <- items[nzchar(items)]
  if (length(items)) items else NULL
}

# --------------------------------------------------------------------------------------
# Output rules: those of etio/core/outputs.py, with the same marker file
# --------------------------------------------------------------------------------------

MARKER <- ".etio-output.json"
COMMAND <- "learn"   # the entries are `etio learn`'s, whichever front end wrote them

entries_of <- function(directory) {
  names <- list.files(directory, all.files = TRUE, no.. = TRUE)
  sort(setdiff(names, MARKER), method = "radix")
}

read_marker <- function(directory) {
  path <- file.path(directory, MARKER)
  data <- if (file.exists(path)) tryCatch(jsonlite::fromJSON(path, simplifyVector = FALSE),
                                         error = function(e) NULL)
  if (!is.list(data) || !identical(data$format, "etio-output") || !is.list(data$entries)) return(list())
  data$entries
}

# `created`: etio made the directory itself (renamed its staging into place), so a later run may
# replace it as a whole; a directory etio did not create is only ever filled.
created_by_etio <- function(directory) {
  path <- file.path(directory, MARKER)
  data <- if (file.exists(path)) tryCatch(jsonlite::fromJSON(path, simplifyVector = FALSE), error = function(e) NULL)
  is.list(data) && isTRUE(data$created)
}

write_marker <- function(directory, entries, created = FALSE) {
  entries <- entries[order(names(entries), method = "radix")]
  if (!length(entries)) entries <- structure(list(), names = character(0))
  record <- list(format = "etio-output", entries = entries)
  if (created) record$created <- TRUE
  text <- jsonlite::toJSON(record, auto_unbox = TRUE, pretty = TRUE)
  temporary <- tempfile(pattern = ".etio-output-", tmpdir = directory)
  writeLines(text, temporary)
  if (!file.rename(temporary, file.path(directory, MARKER))) stop("cannot write ", file.path(directory, MARKER))
}

output_mode <- function(outdir) {
  if (!dir.exists(outdir) || !length(entries_of(outdir))) return("new")
  owner <- read_marker(outdir)
  own <- vapply(entries_of(outdir), function(name) identical(owner[[name]], COMMAND), logical(1))
  if (all(own)) "own" else "shared"
}

inside <- function(path, container) {
  path <- normalizePath(path, mustWork = FALSE)
  container <- normalizePath(container, mustWork = FALSE)
  path == container || startsWith(path, paste0(container, "/"))
}

listing <- function(names, limit = 3) {
  more <- if (length(names) > limit) sprintf(" and %d more", length(names) - limit) else ""
  paste0(paste(utils::head(names, limit), collapse = ", "), more)
}

# Refusals, all before any work: a file where DIR is wanted, the input inside what would be
# replaced, other files in DIR without --force, and (with the produced entries known) a
# foreign file of the same name as one of them.
check_output <- function(outdir, force, input, produces = character(0)) {
  link <- Sys.readlink(outdir)   # "" for no link, NA where nothing exists
  if (!is.na(link) && nzchar(link))
    .etio_input_error("--out ", outdir, " is a symbolic link (to ", link, "); etio writes through no ",
                      "link it did not create: give the directory itself, or a new one")
  path <- outdir
  repeat {
    if (file.exists(path)) {
      if (!dir.exists(path)) .etio_input_error("--out ", outdir, ": ", path, " is a file, not a directory")
      break
    }
    if (dirname(path) == path) break
    path <- dirname(path)
  }
  mode <- output_mode(outdir)
  if (mode == "own" && inside(input, outdir))
    .etio_input_error("input ", input, " is inside --out ", outdir, ", which would be replaced; choose another --out")
  if (mode == "shared") {
    owner <- read_marker(outdir)
    foreign <- setdiff(entries_of(outdir), names(owner))
    if (!force) {
      what <- if (length(foreign)) sprintf("holds files etio did not write (%s)", listing(foreign))
              else "holds the output of another command"
      .etio_input_error("--out ", outdir, " is not empty and ", what, "; choose a new or empty directory, ",
                        "or add --force to write the graphs beside them")
    }
    clash <- intersect(produces, foreign)
    if (length(clash))
      .etio_input_error("--out ", outdir, ": ", listing(clash), " exists and was not written by etio; ",
                        "--force replaces only etio's own outputs (move it away first)")
  }
  mode
}

# DIR absent, or made by etio and wholly `learn`'s: rename the staging directory into its place.
swap_in <- function(staging, outdir) {
  backup <- NULL
  if (file.exists(outdir)) {
    backup <- file.path(dirname(outdir), sprintf(".%s.old-%d", basename(outdir), Sys.getpid()))
    if (!file.rename(outdir, backup)) stop("cannot move the existing ", outdir, " aside")
  }
  if (!file.rename(staging, outdir)) {
    if (!is.null(backup)) file.rename(backup, outdir)
    stop("cannot rename ", staging, " to ", outdir)
  }
  if (!is.null(backup)) unlink(backup, recursive = TRUE)
}

# --force into a directory with other files: move each produced entry in, drop `learn`'s
# stale entries (a graph of an earlier run that this one did not learn), touch nothing else.
install_beside <- function(staging, outdir, produced, input) {
  owner <- read_marker(outdir)
  stale <- names(owner)[vapply(names(owner), function(name) identical(owner[[name]], COMMAND), logical(1))]
  stale <- setdiff(stale[file.exists(file.path(outdir, stale))], produced)
  for (name in c(produced, stale)) {
    if (file.exists(file.path(outdir, name)) && inside(input, file.path(outdir, name)))
      .etio_input_error("input ", input, " is ", file.path(outdir, name), ", which learn_graphs.R would replace; ",
                        "choose another --out")
  }
  for (name in produced) {
    target <- file.path(outdir, name)
    if (dir.exists(target)) unlink(target, recursive = TRUE)
    if (!file.rename(file.path(staging, name), target)) stop("cannot move ", name, " into ", outdir)
    owner[[name]] <- COMMAND
  }
  for (name in stale) {
    unlink(file.path(outdir, name), recursive = TRUE)
    owner[[name]] <- NULL
  }
  write_marker(outdir, owner[file.exists(file.path(outdir, names(owner)))], created = created_by_etio(outdir))
  unlink(staging, recursive = TRUE)
}

provenance <- function(opts, traces, graphs, backend, started, skipped) {
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
    structure_learning = etio_backend_info(),
    seeds = list(`R set.seed before each graph` = opts$seed),
    config = list(weight_decay = opts$weight_decay, method = opts$method, replicates = opts$replicates, runs = opts$runs,
                  workers = opts$workers,
                  k = 3L, losses = unique(vapply(graphs, `[[`, "", "loss")),
                  attacks = ETIO_OUTCOMES[ETIO_OUTCOMES %in% vapply(graphs, `[[`, "", "attack")],
                  blacklist_whitelist = "authors' domain knowledge (r/etio.R etio_constraints)"),
    input = list(path = input, md5 = unname(tools::md5sum(input))),
    graphs = lapply(graphs, function(g) list(name = g$name, rows = g$rows, arcs = nrow(g$arcs),
                                             threshold = g$threshold, predcor = g$predcor, mse = g$mse)),
    skipped = skipped
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
    outdir <- sub("/+$", "", opts$out)
    check_output(outdir, opts$force, traces)
    backend <- etio_backend()
    note <- etio_backend_info()$note
    if (nzchar(note)) message("warning: ", note)
    table <- etio_read_traces(traces)
    pairs <- etio_pairs(table, opts$weight_decay, split_list(opts$losses), split_list(opts$attacks))
    skipped <- attr(pairs, "skipped")
    for (item in skipped) message(sprintf("%s not learned: %s", item$name, item$reason))
    parent <- dirname(outdir)
    dir.create(parent, recursive = TRUE, showWarnings = FALSE)
    staging <- file.path(parent, sprintf(".%s.partial-%d", basename(outdir), Sys.getpid()))
    if (file.exists(staging)) stop("a staging directory of this process already exists: ", staging)
    if (!dir.create(staging)) stop("cannot create ", staging)
    progress <- function(graph, done, total) {
      message(sprintf("[%d/%d] %s learned (%.1f s)", done, total, graph$name,
                      as.numeric(difftime(Sys.time(), started, units = "secs"))))
    }
    graphs <- etio_learn_all(table, staging, opts$weight_decay, method = opts$method, R = opts$replicates,
                             runs = opts$runs, seed = opts$seed, pairs = pairs, on_graph = progress,
                             workers = opts$workers)
    jsonlite::write_json(provenance(opts, traces, graphs, backend, started, skipped),
                         file.path(staging, etio_layout_name("learn_provenance")),
                         auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
    produced <- entries_of(staging)
    mode <- check_output(outdir, opts$force, traces, produces = produced)
    if (!file.exists(outdir) || (mode == "own" && created_by_etio(outdir))) {
      write_marker(staging, stats::setNames(as.list(rep(COMMAND, length(produced))), produced), created = TRUE)
      swap_in(staging, outdir)
    } else {
      install_beside(staging, outdir, produced, traces)
    }
    message(sprintf("%d graphs written to %s (backend %s, results as %s)", length(graphs), outdir, backend,
                    ETIO_RESULTS_FOLLOW))
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
