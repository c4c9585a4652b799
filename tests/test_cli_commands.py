"""The st-gloss group registers every command and turns bad input into exit 2."""

from click.testing import CliRunner

from st_gloss.cli import main


def test_every_command_is_registered():
    assert set(main.commands) == {"demo", "eval", "train", "predict"}


def test_predict_through_the_group_refuses_a_missing_model_with_exit_2(tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("text\nhello\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "no-model"), "--data", str(data),
                                       "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()
