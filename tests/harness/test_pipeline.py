"""The harness's own code paths end to end on a tiny multimodal checkpoint in the 4b layout:
synthetic writer -> transformers reference (outputs saved and reloaded as the checks read
them) -> the JAX model compared with the checks' metrics, including the image prompt."""

import numpy as np
import pytest

import gemma3
from gemma3.config import Gemma3Config
from harness.checkpoints import registry, synthetic
from harness.parity.greedy import greedy_parity
from harness.parity.metrics import compare_logits, layer_drift
from harness.parity.prompts import MULTIMODAL_COMPARED, make_prompts
from harness.reference import store
from harness.reference import transformers_run as reference
from tests.harness.checkpoints.test_synthetic import MULTIMODAL

FP32 = 1e-4  # of the logit scale; measured ~1e-6 on this tiny model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pipeline")
    spec = registry.get("gemma-3-4b-it")
    synthetic.write_checkpoint(spec, directory, 1, config=MULTIMODAL)
    prompts = make_prompts(Gemma3Config.from_hf_config(MULTIMODAL))
    outputs = reference.run_reference(spec, directory, "float32", prompts)
    reference.save_outputs(directory / "ref", outputs, {"dtype": "float32"})
    model = gemma3.from_pretrained(directory, dtype="float32")
    return model, prompts, store.load_outputs(directory / "ref")


def test_logits_and_hidden_states(setup):
    model, prompts, ref = setup
    logits, hidden = model(prompts.logits, return_hidden_states=True)
    stats = compare_logits(np.asarray(logits)[0], ref["logits"], 1e-4)
    assert stats.max_abs_rel < FP32 and stats.top1_agreement == 1.0
    drift = layer_drift([np.asarray(h)[0] for h in hidden], ref["hidden"], 1e-4)
    assert drift.first_drift is None, drift.describe()
    assert len(drift.errors) == len(ref["hidden"]) == model.config.text.num_hidden_layers


def test_greedy_generation(setup):
    model, prompts, ref = setup
    tie = 1e-4 * float(np.abs(ref["logits"]).max())
    run = greedy_parity(model, prompts.generate, ref["gen_tokens"], ref["gen_margin"], tie)
    assert not run.confident and not run.restarts_exhausted
    assert run.timings.new_tokens > 0


def test_left_padded_batch(setup):
    model, prompts, ref = setup
    mask = prompts.batch_mask.astype(bool)
    ours = np.asarray(model(prompts.batch_ids, attention_mask=prompts.batch_mask))
    assert compare_logits(ours[mask], ref["batch_logits"][mask], 1e-4).max_abs_rel < FP32


def test_image_prompt(setup):
    model, prompts, ref = setup
    inputs = prompts.multimodal
    assert inputs["token_type_ids"].sum() == MULTIMODAL["mm_tokens_per_image"]
    logits = model(inputs["input_ids"], pixel_values=inputs["pixel_values"],
                   token_type_ids=inputs["token_type_ids"])
    ours = np.asarray(logits)[0, -MULTIMODAL_COMPARED:]
    assert compare_logits(ours, ref["mm_logits"], 1e-4).max_abs_rel < FP32
