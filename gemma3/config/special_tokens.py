"""The special tokens every Gemma 3 tokenizer has, as text and as ids (docs/gemma3-facts.md,
"Token ids"). One place for them: the tokenizer checks a file against these, the chat template
writes them, the image path expands them, the harness builds prompts from them."""

from __future__ import annotations

PAD, EOS, BOS = "<pad>", "<eos>", "<bos>"
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
BOI, EOI, IMAGE = "<start_of_image>", "<end_of_image>", "<image_soft_token>"

PAD_ID, EOS_ID, BOS_ID = 0, 1, 2
START_OF_TURN_ID, END_OF_TURN_ID = 105, 106
BOI_ID, EOI_ID, IMAGE_TOKEN_ID = 255_999, 256_000, 262_144
NEWLINES_ID = 108  # the "\n\n" piece, which the processor puts around each image block
# Ordinary vocabulary ids: after <unk> (3), before the image tokens (no control token in between
# appears in a prompt by chance).
FIRST_TEXT_ID, LAST_TEXT_ID = 3, BOI_ID
