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


def stage(name: str | None) -> list[tuple[str, str]]:
    """The instructions of the build stage `FROM ... AS name` (None: the last stage, which is the image), its FROM
    first."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, arguments))
    if name is None:
        return stages[-1]
    named = [found for found in stages if found[0][1].split()[-2:] == ["AS", name]]
    assert named, f"the Dockerfile has no stage {name!r}"
    return named[0]
