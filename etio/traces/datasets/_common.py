"""What every dataset family shares: the normalisation of the test transform, the idx reader, the
writing of generated files, the torchvision download command, the disjoint-split scheme of the trace
generation (paper §5.1) and the CIFAR training augmentation."""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

from etio.traces.datasets._registry import DatasetInfo


def normalize(x, info: DatasetInfo):
    """``(x - mean) / std`` per channel of ``info``: ``x`` is ``[n, features]`` (one channel) or ``[n, C, H, W]``."""
    import torch

    mean = torch.tensor(info.mean, dtype=torch.float32)
    std = torch.tensor(info.std, dtype=torch.float32)
    if x.dim() == 2:                      # flat digits vectors: one channel
        return (x - mean) / std
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def read_idx(path: Path, dims: int, item_shape: tuple[int, ...] = ()) -> tuple[np.ndarray, str]:
    """The uint8 array of the idx file ``path`` (gzip when its name ends in ``.gz``) and the file's SHA-256.

    The idx format (MNIST's): two zero bytes, the type byte (0x08: unsigned bytes), the number of
    dimensions, each dimension's size as a big-endian uint32, then the values. The file must have
    ``dims`` dimensions, items of ``item_shape`` (the sizes after the first) and exactly the values
    its header announces; otherwise ValueError says what is wrong, as a phrase that follows the file's name.
    """
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:   # truncated stream, bad header or CRC
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"is not a valid gzip file ({reason})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise ValueError("is not an idx file (it does not start with two zero bytes)")
    if raw[2] != 0x08:
        raise ValueError(f"holds idx values of type 0x{raw[2]:02x}, expected 0x08 (unsigned bytes)")
    if raw[3] != dims:
        raise ValueError(f"has {raw[3]} dimensions, expected {dims}")
    head = 4 + 4 * dims
    if len(raw) < head:
        raise ValueError(f"ends inside its header ({len(raw)} bytes)")
    shape = struct.unpack(f">{dims}I", raw[4:head])
    if tuple(shape[1:]) != tuple(item_shape):
        raise ValueError(f"holds items of shape {tuple(shape[1:])}, expected {tuple(item_shape)}")
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - head != expected:
        raise ValueError(f"holds {len(raw) - head} values, its header announces {expected} ({' x '.join(map(str, shape))})")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(shape).copy(), digest


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then renamed)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def torchvision_download(class_name: str, data_dir: Path) -> str:
    """The command that downloads torchvision's dataset ``class_name`` into ``data_dir``."""
    return (f"python -c \"import torchvision as tv; [tv.datasets.{class_name}('{data_dir}', train=t, download=True) "
            f"for t in (True, False)]\" (on a machine with network access), then pass --data-dir {data_dir}")


def disjoint_split(pool_size: int, set_size: int, n_repeats: int, seed: int) -> np.ndarray:
    """The authors' ``disjoint_split``: ``n_repeats`` shuffles of the pool, each cut into
    ``pool_size // set_size`` consecutive disjoint subsets of ``set_size`` points.

    Returns int64 ``[n_repeats · n, set_size]``; row ``k-1`` is the training subset of model id
    ``k``. Same random stream as ``np.random.seed(seed); np.random.shuffle(arange)`` per repeat.
    """
    rs = np.random.RandomState(seed)
    n = pool_size // set_size
    chunks = []
    for _ in range(n_repeats):
        idx = np.arange(pool_size)
        rs.shuffle(idx)
        chunks.append(idx[: n * set_size].reshape(n, set_size))
    return np.concatenate(chunks).astype(np.int64)


def augment_batch(x, crops, flips, info: DatasetInfo):
    """CIFAR training augmentation on normalized tensors ``x [..., C, H, W]``.

    ``crops`` (int64 ``[..., 2]``, values in 0..8) are the top-left corners of the 32×32 crop in
    the image zero-padded by 4 pixels (zero *before* normalisation, as torchvision pads the PIL
    image); ``flips`` (bool ``[...]``) mirror horizontally.
    """
    import torch

    lead = x.shape[:-3]
    c, h, w = x.shape[-3:]
    fill = torch.tensor([-m / s for m, s in zip(info.mean, info.std)], dtype=x.dtype, device=x.device)
    padded = fill.view(c, 1, 1).expand(*lead, c, h + 8, w + 8).clone()
    padded[..., 4:4 + h, 4:4 + w] = x
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = (crops[..., 0:1] + ar_h)                     # [..., h]
    cols = (crops[..., 1:2] + ar_w)                     # [..., w]
    out = padded.gather(-2, rows[..., None, :, None].expand(*lead, c, h, w + 8))
    out = out.gather(-1, cols[..., None, None, :].expand(*lead, c, h, w))
    return torch.where(flips[..., None, None, None], out.flip(-1), out)
