"""Ties the locks to what they were made from: the dependency tables of pyproject.toml and constraints.txt.

``--stamp LOCK...`` writes their digest into each lock (``make lock``); ``--check LOCK...`` fails, saying to
run ``make lock``, when a lock was made from other inputs (``make test``, hence CI).
"""

import hashlib
import json
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
STAMP = "# inputs-sha256: "


def inputs_digest() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "constraints.txt": (ROOT / "constraints.txt").read_text(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def stamp(lock: Path, digest: str) -> None:
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(STAMP)]
    header = next(index for index, line in enumerate(lines) if not line.startswith("#"))  # uv's comment block
    lock.write_text("\n".join([*lines[:header], f"{STAMP}{digest}", *lines[header:]]) + "\n")


def stale(lock: Path, digest: str) -> bool:
    return not lock.is_file() or f"{STAMP}{digest}\n" not in lock.read_text()


def main(action: str, locks: list[str]) -> int:
    digest = inputs_digest()
    if action == "--stamp":
        for lock in locks:
            stamp(Path(lock), digest)
        return 0
    outdated = [lock for lock in locks if stale(Path(lock), digest)]
    if outdated:
        print(
            f"error: {', '.join(outdated)} not made from this pyproject.toml and constraints.txt (their dependencies "
            "changed since): run `make lock` and commit the locks",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
