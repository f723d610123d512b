"""Which Ultralytics keys a resume of an injected run may change: batch, batches per epoch (data), accumulation and
(with unfreeze) freeze are refused in one line naming the key and the fix; the rest pass."""

from __future__ import annotations

import pytest

from yolo_gd.errors import UserError
from yolo_gd.inject.resume_keys import check_resume_settings, settings

SAVED = settings(8, 6, 2, [0, 1])


@pytest.mark.parametrize("now, key, words", [
    (settings(16, 3, 1, [0, 1]), "batch", "from 8 to 16"),
    (settings(8, 9, 2, [0, 1]), "data", "from 6 to 9"),
    (settings(8, 6, 4, [0, 1]), "nbs", "from 2 to 4"),
])
def test_a_change_of_the_step_clock_is_refused_in_one_line(now, key, words):
    with pytest.raises(UserError, match=words) as e:
        check_resume_settings(SAVED, now, unfreeze=False, checkpoint="run/weights/last.pt")
    assert e.value.key == key and "\n" not in str(e.value)
    assert "model=run/weights/last.pt without resume" in str(e.value)


def test_freeze_is_refused_only_where_unfreeze_builds_groups_from_it():
    now = settings(8, 6, 2, 3)
    check_resume_settings(SAVED, now, unfreeze=False)  # allowed: the groups hold frozen parameters too
    with pytest.raises(UserError, match=r"'freeze' from \[0, 1\] to 3") as e:
        check_resume_settings(SAVED, now, unfreeze=True)
    assert e.value.key == "freeze"


def test_the_same_settings_and_old_states_pass():
    check_resume_settings(SAVED, settings(8, 6, 2, (0, 1)), unfreeze=True)
    check_resume_settings(None, settings(16, 3, 1, None), unfreeze=True)  # a state written before settings were kept
