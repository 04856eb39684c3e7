import json

import pytest

from sb3_contracts.cli import main


def test_solve_prints_summary_json(capsys):
    assert main(["solve", "--depth", "4", "--seed", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["decision_states"] == 15
    assert 0.0 <= summary["effort_share"] <= 1.0
    assert summary["principal_value"] >= 0.0  # the empty contract already earns something non-negative


def test_demo_plays_an_episode(capsys):
    assert main(["demo", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("state ") >= 3 and "Episode return" in out


def test_bad_depth_is_a_clear_error():
    with pytest.raises(SystemExit, match="depth must be an integer"):
        main(["solve", "--depth", "0"])
