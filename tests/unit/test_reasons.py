"""The table of reasons (aurora_restore/reasons.py) lists every reason the operator's code can emit, and nothing
else; docs/troubleshooting.md is the table's rendering.

The scanner reads the package's source with `ast` and collects every string literal passed as a reason:

- the `reason` parameter of any function, method, error class or dataclass defined in the package, by position
  or keyword (TerminalError, RetryableError, Fail, Wait, EventRecorder.record, the preflight helpers, ...);
- any `reason=` keyword (pydantic models such as PreflightCheck and Failure take keywords only);
- a module-level string constant passed instead of a literal (`REASON = "NotAllowedByPolicy"`).

A reason passed through (`error.reason`, a variable named `reason` or `code`) was a literal somewhere else, or an
AWS error code. Any other expression (an f-string, a template such as "{Kind}Failed", a call) cannot be read
statically: such call sites must be listed in DYNAMIC with why and the reasons they make, so a new one is looked
at rather than silently missed. REASON_TUPLES names the few functions where reasons travel in tuples, such as
(reason, message) pairs for their callers to raise or record. Two more rules catch what the others cannot see: an
Event posted through any callable (`self.events(obj, "Warning", REASON, message)`): the argument after the Event
type; and a module-level dict of reasons read with `.get` (`INVALID_REASONS.get(field, "InvalidTemplate")`).
"""

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aurora_restore
from aurora_restore import reasons
from aurora_restore.api.phase import Phase
from aurora_restore.cli import main

PACKAGE = Path(aurora_restore.__file__).parent
ROOT = PACKAGE.parent.parent
# Names of values that carry a reason found elsewhere: passing them on adds no new reason.
PASS_THROUGH_NAMES = frozenset({"reason", "code"})
# (module, enclosing function) -> (why the reason is not a literal, the reasons it makes).
DYNAMIC: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("steps/publish.py", "claim_connection_secret"): (
        "raises TerminalError(*refusal), the pair connection_secret_refusal returns (see REASON_TUPLES)", ()),
    ("steps/preflight.py", "_group_exists"): (
        "the reason is built from the kind of group", (
            "SubnetGroupNotFound", "ClusterParameterGroupNotFound", "ParameterGroupNotFound")),
    ("steps/rds_statuses.py", "<module>"): (
        "the table's template for RDS's `failed` status", ("ClusterFailed", "InstanceFailed")),
    ("steps/rds_statuses.py", "status_failure"): (
        "the same template, for a failure status the table does not know", ("ClusterFailed", "InstanceFailed")),
}
# (module, function) -> (index of the reason, length) in the tuples it builds as reasons travel in tuples there.
# Only CamelCase literals and constants count in them (other values are reasons made elsewhere, or no reasons).
REASON_TUPLES: dict[tuple[str, str], tuple[int, int]] = {
    ("steps/publish.py", "connection_secret_refusal"): (0, 2),  # returns (reason, message)
    ("scheduling/controller.py", "describe_invalid_spec"): (0, 2),  # returns (reason, message)
    ("scheduling/controller.py", "schedule_conditions"): (1, 3),  # (status, reason, message) per condition
    ("scheduling/controller.py", "schedule_turn"): (0, 2),  # (reason, message) of a refused run, to record
    ("steps/drill.py", "objective_met"): (1, 2),  # returns (met, reason of the ObjectiveMet condition)
}
EVENT_TYPES = ("Normal", "Warning")
CAMEL_CASE = re.compile(r"[A-Z][A-Za-z0-9]*")


@dataclass(frozen=True)
class Use:
    reason: str | None  # None: not a literal
    module: str
    function: str
    line: int


