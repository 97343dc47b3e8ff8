#!/usr/bin/env bash
# Make the real datasets that Debian packages ready for etio: Fashion-MNIST (dataset-fashion-mnist,
# 30 MB: the gzip idx files under /usr/share/datasets/fashion-mnist/, read in place by etio).
# As root it installs what is missing with apt-get; otherwise it says what to install and goes on
# (the fashion-mnist studies and their tests need it, nothing else does).
set -euo pipefail

FASHION_DIR=/usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

have_fashion() {
  local f
  for f in "${files[@]}"; do [ -f "$FASHION_DIR/$f" ] || return 1; done
}

if have_fashion; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "etio setup: Fashion-MNIST is missing from $FASHION_DIR; as root: apt-get install dataset-fashion-mnist" \
       "(only the fashion-mnist studies and their tests need it)" >&2
  exit 0
fi
echo "etio setup: installing dataset-fashion-mnist (Fashion-MNIST, 30 MB) with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
}
have_fashion || { echo "etio setup: dataset-fashion-mnist is installed but $FASHION_DIR lacks ${files[*]}" >&2; exit 1; }
