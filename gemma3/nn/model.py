"""The Gemma 3 model: text decoder (all sizes) and, for 4b and up, the vision path.

Attribute names mirror the checkpoint (`language_model.layers[3].self_attn.q_proj`), so the
weight map is near-identity and a parity failure can be traced by name.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from gemma3.config import GLOBAL, SLIDING, Gemma3Config, TextConfig
from gemma3.config.errors import InputError
from gemma3.nn import checks
from gemma3.nn.attention import Attention
from gemma3.nn.cache import KVCache
from gemma3.nn.layers import MLP, Embedder, RMSNorm
from gemma3.nn.masks import causal_mask, image_block_ids, positions_from_mask
from gemma3.nn.rope import rope_tables

Array = jax.Array


class DecoderLayer(nnx.Module):
    """Sandwich norms: each sublayer's output is normed again before the residual add."""

    def __init__(self, cfg: TextConfig, *, dtype, rngs: nnx.Rngs):
        eps = cfg.rms_norm_eps
        self.self_attn = Attention(cfg, dtype=dtype, rngs=rngs)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size, dtype=dtype, rngs=rngs)
        self.input_layernorm = RMSNorm(cfg.hidden_size, eps, dtype=dtype)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, eps, dtype=dtype)
        self.pre_feedforward_layernorm = RMSNorm(cfg.hidden_size, eps, dtype=dtype)
        self.post_feedforward_layernorm = RMSNorm(cfg.hidden_size, eps, dtype=dtype)

    def __call__(self, x, rope, mask, cache=None, write_index=None):
        attn, cache = self.self_attn(self.input_layernorm(x), rope, mask, cache, write_index)
        h = x + self.post_attention_layernorm(attn)
        return (h + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(h))),
                cache)


class TextDecoder(nnx.Module):
    def __init__(self, cfg: TextConfig, *, dtype, rngs: nnx.Rngs):
        self.config = cfg
        self.embed_tokens = Embedder(cfg.vocab_size, cfg.hidden_size, dtype=dtype, rngs=rngs)
        self.layers = nnx.List([DecoderLayer(cfg, dtype=dtype, rngs=rngs) for _ in cfg.layer_types])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype=dtype)

    def __call__(self, x, positions, masks, cache: KVCache | None = None, write_index=None):
        """x [B, T, D] embeddings; masks: one [B, T, S] mask per layer type.
        Returns the normed final hidden states, the updated cache and every layer's input."""
        cfg = self.config
        # dict.fromkeys, not set: a set's order follows the string hash seed, and with it the
        # program's op order, so no two processes shared a persistent compile-cache entry.
        ropes = {t: rope_tables(positions, cfg.rope(t), cfg.head_dim, x.dtype)
                 for t in dict.fromkeys(cfg.layer_types)}
        hidden, new_layers = [x], []
        for i, (layer, layer_type) in enumerate(zip(self.layers, cfg.layer_types)):
            layer_cache = None if cache is None else cache.layers[i]
            x, layer_cache = layer(x, ropes[layer_type], masks[layer_type], layer_cache,
                                   write_index)
            hidden.append(x)
            new_layers.append(layer_cache)
        if cache is not None:
            cache = dataclasses.replace(cache, layers=tuple(new_layers))
        return self.norm(x), cache, hidden

    def logits(self, x: Array) -> Array:
        logits = self.embed_tokens.decode(x)  # tied output head, unscaled embedding
        cap = self.config.final_logit_softcapping
        if cap is not None:  # null for every released Gemma 3; kept for configs that set it
            logits = jnp.tanh(logits / cap) * cap
        return logits


