"""Config is the one list of run settings: the train options, the presets' defaults and config.json come from it."""

import json
from dataclasses import fields

import pytest

import nanocnn as nc
from nanocnn.cli import build_parser, main
from nanocnn.train.config import Config, option
from nanocnn.train.presets import PRESETS, resolve


def train_parser():
    return build_parser()._subparsers._group_actions[0].choices["train"]


def test_every_config_field_is_a_train_option_with_its_help_and_type():
    actions = {a.dest: a for a in train_parser()._actions}
    for f in fields(Config):
        action = actions[f.name]
        assert action.option_strings == [
            f"--{option(f.name)}",
            *([f"--no-{option(f.name)}"] if f.type == "bool" else []),
        ]
        assert f.metadata["help"].replace("%", "%%") in action.help
    args = train_parser().parse_args(["--batch-size", "32", "--lr", "0.01", "--no-shuffle", "--schedule", "cosine"])
    assert (args.batch_size, args.lr, args.shuffle, args.schedule, args.epochs) == (32, 0.01, False, "cosine", None)


def test_the_help_shows_each_presets_default():
    text = train_parser().format_help()
    assert "128 in preset default, 128 in preset best, 64 in preset classic, 1 in preset seed" in " ".join(text.split())


def test_presets_supply_their_defaults_as_a_config_and_fallbacks_fill_the_rest():
    for name, preset in PRESETS.items():
        assert isinstance(preset.defaults, Config)
        resolved = resolve(Config(preset=name))
        for f in fields(Config):
            given = getattr(preset.defaults, f.name)
            if f.metadata["run"] and f.name != "preset":
                assert getattr(resolved, f.name) == (f.metadata["fallback"] if given is None else given), f.name
        assert resolved.preset == name
    assert resolve(Config()).preset == "default" and resolve(Config(lr=0.5)).lr == 0.5


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
        (dict(batch_size=2.5), "batch-size must be an integer >= 1, got 2.5"),
        (dict(lr=-1.0), "lr must be a finite number > 0, got -1.0"),
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'; choose one of sgd, adam"),
        (dict(shuffle="yes"), "shuffle must be true or false, got 'yes'"),
        (dict(preset="huge"), "unknown preset 'huge'; choose one of default, best, classic, seed"),
        (dict(threads=0), "threads must be an integer >= 1, got 0"),
    ],
)
def test_config_checks_name_the_setting_and_value(values, message):
    with pytest.raises(nc.UserError) as e:
        resolve(Config(**values))
    assert str(e.value) == message


def test_the_thread_count_describes_the_machine_and_is_never_saved(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "seed", "--limit-train", "20", "--limit-test", "10", "--no-progress", "--out", out]
    assert main([str(a) for a in argv + ["--threads", "2"]]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert "threads" not in saved and saved == nc.load(out / "model.npz")[1]["config"]
    assert set(saved) == {f.name for f in fields(Config) if f.metadata["run"]}
    assert "threads" not in capsys.readouterr().out.splitlines()[0]


def test_a_bug_is_not_masked_as_a_user_error(monkeypatch):
    """Only UserError and OSError become one-line errors; anything else keeps its traceback."""
    import nanocnn.cli.evaluate as evaluate

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(evaluate, "run_summary", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["summary"])
    monkeypatch.setattr(evaluate, "run_summary", lambda args: (_ for _ in ()).throw(ValueError("numpy said no")))
    with pytest.raises(ValueError, match="numpy said no"):
        main(["summary"])
