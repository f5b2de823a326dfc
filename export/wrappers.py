"""The nn.Module wrappers that are traced into the three ONNX graphs.

Each wrapper takes a loaded transformers ``Qwen2VLForConditionalGeneration`` /
``Qwen2_5_VLForConditionalGeneration`` and reuses its weights and most of its
submodules, but replaces the code paths that do not survive tracing:

- The HF vision ``forward`` loops over ``grid_thw`` in Python, splits the
  sequence with ``lengths.tolist()`` and (Qwen2.5-VL) builds the window order
  with ``.tolist()``/``.item()``. A trace of it is frozen to the dummy image
  size and fails on any other size, even though optimum's validation (which
  reuses the dummy size) passes. Here patch coordinates and rotary angles are
  computed with tensor arithmetic from ``grid_thw``, and the per-image
  attention split becomes an additive block-diagonal mask (same result: each
  patch attends only within its own frame/window).
- Qwen2.5-VL's window order is computed on the host
  (``runtime.vision_windows``) and passed in as ``window_index`` and
  ``cu_window_seqlens``.

The submodule attribute names (``blocks.{i}/norm1``, ``rotary``,
``language_model/layers.{i}/input_layernorm``, ``rotary_emb``...) become the
ONNX node-name prefixes that ``export.fp16`` matches to keep numerically
sensitive nodes in fp32, so rename them only together.

These classes touch transformers internals (``model.model.visual``,
``.language_model``, ``attn.qkv``, ``rotary_pos_emb.inv_freq``), which is why
transformers is pinned exactly in pyproject.
"""

from __future__ import annotations

