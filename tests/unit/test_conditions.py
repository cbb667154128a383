"""Conditions keep their transition time unless the status flips."""

from kubeforge import conditions as c


def test_new_condition_gets_the_current_time():
    out = c.set_condition([], "Ready", c.TRUE, "AllReady", "2/2 ready", 3, now="T1")
    assert out == [{"type": "Ready", "status": "True", "reason": "AllReady", "message": "2/2 ready", "lastTransitionTime": "T1", "observedGeneration": 3}]


def test_same_status_keeps_the_transition_time_but_updates_the_message():
    first = c.set_condition([], "Ready", c.TRUE, "AllReady", "2/2", 1, now="T1")
    second = c.set_condition(first, "Ready", c.TRUE, "AllReady", "3/3", 2, now="T2")
    assert second[0]["lastTransitionTime"] == "T1"
    assert second[0]["message"] == "3/3"


def test_flipped_status_moves_the_transition_time():
    first = c.set_condition([], "Ready", c.TRUE, "AllReady", "", 1, now="T1")
    second = c.set_condition(first, "Ready", c.FALSE, "Degraded", "", 1, now="T2")
    assert second[0]["lastTransitionTime"] == "T2"


def test_transitions_report_only_changes():
    old = c.set_condition([], "Ready", c.TRUE, "AllReady", "", 1, now="T1")
    new = c.set_condition(old, "Progressing", c.TRUE, "Rolling", "", 1, now="T2")
    assert [x["type"] for x in c.transitions(old, new)] == ["Progressing"]
