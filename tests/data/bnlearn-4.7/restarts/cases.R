# The random-restart cases of hc: case(i) gives the data, hc's arguments other than the data, and the seed
# set just before hc is called. The same function produced hc_restarts.csv with bnlearn 4.7 (R 4.2.2)
# and drives the check in tests/r/test_compat_core.R.
restart_case <- function(i) {
  n <- if (i %% 5 == 0) 4 + i %% 3 else 25 + (7 * i) %% 60   # every fifth case: fewer rows than needed
  v <- 5 + i %% 4                                              # for some parent sets (scores of -Inf)
  set.seed(i)
  m <- matrix(rnorm(n * v), n, v)
  for (j in 2:v) m[, j] <- m[, j] + (i %% 3) * 0.5 * m[, j - 1]
  data <- as.data.frame(m)
  names(data) <- LETTERS[1:v]
  args <- list(restart = 1 + i %% 5, perturb = 1 + i %% 4, max.iter = 60)
  if (i %% 4 == 1) args$blacklist <- cbind(from = names(data)[2:3], to = names(data)[c(1, 1)])
  if (i %% 6 == 2) args$whitelist <- cbind(from = names(data)[1], to = names(data)[v])
  if (i %% 7 == 3) args$maxp <- 2
  if (i %% 8 == 4) args$optimized <- FALSE
  if (i %% 9 == 5) args$max.iter <- 6
  list(data = data, args = args, seed = 1000 + i)
}

restart_arcs <- function(i, hc) {
  case <- restart_case(i)
  set.seed(case$seed)
  fit <- do.call(hc, c(list(x = case$data), case$args))
  paste(apply(fit$arcs, 1, paste, collapse = ">"), collapse = " ")
}
