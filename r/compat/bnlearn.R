# bnlearn-compatible implementation of the bnlearn 4.7 functions etio calls.
#
#   source("r/compat/bnlearn.R", chdir = TRUE)
#
# defines hc, score, bn.fit, boot.strength, custom.strength, averaged.network,
# inclusion.threshold, bn.cv, loss, ci.test, tiers2blacklist, arcs, nodes, directed, write.dot
# with bnlearn's argument names and return shapes (classes and attributes) for those uses,
# and registers the S3 methods bnlearn registers for them (print, coef, as.character), so
# the objects print and dispatch as bnlearn's do from any environment. It is used only when
# bnlearn itself is not installed (r/etio.R decides), and every output of etio names it.
# Same R random-number calls as bnlearn, so a seed gives bnlearn's resamples.
.etio_compat_backend <- "bnlearn-compat 4.7 (etio r/compat)"
for (.f in c("graph.R", "hc.R", "fit.R", "citest.R", "strength.R", "cv.R", "dot.R", "print.R")) {
  if (file.exists(.f)) sys.source(.f, envir = environment())
}
rm(.f)

as.character.bn <- function(x, ...) modelstring(x)

# generic, class: bnlearn 4.7 registers these methods (its NAMESPACE) for the classes built here.
.compat_s3_methods <- list(
  c("print", "bn"), c("print", "bn.fit"), c("print", "bn.fit.gnode"), c("print", "bn.kcv"),
  c("print", "bn.kcv.list"), c("coef", "bn.fit"), c("coef", "bn.fit.gnode"), c("as.character", "bn")
)
for (.m in .compat_s3_methods)
  registerS3method(.m[1], .m[2], get(paste(.m, collapse = "."), envir = environment()), envir = environment())
rm(.m)
