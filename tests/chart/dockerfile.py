"""The repository's Dockerfile, read the way the chart tests need it."""

import json

from helm_cli import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of every instruction, continuation lines joined, comments left out."""
    result, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            keyword, _, arguments = pending.partition(" ")
            result.append((keyword.upper(), arguments.strip()))
            pending = ""
    return result


def exec_form(keyword: str) -> list[str]:
    """The JSON (exec form) arguments of the last ENTRYPOINT or CMD, as a container runtime takes them."""
    values = [arguments for name, arguments in instructions() if name == keyword]
    assert values, f"the Dockerfile has no {keyword}"
    return json.loads(values[-1])
