"""`shiftinv` prints no TensorFlow start-up lines, only its own (real subprocesses)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shiftinv(*args, **env):
    """Runs `python -m keras_shiftinv ARGS` from this checkout; returns the CompletedProcess."""
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SHIFTINV_VERBOSE")}
    return subprocess.run([sys.executable, "-m", "keras_shiftinv", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**environ, "PYTHONPATH": ROOT, **env})


def test_help_prints_the_help_and_nothing_on_stderr():
    done = shiftinv("--help")
    assert done.returncode == 0
    assert done.stderr == ""
    assert done.stdout.startswith("usage: shiftinv") and "table1" in done.stdout


@pytest.mark.parametrize("args, message", [
    (("table1", "--preset", "nope"), "shiftinv table1: error: argument --preset: invalid choice: 'nope'"),
    (("frobnicate",), "shiftinv: error: argument command: invalid choice: 'frobnicate'"),
])
def test_a_usage_error_is_one_line_of_our_own(args, message):
    done = shiftinv(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr


@pytest.mark.parametrize("case", ["missing model", "empty data dir"])
def test_an_error_at_run_time_still_shows_after_tensorflow_started(tmp_path, case):
    """The quieting ends with the import: the package's own error line (from a command that ran) shows,
    and nothing else (tfds's absl note about a folder without dataset_info.json is hidden too)."""
    if case == "missing model":
        done, message = shiftinv("evaluate", str(tmp_path / "missing.keras")), "shiftinv evaluate: error: model file not found"
    else:
        (tmp_path / "empty").mkdir()
        done = shiftinv("table1", "--methods", "stride", "--data-dir", str(tmp_path / "empty"),
                        "--out", str(tmp_path / "out"))
        message = "shiftinv table1: error: Fashion-MNIST not found in"
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert not (tmp_path / "out").exists()  # the folder is made only once the data is found


@pytest.mark.parametrize("command", ["table1", "finetune", "segment"])
def test_a_wrong_data_dir_leaves_no_new_out_folder_and_keeps_an_existing_one(tmp_path, capsys, command):
    from keras_shiftinv.cli import main

    for out, existed in ((tmp_path / "new" / "out", False), (tmp_path / "mine", True)):
        if existed:
            out.mkdir()
        assert main([command, "--methods", "aps", "--data-dir", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("shiftinv")]
        assert len(lines) == 1 and "Fashion-MNIST not found in" in lines[0], lines
        assert out.exists() == existed and (not existed or not any(out.iterdir()))
        assert not (tmp_path / "new").exists()


def test_shiftinv_verbose_leaves_tensorflow_logging_alone():
    code = ("import sys; sys.argv = ['shiftinv']; import os, keras_shiftinv; "
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), 'tensorflow' in sys.modules)")
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SHIFTINV_VERBOSE")}
    runs = {}
    for verbose in ("", "1"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={**environ, "PYTHONPATH": ROOT, "SHIFTINV_VERBOSE": verbose})
        assert done.returncode == 0, done.stderr[-2000:]
        runs[verbose] = (done.stdout.split(), done.stderr)
    assert runs[""] == (["3", "True"], "")
    assert runs["1"][0][0] != "3" and runs["1"][0][1] == "True"  # TensorFlow's own default, not ours


def test_library_errors_name_python_arguments_and_the_cli_line_names_the_flags(tmp_path, capsys):
    """The same mistakes: from Python the error names the argument; `shiftinv` prints the flag, exit 2."""
    from keras_shiftinv import data
    from keras_shiftinv.cli import main
    from keras_shiftinv.errors import UsageError
    from keras_shiftinv.training.run_dir import RunDir

    with pytest.raises(UsageError, match=r"^dataset 'folder' needs `data_dir=DIR` \(DIR/train/<class>/<image>"):
        data.describe("folder", "train")
    assert main(["train", "--dataset", "folder", "--model-dir", str(tmp_path / "new")]) == 2
    assert capsys.readouterr().err == ("shiftinv train: error: dataset 'folder' needs --data-dir DIR "
                                       "(DIR/train/<class>/<image>, optional DIR/val)\n")
    assert not (tmp_path / "new").exists()  # the run dir is made only once the data is found
    run = tmp_path / "run"
    RunDir(run).write_config({"method": "group"})  # a run dir of other settings
    with pytest.raises(UsageError, match=r"pick another `model_dir`, or pass `overwrite=True`$"):
        RunDir(run).decide({"method": "aps"}, overwrite=False)
    args = ["train", "--dataset", "fashion_mnist", "--max-train-examples", "64", "--batch-size", "32",
            "--model-dir", str(run)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"shiftinv train: error: {run} holds a run with other settings (")
    assert err.endswith("pick another --model-dir, or pass --overwrite\n") and "`" not in err
    assert main([*args[:-4], "--batch-size", "512", "--model-dir", str(tmp_path / "other")]) == 2
    assert capsys.readouterr().err.startswith("shiftinv train: error: --batch-size 512 is larger than the 64 ")
