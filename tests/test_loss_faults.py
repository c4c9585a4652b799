"""The bad-input sweep of the losses, short form: no silent NaN gradient, no unexpected exception."""

from __future__ import annotations

import torch

from evaluation.benchmarks import loss_faults


def test_a_short_fault_sweep_has_no_silent_failure():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = loss_faults.sweep(300, seed=0)
    finally:
        torch.set_num_threads(threads)
    assert sum(result.outcomes.values()) == 300
    for outcome in (loss_faults.SILENT_NAN_GRADIENT, loss_faults.OTHER_EXCEPTION, loss_faults.INVALID_ACCEPTED,
                    loss_faults.UNEXPECTED_REFUSAL, loss_faults.NONFINITE_LOSS):
        assert result.outcomes[outcome] == 0, (outcome, result.examples.get(outcome))
    assert result.outcomes[loss_faults.OK] > 150  # the sweep exercises the losses, not only their refusals
    assert result.refusals["non-finite embeddings"] > 0 and result.refusals["negative label id"] > 0


def test_the_sweep_is_deterministic_and_a_short_run_is_a_prefix():
    first = [loss_faults.draw_case(i, seed=3) for i in range(5)]
    again = [loss_faults.draw_case(i, seed=3) for i in range(5)]
    for (case_a, x_a, y_a), (case_b, x_b, y_b) in zip(first, again):
        assert case_a == case_b and torch.equal(y_a, y_b)
        assert torch.equal(x_a.isnan(), x_b.isnan()) and torch.equal(x_a.nan_to_num(), x_b.nan_to_num())


def test_the_report_lists_every_outcome_and_the_command():
    result = loss_faults.sweep(3, seed=0)
    report = loss_faults.format_report(result, "python -m evaluation.benchmarks.loss_faults --batches 3", 3, 0)
    assert "--batches 3" in report and all(outcome in report for outcome in loss_faults.OUTCOMES)
