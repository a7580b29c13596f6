"""Conversational rows: message lists ({"role", "content"}, ShareGPT's {"from", "value"}, [role, text]
tuples), content given as parts ({"type": "text", "text" | "value": ...}), message lists stored as the text
of a JSON or Python literal (CSV exports of Arena / MT-Bench), and the judged turn of a multi-turn judgment."""

from __future__ import annotations

import math

from normbt_viz.data.formats.common import parse_literal, plain, show
from normbt_viz.data.formats.text import check_response, text
from normbt_viz.errors import DataError

SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
# Spellings of the two speakers in exports (FastChat's "USER"/"ASSISTANT", Claude-era "Human").
_ROLE_SPELLINGS = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "bot": "assistant",
                   "model": "assistant", "chatbot": "assistant", "system": "system"}
_PLAIN_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}


def literal_value(value):
    """A cell as its value: text holding a list or object literal is parsed (never evaluated as code)."""
    value = plain(value)
    if isinstance(value, str):
        parsed = parse_literal(value)
        if isinstance(parsed, (list, dict, tuple)):
            return parsed
    return value


def is_messages(value) -> bool:
    value = literal_value(value)
    if isinstance(value, dict):
        return any(key in value for key in ("role", "from", "content"))
    if isinstance(value, (list, tuple)) and value:
        first = plain(value[0])
        return isinstance(first, dict) or (isinstance(first, (list, tuple)) and len(first) == 2)
    return False


def uses_sharegpt_keys(value) -> bool:
    value = literal_value(value)
    first = value[0] if isinstance(value, (list, tuple)) and value else value
    return isinstance(first, dict) and "from" in first and "value" in first


