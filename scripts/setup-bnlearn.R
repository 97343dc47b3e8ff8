# Set-up of bnlearn for etio (run by scripts/setup-r.sh, from `make setup`):
#   Rscript --vanilla scripts/setup-bnlearn.R
# bnlearn: the paper used 4.7. On R < 4.5, 4.7.1 (4.7 with compile fixes) is installed from CRAN's
# archive; 4.7.1 does not compile on R >= 4.5, where the current release is installed instead.
# etio calls every bnlearn from 4.7 to 5.2.x so that it gives 4.7's results (r/backend.R), and
# learns with r/compat/ (4.7's results) when none of those can be had. A bnlearn already
# installed is left as it is: the user chose it.
pinned <- "4.7.1"
say <- function(...) cat("etio setup: ", ..., "\n", sep = "")
repo <- local({
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  normalizePath(file.path(dirname(script[1]), ".."))
})
# Which backend etio will learn with, by etio's own rule (r/backend.R).
path <- function() {
  e <- new.env()
  e$.etio_r_dir <- file.path(repo, "r")
  sys.source(file.path(repo, "r", "backend.R"), envir = e)
  probe <- e$.etio_probe_bnlearn()
  policy <- e$.etio_backend_policy(probe$version, probe$load_error)
  if (policy$use == "bnlearn") paste0("bnlearn ", probe$version, " called as 4.7 was (4.7's results)")
  else if (is.na(policy$note)) "r/compat/ (bnlearn 4.7's results)"
  else paste0("r/compat/: ", policy$note)
}
installed <- nzchar(system.file(package = "bnlearn"))
if (installed) {
  say("bnlearn ", as.character(packageVersion("bnlearn")), " is installed and left as it is; etio learns with ", path())
} else {
  lib <- Sys.getenv("R_LIBS_USER")
  dir.create(lib, recursive = TRUE, showWarnings = FALSE)
  .libPaths(c(lib, .libPaths()))
  modern_r <- getRversion() >= "4.5.0"
  ok <- tryCatch({
    if (modern_r) {
      say("bnlearn ", pinned, " does not compile on R ", as.character(getRversion()), " (R >= 4.5); trying the current release")
      suppressWarnings(install.packages("bnlearn", repos = "https://cloud.r-project.org", lib = lib, quiet = TRUE))
    } else {
      archive <- sprintf("https://cloud.r-project.org/src/contrib/Archive/bnlearn/bnlearn_%s.tar.gz", pinned)
      tarball <- file.path(tempdir(), basename(archive))
      if (suppressWarnings(utils::download.file(archive, tarball, quiet = TRUE)) == 0)
        suppressWarnings(install.packages(tarball, repos = NULL, type = "source", lib = lib, quiet = TRUE))
    }
    requireNamespace("bnlearn", quietly = TRUE)
  }, error = function(e) FALSE)
  if (isTRUE(ok)) {
    say("installed bnlearn ", as.character(packageVersion("bnlearn")), "; etio learns with ", path())
  } else {
    say("bnlearn could not be installed from CRAN; etio learns with ", path())
  }
}
