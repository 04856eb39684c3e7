import sb3_contracts


def test_version_is_set():
    assert sb3_contracts.__version__.count(".") == 2
