"""The embedded R session: conversions, error and warning translation, start-up failures."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from tests.support.repo import REPO, requires_r
from etio.core.errors import EtioInputError, RBackendError

pytestmark = requires_r


@pytest.fixture(scope="module")
def rb():
    from etio.causal import rbridge

    return rbridge


def test_backend_names_bnlearn_or_the_compatible_implementation(rb):
    backend = rb.backend()
    assert backend.startswith("bnlearn")  # "bnlearn 4.7" or "bnlearn-compat 4.7 (etio r/compat)"
    assert "4." in backend


def test_dataframe_round_trip_is_exact(rb):
    values = np.random.default_rng(3).normal(size=7) * 10.0 ** np.arange(-3, 4)
    frame = pd.DataFrame({"x": values, "label": list("abcdefg"), "n": np.arange(7)})
    frame.loc[2, "x"] = np.nan
    frame.loc[4, "label"] = None
    back = rb.call("identity", frame)
    assert list(back.columns) == ["x", "label", "n"]
    assert np.array_equal(back["x"].to_numpy(), frame["x"].to_numpy(), equal_nan=True)  # bit-exact doubles
    assert back["label"].tolist()[:4] == ["a", "b", "c", "d"] and pd.isna(back["label"][4])
    assert back["n"].tolist() == list(range(7))
    # R sees NA where pandas had NaN / None, and double / character / integer columns.
    seen = rb.call(rb.function("function(d) list(na = c(sum(is.na(d$x)), sum(is.na(d$label))), "
                               "types = vapply(d, typeof, ''))"), frame)
    assert seen["na"] == [1, 1]
    assert seen["types"] == {"x": "double", "label": "character", "n": "integer"}


def test_values_convert_both_ways(rb):
    assert rb.call("sum", [1.5, 2.5]) == 4.0
    assert rb.call("paste", "a", "b", sep="-") == "a-b"
    assert rb.call("c", 1, 2, 3) == [1, 2, 3]
    assert rb.call("is.null", None) is True
    nested = rb.call("list", a=1.0, b="x", c=[True, False])
    assert nested == {"a": 1.0, "b": "x", "c": [True, False]}
    assert rb.call("is.na", float("nan")) is True
    assert math.isnan(rb.call("as.numeric", float("nan")))


def test_input_errors_become_etio_input_errors_without_the_prefix(rb):
    with pytest.raises(EtioInputError) as caught:
        rb.call("etio_features", "NoSuchAttack")
    message = str(caught.value)
    assert message.startswith("unknown attack 'NoSuchAttack'")
    assert "etio input error" not in message


def test_other_r_errors_carry_r_message(rb):
    with pytest.raises(RBackendError, match=r"stop\(\): something broke in R"):
        rb.call("stop", "something broke in R")
    with pytest.raises(RBackendError, match="could not find function"):
        rb.call("no_such_function_anywhere")


def test_r_warnings_arrive_as_python_warnings_and_the_value_survives(rb, capfd):
    noisy = rb.function("function(x) { warning('careful: ', x); print('console chatter'); message('hi'); x + 1 }")
    with pytest.warns(rb.RWarning, match="careful: 41"):
        assert rb.call(noisy, 41) == 42
    out, err = capfd.readouterr()
    assert "console chatter" not in out + err and "hi" not in out + err


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=120)


def test_missing_r_is_an_rbackend_error_pointing_to_make_setup(tmp_path):
    code = """
        from etio.causal import rbridge
        from etio.core.errors import RBackendError
        try:
            rbridge.backend()
        except RBackendError as exc:
            print("ERR", exc)
    """
    result = _python(code, {"PATH": str(tmp_path), "HOME": str(tmp_path)})  # neither R nor Rscript on PATH
    assert result.returncode == 0, result.stderr
    assert "ERR R is not available" in result.stdout and "make setup" in result.stdout


def test_etio_r_dir_overrides_the_r_sources(tmp_path):
    (tmp_path / "etio.R").write_text('etio_backend <- function() "stand-in backend 0.1"\n')
    code = """
        from etio.causal import rbridge
        print(rbridge.backend())
    """

    result = _python(code, {**os.environ, "ETIO_R_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stand-in backend 0.1"


def test_an_r_dir_without_etio_r_is_reported(tmp_path):
    code = """
        from etio.causal import rbridge
        from etio.core.errors import RBackendError
        try:
            rbridge.backend()
        except RBackendError as exc:
            print("ERR", exc)
    """

    result = _python(code, {**os.environ, "ETIO_R_DIR": str(tmp_path)})
    assert "ERR R is not available" in result.stdout and "etio.R not found" in result.stdout


def test_r_code_calls_python_back_with_converted_values(rb):
    seen = []
    calls = rb.function("function(f) { for (i in 1:3) f(i, data.frame(x = c(i, 2 * i)), list(name = paste0('g', i))); 'done' }")
    assert rb.call(calls, rb.callback(lambda i, frame, info: seen.append((i, frame["x"].tolist(), info)))) == "done"
    assert seen == [(i, [float(i), 2.0 * i], {"name": f"g{i}"}) for i in (1, 2, 3)]


def test_an_exception_in_a_python_callback_stops_r_and_is_raised(rb):
    reached = []

    def fail(i):
        reached.append(i)
        if i == 2:
            raise KeyError("no such graph")

    calls = rb.function("function(f) { for (i in 1:3) f(i); 'finished' }")
    with pytest.raises(KeyError, match="no such graph"):
        rb.call(calls, rb.callback(fail))
    assert reached == [1, 2]  # R stopped at the failing call
    assert rb.call("identity", 5) == 5  # and the session works on
