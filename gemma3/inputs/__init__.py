"""What a prompt becomes before the model: token ids (the tokenizer, the chat template, a GGUF
file's vocabulary) and pixel values (image loading and preprocessing, image-token expansion)."""