import torch
from torch import nn


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class PatchLayout(nn.Module):
    """Per-patch (row, column, frame segment) from ``grid_thw``, without Python loops.

    Patches arrive image by image, frame by frame, and inside a frame in
    ``merge x merge`` blocks (the processor's order): patch n of a frame lies in
    block n // merge², at (n % merge²) // merge, n % merge inside it.
    """

    def __init__(self, merge: int) -> None:
        super().__init__()
        self.merge = merge

    def forward(self, grid_thw: torch.Tensor, num_patches_like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.merge
        t, h, w = grid_thw[:, 0], grid_thw[:, 1], grid_thw[:, 2]
        sizes = t * h * w
        ends = torch.cumsum(sizes, dim=0)
        starts = ends - sizes
        n = torch.arange(num_patches_like.shape[0], dtype=grid_thw.dtype, device=grid_thw.device)
        img = (n[:, None] >= ends[None, :]).to(grid_thw.dtype).sum(dim=1)  # image of each patch
        local = n - starts[img]
        frame_size = (h * w)[img]
        frame = torch.div(local, frame_size, rounding_mode="floor")
        in_frame = local - frame * frame_size
        block = torch.div(in_frame, m * m, rounding_mode="floor")
        within = in_frame - block * (m * m)
        blocks_per_row = torch.div(w[img], m, rounding_mode="floor")
        block_row = torch.div(block, blocks_per_row, rounding_mode="floor")
        block_col = block - block_row * blocks_per_row
        sub_row = torch.div(within, m, rounding_mode="floor")
        sub_col = within - sub_row * m
        hpos = block_row * m + sub_row
        wpos = block_col * m + sub_col
        # HF-parity: cu_seqlens = repeat_interleave(h*w, t), so every frame (not every
        # image) is its own attention segment in the full-attention blocks.
        frames_before = torch.cumsum(t, dim=0) - t
        segment = frames_before[img] + frame
        return hpos, wpos, segment


class VisionRotary(nn.Module):
    """cos/sin of the vision rotary embedding for every patch, in fp32.

    HF builds a table ``outer(arange(max_side), inv_freq)`` and gathers rows by
    (h, w); multiplying the positions by ``inv_freq`` directly gives the same
    floats without a table sized by the dummy image.
    """

    def __init__(self, inv_freq: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("inv_freq", inv_freq.detach().clone().float(), persistent=False)

    def forward(self, hpos: torch.Tensor, wpos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = torch.cat(
            (hpos.float()[:, None] * self.inv_freq[None, :], wpos.float()[:, None] * self.inv_freq[None, :]), dim=-1
        )
        emb = torch.cat((angles, angles), dim=-1)
        return emb.cos(), emb.sin()


def segment_mask(segment: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive (1, N, N) mask: 0 inside a segment, the dtype's minimum across segments.

    Replaces HF's per-segment ``torch.split(..., lengths.tolist())`` loop.
    """
    same = segment[:, None] == segment[None, :]
    zero = torch.zeros((), dtype=dtype, device=segment.device)
    neg = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=segment.device)
    return torch.where(same, zero, neg)[None]


class VisionAttention(nn.Module):
    """HF vision attention (fused qkv, rotary, eager softmax) over a masked full sequence."""

    def __init__(self, hf_attn: nn.Module) -> None:
        super().__init__()
        self.qkv = hf_attn.qkv
        self.proj = hf_attn.proj
        self.num_heads = hf_attn.num_heads
        self.head_dim = hf_attn.head_dim
        self.scaling = hf_attn.scaling

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        q, k, v = self.qkv(x).reshape(n, 3, self.num_heads, self.head_dim).permute(1, 0, 2, 3).unbind(0)
        # HF-parity: apply_rotary_pos_emb_vision rotates in fp32.
        c, s = cos[:, None, :].float(), sin[:, None, :].float()
        q = (q.float() * c + _rotate_half(q.float()) * s).to(v.dtype)
        k = (k.float() * c + _rotate_half(k.float()) * s).to(v.dtype)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (heads, N, head_dim)
        scores = torch.matmul(q, k.transpose(1, 2)) * self.scaling + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(v.dtype)
        out = torch.matmul(probs, v).transpose(0, 1).reshape(n, -1)
        return self.proj(out)


class VisionBlock(nn.Module):
    def __init__(self, hf_block: nn.Module) -> None:
        super().__init__()
        self.norm1 = hf_block.norm1
        self.norm2 = hf_block.norm2
        self.attn = VisionAttention(hf_block.attn)
        self.mlp = hf_block.mlp

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, mask)
        return x + self.mlp(self.norm2(x))


class Qwen2VLVisionWrapper(nn.Module):
    """vision_encoder for Qwen2-VL: (pixel_values, grid_thw) -> image_embeds."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        visual = model.model.visual
        self.config = model.config
        self.merge = visual.spatial_merge_size
        self.patch_embed = visual.patch_embed
        self.layout = PatchLayout(self.merge)
        self.rotary = VisionRotary(visual.rotary_pos_emb.inv_freq)
        self.blocks = nn.ModuleList(VisionBlock(b) for b in visual.blocks)
        self.merger = visual.merger

    def _embed(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.patch_embed(pixel_values)
        hpos, wpos, segment = self.layout(grid_thw, x)
        cos, sin = self.rotary(hpos, wpos)
        return x, cos, sin, segment

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        x, cos, sin, segment = self._embed(pixel_values, grid_thw)
        mask = segment_mask(segment, torch.float32)
        for blk in self.blocks:
            x = blk(x, cos, sin, mask)
        return self.merger(x)


class Qwen25VLVisionWrapper(Qwen2VLVisionWrapper):
    """vision_encoder for Qwen2.5-VL: adds the host-computed window order as inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        visual = model.model.visual
        self.fullatt_block_indexes = tuple(int(i) for i in visual.fullatt_block_indexes)

    def forward(
        self,
        pixel_values: torch.Tensor,
        grid_thw: torch.Tensor,
        window_index: torch.Tensor,
        cu_window_seqlens: torch.Tensor,
    ) -> torch.Tensor:
        x, cos, sin, segment = self._embed(pixel_values, grid_thw)
        unit = self.merge * self.merge
        # Window order permutes whole merge units (HF reorders hidden states and
        # rotary angles the same way; permuting cos/sin equals permuting angles).
        x = x.reshape(-1, unit, x.shape[-1])[window_index].reshape(-1, x.shape[-1])
        cos = cos.reshape(-1, unit, cos.shape[-1])[window_index].reshape(-1, cos.shape[-1])
        sin = sin.reshape(-1, unit, sin.shape[-1])[window_index].reshape(-1, sin.shape[-1])
        # Windows never cross frames, so the frame segments are the same in window order.
        full_mask = segment_mask(segment, torch.float32)
        n = torch.arange(x.shape[0], dtype=cu_window_seqlens.dtype, device=x.device)
        window = (n[:, None] >= cu_window_seqlens[None, 1:]).to(cu_window_seqlens.dtype).sum(dim=1)
        window_mask = segment_mask(window, torch.float32)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, full_mask if i in self.fullatt_block_indexes else window_mask)
        x = self.merger(x)
        # HF-parity: HF undoes the order with argsort(window_index); the inverse of a
        # permutation is a scatter, which traces to one ScatterElements.
        positions = torch.arange(window_index.shape[0], dtype=window_index.dtype, device=x.device)
        inverse = torch.zeros_like(window_index).scatter(0, window_index, positions)
        return x[inverse]


class EmbedTokensWrapper(nn.Module):
    """embed_tokens: input_ids -> inputs_embeds (one Gather)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.config = model.config
        self.embed_tokens = model.model.language_model.embed_tokens

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)


class DecoderWrapper(nn.Module):
    """decoder_model_merged: embeddings + M-RoPE positions + cache -> logits + cache.

    ``position_ids`` is (3, batch, seq): the HF text model accepts that shape
    directly (a 4th row would be taken as text positions for packed masks, which
    we never pass). optimum's model patcher turns the flat past inputs into a
    DynamicCache before this forward and the returned cache back into tensors.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.config = model.config
        self.language_model = model.model.language_model
        self.lm_head = model.lm_head

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        past_key_values: object,
    ) -> dict[str, object]:
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=True,
            return_dict=True,
        )
        return {"logits": self.lm_head(out.last_hidden_state), "past_key_values": out.past_key_values}
