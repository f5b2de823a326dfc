"""optimum OnnxConfig declarations for the three graphs, registered per model_type.

optimum has no Qwen2-VL / Qwen2.5-VL config (it refuses the model as a custom
architecture), so each graph gets a small declarative subclass here: class
attributes for the normalized config, dummy input generators, the wrapper to
trace and the validation tolerance; ``inputs``/``outputs`` properties for the
symbolic axes. ``register_component`` files each class under
(model_type, graph); the exporter looks classes up, it never branches on the
architecture.

All tensor names come from ``runtime.io_names``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, ClassVar

import numpy as np
from optimum.exporters.onnx.base import OnnxConfig
from optimum.exporters.onnx.config import TextDecoderOnnxConfig
from optimum.utils import DummyInputGenerator, DummyTextInputGenerator, NormalizedTextConfigWithGQA
from optimum.utils.input_generators import MistralDummyPastKeyValuesGenerator
from torch import nn

from ..runtime import io_names as N
from ..runtime.model_config import ModelConfig
from ..runtime.vision_windows import get_window_index
from .errors import UnsupportedArchitecture
from .wrappers import DecoderWrapper, EmbedTokensWrapper, Qwen25VLVisionWrapper, Qwen2VLVisionWrapper

# Shapes of the dummy inputs the graphs are traced with. They are deliberately
# unlike anything tested (two images of different sizes, past != sequence
# length) so that a dimension frozen by the trace shows up in the tests.
DUMMY_SHAPES: dict[str, Any] = {
    "batch_size": 2,
    "sequence_length": 7,
    "past_sequence_length": 5,
    "grid_thw": ((1, 12, 16), (1, 8, 8)),
}

_REGISTRY: dict[tuple[str, str], type["QwenVLOnnxConfigMixin"]] = {}


def register_component(graph: str, *model_types: str) -> Callable[[type], type]:
    """Class decorator: file an OnnxConfig under (model_type, graph) for each model_type."""

    def wrap(cls: type) -> type:
        for model_type in model_types:
            _REGISTRY[(model_type, graph)] = cls
        return cls

    return wrap


def registered_model_types() -> list[str]:
    return sorted({mt for mt, _ in _REGISTRY})


def onnx_config_class(model_type: str, graph: str) -> type["QwenVLOnnxConfigMixin"]:
    try:
        return _REGISTRY[(model_type, graph)]
    except KeyError:
        raise UnsupportedArchitecture(model_type, registered_model_types()) from None


class QwenVLNormalizedConfig(NormalizedTextConfigWithGQA):
    """optimum's GQA view of the text settings, plus our ModelConfig for the vision generators."""

    def __init__(self, config: Any, **kwargs: Any) -> None:
        super().__init__(config.get_text_config(), **kwargs)
        self.__dict__["model"] = ModelConfig.from_dict(config.to_dict())


# --- dummy input generators -------------------------------------------------------------------


class VisionPatchGenerator(DummyInputGenerator):
    """pixel_values and grid_thw for the dummy images of ``DUMMY_SHAPES['grid_thw']``."""

    SUPPORTED_INPUT_NAMES = (N.PIXEL_VALUES, N.GRID_THW)

    def __init__(self, task: str, normalized_config: QwenVLNormalizedConfig, **kwargs: Any) -> None:
        self.cfg: ModelConfig = normalized_config.model
        self.grid = np.asarray(kwargs.get("grid_thw", DUMMY_SHAPES["grid_thw"]), dtype=np.int64)

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        if input_name == N.GRID_THW:
            return self.constant(self.grid, framework, int_dtype)
        patches = int(np.prod(self.grid, axis=1).sum())
        return self.random_float_tensor([patches, self.cfg.vision.patch_dim], framework=framework, dtype=float_dtype)

    @staticmethod
    def constant(values: np.ndarray, framework: str, dtype: str) -> Any:
        import torch

        arr = np.asarray(values, dtype=np.int64 if dtype == "int64" else np.int32)
        return torch.from_numpy(arr.copy()) if framework == "pt" else arr


class WindowOrderGenerator(VisionPatchGenerator):
    """Qwen2.5-VL window_index / cu_window_seqlens for the same dummy images (host numpy port)."""

    SUPPORTED_INPUT_NAMES = (N.WINDOW_INDEX, N.CU_WINDOW_SEQLENS)

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        window_index, cu_window_seqlens = get_window_index(self.grid, self.cfg.vision)
        value = window_index if input_name == N.WINDOW_INDEX else cu_window_seqlens
        return self.constant(value, framework, int_dtype)


