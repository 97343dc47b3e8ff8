#!/usr/bin/env bash
# Make R ready for etio: install R from Debian when Rscript is missing, graphviz for the
# graph figures, and try bnlearn from CRAN. A failed bnlearn install is reported, not fatal:
# r/compat/bnlearn.R (the bnlearn-compatible implementation) is used instead.
set -euo pipefail

need_apt=()
command -v Rscript >/dev/null 2>&1 || need_apt+=(r-base-core r-base-dev)
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v Rscript >/dev/null 2>&1; then
      echo "etio setup: R is missing. Install it as root: apt-get install ${need_apt[*]}" >&2
      exit 1
    fi
    echo "etio setup: graphviz is missing (figures fall back to matplotlib); as root: apt-get install graphviz" >&2
  else
    echo "etio setup: installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
fi

Rscript --vanilla -e '
if (requireNamespace("bnlearn", quietly = TRUE)) {
  cat("etio setup: bnlearn", as.character(packageVersion("bnlearn")), "is installed and will be used\n")
} else {
  lib <- Sys.getenv("R_LIBS_USER")
  dir.create(lib, recursive = TRUE, showWarnings = FALSE)
  .libPaths(c(lib, .libPaths()))
  ok <- tryCatch({
    suppressWarnings(install.packages("bnlearn", repos = "https://cloud.r-project.org", lib = lib, quiet = TRUE))
    requireNamespace("bnlearn", quietly = TRUE)
  }, error = function(e) FALSE)
  if (isTRUE(ok)) {
    cat("etio setup: installed bnlearn", as.character(packageVersion("bnlearn")), "\n")
  } else {
    cat("etio setup: bnlearn could not be installed from CRAN; using the bnlearn-compatible implementation in r/compat/\n")
  }
}'
