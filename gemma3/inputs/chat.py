"""Gemma 3's chat template, rendered in Python: messages -> prompt text or token ids.

It follows the template in the released tokenizer_config.json:
- the output starts with <bos>;
- a leading system message is not a turn of its own: its text plus "\\n\\n" goes in front of the
  first user turn;
- roles alternate user / assistant starting with user, and "assistant" is written "model";
- each turn is "<start_of_turn>{role}\\n{content}<end_of_turn>\\n" with string content trimmed;
  list content is {"type": "text", "text": ...} items (trimmed) and {"type": "image"} items
  (written "<start_of_image>") joined with no separator;
- add_generation_prompt appends "<start_of_turn>model\\n".
Two deliberate differences: a role out of place names its index, and a system message with no
user turn after it is an error instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gemma3.config.errors import InputError
from gemma3.config.special_tokens import BOI, BOS, END_OF_TURN, START_OF_TURN
from gemma3.inputs.tokenizer import Tokenizer

Message = dict[str, Any]  # {"role": "system" | "user" | "assistant", "content": str | list}
ROLE_NAMES = {"user": "user", "assistant": "model", "model": "model"}


class ChatError(InputError):
    """A conversation the Gemma 3 chat template cannot render."""


def render(messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
    """The prompt text, beginning with "<bos>", exactly as the released template renders it."""
    prefix, turns = _split_system(messages)
    parts = [BOS]
    for index, message in enumerate(turns):
        offset = index + (len(messages) - len(turns))  # index in the caller's list
        role = _role(message, index, offset)
        content = _content(message, offset)
        if index == 0:
            content = prefix + content
        parts.append(f"{START_OF_TURN}{role}\n{content}{END_OF_TURN}\n")
    if add_generation_prompt:
        parts.append(f"{START_OF_TURN}model\n")
    return "".join(parts)


def encode(tokenizer: Tokenizer, messages: Sequence[Message],
           add_generation_prompt: bool = True) -> list[int]:
    """Token ids of the rendered conversation, with exactly one <bos> (the template's)."""
    text = render(messages, add_generation_prompt)
    return tokenizer.encode(text.removeprefix(BOS), add_bos=True)


def _split_system(messages: Sequence[Message]) -> tuple[str, Sequence[Message]]:
    if not messages or _get(messages[0], "role", 0) != "system":
        return "", messages
    if len(messages) == 1:
        raise ChatError("the conversation has only a system message; Gemma 3 folds the system "
                        "text into the first user turn, so add a user message after it")
    content = _get(messages[0], "content", 0)
    if not isinstance(content, str):  # the template takes the first item's text
        content = _item_text(content[0], 0) if content else ""
    return content + "\n\n", messages[1:]


def _role(message: Message, index: int, offset: int) -> str:
    role = _get(message, "role", offset)
    expected = "user" if index % 2 == 0 else "assistant"
    if (role == "user") != (expected == "user") or role not in ROLE_NAMES:
        raise ChatError(f"message {offset} has role {role!r}; expected {expected!r}: roles must "
                        "alternate user/assistant/user/..., after an optional leading system "
                        "message")
    return ROLE_NAMES[role]


def _content(message: Message, offset: int) -> str:
    content = _get(message, "content", offset)
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, (list, tuple)):
        raise ChatError(f"message {offset} has content of type {type(content).__name__}; "
                        "expected a string or a list of text/image items")
    pieces = []
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "image":
            pieces.append(BOI)
        elif kind == "text":
            pieces.append(_item_text(item, offset).strip())
        else:
            raise ChatError(f"message {offset} has content item {item!r}; expected "
                            "{'type': 'text', 'text': ...} or {'type': 'image', ...}")
    return "".join(pieces)


def _item_text(item: Any, offset: int) -> str:
    text = item.get("text") if isinstance(item, dict) else None
    if not isinstance(text, str):
        raise ChatError(f"message {offset} has text item {item!r} without a string 'text'")
    return text


def _get(message: Message, key: str, offset: int) -> Any:
    if not isinstance(message, dict) or key not in message:
        raise ChatError(f"message {offset} is {message!r}; expected a dict with 'role' and "
                        "'content'")
    return message[key]
