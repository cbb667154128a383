"""Pure parts of kubeforge-serve: config loading, runtime choice, TensorRT profile and cache key, codecs, batching."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from kubeforge import servecontract as sc
from kubeforge_workloads.serve.backends.quantize import compare_outputs
from kubeforge_workloads.serve.backends.trt import ProfileShapes, engine_cache_key, profile_shapes
from kubeforge_workloads.serve.batcher import DynamicBatcher
from kubeforge_workloads.serve.config import ServeConfig, load_config
from kubeforge_workloads.serve.errors import (BackendUnavailable, DeadlineExceeded, InferenceFailed, InvalidInput,
                                              ModelNotReady, QueueFull)
from kubeforge_workloads.serve.protocol import v2
from kubeforge_workloads.serve.runtime import CPU_EP, CUDA_EP, Platform, resolve_runtime
from kubeforge_workloads.serve.tokenization import Encoded, pad_batch, plan_groups

CPU_ONLY = Platform(None, None, (CPU_EP,))
GPU_ORT = Platform("NVIDIA H100", None, (CUDA_EP, CPU_EP))
GPU_TRT = Platform("NVIDIA H100", "10.9.0", (CUDA_EP, CPU_EP))


# --- config: env from the ModelEndpoint builder, flags win -------------------------------------------

def test_config_reads_the_serving_env_contract():
    cfg = load_config([], env={sc.MODEL_DIR: "/m", sc.MAX_BATCH_SIZE: "8", sc.MAX_DELAY_MS: "2.5",
                               sc.RUNTIME: "torch", sc.PORT: "9000", sc.QUANTIZE: "int8"})
    assert (cfg.model_dir, cfg.max_batch_size, cfg.max_delay_ms, cfg.runtime, cfg.port, cfg.quantize) == \
        ("/m", 8, 2.5, "torch", 9000, "int8")


def test_a_flag_overrides_the_env():
    cfg = load_config(["--max-batch-size", "4"], env={sc.MODEL_DIR: "/m", sc.MAX_BATCH_SIZE: "8"})
    assert cfg.max_batch_size == 4


def test_without_env_or_flags_every_setting_is_the_serve_config_default():
    assert load_config(["--model-dir", "/m"], env={}) == ServeConfig(model_dir="/m")


@pytest.mark.parametrize("env, flags, message", [
    ({}, [], "--model-dir"),
    ({sc.MODEL_DIR: "/m", sc.MAX_BATCH_SIZE: "many"}, [], "max-batch-size"),
    ({sc.MODEL_DIR: "/m"}, ["--max-batch-size", "0"], "max-batch-size must be >= 1"),
    ({sc.MODEL_DIR: "/m", sc.RUNTIME: "tpu"}, [], "runtime must be one of"),
])
def test_a_bad_setting_exits_with_a_message_naming_it(env, flags, message, capsys):
    with pytest.raises(SystemExit):
        load_config(flags, env=env)
    assert message in capsys.readouterr().err


# --- runtime selection ---------------------------------------------------------------------------------

@pytest.mark.parametrize("requested, fmt, onnx, hf, platform, quantize, expected", [
    ("auto", "auto", True, True, CPU_ONLY, "none", ("onnxruntime", "cpu", "none")),
    ("auto", "auto", True, True, GPU_ORT, "none", ("onnxruntime", "cuda", "none")),
    ("auto", "auto", True, True, GPU_TRT, "none", ("tensorrt", "cuda", "none")),
    ("auto", "huggingface", True, True, CPU_ONLY, "none", ("torch", "cpu", "none")),
    ("auto", "auto", False, True, GPU_TRT, "none", ("torch", "cuda", "none")),
    ("auto", "auto", True, False, CPU_ONLY, "int8", ("onnxruntime", "cpu", "int8")),
    ("auto", "auto", True, False, GPU_ORT, "int8", ("onnxruntime", "cuda", "none")),  # int8 is CPU-only
    ("onnxruntime", "auto", True, True, GPU_TRT, "none", ("onnxruntime", "cuda", "none")),
    ("torch", "auto", True, True, CPU_ONLY, "int8", ("torch", "cpu", "none")),
])
def test_runtime_resolution(requested, fmt, onnx, hf, platform, quantize, expected):
    res = resolve_runtime(requested, fmt, onnx, hf, platform, quantize)
    assert (res.runtime, res.device, res.quantize) == expected


@pytest.mark.parametrize("requested, onnx, hf, platform, message", [
    ("tensorrt", True, True, CPU_ONLY, "needs a CUDA GPU"),
    ("tensorrt", True, True, GPU_ORT, "needs the tensorrt Python package"),
    ("onnxruntime", False, True, CPU_ONLY, "needs an ONNX model"),
    ("torch", True, False, CPU_ONLY, "needs a Hugging Face directory"),
])
def test_an_impossible_runtime_is_refused_with_the_reason(requested, onnx, hf, platform, message):
    with pytest.raises(BackendUnavailable, match=message):
        resolve_runtime(requested, "auto", onnx, hf, platform)


# --- TensorRT profile and engine cache key --------------------------------------------------------------

def test_the_profile_spans_batch_one_to_max_and_the_served_sequence_lengths():
    assert profile_shapes(32, 128) == ProfileShapes(min=(1, 1), opt=(16, 128), max=(32, 128))
    assert profile_shapes(1, 512) == ProfileShapes(min=(1, 1), opt=(1, 128), max=(1, 512))


def test_the_engine_cache_key_changes_with_gpu_tensorrt_version_model_profile_and_precision():
    base = ("NVIDIA H100", "10.9.0", "abc", profile_shapes(32, 128), True)
    variants = [("NVIDIA L4", *base[1:]), (base[0], "10.10.0", *base[2:]), (*base[:2], "abd", *base[3:]),
                (*base[:3], profile_shapes(16, 128), True), (*base[:4], False)]
    keys = {engine_cache_key(*base)} | {engine_cache_key(*v) for v in variants}
    assert len(keys) == 6
    assert engine_cache_key(*base) == engine_cache_key(*base)  # stable across processes: no salt, no clock


# --- codecs and padding --------------------------------------------------------------------------------

def test_bytes_tensors_round_trip_through_the_binary_encoding():
    items = [b"hello", b"", "héllo".encode()]
    assert v2.decode_bytes_tensor(v2.encode_bytes_tensor(items)) == items


def test_a_binary_request_splits_its_json_header_from_the_tensor_data():
    tensor = v2.encode_bytes_tensor([b"abc", b"defgh"])
    header = ('{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES",'
              f'"parameters":{{"binary_data_size":{len(tensor)}}}}}]}}').encode()
    req, binary = v2.parse_request(header + tensor, str(len(header)))
    assert v2.request_texts(req, binary) == ["abc", "defgh"]


def test_a_shape_that_does_not_match_the_data_is_invalid():
    req, _ = v2.parse_request(b'{"inputs":[{"name":"text","shape":[3],"datatype":"BYTES","data":["a"]}]}', None)
    with pytest.raises(InvalidInput, match="does not match 1 elements"):
        v2.request_texts(req, b"")


def test_a_batch_is_padded_to_its_longest_text_with_a_matching_mask():
    arrays = pad_batch([Encoded((101, 7, 102), (0, 0, 0)), Encoded((101, 102), (0, 0))], pad_id=0)
    assert arrays["input_ids"].tolist() == [[101, 7, 102], [101, 102, 0]]
    assert arrays["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


@pytest.mark.parametrize("lengths, call_cost, expected", [
    ([12] * 8, 16, [list(range(8))]),                                       # equal lengths: one call
    ([5, 16, 5, 16], 10**9, [[0, 2, 1, 3]]),                                # calls dear (GPU): never split
    ([5] * 16 + [16] * 16, 16, [list(range(16)), list(range(16, 32))]),     # split: saves 176 padded tokens
    ([5, 6], 16, [[0, 1]]),                                                 # saving 1 token is not worth a call
])
def test_a_batch_splits_by_length_only_when_padding_costs_more_than_a_call(lengths, call_cost, expected):
    assert plan_groups(lengths, call_cost) == expected


# --- the int8 gate ---------------------------------------------------------------------------------------

def test_int8_may_flip_a_near_tie_but_not_a_clear_decision():
    fp32 = [np.array([[0.01, 0.0], [3.0, -3.0]])]
    assert compare_outputs(fp32, [np.array([[0.0, 0.01], [2.5, -2.5]])])["accepted"]
    assert not compare_outputs(fp32, [np.array([[0.01, 0.0], [-1.0, 1.0]])])["accepted"]


# --- the batcher ---------------------------------------------------------------------------------------

def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def _doubling_batcher(sizes: list[int], in_flight=lambda: 0, **kw) -> DynamicBatcher:
    def run_batch(items):
        sizes.append(len(items))
        return [2 * x for x in items]

    kw = {"max_batch_size": 8, "max_delay_ms": 50, "max_queue": 16, **kw}
    return DynamicBatcher(run_batch, requests_in_flight=in_flight, **kw)


def test_concurrent_submissions_share_a_batch_and_keep_their_order():
    async def scenario():
        sizes: list[int] = []
        batcher = _doubling_batcher(sizes, in_flight=lambda: 3)  # three requests known to be on their way
        batcher.start()
        results = await asyncio.gather(batcher.submit([1, 2]), batcher.submit([3]), batcher.submit([4, 5]))
        await batcher.stop()
        return results, sizes

    results, sizes = _run(scenario())
    assert results == [[2, 4], [6], [8, 10]]
    assert sizes == [5]


def test_a_batch_never_exceeds_the_max_batch_size():
    async def scenario():
        sizes: list[int] = []
        batcher = _doubling_batcher(sizes, in_flight=lambda: 2, max_batch_size=3)
        batcher.start()
        await asyncio.gather(batcher.submit([1, 2]), batcher.submit([3, 4, 5]))
        await batcher.stop()
        return sizes

    sizes = _run(scenario())
    assert max(sizes) <= 3 and sum(sizes) == 5


def test_a_full_queue_refuses_with_a_retry_after_hint():
    async def scenario():
        batcher = _doubling_batcher([], max_queue=4)
        batcher.start()
        try:
            await batcher.submit([1, 2, 3, 4, 5])
        finally:
            await batcher.stop()

    with pytest.raises(QueueFull) as info:
        _run(scenario())
    assert int(info.value.headers["Retry-After"]) >= 1


def test_a_text_the_model_fails_on_fails_alone_and_the_rest_of_its_batch_is_served():
    calls: list[list[int]] = []

    def run_batch(items):
        calls.append(items)
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return [2 * x for x in items]

    async def scenario():
        batcher = DynamicBatcher(run_batch, max_batch_size=8, max_delay_ms=50, max_queue=16,
                                 requests_in_flight=lambda: 4)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(p) for p in ([1], [2, 3], [-1], [4])),
                                       return_exceptions=True)
        await batcher.stop()
        return results

    ok1, ok2, failed, ok3 = _run(scenario())
    assert (ok1, ok2, ok3) == ([2], [4, 6], [8])
    assert isinstance(failed, InferenceFailed) and "ValueError: negative" in failed.message
    assert calls[0] == [1, 2, 3, -1, 4]  # one batch first; split only because it failed


def test_a_hung_batch_fails_its_requests_at_the_deadline_and_marks_the_batcher_stuck_until_it_returns():
    release = threading.Event()

    async def scenario():
        batcher = DynamicBatcher(lambda items: release.wait() and items, max_batch_size=8, max_delay_ms=0,
                                 max_queue=16, request_timeout_s=0.05)
        batcher.start()
        with pytest.raises(DeadlineExceeded, match="deadline of 0.05 s"):
            await batcher.submit([1])
        while not batcher.stuck():
            await asyncio.sleep(0.01)
        with pytest.raises(ModelNotReady, match="has not finished a batch"):
            await batcher.submit([2])
        release.set()
        while batcher.stuck():
            await asyncio.sleep(0.01)
        assert await batcher.submit([3]) == [3]
        await batcher.stop()

    _run(scenario())