class DecoderInputGenerator(DummyInputGenerator):
    """inputs_embeds, a past+seq attention mask and 3-row M-RoPE position_ids.

    optimum's text generator only knows input_ids and 2-D positions.
    """

    SUPPORTED_INPUT_NAMES = (N.INPUTS_EMBEDS, N.ATTENTION_MASK, N.POSITION_IDS)

    def __init__(self, task: str, normalized_config: QwenVLNormalizedConfig, **kwargs: Any) -> None:
        self.hidden_size = normalized_config.hidden_size
        self.batch_size = int(kwargs.get("batch_size", DUMMY_SHAPES["batch_size"]))
        self.sequence_length = int(kwargs.get("sequence_length", DUMMY_SHAPES["sequence_length"]))
        self.past_length = int(kwargs.get("past_sequence_length", DUMMY_SHAPES["past_sequence_length"]))

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        b, s, p = self.batch_size, self.sequence_length, self.past_length
        if input_name == N.INPUTS_EMBEDS:
            return self.random_float_tensor([b, s, self.hidden_size], framework=framework, dtype=float_dtype)
        if input_name == N.ATTENTION_MASK:
            return self.random_mask_tensor([b, p + s], padding_side="left", framework=framework, dtype=int_dtype)
        return self.random_int_tensor([3, b, s], max_value=p + s, min_value=p, framework=framework, dtype=int_dtype)


class PastGenerator(MistralDummyPastKeyValuesGenerator):
    """GQA cache tensors (batch, kv_heads, past, head_dim) of ``past_sequence_length``."""

    def __init__(self, task: str, normalized_config: QwenVLNormalizedConfig, **kwargs: Any) -> None:
        kwargs = dict(kwargs)
        past = int(kwargs.pop("past_sequence_length", DUMMY_SHAPES["past_sequence_length"]))
        kwargs["sequence_length"] = past
        super().__init__(task, normalized_config, **kwargs)
        self.head_dim = normalized_config.model.head_dim


# --- the configs --------------------------------------------------------------------------------


class QwenVLOnnxConfigMixin:
    """What the exporter needs besides optimum's interface: the wrapper and how to build the config."""

    WRAPPER: ClassVar[type[nn.Module]]
    TASK: ClassVar[str] = "feature-extraction"
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {}

    @classmethod
    def for_model(cls, hf_config: Any, float_dtype: str = "fp32") -> OnnxConfig:
        return cls(hf_config, task=cls.TASK, float_dtype=float_dtype, **cls.CONFIG_KWARGS)  # type: ignore[call-arg]


@register_component(N.VISION_ENCODER, "qwen2_vl")
class Qwen2VLVisionOnnxConfig(QwenVLOnnxConfigMixin, OnnxConfig):
    NORMALIZED_CONFIG_CLASS = QwenVLNormalizedConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (VisionPatchGenerator,)
    WRAPPER = Qwen2VLVisionWrapper
    # Vision activations reach ~100, so fp32 reordering noise is ~1e-4..1e-3 in absolute terms.
    ATOL_FOR_VALIDATION = 1e-3

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict({N.PIXEL_VALUES: {0: "num_patches"}, N.GRID_THW: {0: "num_images"}})

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict({N.IMAGE_EMBEDS: {0: "num_merged_patches"}})


@register_component(N.VISION_ENCODER, "qwen2_5_vl")
class Qwen25VLVisionOnnxConfig(Qwen2VLVisionOnnxConfig):
    DUMMY_INPUT_GENERATOR_CLASSES = (VisionPatchGenerator, WindowOrderGenerator)
    WRAPPER = Qwen25VLVisionWrapper

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict(
            {
                **super().inputs,
                N.WINDOW_INDEX: {0: "num_merged_patches"},
                N.CU_WINDOW_SEQLENS: {0: "num_windows_plus_one"},
            }
        )


@register_component(N.EMBED_TOKENS, "qwen2_vl", "qwen2_5_vl")
class EmbedTokensOnnxConfig(QwenVLOnnxConfigMixin, OnnxConfig):
    NORMALIZED_CONFIG_CLASS = QwenVLNormalizedConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (DummyTextInputGenerator,)
    WRAPPER = EmbedTokensWrapper

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict({N.INPUT_IDS: {0: "batch_size", 1: "sequence_length"}})

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        return OrderedDict({N.INPUTS_EMBEDS: {0: "batch_size", 1: "sequence_length"}})


@register_component(N.DECODER, "qwen2_vl", "qwen2_5_vl")
class DecoderOnnxConfig(QwenVLOnnxConfigMixin, TextDecoderOnnxConfig):
    NORMALIZED_CONFIG_CLASS = QwenVLNormalizedConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (DecoderInputGenerator, PastGenerator)
    DUMMY_PKV_GENERATOR_CLASS = PastGenerator
    # The dummy mask already spans past + sequence; optimum's padding step would look
    # up "input_ids", which this graph does not have.
    PAD_ATTENTION_MASK_TO_PAST = False
    WRAPPER = DecoderWrapper
    TASK = "text-generation"
    # One graph for prefill (past length 0) and decode: the cache is always an input.
    CONFIG_KWARGS = {"use_past": True, "use_past_in_inputs": True}
    ATOL_FOR_VALIDATION = 1e-4

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        common = OrderedDict(
            {
                N.INPUTS_EMBEDS: {0: "batch_size", 1: "sequence_length"},
                N.ATTENTION_MASK: {0: "batch_size", 1: "past_sequence_length + sequence_length"},
                N.POSITION_IDS: {1: "batch_size", 2: "sequence_length"},
            }
        )
        self.add_past_key_values(common, direction="inputs")
        return common

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        common = OrderedDict({N.LOGITS: {0: "batch_size", 1: "sequence_length"}})
        self.add_past_key_values(common, direction="outputs")
        return common