def response_messages(value, where: str) -> str | list[dict]:
    """A response given as text stays text; a message or a list of messages becomes a message list."""
    value = literal_value(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return messages([value], where)
    return messages(value, where)


def messages(value, where: str) -> list[dict]:
    value = literal_value(value)
    if not isinstance(value, (list, tuple)):
        if isinstance(value, float) and math.isnan(value):
            raise DataError(f"{where}: NaN or missing (expected a list of messages)")
        kind = "None" if value is None else f"{type(value).__name__} {show(value)}"
        raise DataError(f"{where}: expected a list of messages, got {kind}")
    if value and all(isinstance(plain(item), str) for item in value):
        raise DataError(f"{where}: a list of {len(value)} texts, not messages; if they are answer variants or a "
                        "ranking, say so with --column-mapping (variant_pairs, or ranked)")
    return [message(item, f"{where}, message {number}") for number, item in enumerate(value, start=1)]


def message(item, where: str) -> dict:
    item = plain(item)
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
        item = {"role": item[0], "content": item[1]}
    if not isinstance(item, dict):
        raise DataError(f"{where}: expected a message (an object with role and content, or a [role, text] pair), "
                        f"got {show(item)}")
    # Arrow gives every message of a column the union of keys, so an absent key can read as None.
    role, speaker = item.get("role"), item.get("from")
    if role is None and isinstance(speaker, str):
        role = speaker
    if role is None:
        raise DataError(f"{where}: no 'role' (or 'from') in {show(item)}")
    if not isinstance(role, str):
        raise DataError(f"{where}: role must be text, got {show(role)}")
    role = _ROLE_SPELLINGS.get(role.strip().lower(), role)
    content = plain(item.get("content"))
    if content is None:
        content = plain(item.get("value"))
    if isinstance(content, (list, dict)):
        content = text_parts(content, where)
    return {"role": role, "content": text(content, where)}


def text_parts(content, where: str) -> str:
    """Content parts ([{"type": "text", "text": ...}, {"type": "image_url", ...}]) as their text parts joined
    by newlines. A part's text may sit under `text`, `value` (LLaMA-Factory) or its one string field; other
    parts (images, audio) carry no text a reward model here could read."""
    parts = content if isinstance(content, list) else [content]
    texts = []
    for part in parts:
        part = plain(part)
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") == "text":
            strings = [v for k, v in part.items() if k != "type" and isinstance(v, str)]
            for key in ("text", "value"):
                if isinstance(part.get(key), str):
                    texts.append(part[key])
                    break
            else:
                if len(strings) == 1:
                    texts.append(strings[0])
    if not texts:
        raise DataError(f"{where}: no text part in content {show(content)}")
    return "\n".join(texts)


def drop_prefix(response: str | list[dict], prompt: list[dict]) -> str | list[dict]:
    if isinstance(response, list) and len(response) > len(prompt) and response[:len(prompt)] == prompt:
        return response[len(prompt):]
    return response


def cut_at_turn(conversation: str | list[dict], turn: int, where: str) -> str | list[dict]:
    """The conversation up to and including its `turn`-th assistant message (1-based): what was judged."""
    if isinstance(conversation, str):
        return conversation
    seen = 0
    for position, item in enumerate(conversation):
        if item["role"] == "assistant":
            seen += 1
            if seen == turn:
                return conversation[:position + 1]
    raise DataError(f"{where}: turn {turn} was judged but the conversation has {seen} assistant turn(s)")


def response_text(response: str | list[dict], where: str) -> str:
    """A response's text: assistant turns joined by blank lines; any other turn keeps its role label so
    no text is lost."""
    if isinstance(response, str):
        answer = response
    elif not response:
        raise DataError(f"{where}: no response message after the prompt")
    elif all(item["role"] == "assistant" for item in response):
        answer = "\n\n".join(item["content"] for item in response)
    else:
        answer = render_messages(response)
    check_response(answer, where)
    return answer


def render_messages(items: list[dict], tokenizer=None, add_generation_prompt: bool = False) -> str:
    """Render chat messages as text: with the tokenizer's chat template when it has one, else as plain
    "User: ...\\n\\nAssistant: ..." turns (with a trailing "Assistant:" for a generation prompt)."""
    if not items:
        return ""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(items, tokenize=False, add_generation_prompt=add_generation_prompt)
    turns = [f"{_PLAIN_LABELS.get(m['role'], m['role'].capitalize())}: {m['content']}" for m in items]
    if add_generation_prompt:
        turns.append("Assistant:")
    return "\n\n".join(turns)


def conversation_pair(prompt_value, chosen_value, rejected_value, where: dict, turn: int | None = None
                      ) -> tuple[list[dict], str, str]:
    """(prompt messages, chosen text, rejected text) for one conversational or ShareGPT row. The prompt is
    the explicit prompt (a message list, or text taken as one user turn; null is empty) or else the leading
    messages chosen and rejected share; each response is what follows it. `where` names each role's place."""
    chosen = response_messages(chosen_value, where["chosen"])
    rejected = response_messages(rejected_value, where["rejected"])
    if turn is not None:
        chosen = cut_at_turn(chosen, turn, where["chosen"])
        rejected = cut_at_turn(rejected, turn, where["rejected"])
    if where.get("prompt"):
        prompt_value = literal_value(prompt_value)
        if prompt_value is None or (isinstance(prompt_value, float) and math.isnan(prompt_value)):
            prompt = []
        elif isinstance(prompt_value, str):
            prompt = [{"role": "user", "content": prompt_value}] if prompt_value else []
        else:
            prompt = messages(prompt_value, where["prompt"])
        # Some datasets (UltraFeedback binarized) repeat the prompt at the start of each response list.
        chosen = drop_prefix(chosen, prompt)
        rejected = drop_prefix(rejected, prompt)
    elif isinstance(chosen, list) and isinstance(rejected, list):
        shared = 0
        # Each side keeps at least its last message, so identical conversations still have a response.
        while (shared < min(len(chosen), len(rejected)) - 1) and chosen[shared] == rejected[shared]:
            shared += 1
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    else:
        prompt = []
    return prompt, response_text(chosen, where["chosen"]), response_text(rejected, where["rejected"])
