"""The learning-rate schedule and the rules that end the default schedule early, on made-up histories."""

from __future__ import annotations

import pytest
import torch

from vidcls.errors import VidclsError
from vidcls.training.schedule import Schedule, epochs_within, plateaued
from vidcls.training.loop import TrainConfig, check_schedule_options, plan_schedule


def _rows(accuracies: list[float], losses: list[float], seconds: float = 10.0) -> list[dict]:
    """History rows as training writes them (smoothed values given directly)."""
    return [
        {"epoch": epoch, "val_accuracy_smoothed": accuracy, "val_loss_smoothed": loss, "wall_seconds": seconds,
         "elapsed_seconds": seconds * epoch}
        for epoch, (accuracy, loss) in enumerate(zip(accuracies, losses, strict=True), 1)
    ]


def test_exact_schedule_warms_up_then_decays_to_zero_at_its_end():
    schedule = Schedule.plan(10, 10, 0.1, "exact")
    factors = [schedule(step) for step in range(101)]
    assert factors[:10] == pytest.approx([(step + 1) / 10 for step in range(10)])
    assert factors[10] == pytest.approx(1.0) and factors[55] == pytest.approx(0.5) and factors[100] == 0
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert schedule.end_epoch == 10
    assert schedule.after_epoch(5, _rows([1.0] * 5, [0.1] * 5), 1e9) is None  # exact: never adapted


def test_plateau_needs_both_accuracy_and_loss_to_stall():
    flat = _rows([0.5, 0.9, 1.0, 1.0, 1.0, 1.0], [1.0, 0.4, 0.2, 0.2, 0.2, 0.2])
    assert plateaued(flat, patience=3)
    assert not plateaued(flat, patience=6)  # not enough epochs to tell
    still_learning = _rows([0.5, 0.9, 1.0, 1.0, 1.0, 1.0], [1.0, 0.4, 0.2, 0.18, 0.16, 0.14])
    assert not plateaued(still_learning, patience=3)  # the loss still falls by more than 5%
    rising = _rows([0.5, 0.9, 0.9, 0.9, 0.9, 0.95], [1.0, 0.4, 0.4, 0.4, 0.4, 0.4])
    assert not plateaued(rising, patience=3)
    without_validation = [{"epoch": 1, "wall_seconds": 1.0}, {"epoch": 2, "wall_seconds": 1.0}]
    assert not plateaued(without_validation, patience=1)


def test_plateau_shortens_the_decay_without_a_jump():
    schedule = Schedule.plan(100, 10, 0.1, "planned", adaptive=True)
    assert schedule.plateau_patience == 40  # PLATEAU_STEPS (400) at 10 steps an epoch
    history = _rows([0.5] + [1.0] * 59, [1.0] + [0.2] * 59)
    before = schedule(600)
    assert "validation" in schedule.after_epoch(60, history, elapsed_seconds=60.0)
    assert schedule.end_epoch == 75  # a tail of a quarter of the 60 epochs run
    assert schedule(600) == pytest.approx(before) and schedule(750) == 0
    assert schedule.reason.startswith("validation plateau") and schedule.plateau_epoch == 60
    assert schedule.after_epoch(61, history + _rows([1.0], [0.2]), 61.0) is None  # one cut per run


def test_time_budget_cuts_the_plan_to_the_epochs_that_fit():
    schedule = Schedule.plan(100, 10, 0.1, "planned", adaptive=True, budget_minutes=2)
    history = _rows([0.5, 0.6], [1.0, 0.9], seconds=10.0)
    history[0]["wall_seconds"] = 30.0  # the first epoch decodes every video: not the speed to plan with
    assert schedule.after_epoch(1, history[:1], elapsed_seconds=30.0) is None  # decided from epoch 2 on
    change = schedule.after_epoch(2, history, elapsed_seconds=40.0)
    assert "time budget" in change and schedule.end_epoch == 10  # 80 s left at 10 s an epoch
    # Still warming up: the warm-up ends with the next step (a tenth of the new plan has passed), then the decay.
    assert schedule.warmup_steps == 21 and schedule(20) == pytest.approx(1.0) and schedule(100) == 0
    small_cut = Schedule.plan(100, 10, 0.1, "planned", adaptive=True)
    small_cut.replan(2, 60, "budget")
    assert small_cut.warmup_steps == 60 and small_cut(59) == pytest.approx(1.0)  # a tenth of 600 steps
    slower = _rows([0.6] * 4, [0.9] * 4, seconds=20.0)
    assert "ending after epoch 6" in schedule.after_epoch(4, slower, elapsed_seconds=80.0)
    assert schedule(40) == pytest.approx(schedule.cut_factor) and schedule(60) == 0
    # Faster again (another job ended): the end moves later, the decay still continuous, never past the plan.
    factor = schedule(50)
    faster = slower + _rows([0.6], [0.9], seconds=1.0) * 3
    assert "ending after epoch 35" in schedule.after_epoch(5, faster, elapsed_seconds=90.0)  # 30 s left, 1 s an epoch
    assert schedule(50) == pytest.approx(factor) and 0 < schedule(340) < schedule(51) and schedule(350) == 0
    assert schedule.after_epoch(6, faster, elapsed_seconds=90.0) is None  # one epoch later (36): not worth a change
    assert "ending after epoch 100" in schedule.after_epoch(6, faster, elapsed_seconds=10.0)
    assert epochs_within(-5.0, 10.0) == 0


def test_the_schedule_and_its_cuts_travel_in_the_scheduler_state():
    def scheduler(schedule):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    cut = Schedule.plan(50, 4, 0.1, "planned", adaptive=True, budget_minutes=9)
    cut.replan(20, 30, "because")
    resumed = scheduler(Schedule.plan(50, 4, 0.1, "planned", adaptive=True, budget_minutes=9))
    resumed.load_state_dict(scheduler(cut).state_dict())
    restored = resumed.lr_lambdas[0]
    assert (restored.end_epoch, restored.reason, restored.cut_step) == (30, "because", 80)
    assert [restored(step) for step in range(130)] == [cut(step) for step in range(130)]


def test_epochs_and_steps_are_exact_and_exclusive():
    def plan(**options) -> Schedule:
        return plan_schedule(TrainConfig(data="d", output="o", **options), from_scratch=True, steps_per_epoch=30)

    assert plan(epochs=7).end_epoch == 7 and not plan(epochs=7).adaptive
    assert plan(steps=100).end_epoch == 4 and not plan(steps=100).adaptive
    default = plan()
    assert default.adaptive and default.end_epoch == 100 and default.budget_seconds > 0  # 3,000 steps
    assert plan(time_budget=0).budget_seconds is None
    for clash in (dict(epochs=3, time_budget=5.0), dict(epochs=3, steps=90)):
        with pytest.raises(VidclsError, match="only one"):
            check_schedule_options(TrainConfig(data="d", output="o", **clash))
