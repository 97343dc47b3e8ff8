# bnlearn-compatible implementation of the bnlearn 4.7 functions etio calls.
#
#   source("r/compat/bnlearn.R", chdir = TRUE)
#
# defines hc, score, bn.fit, boot.strength, custom.strength, averaged.network,
# inclusion.threshold, bn.cv, ci.test, tiers2blacklist, arcs, nodes, directed, write.dot
# with bnlearn's argument names and return shapes for those uses. It is used only when
# bnlearn itself is not installed (r/etio.R decides), and every output of etio names it.
# Same R random-number calls as bnlearn, so a seed gives bnlearn's resamples.
.etio_compat_backend <- "bnlearn-compat 4.7 (etio r/compat)"
for (.f in c("graph.R", "hc.R", "fit.R", "citest.R", "strength.R", "cv.R", "dot.R")) {
  if (file.exists(.f)) sys.source(.f, envir = environment())
}
rm(.f)
