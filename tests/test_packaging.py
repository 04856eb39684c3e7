"""Packaging: one namespace (the worlds install as ``sb3_contracts.envs``), every package listed, light imports."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_package_folder_is_installed_under_sb3_contracts():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    found = set()
    for name, folder in {"sb3_contracts": "sb3_contracts", **mapping}.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *relative)))
    assert set(config["packages"]) == found


def test_the_worlds_import_from_any_folder_and_no_top_level_envs_exists(tmp_path):
    result = _run("from sb3_contracts.envs import PrincipalAgentMDP, random_binary_tree\n"
                  "from sb3_contracts.envs.coin_game import CoinGameBatch\n"
                  "import importlib.util\n"
                  "assert importlib.util.find_spec('envs') is None, 'a top-level envs package is installed'\n",
                  tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_coin_game_imports_without_torch_or_sb3(tmp_path):
    result = _run("import sys\n"
                  "import sb3_contracts.envs.coin_game\n"
                  "heavy = sorted(m for m in ('torch', 'stable_baselines3', 'scipy.optimize') if m in sys.modules)\n"
                  "assert not heavy, heavy\n", tmp_path)
    assert result.returncode == 0, result.stderr


def test_importing_the_package_registers_every_env_id_without_importing_torch(tmp_path):
    result = _run("import sys\n"
                  "import gymnasium\n"
                  "import sb3_contracts\n"
                  "ids = ['ContractBinaryTree-v0', 'ContractBinaryTreeAgent-v0', 'ContractCoinGame-v0']\n"
                  "assert all(i in gymnasium.registry for i in ids)\n"
                  "assert 'torch' not in sys.modules\n"
                  "assert sb3_contracts.ContractDQN.__name__ == 'ContractDQN'\n", tmp_path)
    assert result.returncode == 0, result.stderr
