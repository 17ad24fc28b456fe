"""Writes the remote-code fetch list of every entry code file, from `remote_code_tvlt.CODE_FILES` (the rule is in
remote_code_tvlt.py's docstring).

    python scripts/fetch_lists.py          # after adding a code file to CODE_FILES or an import between code files
    python scripts/fetch_lists.py --check  # exit status 1 naming the stale files; tests/test_remote_code.py checks it

A fetch list is the block at the bottom of an entry file that names, under `if TYPE_CHECKING:`, the code files the
file does not import itself; non-entry files get none. Only the standard library is used.
"""

import argparse
import ast
import functools
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
HEADER = "# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit."
_GUARD = "if TYPE_CHECKING:"


def code_file_lists(root: Path = ROOT) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`(CODE_FILES, ENTRY_CODE_FILES)` as remote_code_tvlt.py under `root` states them (read, not imported)."""
    tree = _parse((root / "remote_code_tvlt.py").read_text(encoding="utf-8"))
    return tuple(_assigned(tree, name) for name in ("CODE_FILES", "ENTRY_CODE_FILES"))


@functools.lru_cache(maxsize=64)
def _parse(source: str) -> ast.Module:
    # each file is read several times per run (its own list, and its name in the others' lists)
    return ast.parse(source)


def _assignment(tree: ast.Module, name: str) -> ast.Assign | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == name for target in node.targets):
            return node
    return None


def _assigned(tree: ast.Module, name: str):
    node = _assignment(tree, name)
    return ast.literal_eval(node.value) if node else None


def split_fetch_list(source: str) -> tuple[str, str, str]:
    """`(before, fetch list, after)`; the fetch list is empty when the file has none."""
    lines = source.splitlines(keepends=True)
    if HEADER + "\n" not in lines:
        return source, "", ""
    start = lines.index(HEADER + "\n")
    end = start + 1
    if end < len(lines) and lines[end].rstrip("\n") == _GUARD:
        end += 1
        while end < len(lines) and lines[end].startswith("    "):
            end += 1
    return "".join(lines[:start]), "".join(lines[start:end]), "".join(lines[end:])


def imported_code_modules(source: str) -> set[str]:
    """The modules a source imports relatively (`from .x import`), anywhere in it, outside its fetch list."""
    before, _, after = split_fetch_list(source)
    return {
        node.module
        for node in ast.walk(_parse(before + after))
        if isinstance(node, ast.ImportFrom) and node.level == 1
    }


def _public_name(path: Path) -> str:
    # what the fetch list imports from a file: its first `Tvlt` name in `__all__`, else the first name there
    names = _assigned(_parse(path.read_text(encoding="utf-8")), "__all__")
    if not names:
        raise ValueError(f"{path.name} has no __all__ to name it by")
    return next((name for name in names if name.startswith("Tvlt")), names[0])


def fetch_list(name: str, root: Path = ROOT) -> str:
    """The fetch list `name` should carry ("" for a non-entry file, or one that imports every code file itself)."""
    code_files, entry_code_files = code_file_lists(root)
    if name not in entry_code_files:
        return ""
    imported = imported_code_modules((root / name).read_text(encoding="utf-8"))
    # sorted by module, as isort orders import lines
    missing = sorted(other for other in code_files if other != name and other[:-3] not in imported)
    if not missing:
        return ""
    imports = [f"    from .{other[:-3]} import {_public_name(root / other)}  # noqa: F401\n" for other in missing]
    return "".join([HEADER + "\n", _GUARD + "\n", *imports])


def updated_source(name: str, root: Path = ROOT) -> str:
    """The source of code file `name` with its fetch list as `fetch_list` gives it."""
    source = (root / name).read_text(encoding="utf-8")
    block = fetch_list(name, root)
    before, current, after = split_fetch_list(source)
    if current:
        if block:
            return before + block + after
        # drop the block and the blank lines that set it apart
        return before.rstrip("\n") + ("\n\n\n" + after.lstrip("\n") if after.strip() else "\n")
    if not block:
        return source
    # a new fetch list goes before the module's `__all__`, or at the end
    lines = source.splitlines(keepends=True)
    all_names = _assignment(_parse(source), "__all__")
    tail = all_names.lineno - 1 if all_names else len(lines)
    head, rest = "".join(lines[:tail]).rstrip("\n"), "".join(lines[tail:])
    return head + "\n\n\n" + block + ("\n\n" + rest if rest else "")


def problems(root: Path = ROOT) -> list[str]:
    """One line per code file whose fetch list is stale, or that lacks the `TYPE_CHECKING` import its list needs."""
    found = []
    for name in code_file_lists(root)[0]:
        source = (root / name).read_text(encoding="utf-8")
        if updated_source(name, root) != source:
            found.append(f"{name}: fetch list out of date (run `python scripts/fetch_lists.py`)")
        if fetch_list(name, root) and "from typing import TYPE_CHECKING" not in source:
            found.append(f"{name}: its fetch list needs `from typing import TYPE_CHECKING` among its imports")
    return found


def write(root: Path = ROOT) -> list[str]:
    """Bring every code file's fetch list up to date; return the names of the files rewritten."""
    written = []
    for name in code_file_lists(root)[0]:
        source = updated_source(name, root)
        if source != (root / name).read_text(encoding="utf-8"):
            (root / name).write_text(source, encoding="utf-8")
            written.append(name)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale fetch lists (exit status 1)")
    args = parser.parse_args(argv)
    if not args.check:
        for name in write():
            print(f"wrote {name}")
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
