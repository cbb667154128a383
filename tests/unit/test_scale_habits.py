"""What keeps a quiet cluster quiet: skipped unchanged applies, our own status events ignored, progress
writes held back, jittered resyncs, server-side selectors on the child watches."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from kubeforge import watches
from kubeforge.applymemo import ApplyMemo
from kubeforge.statuswrite import OWN_WRITES, OwnWrites, patch_status_if_changed
from kubeforge.trainingjob.status import progress_hold, starting_hold
from tests.unit.fake_kube import FakeKube
from tests.unit.trainingjob_wrappers import MakeTrainingJob

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def service(port: int = 80) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "ml"}, "spec": {"ports": [{"port": port}]}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now



class CountingKube(FakeKube):
    """The fake API server, counting its lists."""

    lists = 0

    def list_(self, *args, **kwargs):
        self.lists += 1
        return super().list_(*args, **kwargs)

def test_an_object_applied_a_moment_ago_is_unchanged_and_a_changed_one_is_not():
    memo = ApplyMemo(ttl=60, clock=Clock())
    memo.record(service(), "kubeforge")
    assert memo.unchanged(service(), "kubeforge")
    assert not memo.unchanged(service(port=81), "kubeforge")
    assert not memo.unchanged(service(), "kubeforge-replicas")


def test_a_child_pinned_to_its_uid_is_the_same_object_as_the_one_first_applied_without_it():
    memo = ApplyMemo(ttl=60, clock=Clock())
    memo.record(service(), "kubeforge")
    pinned = service()
    pinned["metadata"]["uid"] = "0b7c1e5e-0000-4000-8000-000000000001"
    assert memo.unchanged(pinned, "kubeforge")


def test_an_applied_object_is_applied_again_after_a_resync_period_or_once_forgotten():
    clock = Clock()
    memo = ApplyMemo(ttl=60, clock=clock)
    memo.record(service(), "kubeforge")
    clock.now = 61
    assert not memo.unchanged(service(), "kubeforge")
    memo.record(service(), "kubeforge")
    memo.forget("Service", "ml", "s")
    assert not memo.unchanged(service(), "kubeforge")


def test_the_event_of_our_own_status_write_is_recognised_once():
    own = OwnWrites()
    own.record("TrainingJob", "ml", "a", "42")
    assert not own.is_own("TrainingJob", "ml", "a", "43")
    assert own.is_own("TrainingJob", "ml", "a", "42")
    assert not own.is_own("TrainingJob", "ml", "a", "42")


def test_a_status_write_that_finds_the_spec_changed_meanwhile_is_not_taken_for_our_own():
    name = "edited-meanwhile"  # OWN_WRITES is per process: a name no other test writes
    kube = FakeKube(MakeTrainingJob(name).obj())
    read = kube.get("", "TrainingJob", "ml", name)
    kube.objects[("TrainingJob", "ml", name)]["metadata"]["generation"] = 2  # a user's edit after our read
    patch_status_if_changed(kube, read, {}, {"phase": "Pending"})
    written = kube.get("", "TrainingJob", "ml", name)["metadata"]["resourceVersion"]
    assert not OWN_WRITES.is_own("TrainingJob", "ml", name, written)


def progress(step: int, written: datetime) -> dict:
    return {"phase": "Running", "progress": {"step": step}, "lastProgressTime": written.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_a_write_that_only_moves_progress_waits_for_the_interval():
    previous = progress(10, NOW - timedelta(seconds=5))
    assert progress_hold(previous, progress(11, NOW), NOW, 30) == 25


def test_progress_goes_out_at_once_with_any_other_change_or_once_the_interval_passed():
    previous = progress(10, NOW - timedelta(seconds=5))
    assert progress_hold(previous, progress(11, NOW) | {"phase": "Succeeded"}, NOW, 30) is None
    assert progress_hold(progress(10, NOW - timedelta(seconds=31)), progress(11, NOW), NOW, 30) is None
    assert progress_hold({"phase": "Running"}, progress(1, NOW), NOW, 30) is None


def starting(ready: int, created: datetime, phase: str = "Pending", reason: str = "WorkersPending") -> dict:
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    running = "True" if phase == "Running" else "False"
    return {"phase": phase, "message": f"{ready}/4 workers ready", "workers": {"ready": ready, "total": 4},
            "conditions": [{"type": "Created", "status": "True", "reason": "JobCreated", "lastTransitionTime": stamp},
                           {"type": "Running", "status": running, "reason": reason, "message": f"{ready}/4 ready"}]}


def test_a_starting_jobs_count_of_ready_workers_waits_until_its_quiet_seconds_passed():
    created = NOW - timedelta(seconds=2)
    assert starting_hold(starting(1, created), starting(2, created), NOW, quiet=5) == 3


def test_a_starting_jobs_new_phase_reason_or_late_count_goes_out_at_once():
    created = NOW - timedelta(seconds=2)
    assert starting_hold(starting(3, created), starting(4, created, phase="Running", reason="AllWorkersReady"), NOW) is None
    assert starting_hold(starting(1, created), starting(1, created, reason="Unschedulable"), NOW) is None
    assert starting_hold(starting(1, NOW - timedelta(seconds=6)), starting(2, NOW - timedelta(seconds=6)), NOW, quiet=5) is None
    assert starting_hold({}, starting(0, created), NOW) is None  # the first write: Created itself


def test_a_child_kind_asks_the_api_server_for_its_owners_label():
    assert watches.child_selector(None, "kubeforge.io/trainingjob") == "kubeforge.io/trainingjob"
    assert watches.child_selector("kubeforge.io/trainingjob", "kubeforge.io/trainingjob") == "kubeforge.io/trainingjob"


def test_a_child_kind_two_owners_watch_falls_back_to_the_label_both_carry():
    assert watches.child_selector("kubeforge.io/trainingjob", "kubeforge.io/modelendpoint") == watches.MANAGED_BY_SELECTOR
    assert watches.child_selector(watches.MANAGED_BY_SELECTOR, "kubeforge.io/x") == watches.MANAGED_BY_SELECTOR


def test_new_work_goes_ahead_of_background_rechecks():
    from kubeforge.workqueue import WorkQueue

    seen: list[str] = []
    queue = WorkQueue(workers=1)
    queue.register("Kind", lambda namespace, name: seen.append(name))
    for name in ("old-1", "old-2"):
        queue.add("Kind", "ns", name, background=True)
    queue.add("Kind", "ns", "new")
    queue.add("Kind", "ns", "old-2")  # an edit to a queued re-check moves it up

    async def drain() -> None:
        task = asyncio.create_task(queue.run())
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(drain())
    assert seen == ["new", "old-2", "old-1"]


def test_only_a_restarts_listing_of_an_already_reconciled_object_is_a_background_recheck():
    assert watches.already_reconciled({"generation": 3}, {"observedGeneration": 3})
    assert not watches.already_reconciled({"generation": 4}, {"observedGeneration": 3})
    assert not watches.already_reconciled({"generation": 1}, {})


def test_jobs_waiting_on_one_pool_share_one_read_of_its_nodes_until_it_is_stale():
    from kubeforge.trainingjob.poolnodes import PoolNodes

    clock, kube = Clock(), CountingKube()
    pool = PoolNodes(ttl=5, clock=clock)
    for _ in range(3):
        pool.read(kube, "pool=a100")
    assert kube.lists == 1
    clock.now = 6
    pool.read(kube, "pool=a100")
    pool.read(kube, "pool=h100")
    assert kube.lists == 3


def test_a_stale_pool_is_read_again_by_one_pass_while_the_others_take_the_last_read():
    import threading

    from kubeforge.trainingjob.poolnodes import PoolNodes

    release, started = threading.Event(), threading.Event()

    class SlowKube(FakeKube):
        lists = 0

        def list_(self, *args, **kwargs):
            self.lists += 1
            if self.lists == 2:  # the re-read: held until the others have passed
                started.set()
                release.wait(5)
            return super().list_(*args, **kwargs)

    clock, kube = Clock(), SlowKube()
    pool = PoolNodes(ttl=5, clock=clock)
    assert pool.read(kube, "pool=a100") == []
    clock.now = 6
    rereading = threading.Thread(target=pool.read, args=(kube, "pool=a100"))
    rereading.start()
    assert started.wait(5)
    assert [pool.read(kube, "pool=a100") for _ in range(3)] == [[], [], []]  # the stale read, no list each
    release.set()
    rereading.join(5)
    assert kube.lists == 2


def trainingjob_at(version: str, phase: str = "Pending") -> dict:
    return {"apiVersion": "kubeforge.io/v1alpha1", "kind": "TrainingJob", "status": {"phase": phase},
            "metadata": {"name": "t", "namespace": "ml", "resourceVersion": version, "managedFields": [{"manager": "x"}]}}


def test_a_pass_reads_the_body_of_the_version_the_watch_last_reported_and_no_other():
    from kubeforge.crcache import ResourceCache

    cache = ResourceCache()
    cache.seen("TrainingJob", "ml", "t", "5", trainingjob_at("5"))
    assert cache.get("TrainingJob", "ml", "t")["metadata"] == {"name": "t", "namespace": "ml", "resourceVersion": "5"}
    cache.remember(trainingjob_at("6", "Running"))  # our status write: not served before its event arrives
    assert cache.get("TrainingJob", "ml", "t") is None
    cache.seen("TrainingJob", "ml", "t", "6")
    assert cache.get("TrainingJob", "ml", "t")["status"]["phase"] == "Running"
    cache.seen("TrainingJob", "ml", "t", "7")  # someone's edit: read from the API server
    assert cache.get("TrainingJob", "ml", "t") is None
    cache.gone("TrainingJob", "ml", "t")
    cache.remember(trainingjob_at("8"))  # nothing the watch reports is kept
    assert cache.get("TrainingJob", "ml", "t") is None


def test_each_read_of_a_cached_body_is_a_copy_of_its_own():
    from kubeforge.crcache import ResourceCache

    cache, body = ResourceCache(), trainingjob_at("5")
    cache.seen("TrainingJob", "ml", "t", "5", body)
    body["status"]["phase"] = "changed after it was kept"
    first = cache.get("TrainingJob", "ml", "t")
    first["status"]["phase"] = "changed by a pass"
    assert cache.get("TrainingJob", "ml", "t")["status"]["phase"] == "Pending"


def test_the_resource_cache_keeps_bodies_of_the_most_recently_active_only():
    from kubeforge.crcache import ResourceCache

    cache = ResourceCache(capacity=2)
    for name in ("a", "b", "c"):
        body = {**trainingjob_at("1"), "metadata": {"name": name, "namespace": "ml", "resourceVersion": "1"}}
        cache.seen("TrainingJob", "ml", name, "1", body)
    assert [cache.get("TrainingJob", "ml", n) is not None for n in ("a", "b", "c")] == [False, True, True]


def test_a_delayed_background_add_stays_in_the_background_unless_new_work_asks_for_the_same_key():
    from kubeforge.workqueue import WorkQueue

    seen: list[str] = []
    queue = WorkQueue(workers=1)
    queue.register("Kind", lambda namespace, name: seen.append(name))

    async def scenario() -> None:
        queue.add("Kind", "ns", "relisted-child", after=0.05, background=True)  # a restart's listing of a child
        queue.add("Kind", "ns", "edited", after=0.05, background=True)
        queue.add("Kind", "ns", "edited", after=0.1)  # then a real event of its child: the earlier timer now fires up front
        queue.add("Kind", "ns", "new", after=0.2)
        deadline = asyncio.get_running_loop().time() + 5
        while queue.scheduled:  # every timer fires before any worker runs: the order is then the queue's
            assert asyncio.get_running_loop().time() < deadline, "timers never fired"
            await asyncio.sleep(0.01)
        task = asyncio.create_task(queue.run())
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert seen == ["edited", "new", "relisted-child"]


def test_a_pass_lists_children_from_the_api_server_until_every_index_holds_its_initial_list():
    import kopf

    from kubeforge.childcache import ChildIndex, Listed
    from kubeforge.trainingjob.controller import Children

    listed, kube = Listed(), CountingKube()
    kube.objects[("Pod", "ml", "train-a1-0")] = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "train-a1-0", "namespace": "ml", "labels": {"kubeforge.io/trainingjob": "train"}}}
    pods = ChildIndex(kopf.OperatorRegistry(), "", "v1", "pods", "kubeforge.io/trainingjob", listed=listed)
    pods.bind({})  # bound at startup, still empty while kopf lists
    children = Children(pods=pods)
    assert [p["metadata"]["name"] for p in children.read(kube, "Pod", "ml", "train")] == ["train-a1-0"]
    assert kube.lists == 1
    listed.handler_called()  # kopf's first event handler call: the lists are in
    assert children.read(kube, "Pod", "ml", "train") == [] and kube.lists == 1


def test_while_kopf_lists_new_work_is_queued_from_the_index_functions_and_re_checks_are_not():
    from kubeforge.childcache import Listed
    from kubeforge.workqueue import WorkQueue

    listed, queue = Listed(), WorkQueue()
    watches.queue_new_work_early(queue, listed, "TrainingJob", "ml", "new", {"generation": 1}, {})
    watches.queue_new_work_early(queue, listed, "TrainingJob", "ml", "edited", {"generation": 2}, {"observedGeneration": 1})
    watches.queue_new_work_early(queue, listed, "TrainingJob", "ml", "old", {"generation": 1}, {"observedGeneration": 1})
    assert queue.depth == 2
    listed.handler_called()  # from here the event handlers queue everything
    watches.queue_new_work_early(queue, listed, "TrainingJob", "ml", "newer", {"generation": 1}, {})
    assert queue.depth == 2
