"""randconfig: seeds, what KCONFIG_ALLCONFIG holds for each scope, and the `make randconfig`
step (its environment) through the one Kconfig session, on a recording runner."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import pytest
from testhelpers import RecordingRunner

from harness.container import Step, StepResult
from harness.kconfig.session import KconfigSession
from harness.randconfig import allconfig, check_spec, combo_id, random_config
from harness.verdict import InputError


def test_seeds_follow_the_first_and_wrap_at_32_bits() -> None:
    assert check_spec(3, 10, "tree").seeds() == [10, 11, 12]
    assert check_spec(2, 0xFFFFFFFF, "axes").seeds() == [0xFFFFFFFF, 0]
    assert combo_id(0, 0xBEEF) == "randconfig-01-seed-0000beef"


@pytest.mark.parametrize("count, seed, over, message", [
    (0, 1, "tree", "--randconfig takes a number"),
    (1, -1, "tree", "--seed takes a whole number"),
    (1, 1, "everything", "--randconfig-over takes tree or axes"),
])
def test_bad_arguments_are_bad_input(count: int, seed: int, over: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_spec(count, seed, over)


def test_allconfig_fixes_the_matrix_values_or_everything_but_the_axes() -> None:
    base = {"CONFIG_MODULES": "n", "CONFIG_PROC_FS": "n", "CONFIG_PRINTK": "y"}
    fixed = {"CONFIG_MODULES": "y"}
    assert allconfig(base, fixed, ["CONFIG_PROC_FS"], "tree") == {"CONFIG_MODULES": "y"}
    assert allconfig(base, fixed, ["CONFIG_PROC_FS"], "axes") == \
        {"CONFIG_MODULES": "y", "CONFIG_PRINTK": "y"}


class RandRunner(RecordingRunner):
    """Plays `make randconfig`: writes a .config that depends on KCONFIG_SEED."""

    def act(self, step: Step, log: IO[str]) -> StepResult:
        env = dict(step.env)
        out = Path(step.workdir)
        allconfig_text = Path(env["KCONFIG_ALLCONFIG"]).read_text()
        seed = int(env["KCONFIG_SEED"], 16)
        (out / ".config").write_text(allconfig_text + f"CONFIG_PROC_FS={'y' if seed % 2 else 'n'}\n")
        return StepResult(step.name, step.argv, 0, 0.0)


def test_random_config_runs_make_randconfig_with_the_seed_and_the_allconfig(tmp_path: Path) -> None:
    runner = RandRunner()
    session = KconfigSession(tmp_path / "tree", tmp_path / "out", runner, io.StringIO())
    odd = random_config(session, {"CONFIG_MODULES": "y"}, 0x11)
    assert odd == {"CONFIG_MODULES": "y", "CONFIG_PROC_FS": "y"}
    even = random_config(session, {"CONFIG_MODULES": "y"}, 0x12)
    assert even["CONFIG_PROC_FS"] == "n"
    step = runner.steps[0]
    assert step.argv[-1] == "randconfig"
    assert ("KCONFIG_SEED", "0x00000011") in step.env
    assert dict(step.env)["KCONFIG_ALLCONFIG"] == str(tmp_path / "out" / "kmatrix.allconfig")


def test_a_random_n_of_a_symbol_the_base_never_wrote_is_asked_for() -> None:
    from harness.randconfig import random_values

    base = {"CONFIG_CRYPTO": "n", "CONFIG_MODULES": "y"}
    rand = {"CONFIG_CRYPTO": "y", "CONFIG_MODULES": "y", "CONFIG_CRYPTO_MANAGER_DISABLE_TESTS": "n",
            "CONFIG_CRYPTO_MANAGER_EXTRA_TESTS": "y"}
    assert random_values(base, rand) == {"CONFIG_CRYPTO": "y",
                                         "CONFIG_CRYPTO_MANAGER_DISABLE_TESTS": "n",
                                         "CONFIG_CRYPTO_MANAGER_EXTRA_TESTS": "y"}
