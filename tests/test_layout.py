"""The package's shape: one stage per module, an explicit stage table, and no import cycles."""

import ast
from pathlib import Path

import mgm_tf

PACKAGE = Path(mgm_tf.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set) -> set:
    """mgm_tf modules a file imports, anywhere in it (a function-level import is still an edge)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mgm_tf"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mgm_tf")}
    return found


def import_graph() -> dict:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict) -> list:
    """One import cycle as a list of modules, or [] (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for neighbour in sorted(graph.get(node, ())):
            if state.get(neighbour) == "open":
                return stack[stack.index(neighbour):] + [neighbour]
            if neighbour not in state and (cycle := visit(neighbour)):
                return cycle
        stack.pop()
        state[node] = "closed"
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycles_among_mgm_tf_modules():
    graph = import_graph()
    assert len(graph) > 25 and "mgm_tf.pipeline" in graph
    assert find_cycle(graph) == []


STAGE_MODULES = ("mgm_tf.judge", "mgm_tf.dcgan", "mgm_tf.refinement", "mgm_tf.synthesis", "mgm_tf.quality_filter",
                 "mgm_tf.srgan", "mgm_tf.export", "mgm_tf.baselines.cgan", "mgm_tf.baselines.cyclegan")
MACHINERY = ("mgm_tf.run", "mgm_tf.gan", "mgm_tf.callbacks", "mgm_tf.kid", "mgm_tf.card", "mgm_tf.io", "mgm_tf.imaging", "mgm_tf.plots",
             "mgm_tf.device", "mgm_tf.config")


def _reaches(graph: dict, start: str) -> set:
    seen, todo = set(), [start]
    while todo:
        for neighbour in graph.get(todo.pop(), ()):
            if neighbour not in seen:
                seen.add(neighbour)
                todo.append(neighbour)
    return seen


def test_evaluation_sits_above_every_stage():
    """No stage, and nothing a stage uses, imports mgm_tf.evaluation (directly or through another
    module): the judge and referee are a stage of their own, and evaluation measures what stages made."""
    graph = import_graph()
    for module in STAGE_MODULES + MACHINERY:
        reached = {name for name in _reaches(graph, module) if name.startswith("mgm_tf.evaluation")}
        assert not reached, f"{module} reaches {sorted(reached)}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_every_stage_is_in_the_table_and_lives_in_its_own_module():
    from mgm_tf import config
    from mgm_tf.pipeline import STAGES

    assert set(config.STAGES) <= set(STAGES)
    homes = {name: stage.function.__module__ for name, stage in STAGES.items()}
    assert homes["dcgan"] == "mgm_tf.dcgan" and homes["cgan"] == "mgm_tf.refinement"
    assert homes["synthesize"] == "mgm_tf.synthesis"
    assert homes["filter"] == "mgm_tf.quality_filter" and homes["srgan"] == "mgm_tf.srgan"
    assert homes["export"] == "mgm_tf.export" and homes["baseline_cyclegan"] == "mgm_tf.baselines.cyclegan"
    assert homes["judge"] == "mgm_tf.judge" and "judge" in STAGES["synthesize"].requires
    for name, stage in STAGES.items():
        assert set(stage.requires) <= set(STAGES), name


def test_dataset_cards_ship_inside_the_package():
    from mgm_tf.data import manifests

    assert {"demo", "pneumonia_xray", "leukemia"} <= set(manifests.available_manifests())
    assert manifests.MANIFEST_DIR.name == "data_manifests"
