"""The README tells the truth: every command in it runs, in order, and the output it shows
is the output the command prints.

The ``fnann`` commands of the README's ``bash`` blocks run in-process (``cli.main``), one
after the other, in a fresh folder holding a link to ``examples/`` (as a clone of the
repository would), with ``--no-cache`` added so that JAX's compilation cache, a process-wide
setting, stays off, and ``--no-gradcheck --no-plot`` added to every training after the first
(which checks its gradients and draws its curves; both have tests of their own). The other
commands are listed in ``RUN_ELSEWHERE`` with where they run; a new command in the README
fails `test_every_command_is_run` until it is classified.
"""

import os
import re
import shlex
from pathlib import Path

import pytest

import fnann
from fnann.app import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

RUN_ELSEWHERE = {
    'pip install -e ".[all]"': "the install; .ci/run does it in a fresh virtual environment",
    'pip install -e ".[test]"': "the install; .ci/run does it in a fresh virtual environment",
    "python -m pytest": "the test suite itself (.ci/run)",
    "python benchmarks/bench_train.py": "a timing run of minutes, never part of the suite",
    "python benchmarks/bench_train.py --sizes small --repeats 3": "a timing run, never part of the suite",
    "PYTHONPATH=. python benchmarks/gpu_check.py --out gpu_report.md":
        "the full accelerator check (minutes); tests/test_gpu_check.py runs it with --quick",
}
_LAUNCH = ("launching train_dp.py on several processes, GPUs or hosts: tests/test_parallel.py runs the "
           "same two-process CPU pattern with its own worker script (tests/parallel_subprocess.py)")
RUN_ELSEWHERE.update({c: _LAUNCH for c in (
    "export XLA_FLAGS=--xla_force_host_platform_device_count=2",
    "python train_dp.py localhost:1234 2 0 & python train_dp.py localhost:1234 2 1; wait",
    "for i in 0 1 2 3; do CUDA_VISIBLE_DEVICES=$i python train_dp.py localhost:1234 4 $i & done; wait",
    "python train_dp.py host0:1234 2 0",
    "python train_dp.py host0:1234 2 1",
    "srun --nodes=2 --ntasks-per-node=4 --gpus-per-task=1 python train_dp.py",
)})


def bash_commands(text: str) -> list[str]:
    """The commands of every ```bash block, in order: comments dropped, ``&&`` chains split."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"(^|\s+)#.*$", "", line).strip()
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def shown_output(text: str, first_line: str) -> str:
    """The ```text block of the README that starts with ``first_line``."""
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"no ```text block starting with {first_line!r} in the README")


def same_up_to_roundoff(shown: str, real: str) -> bool:
    """Equal token by token, except numbers below 1e-6 (round-off, which varies by machine)."""
    a, b = shown.split(), real.split()
    if len(a) != len(b):
        return False
    for u, v in zip(a, b):
        if u == v:
            continue
        try:
            x, y = float(u.rstrip(",")), float(v.rstrip(","))
        except ValueError:
            return False
        if not (abs(x) < 1e-6 and abs(y) < 1e-6):
            return False
    return True


def test_every_command_is_run():
    commands = bash_commands(README)
    assert len(commands) >= 10
    for command in commands:
        assert command.startswith("fnann ") or command in RUN_ELSEWHERE or \
            re.fullmatch(r"python examples/\w+\.py", command), f"README command not run by any test: {command}"
    for command in commands:  # the examples are run by tests/test_examples.py, which globs them
        if command.startswith("python examples/"):
            assert (ROOT / command.split()[1]).is_file()


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory):
    """Runs every fnann command of the README in order; maps command -> (status, stdout, stderr)."""
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("readme")
    os.symlink(ROOT / "examples", folder / "examples")
    results = {}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for command in bash_commands(README):
            if not command.startswith("fnann "):
                continue
            argv = shlex.split(command)[1:]
            if argv[0] in ("train", "predict", "evaluate", "gradcheck"):
                argv.append("--no-cache")
            if argv[0] == "train" and any(c.startswith("fnann train") for c in results):
                argv += ["--no-gradcheck", "--no-plot"]  # each checked by the first training and on their own
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    status = cli.main(argv)
                except SystemExit as e:
                    status = e.code
            results[command] = (status, out.getvalue(), err.getvalue())
    finally:
        os.chdir(cwd)
    return folder, results


def test_readme_commands_run_in_order(readme_runs):
    folder, results = readme_runs
    for command, (status, out, err) in results.items():
        assert status == 0, f"{command}\n{out}\n{err}"
    # what the README says they leave behind
    ck = fnann.load(folder / "runs" / "fnann" / "checkpoint.npz")
    assert ck.net == fnann.MLP([64, 128, 64, 10]) and ck.epoch == 60
    assert (folder / "runs" / "fnann" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((folder / "runs" / "fnann" / "history.csv").read_text().splitlines()) == 61
    assert fnann.load(folder / "runs" / "iris" / "checkpoint.npz").epoch == 150
    predictions = (folder / "runs" / "mine" / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "prediction,p_setosa,p_versicolor,p_virginica"
    assert [p.split(",")[0] for p in predictions[1:]] == ["setosa", "versicolor", "virginica", "versicolor",
                                                          "virginica"]
    assert fnann.load(folder / "runs" / "bce" / "checkpoint.npz").net.n_out == 1


@pytest.mark.cpu_numbers  # the README's accuracy and RMSE were measured on a CPU
def test_readme_numbers_are_what_the_commands_print(readme_runs):
    folder, results = readme_runs
    accuracy = fnann.load(folder / "runs" / "fnann" / "checkpoint.npz").meta["test"]["accuracy"]
    assert f"prints the test accuracy ({accuracy:.3f} with the defaults" in " ".join(README.split())
    out = next(out for command, (_, out, _) in results.items() if "--data diabetes" in command)
    shown = re.search(r"test RMSE \S+\s+R² \S+", out).group(0)
    assert f"`{' '.join(shown.split())} (original units)`" in " ".join(README.split()), shown


def test_gradcheck_output_shown_is_the_real_output(readme_runs):
    _, results = readme_runs
    status, out, _ = results["fnann gradcheck"]
    assert status == 0
    shown = shown_output(README, "fnann gradient check: MLP(sizes=(64, 128, 64, 10)")
    assert same_up_to_roundoff(shown, out), f"the README shows\n{shown}\nbut `fnann gradcheck` prints\n{out}"


def test_the_design_contract_the_code_cites_exists():
    assert (ROOT / "docs" / "DESIGN.md").is_file()
    assert "docs/DESIGN.md" in README
    for path in [*ROOT.glob("fnann/**/*.py"), *ROOT.glob("tests/*.py"), ROOT / "README.md"]:
        for cited in re.findall(r"[\w/]*DESIGN\.md", path.read_text()):
            assert cited in ("DESIGN.md", "docs/DESIGN.md"), f"{path} cites {cited}"


def test_the_training_snippet_validates_on_a_split_of_the_training_data():
    training = next(b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "fnann.fit(" in b)
    validation = re.search(r"validation_data=\((\w+), (\w+)\)", training).groups()
    assert validation == ("x_val", "y_val")
    assert re.search(r"x_val, y_val = d\.x_train\[:\d+\], d\.y_train\[:\d+\]", training)
    assert re.search(r"x_train, y_train = d\.x_train\[\d+:\], d\.y_train\[\d+:\]", training)
