"""Prompts from instructions, and the terminal chat loop behind `instructgen chat`.

The loop reads lines with `read` and writes with `write` (the terminal by default; tests may
pass their own). Commands: /reset, /system TEXT, /save FILE, /help, /exit;
Ctrl-D or Ctrl-C at the prompt ends the chat; Ctrl-C during an answer stops that answer.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from typing import Any

from instructgen.errors import UserError
from instructgen.files import atomic_write_json
from instructgen.inference.backends import LLM, Prompt

__all__ = ["instruction_prompt", "chat_loop", "CHAT_HELP"]

CHAT_HELP = (
    "commands: /reset (clear the conversation), /system TEXT (set the system prompt), "
    "/save FILE (write the conversation as JSON), /exit (or Ctrl-D)"
)


def instruction_prompt(
    instruction: str,
    input: str | None = None,
    *,
    system: str | None = None,
    chat: bool = True,
) -> Prompt:
    """The prompt for an instruction and optional input.

    chat=True: messages [system?, user: instruction + "\\n\\n" + input], rendered later by the
    model's chat template. chat=False: the raw text instruction + input, as brief 5.1 encodes it.
    """
    if not chat:
        return (system + "\n\n" if system else "") + instruction + (input or "")
    content = instruction + ("\n\n" + input if input else "")
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": content}]


_session = None  # the prompt_toolkit session of this process: its history is the chat's


def read_line(prompt: str) -> str:
    """One line from the terminal. On a terminal: prompt_toolkit's line editor (arrow keys move
    in the line, up and down walk this session's history, kept in memory only since chats may
    hold personal data; Ctrl-C is a key there, not a signal, so it always reaches us). Without
    prompt_toolkit: a read that Ctrl-C interrupts even when the signal reaches one of torch's
    worker threads (a blocked read in the main thread would otherwise wait for Enter)."""
    global _session
    if os.name != "posix" or not sys.stdin.isatty():
        return input(prompt)
    try:
        from prompt_toolkit import PromptSession
    except ImportError:
        PromptSession = None
    if PromptSession is not None:
        if _session is None:
            _session = PromptSession()
        return _session.prompt(prompt)
    _stdout_write(prompt)
    while not select.select([sys.stdin], [], [], 0.1)[0]:
        pass  # back in Python every 0.1 s, where a pending KeyboardInterrupt is raised
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.removesuffix("\n")


def _stdout_write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def chat_loop(
    llm: LLM,
    *,
    read: Callable[[str], str] = read_line,
    write: Callable[[str], Any] = _stdout_write,
    system: str | None = None,
    **sampling: Any,
) -> list[dict[str, str]]:
    """Chat until /exit, Ctrl-D or Ctrl-C; returns the conversation (system message included)."""
    history: list[dict[str, str]] = []
    if system:
        history.append({"role": "system", "content": system})
    write(f"chatting with {llm.model_name} ({llm.backend}); {CHAT_HELP}\n")
    while True:
        try:
            line = read("you> ")
        except (EOFError, KeyboardInterrupt):
            write("\n")
            return history
        if not line.strip():
            continue
        if line.startswith("/"):
            if _command(line.strip(), history, write):
                return history
            continue
        history.append({"role": "user", "content": line})
        write("assistant> ")
        answer = []
        try:
            for delta in llm.stream(history, **sampling):
                answer.append(delta)
                write(delta)
        except KeyboardInterrupt:
            write(" [stopped]")
        except UserError as exc:
            history.pop()
            write(f"\nerror: {exc}\n")
            continue
        write("\n")
        history.append({"role": "assistant", "content": "".join(answer)})


def _command(line: str, history: list[dict[str, str]], write: Callable[[str], Any]) -> bool:
    """Run one /command; True means the chat should end."""
    name, _, arg = line.partition(" ")
    arg = arg.strip()
    if name in ("/exit", "/quit"):
        return True
    if name == "/reset":
        system = [m for m in history if m["role"] == "system"]
        history[:] = system
        write("(conversation cleared)\n")
    elif name == "/system":
        history[:] = [m for m in history if m["role"] != "system"]
        if arg:
            history.insert(0, {"role": "system", "content": arg})
            write("(system prompt set)\n")
        else:
            write("(system prompt removed)\n")
    elif name == "/save":
        if not arg:
            write("usage: /save FILE\n")
            return False
        try:
            atomic_write_json(arg, {"messages": history})
        except OSError as exc:
            write(f"error: cannot write {arg}: {exc.strerror}\n")
            return False
        write(f"(saved {len(history)} messages to {arg})\n")
    elif name == "/help":
        write(CHAT_HELP + "\n")
    else:
        write(f"unknown command {name}; {CHAT_HELP}\n")
    return False