def _reason_position(node: ast.AST) -> int | None:
    """Where a function, method or class takes `reason` at call sites: its positional index (self dropped), or
    None (only as a keyword, or not at all)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        names = [arg.arg for arg in node.args.posonlyargs + node.args.args]
        if names and names[0] in ("self", "cls"):
            names = names[1:]
        return names.index("reason") if "reason" in names else None
    if isinstance(node, ast.ClassDef):
        init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"),
                    None)
        if init is not None:
            return _reason_position(init)
        fields = [item.target.id for item in node.body
                  if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)]
        if "reason" in fields and any(_decorator_name(d) == "dataclass" for d in node.decorator_list):
            return fields.index("reason")
    return None


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


class Callables:
    """Where each callable of the package takes its reason, found the way the call site names it: a name of the
    module or imported into it, a function of an imported module (`audit.record`), else a method (`.record`)."""

    def __init__(self, trees: dict[str, ast.Module]):
        self.top: dict[str, dict[str, int | None]] = {}  # module -> top-level function or class -> position
        self.methods: dict[str, int] = {}  # method name -> position, for methods taking a reason
        self.modules: dict[str, dict[str, str]] = {}  # module -> alias -> imported module of the package
        self.names: dict[str, dict[str, str]] = {}  # module -> name -> module it was imported from
        classes: dict[str, ast.ClassDef] = {}
        for module, tree in trees.items():
            self.top[module] = {}
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.top[module][node.name] = _reason_position(node)
                if isinstance(node, ast.ClassDef):
                    classes[node.name] = node
                    for item in node.body:
                        position = _reason_position(item) if isinstance(item, ast.FunctionDef) else None
                        if position is not None and item.name != "__init__":
                            self.methods[item.name] = position
            self._imports(module, tree, set(trees))
        self._inherit(classes)

    def _imports(self, module: str, tree: ast.Module, known: set[str]) -> None:
        self.modules[module], self.names[module] = {}, {}
        here = module.split("/")[:-1]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == PACKAGE.name:
                base = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                path = "/".join(base + [alias.name])
                for candidate in (f"{path}.py", f"{path}/__init__.py"):
                    if candidate in known:
                        self.modules[module][alias.asname or alias.name] = candidate
                        break
                else:
                    source = "/".join(base) + ".py" if base else "__init__.py"
                    if source not in known:
                        source = "/".join(base) + "/__init__.py"
                    self.names[module][alias.asname or alias.name] = source

    def _inherit(self, classes: dict[str, ast.ClassDef]) -> None:
        """A class without __init__ takes its base's position (TerminalError(RestoreError))."""
        changed = True
        while changed:
            changed = False
            for module, top in self.top.items():
                for name, position in top.items():
                    node = classes.get(name)
                    if position is not None or node is None:
                        continue
                    for base in node.bases:
                        inherited = self.position_of_name(module, base.id) if isinstance(base, ast.Name) else None
                        if inherited is not None:
                            top[name] = inherited
                            changed = True

    def position_of_name(self, module: str, name: str) -> int | None:
        if name in self.top[module]:
            return self.top[module][name]
        source = self.names[module].get(name)
        if source is not None:
            return self.top.get(source, {}).get(name)
        return None

    def position(self, module: str, call: ast.Call) -> int | None:
        if isinstance(call.func, ast.Name):
            return self.position_of_name(module, call.func.id)
        if isinstance(call.func, ast.Attribute):
            receiver = call.func.value
            if isinstance(receiver, ast.Name) and receiver.id in self.modules[module]:
                return self.top[self.modules[module][receiver.id]].get(call.func.attr)
            return self.methods.get(call.func.attr)
        return None


