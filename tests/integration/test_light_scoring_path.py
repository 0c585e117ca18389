"""The scoring path imports onnxruntime and numpy, never scikit-learn, pandas, scipy or pyarrow."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys, json
import function_app
from function_app import indexed_functions
indexed_functions()
from shared.composition import AppServices
import shared.service.scoring, shared.service.model_serving, shared.domain.model
import onnxruntime
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'pandas', 'scipy', 'skl2onnx', 'onnx', 'matplotlib', 'pyarrow', 'duckdb'))
print(json.dumps(heavy))
"""


def test_importing_the_app_and_scoring_modules_pulls_in_no_training_libraries():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_scoring_call_loads_no_training_libraries(tmp_path):
    # score with a model in a fresh process and check again after the call
    probe = PROBE.replace("print(json.dumps(heavy))", "") + """
import numpy as np
from shared.domain.model import load_model, ModelArtifact
art = ModelArtifact.from_files(open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read())
model = load_model(art)
assert model.calibration is not None
model.predict(np.zeros((4, len(art.manifest['feature_names'])), dtype=np.float32))
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'pandas', 'scipy', 'skl2onnx', 'onnx', 'pyarrow', 'duckdb'))
print(json.dumps(heavy))
"""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_artifact

    # with a calibration in the manifest: applying it stays numpy-only too
    art = make_artifact("light", calibration={"method": "isotonic", "xs": [0.0, 0.5, 1.0], "ys": [0.0, 0.05, 0.9]})
    (tmp_path / "m.onnx").write_bytes(art.onnx_bytes)
    (tmp_path / "m.json").write_text(json.dumps(art.manifest))
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "m.onnx"), str(tmp_path / "m.json")],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
