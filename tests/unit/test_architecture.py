"""The layers of shared/ and the independence of the entry points, as import-linter contracts
(.importlinter): domain <- service <- adapters <- composition, no import pointing upward."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=where, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """A copy of the tree where the domain imports an adapter: the layers contract must fail."""
    for name in ("shared", "functions", "training", "tools", "bench"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    metrics = tmp_path / "shared" / "domain" / "metrics.py"
    metrics.write_text("from shared.adapters.audit_table import AuditLog  # deliberate violation\n" + metrics.read_text())
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "shared.domain.metrics -> shared.adapters.audit_table" in result.stdout, result.stdout
