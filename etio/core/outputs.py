"""Output safety: a command writes only where it may, and replaces only what etio wrote.

An output directory carries a marker file (:data:`MARKER`) that lists each top-level entry
etio put there and the command that wrote it. A command may write ``--out DIR`` when DIR

* does not exist or is empty: the output is built aside and renamed into place;
* holds only entries the same command wrote earlier (its marker says so): the old output is
  replaced as a whole;
* otherwise only with ``force``: the new entries are moved in one by one beside what is
  there; an entry of the same name is replaced only if etio wrote it (it is in the marker),
  the same command's stale entries are removed, and nothing else is touched.

An input of the command may never be inside what is replaced or removed, and the output may
never be an input or lie inside an input directory (paths compared with links resolved). An
existing file where a directory is wanted is an error (never renamed); ``--out`` that is a
symbolic link is refused (etio writes through no link it did not create). A directory etio
did not create (an empty one the user made, or one holding their files) is never renamed
over: the outputs are moved into it, so its owner and mode stay; only a directory etio
created itself (its marker says so) is replaced as a whole. Every refusal happens before any
work. A single output file (``--out FILE.csv``) is etio's when its provenance record
``FILE.csv.provenance.json`` names the same command; any other existing file is replaced
only with ``force``, and never when it is one of the command's inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from etio.core.errors import EtioInputError, file_error

#: The marker file of an output directory written by etio.
MARKER = ".etio-output.json"
MARKER_FORMAT = "etio-output"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_marker(directory: Path) -> dict[str, str]:
    """``entry name -> command`` of the entries etio wrote into ``directory`` ({} if none)."""
    try:
        data = json.loads((Path(directory) / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT or not isinstance(data.get("entries"), dict):
        return {}
    return {str(k): str(v) for k, v in data["entries"].items()}


def created_by_etio(directory: Path) -> bool:
    """Whether etio created ``directory`` itself (renamed its staging into place), per its marker."""
    try:
        return json.loads((Path(directory) / MARKER).read_text()).get("created") is True
    except (OSError, ValueError, AttributeError):
        return False


def _write_marker(directory: Path, entries: dict[str, str], created: bool = False) -> None:
    from etio.core.provenance import atomic_write_text

    record = {"format": MARKER_FORMAT, "entries": dict(sorted(entries.items()))}
    if created:
        record["created"] = True
    atomic_write_text(Path(directory) / MARKER, json.dumps(record, indent=2) + "\n")


def _inside(path: Path, container: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(container).resolve())
        return True
    except ValueError:
        return False


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != MARKER)


def _listing(names: Iterable[str], limit: int = 3) -> str:
    names = list(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _mode(out: Path, command: str) -> str:
    """'new' (absent or empty), 'own' (only this command's entries) or 'shared' (anything else)."""
    if not out.exists():
        return "new"
    entries = _entries(out)
    if not entries:
        return "new"
    owner = read_marker(out)
    return "own" if all(owner.get(name) == command for name in entries) else "shared"


def check_not_input(out: Path, command: str, inputs: Iterable[Path]) -> None:
    """Raise unless ``out`` is a path ``command`` may write: not a symbolic link, not one of its
    inputs and not inside an input directory (links resolved on both sides)."""
    out = Path(out)
    if out.is_symlink():
        raise EtioInputError(f"--out {out} is a symbolic link (to {os.readlink(out)}); etio writes through no link "
                             f"it did not create: give the target itself as --out")
    target = out.resolve()
    for path in inputs:
        if path is None:
            continue
        source = Path(path).resolve()
        if target == source:
            raise EtioInputError(f"--out {out} is an input of `etio {command}`; choose another --out")
        if Path(path).is_dir() and _inside(target, source):
            raise EtioInputError(f"--out {out} is inside {path}, an input of `etio {command}`; "
                                 f"choose another --out")


def check_directory_path(out: Path) -> None:
    """Raise unless ``out`` can be a directory: no file stands at it or at the nearest existing parent."""
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise EtioInputError(f"--out {out}: {parent} is a file, not a directory")
        if parent.exists():
            break


def check_output_dir(out: Path, command: str, *, force: bool = False, inputs: Iterable[Path] = (),
                     produces: Iterable[str] = ()) -> None:
    """Raise :class:`EtioInputError` unless ``command`` may write the directory ``out``.

    ``produces`` names top-level entries the command is known to write (checked against
    foreign files of the same name when ``force`` writes beside them).
    """
    out = Path(out)
    inputs = [Path(p) for p in inputs if p is not None]
    check_not_input(out, command, inputs)
    check_directory_path(out)
    mode = _mode(out, command)
    if mode == "own":
        for path in inputs:
            if _inside(path, out):
                raise EtioInputError(f"input {path} is inside --out {out}, which would be replaced; "
                                     f"choose another --out")
        return
    if mode == "shared":
        owner = read_marker(out)
        foreign = [name for name in _entries(out) if name not in owner]
        if not force:
            what = (f"holds files etio did not write ({_listing(foreign)})" if foreign
                    else "holds the output of another command")
            raise EtioInputError(f"--out {out} is not empty and {what}; choose a new or empty directory, "
                                 f"or add --force to write `etio {command}`'s outputs beside them")
        clash = [name for name in produces if name in foreign]
        if clash:
            raise EtioInputError(f"--out {out}: {_listing(clash)} exists and was not written by etio; "
                                 f"--force replaces only etio's own outputs (move it away first)")


@contextlib.contextmanager
def output_dir(out: Path, command: str, *, force: bool = False, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield a staging directory; when the block succeeds its entries become ``out``'s.

    On any exception the staging directory is removed and ``out`` is left as it was. The rules
    are those of :func:`check_output_dir`, checked before the block runs and again (with
    the produced entries) before anything is moved.
    """
    out = Path(out)
    inputs = [Path(p) for p in inputs if p is not None]
    check_output_dir(out, command, force=force, inputs=inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes the directory private; results are for sharing
    except OSError as exc:
        raise file_error(out, exc) from None
    try:
        yield staging
        produced = _entries(staging)
        check_output_dir(out, command, force=force, inputs=inputs, produces=produced)
        if not out.exists() or (_mode(out, command) == "own" and created_by_etio(out)):
            _write_marker(staging, {name: command for name in produced}, created=True)
            _swap(staging, out)
        else:   # a directory etio did not create: its entries change, never the directory itself
            _install_beside(staging, out, command, produced, inputs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap(staging: Path, out: Path) -> None:
    """Replace ``out`` (absent, empty or wholly this command's) by ``staging`` with renames."""
    backup = None
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, backup)
    try:
        os.replace(staging, out)
    except BaseException:
        if backup is not None:
            os.replace(backup, out)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def _install_beside(staging: Path, out: Path, command: str, produced: list[str], inputs: list[Path]) -> None:
    """Move the produced entries into a directory that holds other files (``--force``)."""
    owner = read_marker(out)
    stale = [name for name, cmd in owner.items() if cmd == command and name not in produced and (out / name).exists()]
    for name in produced + stale:
        for path in inputs:
            if (out / name).exists() and _inside(path, out / name):
                raise EtioInputError(f"input {path} is {out / name}, which `etio {command}` would replace; "
                                     f"choose another --out")
    # The replaced entries are set aside first and restored if a move fails (a full disk, a
    # read-only directory), so the directory holds the old outputs or the new ones, not a mix.
    aside: list[tuple[Path, Path]] = []
    moved: list[Path] = []
    try:
        for name in produced + stale:
            target = out / name
            if target.exists() or target.is_symlink():
                backup = out / f".{name}.old-{os.getpid()}"
                os.replace(target, backup)
                aside.append((backup, target))
        for name in produced:
            os.replace(staging / name, out / name)
            moved.append(out / name)
            owner[name] = command
        for name in stale:
            owner.pop(name, None)
        created = created_by_etio(out)
        _write_marker(out, {name: cmd for name, cmd in owner.items() if (out / name).exists()}, created=created)
    except BaseException as exc:
        for path in moved:
            _remove(path)
        for backup, target in reversed(aside):
            os.replace(backup, target)
        if isinstance(exc, OSError):
            raise file_error(out, exc) from None
        raise
    for backup, _ in aside:
        _remove(backup)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def claim_output_dir(out: Path, command: str, *, force: bool = False, inputs: Iterable[Path] = (),
                     produces: Iterable[str] = ()) -> Path:
    """For commands that fill ``out`` in place over a long run (``etio reproduce``): check it as
    :func:`check_output_dir` does, then record ``produces`` as this command's entries."""
    out = Path(out)
    produces = list(produces)
    check_output_dir(out, command, force=force, inputs=inputs, produces=produces)
    created = not out.exists() or created_by_etio(out)
    out.mkdir(parents=True, exist_ok=True)
    owner = read_marker(out)
    owner.update({name: command for name in produces})
    _write_marker(out, owner, created=created)
    return out


def check_output_file(out: Path, command: str, *, force: bool = False, inputs: Iterable[Path] = ()) -> None:
    """Raise :class:`EtioInputError` unless ``command`` may write the file ``out``."""
    out = Path(out)
    check_not_input(out, command, inputs)
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise EtioInputError(f"--out {out}: {parent} is a file, not a directory")
        if parent.exists():
            break
    if out.is_dir():
        raise EtioInputError(f"--out {out} is a directory; `etio {command}` writes a file (e.g. {out}/{command}.csv)")
    if out.exists() and not force:
        if _file_owner(out) != command:
            raise EtioInputError(f"--out {out} exists and was not written by `etio {command}`; "
                                 f"choose another --out, or add --force to replace it")


def provenance_path(out: Path) -> Path:
    """The provenance record written beside a single output file."""
    out = Path(out)
    return out.with_name(out.name + ".provenance.json")


def _file_owner(out: Path) -> str | None:
    try:
        return json.loads(provenance_path(out).read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        return None


def write_output_file(out: Path, text: str, command: str, record: dict, *, force: bool = False,
                      inputs: Iterable[Path] = ()) -> None:
    """Write a command's single output file and its provenance record (checked first)."""
    from etio.core.provenance import atomic_write_text, write_json

    check_output_file(out, command, force=force, inputs=inputs)
    atomic_write_text(Path(out), text)
    write_json(provenance_path(out), {**record, "stage": command})
