"""The terminal chat, driven through a real pseudo-terminal: typing, streaming answers, history,
/reset, /system, /save, and clean exits on /exit, Ctrl-D and Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import termios
import time

import pytest

from instructgen.inference import chat_loop, instruction_prompt, load

PROMPT = "you> "


class Terminal:
    """A child process on a pseudo-terminal: what a user types, what the user sees."""

    def __init__(self, argv: list[str]):
        env = dict(os.environ, PYTHONUNBUFFERED="1", TERM="dumb")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its stdin, stdout and controlling terminal are the pty
            os.execvpe(argv[0], argv, env)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        """Read until `text` appears; return everything read up to and including it."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; saw {self.seen!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    data = b""
                if not data:
                    raise AssertionError(f"exited before {text!r}; saw {self.seen!r}")
                self.seen += data.decode("utf-8", errors="replace")
        head, _, self.seen = self.seen.partition(text)
        return head + text

    def type(self, keys: str) -> None:
        """Type once the line editor has the terminal (raw mode), as a person would: keys sent
        before that would be read by the terminal's own line discipline instead."""
        deadline = time.monotonic() + 5
        while termios.tcgetattr(self.fd)[3] & termios.ICANON and time.monotonic() < deadline:
            time.sleep(0.02)
        os.write(self.fd, keys.encode())

    def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:  # keep draining so the child never blocks on a full terminal
                if select.select([self.fd], [], [], 0.05)[0]:
                    os.read(self.fd, 4096)
            except OSError:
                pass
        os.kill(self.pid, 9)
        raise AssertionError("the chat did not exit")


def _library_chat(model_dir) -> list[str]:
    code = (
        "import sys; from instructgen.inference import load, chat_loop; "
        "chat_loop(load(sys.argv[1]), max_tokens=12, seed=0)"
    )
    return [sys.executable, "-c", code, str(model_dir)]


def _cli_chat(model_dir) -> list[str]:
    return [
        sys.executable,
        "-m",
        "instructgen",
        "chat",
        "--model",
        str(model_dir),
        "--max-tokens",
        "12",
        "--seed",
        "0",
    ]


def _wired(argv: list[str]) -> bool:
    import subprocess

    help_text = subprocess.run(argv[:4] + ["--help"], capture_output=True, text=True).stdout
    return "--model" in help_text


@pytest.fixture
def chat_argv(llama_dir):
    """`instructgen chat` once cli.py wires it; until then the library loop it calls."""
    argv = _cli_chat(llama_dir)
    return argv if _wired(argv) else _library_chat(llama_dir)


def test_chat_session(chat_argv, tmp_path):
    term = Terminal(chat_argv)
    banner = term.expect(PROMPT)
    assert "/reset" in banner and "/exit" in banner
    term.type("请用中文写一首关于春天的诗。\n")
    first = term.expect(PROMPT)
    assert "assistant> " in first
    term.type("/system 你是一位诗人。\n")
    assert "system prompt set" in term.expect(PROMPT)
    term.type("And another one?\n")
    term.expect(PROMPT)
    saved = tmp_path / "chat.json"
    term.type(f"/save {saved}\n")
    assert "saved 5 messages" in term.expect(PROMPT)
    messages = json.loads(saved.read_text(encoding="utf-8"))["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == "请用中文写一首关于春天的诗。"
    term.type("/reset\n")
    assert "cleared" in term.expect(PROMPT)
    term.type(f"/save {saved}\n")
    assert "saved 1 messages" in term.expect(PROMPT)  # the system prompt stays
    term.type("/exit\n")
    assert term.exit_code() == 0


@pytest.mark.parametrize("key", ["\x04", "\x03"], ids=["ctrl-d", "ctrl-c"])
def test_chat_exits_cleanly(chat_argv, key):
    term = Terminal(chat_argv)
    term.expect(PROMPT)
    term.type("hello\n")
    term.expect(PROMPT)
    term.type(key)
    assert term.exit_code() == 0
    assert "Traceback" not in term.seen


def test_chat_loop_in_process(llama_dir):
    lines = iter(["hi", "/help", "/bogus", "/system", "/exit"])
    shown: list[str] = []
    history = chat_loop(
        load(llama_dir), read=lambda _: next(lines), write=shown.append, max_tokens=4
    )
    assert [m["role"] for m in history] == ["user", "assistant"]
    text = "".join(shown)
    assert "unknown command /bogus" in text and "system prompt removed" in text


def test_instruction_prompt():
    assert instruction_prompt("Translate.", "你好", system="Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Translate.\n\n你好"},
    ]
    assert (
        instruction_prompt("请用中文写一首关于春天的诗。", "", chat=False)
        == "请用中文写一首关于春天的诗。"
    )


def test_chat_line_editing_and_history(chat_argv, tmp_path):
    """Arrow keys edit the line (readline) instead of reaching the model as escape codes, and
    up recalls the previous line."""
    term = Terminal(chat_argv)
    term.expect(PROMPT)
    left, up = "\x1b[D", "\x1b[A"
    term.type(f"helo{left}l\n")  # "helo", one step left, insert "l": "hello"
    term.expect(PROMPT)
    saved = tmp_path / "chat.json"
    term.type(f"/save {saved}\n")
    term.expect(PROMPT)
    term.type(f"{up}{up}\n")  # the line before /save: "hello" again
    term.expect(PROMPT)
    term.type(f"/save {saved}\n")
    term.expect(PROMPT)
    messages = json.loads(saved.read_text(encoding="utf-8"))["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["hello", "hello"]
    term.type("/exit\n")
    assert term.exit_code() == 0
