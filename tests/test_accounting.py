"""A benchmark's cost: wall, the CPU of every process (children waited for, work reported from elsewhere), load."""

import subprocess
import sys

import pytest

from sb3_contracts.experiments.accounting import Accounting


def test_cpu_counts_children_and_work_done_elsewhere():
    cost = Accounting()
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", busy], check=True)  # a child that burns 0.3 s of CPU, waited for
    figures = cost.figures(elsewhere_s=5.0)
    assert figures["cpu_s"] >= 5.0 + 0.3 and figures["cpu_s_elsewhere"] == 5.0
    assert figures["wall_s"] >= 0.3 and figures["load_1m_at_start"] >= 0


def test_the_cost_of_nothing_is_small():
    figures = Accounting().figures()
    assert figures["cpu_s"] == pytest.approx(0.0, abs=0.05) and figures["cpu_s_elsewhere"] == 0.0