class Gemma3(nnx.Module):
    """model(input_ids, attention_mask) -> logits [B, T, V]; see README for the full API."""

    def __init__(self, config: Gemma3Config, *, dtype=jnp.bfloat16, rngs: nnx.Rngs):
        self.config = config
        self.language_model = TextDecoder(config.text, dtype=dtype, rngs=rngs)
        if config.vision is not None:
            from gemma3.nn.vision import MultiModalProjector, VisionTower

            self.vision_tower = VisionTower(config.vision, dtype=dtype, rngs=rngs)
            self.multi_modal_projector = MultiModalProjector(config, dtype=dtype, rngs=rngs)

    @property
    def dtype(self):
        return self.language_model.embed_tokens.weight.dtype

    def __call__(self, input_ids, attention_mask=None, *, positions=None, pixel_values=None,
                 token_type_ids=None, return_hidden_states: bool = False):
        """Full-sequence forward, compiled. mask: 1 = token, 0 = left padding. Positions default
        to cumsum(mask) - 1 as generate() uses. With return_hidden_states, also returns the
        embeddings and every layer's output ([L + 1] arrays of [B, T, D])."""
        input_ids, attention_mask, positions = self._check_inputs(
            input_ids, attention_mask, positions, pixel_values, token_type_ids)
        if positions is None:
            positions = positions_from_mask(jnp.asarray(attention_mask))
        graphdef, state = nnx.split(self)
        return _forward(graphdef, state, input_ids, jnp.asarray(attention_mask), positions,
                        pixel_values, token_type_ids, return_hidden_states)

    def _check_inputs(self, input_ids, attention_mask, positions, pixel_values, token_type_ids):
        """The forward's arguments checked before compiling (gemma3.nn.checks): ids in the
        vocabulary, a 0/1 mask of their shape (any padding side: each token's logits are
        exact), integer positions of their shape, images that match their tokens."""
        ids = checks.check_token_ids(input_ids, self.config.text.vocab_size)
        mask = checks.check_attention_mask(attention_mask, ids.shape)
        if positions is not None:
            positions = jnp.asarray(positions)
            if positions.shape != ids.shape or not jnp.issubdtype(positions.dtype, jnp.integer):
                raise InputError(f"positions must be an integer array of input_ids' shape "
                                 f"{list(ids.shape)}, got {positions.dtype} "
                                 f"{list(positions.shape)}")
        checks.check_images(self.config, ids, pixel_values, token_type_ids)
        return ids, mask, positions

    def embed(self, input_ids, pixel_values=None, token_type_ids=None):
        """Token embeddings, with image features merged in at image-token positions."""
        x = self.language_model.embed_tokens.encode(input_ids)
        if pixel_values is None:
            return x
        from gemma3.nn.vision import merge_image_features

        return merge_image_features(self, x, input_ids, pixel_values, token_type_ids)

    def image_blocks(self, input_ids, token_type_ids=None):
        """[B, T] image block ids (0 = text), or None for text-only input."""
        if self.config.vision is None:
            return None
        is_image = (input_ids == self.config.image_token_id) if token_type_ids is None \
            else token_type_ids == 1
        return image_block_ids(is_image)

    def forward(self, input_ids, attention_mask, positions, pixel_values=None,
                token_type_ids=None):
        """Uncompiled full forward: logits [B, T, V] and the hidden states."""
        x = self.embed(input_ids, pixel_values, token_type_ids)
        blocks = self.image_blocks(input_ids, token_type_ids) if pixel_values is not None else None
        masks = self._prompt_masks(attention_mask, blocks)
        x, _, hidden = self.language_model(x, positions, masks)
        return self.language_model.logits(x), hidden

    def prefill(self, input_ids, attention_mask, cache: KVCache, pixel_values=None,
                token_type_ids=None):
        """Runs the prompt, fills the cache. Returns last-position logits [B, V] and the cache."""
        t = input_ids.shape[1]
        x = self.embed(input_ids, pixel_values, token_type_ids)
        blocks = self.image_blocks(input_ids, token_type_ids) if pixel_values is not None else None
        masks = self._prompt_masks(attention_mask, blocks)
        key_valid = cache.key_valid.at[:, :t].set(attention_mask > 0).at[:, t:].set(True)
        cache = dataclasses.replace(cache, key_valid=key_valid, length=jnp.asarray(t, jnp.int32))
        x, cache, _ = self.language_model(x, positions_from_mask(attention_mask), masks, cache)
        return self.language_model.logits(x[:, -1:])[:, 0], cache

    def decode(self, tokens, positions, cache: KVCache):
        """One step: tokens, positions [B, 1]. Returns logits [B, V] and the cache."""
        index = cache.length
        masks = {t: self._decode_mask(cache, index, t)
                 for t in dict.fromkeys(self.config.text.layer_types)}  # stable order
        x = self.language_model.embed_tokens.encode(tokens)
        x, cache, _ = self.language_model(x, positions, masks, cache, write_index=index)
        cache = dataclasses.replace(cache, length=index + 1)
        return self.language_model.logits(x)[:, 0], cache

    def _prompt_masks(self, attention_mask, blocks):
        cfg = self.config.text
        index = jnp.arange(attention_mask.shape[1])
        valid = attention_mask > 0
        return {
            GLOBAL: causal_mask(index, index, valid, None, blocks, blocks),
            SLIDING: causal_mask(index, index, valid, cfg.sliding_window, blocks, blocks),
        }

    def _decode_mask(self, cache: KVCache, index, layer_type):
        """[B, 1, S]: which cache slots, as they are before `index` is written, the query at
        `index` sees (its own key is attended separately)."""
        layer = cache.layers[self.config.text.layer_types.index(layer_type)]
        slot_index = layer.slot_indices(index - 1)
        written = (slot_index >= 0) & (slot_index < index)
        valid = jnp.take(cache.key_valid, jnp.clip(slot_index, 0), axis=1) & written
        window = self.config.text.sliding_window if layer_type == SLIDING else None
        return causal_mask(index[None], slot_index, valid, window)


# jax.jit over the split state rather than nnx.jit: nnx.jit returns the module's state as
# outputs, and XLA copied every weight into them on each call.
@partial(jax.jit, static_argnums=(0, 7))
def _forward(graphdef, state, input_ids, attention_mask, positions, pixel_values, token_type_ids,
             return_hidden_states):
    model = nnx.merge(graphdef, state)
    logits, hidden = model.forward(input_ids, attention_mask, positions, pixel_values,
                                   token_type_ids)
    return (logits, hidden) if return_hidden_states else logits
