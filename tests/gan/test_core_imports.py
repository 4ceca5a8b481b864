"""The core stands alone: ``gan/`` imports nothing of the pipeline, and the network module nothing of the project."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "gan_pipeline" / "gan"


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in the file names, at any depth (functions too)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_core_imports_only_the_core_of_the_project():
    for path in CORE.glob("*.py"):
        project = {module for module in imported_modules(path) if module.split(".")[0] == "gan_pipeline"}
        assert all(module.startswith("gan_pipeline.gan") for module in project), (path.name, project)
        assert not {module for module in imported_modules(path) if module.split(".")[0] in ("kedro", "mlflow")}


def test_the_network_module_logged_with_every_generator_needs_only_torch():
    """A copy of networks.py is the registered model's code: it must import nothing the model does not ship."""
    roots = {module.split(".")[0] for module in imported_modules(CORE / "networks.py")}
    assert roots <= {"math", "dataclasses", "typing", "torch"}
