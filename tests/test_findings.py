"""yolo_gd.health.findings: a Finding's text and fields, and which optimizer names count as scale-invariant."""

from __future__ import annotations

import dataclasses

import pytest

from yolo_gd.health.findings import SCALE_INVARIANT_PREFIXES, Finding


def test_text_is_code_title_evidence_and_suggestion():
    f = Finding("lr-too-high", "the LR is too high", "3 spikes", "lower the LR")
    assert f.text() == "[lr-too-high] the LR is too high\n  evidence: 3 spikes\n  try: lower the LR"
    assert f.steps == ()


def test_findings_are_frozen_and_compare_by_value():
    f = Finding("c", "t", "e", "s", (1, 2))
    assert f == Finding("c", "t", "e", "s", (1, 2)) and f != Finding("c", "t", "e", "s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.code = "other"


@pytest.mark.parametrize("name, invariant", [("AdamW", True), ("NAdam", True), ("RAdam", True), ("RMSProp", True),
                                             ("Adagrad", True), ("Lion", True), ("SGD", False), ("Muon", False)])
def test_scale_invariant_prefixes_match_lowercased_optimizer_names(name, invariant):
    assert name.lower().startswith(SCALE_INVARIANT_PREFIXES) is invariant