def _string_constants(tree: ast.Module) -> dict[str, str | list[str]]:
    """Module-level `NAME = "Text"`, and `NAME = {key: "Text", ...}` (its values)."""
    constants: dict[str, str | list[str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            pairs = list(zip(target.elts, value.elts))  # A, B = "TextA", "TextB"
        else:
            pairs = [(target, value)]
        for name, item in pairs:
            if not isinstance(name, ast.Name):
                continue
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                constants[name.id] = item.value
            elif isinstance(item, ast.Dict) and item.values and all(
                    isinstance(entry, ast.Constant) and isinstance(entry.value, str) for entry in item.values):
                constants[name.id] = [entry.value for entry in item.values]
    return constants


def _reason_argument(call: ast.Call, index: int | None) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "reason":
            return keyword.value
    if index is not None and index < len(call.args):
        if any(isinstance(arg, ast.Starred) for arg in call.args[: index + 1]):
            return call.args[0]
        return call.args[index]
    return None


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            owner[child] = name
            visit(child, name)

    visit(tree, "<module>")
    return owner


@functools.cache
def package_uses() -> tuple[Use, ...]:
    """The package's reason arguments, scanned once per test session."""
    return tuple(scan())


def scan(package: Path = PACKAGE) -> Iterator[Use]:
    """Every reason argument in the package: a literal (or a module constant) with its reason, or None."""
    trees = {path.relative_to(package).as_posix(): ast.parse(path.read_text(), str(path))
             for path in sorted(package.rglob("*.py"))}
    callables = Callables(trees)
    own = {module: _string_constants(tree) for module, tree in trees.items()}
    for module, tree in trees.items():
        imported = {name: own[source][name] for name, source in callables.names[module].items()
                    if name in own.get(source, {})}  # from ..k8s.conditions import OBJECTIVE_MET
        constants = {**imported, **own[module]}
        owner = _enclosing_functions(tree)
        for node in ast.walk(tree):
            function = owner.get(node, "<module>")
            if isinstance(node, ast.Tuple) and (module, function) in REASON_TUPLES:
                index, length = REASON_TUPLES[module, function]
                element = node.elts[index] if len(node.elts) == length else None
                if isinstance(element, ast.Name) and isinstance(constants.get(element.id), str):
                    element = ast.Constant(constants[element.id])
                if isinstance(element, ast.Constant) and isinstance(element.value, str) \
                        and CAMEL_CASE.fullmatch(element.value):
                    yield Use(element.value, module, function, node.lineno)
                continue
            if isinstance(node, ast.Call) and _event_reason(node) is not None:
                for reason in _reasons_in(_event_reason(node), constants):
                    yield Use(reason, module, function, node.lineno)
            if (isinstance(node, ast.Assign) and function != "<module>"
                  and any(isinstance(target, ast.Name) and target.id == "reason" for target in node.targets)):
                argument = node.value  # `reason = ... if ... else "PreflightFailed"`, then passed on
            elif isinstance(node, ast.Call):
                argument = _reason_argument(node, callables.position(module, node))
            else:
                continue
            if argument is not None:
                for reason in _reasons_in(argument, constants):
                    yield Use(reason, module, function, node.lineno)


def _event_reason(call: ast.Call) -> ast.expr | None:
    """The argument after an Event type ("Normal" or "Warning"), whatever the callable."""
    for first, second in zip(call.args, call.args[1:]):
        if isinstance(first, ast.Constant) and first.value in EVENT_TYPES:
            return second
    return None


def _reasons_in(argument: ast.expr, constants: dict[str, str | list[str]]) -> Iterator[str | None]:
    """The reasons an argument can be: its literals and constants, None for what cannot be read, nothing for a
    reason passed through."""
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        yield None if "{" in argument.value else argument.value  # "{Kind}Failed": a template
    elif isinstance(argument, ast.Name) and isinstance(constants.get(argument.id), str):
        yield constants[argument.id]
    elif (isinstance(argument, ast.Call) and isinstance(argument.func, ast.Attribute) and argument.func.attr == "get"
          and isinstance(argument.func.value, ast.Name) and isinstance(constants.get(argument.func.value.id), list)):
        yield from constants[argument.func.value.id]  # REASONS.get(key, default)
        for default in argument.args[1:]:
            yield from _reasons_in(default, constants)
    elif isinstance(argument, ast.Name) and argument.id in PASS_THROUGH_NAMES:
        return
    elif isinstance(argument, ast.Attribute) and argument.attr == "reason":
        return
    elif isinstance(argument, ast.BoolOp):  # `outcome.reason or "Unknown"`
        for value in argument.values:
            yield from _reasons_in(value, constants)
    elif isinstance(argument, ast.IfExp):
        yield from _reasons_in(argument.body, constants)
        yield from _reasons_in(argument.orelse, constants)
    elif (isinstance(argument, ast.Call) and isinstance(argument.func, ast.Name) and argument.func.id == "str"
          and len(argument.args) == 1 and isinstance(argument.args[0], ast.Attribute)
          and argument.args[0].attr in ("phase", "to")):
        return  # a phase's name: every phase has its entry (test_every_phase_has_an_entry)
    else:
        yield None


def test_scanner_finds_reasons_given_every_way(tmp_path):
    """The scanner itself: positional, keyword, inherited, dataclass, method, constant, and a dynamic one."""
    (tmp_path / "sample.py").write_text(
        "from dataclasses import dataclass\n"
        "REASON = 'FromConstant'\n"
        "FIRST, SECOND = 'Unpacked', 'Other'\n"
        "class Base(Exception):\n"
        "    def __init__(self, reason, message): ...\n"
        "class Child(Base): ...\n"
        "@dataclass\n"
        "class Out:\n"
        "    message: str\n"
        "    reason: str = ''\n"
        "class Recorder:\n"
        "    def record(self, obj, kind, reason, message): ...\n"
        "def helper(name, message, reason): ...\n"
        "def f(recorder, error, reason):\n"
        "    Child('Inherited', 'm')\n"
        "    Out('m', 'DataclassField')\n"
        "    recorder.record({}, 'Normal', 'MethodArgument', 'm')\n"
        "    helper('n', 'm', 'HelperArgument')\n"
        "    Out(message='m', reason='Keyword')\n"
        "    Base(REASON, 'm')\n"
        "    Base(FIRST, 'm')\n"
        "    Base(error.reason, 'passed through')\n"
        "    Base(reason, 'passed through')\n"
        "    Base(f'{error}', 'dynamic')\n"
        "    Base('{Kind}Template', 'dynamic')\n"
        "    super().__init__('not a reason')\n"
    )
    uses = list(scan(tmp_path))
    assert {use.reason for use in uses} == {"Inherited", "DataclassField", "MethodArgument", "HelperArgument",
                                            "Keyword", "FromConstant", "Unpacked", None}
    assert [use.line for use in uses if use.reason is None] == [24, 25]


def test_every_reason_in_the_code_is_in_the_table():
    missing = sorted({f"{use.reason} ({use.module}:{use.line})" for use in package_uses()
                      if use.reason is not None and use.reason not in reasons.REASONS})
    missing += sorted({f"{reason} ({module}, {function})" for (module, function), (_, made) in DYNAMIC.items()
                       for reason in made if reason not in reasons.REASONS})
    assert not missing, f"reasons emitted by the code but not in aurora_restore/reasons.py: {missing}"


def test_reason_tuples_are_found():
    """REASON_TUPLES still names functions that make reasons (a rename would hide them from the scan)."""
    found = {(use.module, use.function) for use in package_uses() if use.reason is not None}
    assert set(REASON_TUPLES) <= found


def test_every_non_literal_reason_is_explained():
    unexplained = sorted({f"{use.module}:{use.line} in {use.function}" for use in package_uses()
                          if use.reason is None and (use.module, use.function) not in DYNAMIC})
    assert not unexplained, f"reasons the scanner cannot read; make them literals or explain them in DYNAMIC: " \
                            f"{unexplained}"
    used = {(use.module, use.function) for use in package_uses() if use.reason is None}
    assert set(DYNAMIC) <= used, f"DYNAMIC lists call sites that are gone: {sorted(set(DYNAMIC) - used)}"


def test_every_table_entry_is_emitted_somewhere():
    """No stale entries: each one is a literal in the code, a phase (Event and condition reasons on
    transitions), or an AWS error code aws/errors.py keeps as the reason."""
    literals = {use.reason for use in package_uses()} | {reason for _, made in DYNAMIC.values() for reason in made}
    phases = {str(phase) for phase in Phase} - {Phase.CLEANING_UP_AFTER_FAILURE}
    stale = sorted(name for name, entry in reasons.REASONS.items()
                   if not entry.from_aws and name not in literals and name not in phases)
    assert not stale, f"table entries no code emits: {stale}"


def test_every_phase_has_an_entry():
    """Phase names are the Event and condition reasons of transitions, except CleaningUpAfterFailure: only a
    failure leads there, and its Event and conditions carry the failure's reason."""
    phases = {str(phase) for phase in Phase} - {Phase.CLEANING_UP_AFTER_FAILURE}
    assert phases <= set(reasons.REASONS)
    assert Phase.CLEANING_UP_AFTER_FAILURE not in reasons.REASONS


def test_aws_entries_are_codes_aws_errors_knows():
    """Entries marked from_aws are codes aws/errors.py lists and passes on (or the catch-all entry)."""
    from aurora_restore.aws import errors

    known = errors.TERMINAL_CODES | errors.NOT_FOUND_CODES | errors.KMS_KEY_CODES | {reasons.OTHER_AWS_CODE}
    unknown = sorted(name for name, entry in reasons.REASONS.items() if entry.from_aws and name not in known)
    assert not unknown, f"from_aws entries aws/errors.py does not list: {unknown}"


def test_every_entry_is_filled_in():
    for name, entry in reasons.REASONS.items():
        assert entry.kind in reasons.KINDS, name
        assert entry.meaning.strip() and entry.fix.strip() and entry.appears, name
        assert set(entry.appears) <= set(reasons.PLACES), name


def test_troubleshooting_page_is_the_generated_one(capsys):
    """docs/troubleshooting.md is `aurora-restore reasons --markdown`: regenerate it after editing the table."""
    assert main(["reasons", "--markdown"]) == 0
    generated = capsys.readouterr().out
    assert (ROOT / "docs" / "troubleshooting.md").read_text() == generated, (
        "docs/troubleshooting.md is stale: run `aurora-restore reasons --markdown > docs/troubleshooting.md`")
    for name in reasons.REASONS:
        assert f"`{name}`" in generated


def test_every_aws_code_kept_as_the_reason_has_an_entry():
    """The codes aws/errors.py lists as terminal are passed on as reasons: each has its entry."""
    from aurora_restore.aws import errors

    assert not sorted(errors.TERMINAL_CODES - set(reasons.REASONS))
