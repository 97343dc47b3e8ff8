#!/usr/bin/env bash
# Make R ready for etio: install R from Debian when Rscript is missing, graphviz for the
# graph figures, optparse and jsonlite (r/learn_graphs.R's options and provenance record),
# pdflatex (texlive; ~20 s) for the tests that compile the .tex tables, and try bnlearn from
# CRAN: 4.7.1, the paper's 4.7 with compile fixes, on R < 4.5 (below). A failed bnlearn install
# is reported, not fatal: r/compat/bnlearn.R (the bnlearn-compatible implementation) is used instead.
set -euo pipefail

r_has() { command -v Rscript >/dev/null 2>&1 && Rscript --vanilla -e "quit(status = !requireNamespace('$1', quietly = TRUE))" >/dev/null 2>&1; }

need_apt=()
command -v Rscript >/dev/null 2>&1 || need_apt+=(r-base-core r-base-dev)
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
r_has optparse || need_apt+=(r-cran-optparse)
r_has jsonlite || need_apt+=(r-cran-jsonlite)
command -v pdflatex >/dev/null 2>&1 || need_apt+=(texlive-latex-base texlive-latex-recommended)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v Rscript >/dev/null 2>&1; then
      echo "etio setup: R is missing. Install it as root: apt-get install ${need_apt[*]}" >&2
      exit 1
    fi
    echo "etio setup: not root, so not installing: ${need_apt[*]} (graphviz is optional: figures fall back to" \
         "matplotlib; texlive is optional: the pdflatex tests are skipped; the R packages optparse and" \
         "jsonlite are tried from CRAN below)" >&2
  else
    echo "etio setup: installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
fi

Rscript --vanilla -e '
lib <- Sys.getenv("R_LIBS_USER")
for (needed in c("optparse", "jsonlite")) {
  if (!requireNamespace(needed, quietly = TRUE)) {
    dir.create(lib, recursive = TRUE, showWarnings = FALSE)
    .libPaths(c(lib, .libPaths()))
    suppressWarnings(install.packages(needed, repos = "https://cloud.r-project.org", lib = lib, quiet = TRUE))
    if (!requireNamespace(needed, quietly = TRUE)) {
      cat("etio setup: R package", needed, "is missing (r/learn_graphs.R needs it); as root: apt-get install r-cran-",
          needed, "\n", sep = "")
      quit(status = 1)
    }
  }
}
'
Rscript --vanilla "$(dirname "$0")/setup-bnlearn.R"
